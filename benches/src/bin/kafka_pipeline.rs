//! Distributed mode against librdkafka's mock cluster on 127.0.0.1 (in this process):
//!
//! 1. `throughput`: agent → broker. A generated pod-log tree is tailed by one `agent` role
//!    and produced to the raw topic (`acks=all`, idempotent, lz4 by default); the clock stops when every
//!    record's delivery report is in. Reports MB/s of log bytes and records/s, and the CPU
//!    seconds of each thread (`/proc/self/task/*/schedstat`): "MB per CPU-second" divides by the
//!    agent's threads (tailer, agent, librdkafka's), not the mock broker's or the bench's.
//! 2. `lag`: end-to-end lag at a steady rate. A writer appends CRI lines to pod logs at
//!    `--rate-mb` MB/s for `--seconds`; one agent, one processor and one indexer run;
//!    every 200 ms the bench records how many lines were written, and polls the searchable
//!    count of the indexer's stores. The lag of a sample is how long after its writing the
//!    searchable count reached it (lines are searchable in roughly written order). Reports
//!    p50 / p95 / max lag, whether the pipeline kept up, and CPU seconds per thread name.
//!    With `--sink elasticsearch` the indexer writes to Elasticsearch, as in a deployment
//!    (`kafka.indexer_sink = "elasticsearch"`): here the index crate's mock `_bulk` API in this
//!    process, in its lean mode (every action and `_id` checked, every source checked to be
//!    JSON, nothing indexed), and the count is of documents it acknowledged. A real cluster
//!    makes them searchable one refresh interval later (1 s by default).
//!
//! ```text
//! cargo run --release -p benches --bin kafka_pipeline -- [throughput|lag|all] [--mb 200]
//!     [--rate-mb 20] [--seconds 20] [--compression lz4|zstd|none] [--commit-ms 1000]
//!     [--writer-threads 2] [--partitions 6] [--sink tantivy|elasticsearch]
//! ```
//! Measures only; asserts nothing about timings. Runs with mimalloc, as the `sluice` binary.
//!
//! Measured 2026-12-04 on the shared 2-core machine (release build; other sessions were
//! building and benchmarking, load average from `uptime` next to each figure). Before =
//! be32d05 (serde_json on both sides of the raw topic) with this file, after = the
//! `RawRecordWriter` / `RawRecordReader` commits; runs alternated before/after:
//!
//! | run | before | after |
//! |---|---|---|
//! | `throughput --mb 200` (339 MB, 952 k records), 3 after-runs then 3 before-runs, load 3.4-3.8 | 77.0 / 70.7 / 84.2 MB/s wall (median 77.0); 74.9 / 92.8 / 94.9 MB per CPU-second; agent thread 1.85-2.23 CPU-s | 162.0 / 156.5 / 135.3 MB/s wall (median 156.5); 121.2 / 113.0 / 123.2 MB per CPU-second; agent thread 1.14-1.21 CPU-s |
//! | the same, alternating, load 4.3-4.4 | 50.2 / 53.9 / 62.6 MB/s (median 53.9); 89.0-100.1 MB per CPU-second | 69.2 / 111.9 / 62.5 MB/s (median 69.2); 123.3-131.1 MB per CPU-second |
//! | the same, alternating, load 2.7-4.3 | 23.4 / 31.3 / 57.9 MB/s; 92.0-99.6 MB per CPU-second; agent thread 1.72-1.82 CPU-s | 20.6 / 68.7 / 71.2 MB/s; 114.7-134.8 MB per CPU-second; agent thread 1.04-1.14 CPU-s |
//! | `lag --rate-mb 10 --seconds 15` (586 k lines), load 4.2-4.8 | all searchable, p50 1.65 s, p95 2.25 s, max 3.03 s; processor 3.87 CPU-s, agent 0.82 | all searchable, p50 4.80 s, p95 6.40 s, max 6.86 s (p50 1.64-3.37 s in two earlier runs at load 4.5); processor 3.38 CPU-s, agent 0.51 |
//! | `lag --rate-mb 15 --seconds 20` (1.17 M lines), load 4.4-4.9 | – | did not keep up: 0.69 M searchable |
//! | `lag --rate-mb 20 --seconds 20` (1.56 M lines), load 4.0-6.1 | – | did not keep up: 0.52 M and 0.70 M searchable (0.50 M with `--writer-threads 1`); the processor fell behind first |
//!
//! Earlier (zstd, then lz4, indexer and consumers committing every 500 ms): `throughput`
//! 55-63 MB/s (zstd), 63-83 MB/s (lz4), load 3-6; `lag --rate-mb 5 --seconds 20` all 391 k, p50
//! 1.03 s, p95 1.29 s; `--rate-mb 10 --seconds 10` all 391 k, p50 1.58 s, p95 2.01 s.
//!
//! Agent → broker meets 100 MB/s when the machine leaves the process about two cores (the
//! median of 3 runs at load 3.4-3.8 was 156.5 MB/s) and misses it when the neighbours take
//! more (69.2 MB/s at load 4.3), since the agent needs ~2.7 CPU-s per 339 MB (≈ 125 MB per
//! CPU-second: tailer 0.3, agent thread 1.1, librdkafka's broker thread 0.9 of which a third
//! is lz4, delivery reports 0.3-0.5). Quiet machine, 2026-12-05 (lead): 115.4 / 116.4 / 114.9
//! MB/s.
//!
//! The lag run kept up at 20 MB/s on the quiet machine (2026-12-05, load 1.3-3.4, lead): all
//! 1.56 M lines in each of six runs. `--sink elasticsearch`: p50 1.00 s, p95 1.01-1.21 s, max
//! 1.21-1.41 s to the mock's acknowledgement; default (tantivy): p50 1.86-1.93 s, p95
//! 2.46-2.50 s, max 2.69-2.78 s to searchable. Before the ES indexer passed events through and
//! the processor and indexer stopped using serde_json for events, a line cost ~28 µs of CPU
//! across all stages and the indexer fell behind. The per-thread CPU line counts only threads
//! alive when it is taken; tantivy's indexing threads are missing from it, so with the tantivy
//! sink it understates the indexer.
//! Once a consumer is a few seconds behind, the mock broker drops the oldest data of the
//! partition (it keeps only 5 MiB, `max_size` in rdkafka_mock.c), the counts stop moving and
//! the run stops as "stalled"; a real cluster retains far longer, so there the same run would
//! show growing lag rather than missing lines.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use sluice::config::{Role, SluiceConfig};
use sluice::distributed::{
    Agent, Compression, DistributedSearcher, Indexer, IndexerSink, KafkaConfig, Processor,
};

