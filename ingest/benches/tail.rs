//! Throughput of the agent's input stage (tail, CRI decode, partial merge, multi-line join,
//! record building, channel hand-off, acknowledgement) over a generated realistic pod log,
//! and of the CRI decoder alone.
//!
//! `SLUICE_BENCH_MIB` sets the file size (default 256 MiB).
//! `tail_cri_decode_merge` is wall time (tailer plus consumer, on a machine others share);
//! `tail_cri_decode_merge_tailer_cpu` counts only the tailer thread's on-CPU time, so its
//! MiB/s is the stage's throughput per core.
//!
//! Run: `CARGO_TARGET_DIR=/work/targets/ingest cargo bench -p ingest --bench tail`

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ingest::{IngestStats, Tailer, TailerConfig};

/// The allocator the `sluice` binary ships with (see `src/main.rs`): the tailer's cost
/// depends on it, and glibc's is not what runs in production.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "workload.rs"]
mod workload;

/// Channel capacity between tailer and consumer, as the embedded pipeline uses.
const CHANNEL_CAPACITY: usize = 8;

fn file_mib() -> u64 {
    std::env::var("SLUICE_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let container = dir.path().join("pods/bench_api-0_uid-0/app");
    std::fs::create_dir_all(&container).expect("pod dir");
    let log = container.join("0.log");
    let written = workload::write_cri_log(&log, file_mib() << 20).expect("write workload");

    let mut group = c.benchmark_group("ingest");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Bytes(written.bytes));
    // Wall time: includes the consumer thread and whatever else the machine runs.
    group.bench_function("tail_cri_decode_merge", |b| {
        b.iter_custom(|iters| run_tailer(&dir, &written, iters, Clock::Wall))
    });
    // The tailer thread's own CPU time: the per-core throughput of the stage.
    group.bench_function("tail_cri_decode_merge_tailer_cpu", |b| {
        b.iter_custom(|iters| run_tailer(&dir, &written, iters, Clock::TailerCpu))
    });
    let data = std::fs::read(&log).expect("read workload");
    group.bench_function("cri_decode_only", |b| {
        b.iter(|| {
            let mut n = 0usize;
            let mut start = 0;
            for nl in memchr::memchr_iter(b'\n', &data) {
                n += ingest::decode_as(ingest::Format::Cri, &data[start..nl])
                    .message
                    .len();
                start = nl + 1;
            }
            n
        })
    });
    group.finish();
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Clock {
    Wall,
    TailerCpu,
}

/// Tails the workload `iters` times with a fresh state dir and an acknowledging consumer;
/// returns the total time on `clock`.
fn run_tailer(
    dir: &tempfile::TempDir,
    written: &workload::Written,
    iters: u64,
    clock: Clock,
) -> Duration {
    let mut total = Duration::ZERO;
    for i in 0..iters {
        let cfg = TailerConfig {
            pods_dir: Some(dir.path().join("pods")),
            state_dir: dir.path().join(format!("state-{i}-{}", rand_suffix())),
            poll_interval_ms: 5,
            ..TailerConfig::default()
        };
        let (tx, rx) = crossbeam_channel::bounded(CHANNEL_CAPACITY);
        let start = Instant::now();
        let handle = Tailer::try_new(&cfg)
            .expect("tailer")
            .spawn(tx)
            .expect("spawn");
        let acker = handle.acker();
        let mut records = 0u64;
        while records < written.records {
            let batch = rx
                .recv_timeout(Duration::from_secs(30))
                .expect("records keep coming");
            records += batch.records.len() as u64;
            acker.ack(batch.records.iter().map(|r| &r.source));
        }
        total += match clock {
            Clock::Wall => start.elapsed(),
            Clock::TailerCpu => {
                workload::thread_cpu("sluice-tailer").expect("the tailer thread's CPU time")
            }
        };
        let stats = handle.stats();
        assert_eq!(IngestStats::get(&stats.bytes_read), written.bytes);
        handle.shutdown().expect("shutdown");
    }
    total
}

/// Distinct state dirs across criterion's warm-up and measurement calls.
fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

criterion_group!(benches, bench);
criterion_main!(benches);
