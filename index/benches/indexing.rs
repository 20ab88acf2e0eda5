//! Indexing throughput of the embedded store, in MB/s of event JSON: stage a batch of realistic
//! events into a fresh store and commit it (the commit, with its fsyncs, is part of the work).
//!
//! `cargo bench -p index --bench indexing`

mod common;

use std::time::{Duration, Instant};

use chrono::Utc;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use index::{IndexConfig, Store};

/// Events per measured batch: about 40 MB of JSON, enough for tantivy to flush segments from
/// both indexing threads as it would under steady load.
const BATCH_EVENTS: usize = 60_000;

/// CPU time (user + system) this process has used so far, from `/proc/self/stat`: on a shared
/// machine wall time measures the neighbours too, CPU time only our work. `None` off Linux.
fn process_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // Linux reports in clock ticks, 100 per second on every mainstream configuration.
    Some((utime + stime) / 100.0)
}

fn bench_indexing(c: &mut Criterion) {
    let start = Utc::now() - chrono::Duration::hours(2);
    let mut generator = common::Generator::new(7, start, chrono::Duration::milliseconds(1));
    let events: Vec<schemas::LogEvent> =
        (0..BATCH_EVENTS).map(|_| generator.next_event()).collect();
    let bytes: u64 = events
        .iter()
        .map(|e| serde_json::to_vec(e).map_or(0, |v| v.len() as u64))
        .sum();
    eprintln!(
        "indexing bench: {} events, {:.1} MB of JSON, {:.0} bytes/event",
        events.len(),
        bytes as f64 / 1e6,
        bytes as f64 / events.len() as f64
    );

    let mut group = c.benchmark_group("index");
    group.throughput(Throughput::Bytes(bytes));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    for threads in [1usize, 2] {
        group.bench_function(format!("add_commit_{threads}_threads"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let cpu_before = process_cpu_secs();
                for _ in 0..iters {
                    let dir = tempfile::tempdir().expect("temp dir for the bench store");
                    let config = IndexConfig {
                        writer_threads: threads,
                        writer_heap_bytes: 128 * 1024 * 1024 * threads,
                        ..IndexConfig::with_data_dir(dir.path())
                    };
                    let mut store = Store::open(&config).expect("open bench store");
                    let t0 = Instant::now();
                    for ev in &events {
                        store.add(ev).expect("add");
                    }
                    store.commit().expect("commit");
                    total += t0.elapsed();
                }
                if let (Some(before), Some(after)) = (cpu_before, process_cpu_secs()) {
                    let mb = (bytes * iters) as f64 / 1e6;
                    eprintln!(
                        "  {threads} threads: {iters} batches, {:.1} MB/s wall, {:.1} MB per CPU-second",
                        mb / total.as_secs_f64(),
                        mb / (after - before).max(0.01)
                    );
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_indexing);
criterion_main!(benches);