/// The mock Elasticsearch of the index crate's integration tests (`--sink elasticsearch`).
#[allow(dead_code)]
#[path = "../../../index/tests/es_it/mock.rs"]
mod mock;

/// The same global allocator as the `sluice` binary, so the roles measure what ships
/// (librdkafka's own allocations stay on the C allocator either way).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Raw and events partitions unless `--partitions` says otherwise, as a small production
/// topic would have.
const PARTITIONS: i32 = 6;
/// How often the lag run samples written and searchable counts.
const SAMPLE_EVERY: Duration = Duration::from_millis(200);
/// How long the lag run waits, after writing stops, for the pipeline to catch up.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);
/// How often the lag run prints each stage's count while it drains.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// The drain stops when no stage's count moved for this long (see the mock broker's
/// retention note in `lag`).
const STALL_TIMEOUT: Duration = Duration::from_secs(15);
/// Pods the lag writer spreads its lines over.
const LAG_PODS: usize = 12;

struct Args {
    mode: String,
    mb: u64,
    rate_mb: f64,
    seconds: u64,
    /// Producer codec; the config default unless `--compression` is given.
    compression: Compression,
    /// Offset and store commit interval of the consumers (`--commit-ms`); the shipped
    /// default unless given.
    commit_ms: u64,
    /// `[index] writer_threads` of each partition store (`--writer-threads`).
    writer_threads: usize,
    /// Partitions of every topic (`--partitions`). The mock broker keeps only the newest
    /// 5 MiB of each partition, so more partitions also let a consumer fall further behind
    /// before the broker deletes what it has not fetched.
    partitions: i32,
    /// Where the indexer writes (`--sink`): its partition stores, or Elasticsearch (the mock
    /// from the index crate's integration tests, in this process).
    sink: Sink,
}

