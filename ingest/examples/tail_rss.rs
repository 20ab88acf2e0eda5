//! Runs the tailer over a generated pod log as fast as it goes, with a consumer that
//! acknowledges every batch, and prints the throughput: the process to measure the agent
//! input path's peak RSS with `/usr/bin/time -v`.
//!
//! `cargo run --release -p ingest --example tail_rss -- [MiB] [pods] [read]`
//!
//! With `read`, the consumer also reads every record's message and path bytes, as a parsing
//! consumer does: the tailer later frees and reuses that memory, so on two cores its cost
//! depends on what the consumer touched (see ingest/README.md).

use std::time::{Duration, Instant};

use ingest::{IngestStats, Tailer, TailerConfig};

/// The allocator the `sluice` binary ships with (see `src/main.rs`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../benches/workload.rs"]
mod workload;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mib: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(256);
    let pods: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(4);
    let read = match args.next().as_deref() {
        None => false,
        Some("read") => true,
        Some(other) => anyhow::bail!("unknown consumer mode {other:?}; expected `read`"),
    };
    let dir = tempfile::tempdir()?;
    let mut expected = 0;
    let mut bytes = 0;
    for p in 0..pods {
        let c = dir.path().join(format!("pods/bench_api-{p}_uid-{p}/app"));
        std::fs::create_dir_all(&c)?;
        let w = workload::write_cri_log(&c.join("0.log"), (mib << 20) / pods)?;
        expected += w.records;
        bytes += w.bytes;
    }
    let cfg = TailerConfig {
        pods_dir: Some(dir.path().join("pods")),
        state_dir: dir.path().join("state"),
        ..TailerConfig::default()
    };
    let (tx, rx) = crossbeam_channel::bounded(8);
    // The main thread wrote the workload; only its CPU from here on is the consumer's.
    let consumer_start = workload::main_thread_stat();
    let start = Instant::now();
    let handle = Tailer::try_new(&cfg)?.spawn(tx)?;
    let acker = handle.acker();
    let mut records = 0u64;
    let mut batches = 0u64;
    let mut checksum = 0u64;
    while records < expected {
        let batch = rx.recv_timeout(Duration::from_secs(30))?;
        records += batch.records.len() as u64;
        batches += 1;
        if read {
            checksum = batch.records.iter().fold(checksum, |sum, r| {
                let bytes = r.message.bytes().chain(r.source.path.bytes());
                bytes.fold(sum, |s, b| s.wrapping_mul(31).wrapping_add(u64::from(b)))
            });
        }
        acker.ack(batch.records.iter().map(|r| &r.source));
    }
    let secs = start.elapsed().as_secs_f64();
    let tailer = workload::thread_stat("sluice-tailer");
    let consumer = workload::main_thread_stat();
    if read {
        println!("consumer read every message and path (checksum {checksum:x})");
    }
    let stats = handle.stats();
    println!(
        "{} records, {:.1} MiB in {secs:.2} s: {:.0} MiB/s, {:.0} records/s (bytes_read {})",
        records,
        bytes as f64 / 1048576.0,
        bytes as f64 / 1048576.0 / secs,
        records as f64 / secs,
        IngestStats::get(&stats.bytes_read)
    );
    if let (Some(t), Some(c), Some(c0)) = (tailer, consumer, consumer_start) {
        println!(
            "{batches} batches; tailer: {} voluntary and {} involuntary context switches, {} minor page faults; consumer CPU {:.2} s, {} voluntary",
            t.voluntary_switches,
            t.involuntary_switches,
            t.minor_faults,
            c.cpu.saturating_sub(c0.cpu).as_secs_f64(),
            c.voluntary_switches - c0.voluntary_switches
        );
    }
    if let Some(t) = tailer {
        let cpu = t.cpu.as_secs_f64();
        println!(
            "tailer thread CPU {cpu:.2} s: {:.0} MiB per CPU-second",
            bytes as f64 / 1048576.0 / cpu
        );
    }
    handle.shutdown()?;
    Ok(())
}
