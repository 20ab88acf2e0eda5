//! Runs the tailer over a generated pod log as fast as it goes, with a consumer that
//! acknowledges every batch, and prints the throughput: the process to measure the agent
//! input path's peak RSS with `/usr/bin/time -v`.
//!
//! `cargo run --release -p ingest --example tail_rss -- [MiB] [pods]`

use std::time::{Duration, Instant};

use ingest::{IngestStats, Tailer, TailerConfig};

#[path = "../benches/workload.rs"]
mod workload;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mib: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(256);
    let pods: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(4);
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
    let start = Instant::now();
    let handle = Tailer::try_new(&cfg)?.spawn(tx)?;
    let acker = handle.acker();
    let mut records = 0u64;
    while records < expected {
        let batch = rx.recv_timeout(Duration::from_secs(30))?;
        records += batch.records.len() as u64;
        acker.ack(batch.records.iter().map(|r| &r.source));
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = workload::thread_cpu("sluice-tailer").map(|d| d.as_secs_f64());
    let stats = handle.stats();
    println!(
        "{} records, {:.1} MiB in {secs:.2} s: {:.0} MiB/s, {:.0} records/s (bytes_read {})",
        records,
        bytes as f64 / 1048576.0,
        bytes as f64 / 1048576.0 / secs,
        records as f64 / secs,
        IngestStats::get(&stats.bytes_read)
    );
    if let Some(cpu) = cpu {
        println!(
            "tailer thread CPU {cpu:.2} s: {:.0} MiB per CPU-second",
            bytes as f64 / 1048576.0 / cpu
        );
    }
    handle.shutdown()?;
    Ok(())
}