/// The indexer's sink in the lag run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sink {
    /// The embedded tantivy store per events partition: indexing runs on the same two cores.
    Tantivy,
    /// `kafka.indexer_sink = "elasticsearch"` against the mock `_bulk` API on 127.0.0.1. In a
    /// deployment Elasticsearch runs on its own nodes; here its indexing is not done at all,
    /// only the protocol (every bulk line parsed, every `_id` checked and kept), so the figure
    /// is the pipeline's lag up to Elasticsearch's acknowledgement, before its refresh interval.
    Elasticsearch,
}

impl Sink {
    fn as_str(self) -> &'static str {
        match self {
            Sink::Tantivy => "tantivy partition stores",
            Sink::Elasticsearch => "Elasticsearch bulk API (mock on 127.0.0.1)",
        }
    }
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        mode: "all".into(),
        mb: 200,
        rate_mb: 20.0,
        seconds: 20,
        compression: Compression::default(),
        commit_ms: sluice::distributed::ConsumerSettings::default().commit_interval_ms,
        writer_threads: index::IndexConfig::default().writer_threads,
        partitions: PARTITIONS,
        sink: Sink::Tantivy,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .ok_or_else(|| anyhow::anyhow!("{name} needs a value"))
        };
        match a.as_str() {
            "--mb" => args.mb = value("--mb")?.parse()?,
            "--rate-mb" => args.rate_mb = value("--rate-mb")?.parse()?,
            "--seconds" => args.seconds = value("--seconds")?.parse()?,
            "--commit-ms" => args.commit_ms = value("--commit-ms")?.parse()?,
            "--writer-threads" => args.writer_threads = value("--writer-threads")?.parse()?,
            "--partitions" => {
                args.partitions = value("--partitions")?.parse()?;
                anyhow::ensure!(args.partitions >= 1, "--partitions must be at least 1");
            }
            "--sink" => {
                args.sink = match value("--sink")?.as_str() {
                    "tantivy" => Sink::Tantivy,
                    "elasticsearch" | "es" => Sink::Elasticsearch,
                    other => anyhow::bail!("unknown sink {other:?} (tantivy or elasticsearch)"),
                }
            }
            "--compression" => {
                args.compression = match value("--compression")?.as_str() {
                    "lz4" => Compression::Lz4,
                    "zstd" => Compression::Zstd,
                    "none" => Compression::None,
                    other => anyhow::bail!("unknown codec {other:?} (lz4, zstd or none)"),
                }
            }
            "throughput" | "lag" | "all" => args.mode = a,
            other => anyhow::bail!("unknown argument {other:?}"),
        }
    }
    Ok(args)
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    if args.mode == "throughput" || args.mode == "all" {
        throughput(&args)?;
    }
    if args.mode == "lag" || args.mode == "all" {
        lag(&args)?;
    }
    Ok(())
}

fn cluster(
    topics: &[&str],
    partitions: i32,
) -> anyhow::Result<MockCluster<'static, DefaultProducerContext>> {
    let mock = MockCluster::new(1)?;
    for t in topics {
        mock.create_topic(t, partitions, 1)?;
    }
    anyhow::ensure!(
        mock.bootstrap_servers().starts_with("127.0.0.1:"),
        "the mock cluster must listen on loopback"
    );
    Ok(mock)
}

fn kafka(brokers: &str, args: &Args) -> KafkaConfig {
    let mut kafka = KafkaConfig::with_brokers(brokers);
    kafka.consumer.commit_interval_ms = args.commit_ms;
    kafka.producer.compression = args.compression;
    kafka
}

fn role_config(
    role: Role,
    kafka: &KafkaConfig,
    pods: Option<&Path>,
    data: &Path,
    args: &Args,
) -> SluiceConfig {
    let mut config = SluiceConfig::default();
    config.role = role;
    config.data_dir = Some(data.to_path_buf());
    config.ingest.pods_dir = pods.map(Path::to_path_buf);
    config.ingest.poll_interval_ms = 50;
    config.api.enabled = false;
    config.index.commit_interval_ms = args.commit_ms;
    config.index.writer_threads = args.writer_threads;
    config.kafka = kafka.clone();
    config.resolve_paths();
    config
}

