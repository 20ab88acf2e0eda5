//! Throughput of the Elasticsearch writer: events serialized, cut into `_bulk` requests and
//! sent over loopback to the mock ES from the integration tests, which parses every item as ES
//! would. The figure is an upper bound on what the writer itself can push (a real cluster is
//! slower), and a regression guard for the client side.
//!
//! `cargo bench -p index --bench es_bulk`

use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use index::elasticsearch::{EsBatcher, EsConfig, EsWriter, setup};

#[allow(dead_code)]
#[path = "../tests/es_it/fixtures.rs"]
mod fixtures;
#[allow(dead_code)]
#[path = "../tests/es_it/mock.rs"]
mod mock;

/// Events per `write` call: what an indexer hands over per Kafka poll.
const EVENTS_PER_WRITE: u64 = 10_000;

fn bench_write(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime builds");
    let dir = tempfile::tempdir().expect("a temp dir");
    let (mock, writer) = rt.block_on(async {
        let mock = mock::MockEs::start().await.expect("the mock starts");
        mock.set_faults(mock::Faults {
            ids_only: true,
            ..mock::Faults::default()
        });
        let cfg = EsConfig {
            urls: vec![format!("http://{}", mock.addr)],
            namespace: "bench".to_owned(),
            dead_letter_dir: dir.path().to_path_buf(),
            ..EsConfig::default()
        };
        setup(&cfg).await.expect("setup against the mock");
        (mock, EsWriter::try_new(&cfg).expect("the writer builds"))
    });
    // Fresh ids each iteration, so every item is a real create and not a 409.
    let next_file = AtomicU64::new(1);
    let sample = fixtures::events(0, EVENTS_PER_WRITE);
    let bytes: usize = sample
        .iter()
        .map(|e| serde_json::to_vec(e).map(|v| v.len()).unwrap_or(0))
        .sum();

    let mut group = c.benchmark_group("es_write");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("10k_events_default_config", |b| {
        b.iter_batched(
            || fixtures::events(next_file.fetch_add(1, Ordering::Relaxed), EVENTS_PER_WRITE),
            |events| {
                let outcome = rt.block_on(writer.write(&events)).expect("write");
                debug_assert!(outcome.all_acked());
                outcome
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
    let m = writer.metrics();
    eprintln!(
        "es_write: {} docs created, {} bulk requests, {} MiB sent, max in flight {} KiB",
        m.docs_created,
        m.bulk_requests,
        m.bytes_sent >> 20,
        m.in_flight_bytes_max >> 10
    );
    drop(mock);
}

/// The client-side CPU cost alone: serializing events into `_bulk` lines, no network.
fn bench_serialize(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let cfg = EsConfig {
        // Never contacted: the batcher is only filled, never flushed.
        urls: vec!["http://127.0.0.1:9".to_owned()],
        batch_max_docs: usize::MAX,
        batch_max_bytes: 100 * 1024 * 1024,
        dead_letter_dir: dir.path().to_path_buf(),
        ..EsConfig::default()
    };
    let writer = EsWriter::try_new(&cfg).expect("the writer builds");
    let events = fixtures::events(0, EVENTS_PER_WRITE);
    let bytes: usize = events
        .iter()
        .map(|e| serde_json::to_vec(e).map(|v| v.len()).unwrap_or(0))
        .sum();
    let mut group = c.benchmark_group("es_serialize");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("10k_events_into_bulk_lines", |b| {
        b.iter(|| {
            let mut batcher = EsBatcher::new(writer.clone());
            for (i, ev) in events.iter().enumerate() {
                batcher.push(ev, i).expect("events serialize");
            }
            batcher.len()
        });
    });
    group.finish();
}

criterion_group!(benches, bench_serialize, bench_write);
criterion_main!(benches);
