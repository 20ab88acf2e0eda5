//! Runs Sluice's agent path over a pod-log directory to completion and exits.
//!
//! `ingest::Tailer` (state in a fresh temp directory, so every run reads everything) →
//! `parse::Parser::parse_record` → a sink: NDJSON written to a file (`--sink file --out PATH`)
//! or dropped after parsing (`--sink null`). Each batch is acknowledged with the tailer's
//! `Acker` once the sink has taken it, as the embedded pipeline does after its commit. The
//! run ends when the tailer reports idle twice in a row, a poll apart (the rule
//! `EmbeddedPipeline::wait_idle` uses), or fails after `--max-seconds`.
//!
//! A one-line summary goes to stderr: records, message bytes, events carrying error codes,
//! `busy_seconds` (until the last batch was written) and `seconds` (until idle was seen).
//!
//! ```text
//! agent_path --pods-dir /tmp/w/pods --sink file --out /tmp/w/agent.ndjson
//! ```

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use crossbeam_channel::{RecvTimeoutError, bounded};

/// The same global allocator as the `sluice` binary, so the agent path measures what ships.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Batches queued between the tailer and this consumer: the embedded pipeline's
/// `RAW_QUEUE_BATCHES`, so the memory bound matches what `sluice run` ships with.
const RAW_QUEUE_BATCHES: usize = 16;
/// How often the consumer wakes to check for idleness when no batch arrives; the embedded
/// pipeline's idle tick.
const IDLE_POLL: Duration = Duration::from_millis(200);
/// Buffer of the NDJSON writer: large enough that a write syscall carries many events.
const SINK_BUFFER_BYTES: usize = 1024 * 1024;
/// Default bound on one run, so a wedged tailer fails the benchmark instead of hanging it.
const DEFAULT_MAX_SECONDS: u64 = 3600;

#[derive(Debug)]
enum Sink {
    Null,
    File(std::io::BufWriter<std::fs::File>),
}

#[derive(Debug)]
struct Args {
    pods_dir: PathBuf,
    sink: String,
    out: Option<PathBuf>,
    max_seconds: u64,
    /// `ingest.max_read_skew_secs`; 0 reads by byte budget from the start (the order before
    /// the catch-up read order), to measure what that order costs.
    max_read_skew_secs: u64,
}

const USAGE: &str = "usage: agent_path --pods-dir DIR [--sink file|null] [--out PATH] [--max-seconds N] [--max-read-skew-secs N]";

fn parse_args() -> anyhow::Result<Args> {
    let mut pods_dir = None;
    let mut sink = "file".to_string();
    let mut out = None;
    let mut max_seconds = DEFAULT_MAX_SECONDS;
    let mut max_read_skew_secs = ingest::DEFAULT_MAX_READ_SKEW_SECS;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .with_context(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--pods-dir" => pods_dir = Some(PathBuf::from(value()?)),
            "--sink" => sink = value()?,
            "--out" => out = Some(PathBuf::from(value()?)),
            "--max-seconds" => {
                max_seconds = value()?
                    .parse()
                    .context("--max-seconds must be a whole number")?
            }
            "--max-read-skew-secs" => {
                max_read_skew_secs = value()?
                    .parse()
                    .context("--max-read-skew-secs must be a whole number")?
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    let pods_dir = pods_dir.with_context(|| format!("--pods-dir is required\n{USAGE}"))?;
    if sink != "file" && sink != "null" {
        bail!("--sink must be file or null, got {sink:?}");
    }
    if sink == "file" && out.is_none() {
        bail!("--sink file needs --out PATH");
    }
    Ok(Args {
        pods_dir,
        sink,
        out,
        max_seconds,
        max_read_skew_secs,
    })
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let state = tempfile::tempdir().context("failed to create the tailer state directory")?;
    let config = ingest::TailerConfig {
        pods_dir: Some(args.pods_dir.clone()),
        state_dir: state.path().to_path_buf(),
        max_read_skew_secs: args.max_read_skew_secs,
        ..ingest::TailerConfig::default()
    };
    let parser_config = parse::ParseConfig::default();
    let mut parser = parse::Parser::try_new(&parser_config).context("invalid parse config")?;
    let mut sink = match (&args.sink[..], &args.out) {
        ("file", Some(path)) => Sink::File(std::io::BufWriter::with_capacity(
            SINK_BUFFER_BYTES,
            std::fs::File::create(path)
                .with_context(|| format!("failed to create {}", path.display()))?,
        )),
        _ => Sink::Null,
    };

    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.max_seconds);
    let (tx, rx) = bounded::<ingest::Batch>(RAW_QUEUE_BATCHES);
    let tailer = ingest::Tailer::try_new(&config)
        .context("invalid tailer config")?
        .spawn(tx)
        .context("failed to start the tailer")?;
    let acker = tailer.acker();

    let mut records = 0u64;
    // One event's NDJSON line, reused.
    let mut json = Vec::new();
    let mut message_bytes = 0u64;
    let mut events_with_errors = 0u64;
    let mut seen_idle = false;
    // When the last batch was handed to the sink: the wall time of the work itself, without
    // the idle detection that follows it.
    let mut busy = Duration::ZERO;
    loop {
        if Instant::now() > deadline {
            bail!(
                "not idle after {} s ({records} records so far)",
                args.max_seconds
            );
        }
        match rx.recv_timeout(IDLE_POLL) {
            Ok(batch) => {
                seen_idle = false;
                for record in &batch.records {
                    let event = parser.parse_record(record);
                    records += 1;
                    message_bytes += record.message.len() as u64;
                    if !event.sluice.errors.is_empty() {
                        events_with_errors += 1;
                    }
                    if let Sink::File(w) = &mut sink {
                        json.clear();
                        schemas::write_event_json(&event, &mut json)
                            .context("failed to serialize an event")?;
                        json.push(b'\n');
                        w.write_all(&json).context("failed to write the sink")?;
                    }
                }
                if let Sink::File(w) = &mut sink {
                    // Acknowledge only what the OS holds, as a real sink acks after commit.
                    w.flush().context("failed to flush the sink")?;
                }
                acker.ack(batch.records.iter().map(|r| &r.source));
                busy = started.elapsed();
            }
            Err(RecvTimeoutError::Timeout) => {
                if tailer.is_idle() {
                    if seen_idle {
                        break;
                    }
                    seen_idle = true;
                } else {
                    seen_idle = false;
                }
            }
            Err(RecvTimeoutError::Disconnected) => bail!("the tailer stopped unexpectedly"),
        }
    }
    let elapsed = started.elapsed();
    tailer.shutdown().context("failed to stop the tailer")?;
    if let Sink::File(mut w) = sink {
        w.flush().context("failed to flush the sink")?;
    }
    eprintln!(
        "agent_path: records={records} message_bytes={message_bytes} events_with_errors={events_with_errors} busy_seconds={:.3} seconds={:.3}",
        busy.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    Ok(())
}