fn dir_bytes(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_bytes(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

/// CPU time each thread of this process has had so far, summed per thread name, from
/// `/proc/self/task/*/schedstat` (nanoseconds on a CPU). On a shared machine wall time also
/// measures the neighbours; CPU time only our threads. Empty off Linux.
fn thread_cpu_secs() -> BTreeMap<String, f64> {
    let mut by_name = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return by_name;
    };
    for task in tasks.flatten() {
        let dir = task.path();
        let (Ok(name), Ok(sched)) = (
            std::fs::read_to_string(dir.join("comm")),
            std::fs::read_to_string(dir.join("schedstat")),
        ) else {
            continue;
        };
        let Some(Ok(ns)) = sched.split_whitespace().next().map(str::parse::<u64>) else {
            continue;
        };
        *by_name.entry(name.trim().to_string()).or_insert(0.0) += ns as f64 / 1e9;
    }
    by_name
}

/// CPU seconds per thread name between two [`thread_cpu_secs`] snapshots, largest first.
fn cpu_delta(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> Vec<(String, f64)> {
    let mut delta: Vec<(String, f64)> = after
        .iter()
        .map(|(name, secs)| {
            (
                name.clone(),
                secs - before.get(name).copied().unwrap_or(0.0),
            )
        })
        .filter(|(_, secs)| *secs >= 0.005)
        .collect();
    delta.sort_by(|a, b| b.1.total_cmp(&a.1));
    delta
}

/// `name secs, name secs, ...` of a [`cpu_delta`].
fn list_cpu(cpu: &[(String, f64)]) -> String {
    let threads: Vec<String> = cpu
        .iter()
        .map(|(name, secs)| format!("{name} {secs:.2}"))
        .collect();
    threads.join(", ")
}

fn throughput(args: &Args) -> anyhow::Result<()> {
    let (mb, compression) = (args.mb, args.compression);
    let dirs = tempfile::tempdir()?;
    let pods = dirs.path().join("pods");
    // ~210 bytes per generated line.
    let lines = mb * 1_000_000 / 210;
    let report = sluice::generate::generate(&sluice::generate::GenerateConfig {
        out: pods.clone(),
        seed: 7,
        lines: Some(lines),
        rate_per_s: 5_000.0,
        duration: None,
        incidents: sluice::generate::IncidentSelection::All,
        start: None,
        rotate_bytes: 64 * 1024 * 1024,
    })?;
    let bytes = dir_bytes(&pods)? as f64;
    let mock = cluster(&["sluice.raw"], args.partitions)?;
    let kafka = kafka(&mock.bootstrap_servers(), args);
    let config = role_config(
        Role::Agent,
        &kafka,
        Some(&pods),
        &dirs.path().join("agent"),
        args,
    );
    let cpu_before = thread_cpu_secs();
    let started = Instant::now();
    let mut agent = Agent::start(&config)?;
    let stats = agent.stats();
    while stats.records_delivered.load(Relaxed) < report.records {
        agent.check_health()?;
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "agent did not finish in 10 minutes"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_delta(&cpu_before, &thread_cpu_secs());
    let waits = stats.backpressure_waits.load(Relaxed);
    let in_flight_max = stats.in_flight_max.load(Relaxed);
    agent.shutdown()?;
    println!(
        "throughput: agent -> mock broker (127.0.0.1, acks=all, idempotent, {}, {} partitions): \
         {:.0} MB in {secs:.2} s = {:.1} MB/s, {:.0} records/s ({} records); \
         {waits} backpressure waits, at most {in_flight_max} records in flight",
        compression.as_str(),
        args.partitions,
        bytes / 1e6,
        bytes / 1e6 / secs,
        report.records as f64 / secs,
        report.records
    );
    // The bench's own (main) thread only polls a counter; the mock broker would run elsewhere.
    let main_thread = std::fs::read_to_string("/proc/self/comm").unwrap_or_default();
    let agent_cpu: f64 = cpu
        .iter()
        .filter(|(name, _)| !name.starts_with("rdk:mock") && *name != main_thread.trim())
        .map(|(_, secs)| secs)
        .sum();
    println!(
        "throughput CPU: agent threads {agent_cpu:.2} s = {:.1} MB per CPU-second; per thread (s): {}",
        bytes / 1e6 / agent_cpu,
        list_cpu(&cpu)
    );
    Ok(())
}

/// One CRI line of about `size` bytes for pod `pod`.
fn line(buf: &mut Vec<u8>, n: u64, size: usize) {
    buf.clear();
    let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let _ = write!(
        buf,
        "{ts} stdout F {{\"level\": \"info\", \"msg\": \"GET /api/orders 200\", \"method\": \"GET\", \"path\": \"/api/orders\", \"status_code\": 200, \"duration_ms\": 12.5, \"seq\": {n}, \"pad\": \""
    );
    while buf.len() + 3 < size {
        buf.push(b'x');
    }
    buf.extend_from_slice(b"\"}\n");
}

fn lag(args: &Args) -> anyhow::Result<()> {
    let (rate_mb, seconds, compression) = (args.rate_mb, args.seconds, args.compression);
    let dirs = tempfile::tempdir()?;
    let pods = dirs.path().join("pods");
    let mut files = Vec::new();
    for p in 0..LAG_PODS {
        let dir = pods.join(format!("shop_api-{p}_uid-api-{p}")).join("api");
        std::fs::create_dir_all(&dir)?;
        files.push(std::fs::File::create(dir.join("0.log"))?);
    }
    let mock = cluster(
        &[
            "sluice.raw",
            "sluice.events",
            "sluice.aggregates",
            "sluice.alerts",
            "sluice.deadletter",
        ],
        args.partitions,
    )?;
    let kafka = kafka(&mock.bootstrap_servers(), args);
    let index_dir: PathBuf = dirs.path().join("indexer");
    let mut indexer_config = role_config(Role::Indexer, &kafka, None, &index_dir, args);
    // The mock Elasticsearch, on a runtime of its own (one thread, named so its CPU is listed
    // apart from the pipeline's).
    let es = match args.sink {
        Sink::Tantivy => None,
        Sink::Elasticsearch => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("mock-es")
                .enable_all()
                .build()?;
            let es = rt.block_on(mock::MockEs::start())?;
            es.set_faults(mock::Faults {
                lean: true,
                ..mock::Faults::default()
            });
            indexer_config.kafka.indexer_sink = IndexerSink::Elasticsearch;
            indexer_config.elasticsearch.urls = vec![format!("http://{}", es.addr)];
            indexer_config.elasticsearch.dead_letter_dir = dirs.path().join("es-dead-letter");
            rt.block_on(index::elasticsearch::setup(&indexer_config.elasticsearch))?;
            Some((rt, es))
        }
    };
    // Events the sink holds: searchable in the stores, or acknowledged by Elasticsearch.
    let sink_count = || -> u64 {
        match &es {
            Some((_, es)) => es.created(),
            None => DistributedSearcher::open(&index_dir, 90)
                .and_then(|s| s.count(&index::SearchRequest::default()))
                .unwrap_or(0),
        }
    };
    let mut indexer = Indexer::start(&indexer_config)?;
    let mut processor = Processor::start(&role_config(
        Role::Processor,
        &kafka,
        None,
        &dirs.path().join("processor"),
        args,
    ))?;
    let mut agent = Agent::start(&role_config(
        Role::Agent,
        &kafka,
        Some(&pods),
        &dirs.path().join("agent"),
        args,
    ))?;
    // Let the groups form before the clock starts.
    std::thread::sleep(Duration::from_secs(5));

    const LINE_BYTES: usize = 256;
    let lines_per_sec = rate_mb * 1e6 / LINE_BYTES as f64;
    let cpu_before = thread_cpu_secs();
    let started = Instant::now();
    let mut written = 0u64;
    let mut samples: Vec<(Duration, u64)> = Vec::new();
    let mut searchable: Vec<(Duration, u64)> = Vec::new();
    let mut last_sample = Instant::now();
    let mut buf = Vec::with_capacity(LINE_BYTES);
    let mut batch = Vec::with_capacity(64 * 1024);
    while started.elapsed() < Duration::from_secs(seconds) {
        let due = (started.elapsed().as_secs_f64() * lines_per_sec) as u64;
        while written < due {
            batch.clear();
            let pod = (written as usize) % LAG_PODS;
            // A few lines per write call, as an application's buffered stdout would.
            for _ in 0..16 {
                line(&mut buf, written, LINE_BYTES);
                batch.extend_from_slice(&buf);
                written += 1;
            }
            files[pod].write_all(&batch)?;
        }
        if last_sample.elapsed() >= SAMPLE_EVERY {
            samples.push((started.elapsed(), written));
            searchable.push((started.elapsed(), sink_count()));
            last_sample = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let write_secs = started.elapsed().as_secs_f64();
    let drain_deadline = Instant::now() + DRAIN_TIMEOUT;
    let (agent_stats, processor_stats, indexer_stats) =
        (agent.stats(), processor.stats(), indexer.stats());
    let mut last_progress = Instant::now();
    let mut last_counts = (0, 0, 0);
    let mut last_change = Instant::now();
    let mut stalled = false;
    loop {
        // The mock broker keeps only the newest 5 MiB of each partition (`max_size` in
        // librdkafka's rdkafka_mock.c), so a consumer that falls further behind than that has
        // its messages deleted under it and those lines can never become searchable. Stop
        // waiting once no stage has moved for a while and say so, instead of reporting it as
        // lag.
        let counts = (
            agent_stats.records_delivered.load(Relaxed),
            processor_stats.records_in.load(Relaxed),
            indexer_stats.events_added.load(Relaxed),
        );
        if counts != last_counts {
            last_counts = counts;
            last_change = Instant::now();
        } else if last_change.elapsed() >= STALL_TIMEOUT {
            stalled = true;
        }
        // A stage that stopped would otherwise look like lag.
        agent.check_health()?;
        processor.check_health()?;
        indexer.check_health()?;
        if last_progress.elapsed() >= PROGRESS_EVERY {
            // Which stage is behind: each count reaches `written` when its stage caught up.
            eprintln!(
                "drain +{:.0} s: written {written}, delivered {}, processed {}, events acked {}, indexed {} ({} store commits); consumer errors: processor {}, indexer {}",
                started.elapsed().as_secs_f64() - write_secs,
                agent_stats.records_delivered.load(Relaxed),
                processor_stats.records_in.load(Relaxed),
                processor_stats.outputs_acked.load(Relaxed),
                indexer_stats.events_added.load(Relaxed),
                indexer_stats.store_commits.load(Relaxed),
                processor_stats.consumer_errors.load(Relaxed),
                indexer_stats.consumer_errors.load(Relaxed),
            );
            last_progress = Instant::now();
        }
        let n = sink_count();
        searchable.push((started.elapsed(), n));
        if n >= written || stalled || Instant::now() >= drain_deadline {
            break;
        }
        std::thread::sleep(SAMPLE_EVERY);
    }
    let cpu = cpu_delta(&cpu_before, &thread_cpu_secs());
    let mut lags: Vec<f64> = Vec::new();
    for (t_written, count) in &samples {
        if let Some((t_seen, _)) = searchable.iter().find(|(_, n)| n >= count) {
            lags.push(t_seen.saturating_sub(*t_written).as_secs_f64());
        }
    }
    lags.sort_by(f64::total_cmp);
    let pct = |q: f64| -> f64 {
        if lags.is_empty() {
            return f64::NAN;
        }
        lags[((lags.len() - 1) as f64 * q).round() as usize]
    };
    let final_count = searchable.last().map_or(0, |s| s.1);
    println!(
        "lag: line written -> {} in the sink ({}), {:.1} MB/s ({:.0} lines/s of {LINE_BYTES} B) for {write_secs:.0} s, \
         agent + processor + indexer on one mock broker, {} partitions, {}, commits every {} ms, {} writer threads per partition store: p50 {:.2} s, p95 {:.2} s, max {:.2} s over {} samples; \
         {final_count} of {written} lines {} at the end{}",
        if es.is_some() {
            "acknowledged"
        } else {
            "searchable"
        },
        args.sink.as_str(),
        written as f64 * LINE_BYTES as f64 / 1e6 / write_secs,
        written as f64 / write_secs,
        args.partitions,
        compression.as_str(),
        args.commit_ms,
        args.writer_threads,
        pct(0.5),
        pct(0.95),
        pct(1.0),
        lags.len(),
        if es.is_some() {
            "acknowledged"
        } else {
            "searchable"
        },
        if final_count >= written {
            ""
        } else if stalled {
            " (stalled: no stage moved for 15 s; the missing lines were most likely deleted by the mock broker, which keeps 5 MiB per partition)"
        } else {
            " (did not keep up)"
        }
    );
    println!(
        "lag CPU over {:.0} s (s per thread name): {}",
        started.elapsed().as_secs_f64(),
        list_cpu(&cpu)
    );
    agent.shutdown()?;
    processor.shutdown()?;
    indexer.shutdown()?;
    Ok(())
}
