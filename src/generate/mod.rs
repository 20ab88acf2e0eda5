//! `sluice generate`: a deterministic, realistic Kubernetes workload with injected incidents.
//!
//! The generator writes what the kubelet leaves in `/var/log/pods`:
//! `<out>/<namespace>_<pod>_<uid>/<container>/0.log` with CRI lines
//! (`2026-12-04T16:31:36.123456789Z stdout F <msg>`), rotated to `0.log.<YYYYMMDD-HHMMSS>` when a
//! file passes [`GenerateConfig::rotate_bytes`]. The services:
//!
//! - **api** (namespace `prod`, 3 pods, container `api`): a FastAPI backend. uvicorn access
//!   logs as python-json-logger JSON, structlog app lines, httpx lines for the LLM API
//!   (`api.x.ai`) and Supabase, and Python tracebacks as plain multi-line text on stderr.
//! - **worker** (namespace `prod`, 2 pods): Python `logging`'s default text format on stderr.
//! - **ingress** (namespace `ingress-nginx`, container `controller`): ingress-nginx access lines
//!   (combined format plus upstream fields) on stdout, klog and nginx error lines on stderr.
//!
//! Background traffic has ~0.5% 5xx, some 4xx, log-normal latency around 50–150 ms and
//! occasional warnings, plus benign decoys (a 3× traffic spike with the same error ratio, one
//! slow minute, search queries with SQL words, a user name with an apostrophe). Injected
//! incidents ([`IncidentKind`]) last 8 minutes each with quiet gaps between; the ground truth
//! goes to `<out>/incidents.json` ([`Incident`]).
//!
//! Output is a pure function of the config: with an explicit `start`, the same seed gives
//! byte-identical files (our own PRNG, no dependency can change it).
//!
//! ```no_run
//! use sluice::generate::{GenerateConfig, generate};
//! let config = GenerateConfig {
//!     out: "/tmp/pods".into(),
//!     seed: 7,
//!     lines: Some(100_000),
//!     ..GenerateConfig::default()
//! };
//! let report = generate(&config)?;
//! assert_eq!(report.records, 100_000);
//! # Ok::<(), anyhow::Error>(())
//! ```
//!
//! Counting: a record is what a correct multi-line joiner yields. A traceback (its
//! `Traceback (most recent call last):` line, indented lines, blank lines and
//! `During handling…`/`The above exception…` lines inside, and the final `SomeError: msg` line)
//! is one record; every other line is its own record. Lines that are not part of a traceback
//! never start with whitespace, and a traceback is never followed by a blank line on its stream
//! unless the chain continues. SQLAlchemy's `(Background on this error at: …)` trailer is only
//! printed inside single-line messages, never as a line of its own.

mod content;
mod incident;
mod rng;
mod sink;
#[cfg(test)]
mod tests;
mod workload;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use serde::Serialize;

pub use incident::{DecoyKind, EpisodeKind, Incident, IncidentKind, IncidentSelection};

use incident::{SPIKE_MULTIPLIER, Timeline};
use rng::Rng;
use sink::{MAX_ROTATED_FILES_LIVE, Sink};
use workload::Workload;

/// Records per second when the CLI gives no `--rate`: a busy but ordinary small cluster.
pub const DEFAULT_RATE_PER_S: f64 = 200.0;
/// The kubelet's default `containerLogMaxSize`.
pub const DEFAULT_ROTATE_BYTES: u64 = 10 * 1024 * 1024;
/// Span when neither `lines` nor `duration` is given.
pub const DEFAULT_SPAN: Duration = Duration::from_secs(10 * 60);
/// Where the ground truth goes, relative to `out`.
pub const INCIDENTS_FILE: &str = "incidents.json";
/// Smallest accepted `rotate_bytes`: below it every record would rotate a file.
const MIN_ROTATE_BYTES: u64 = 1024;
/// Largest accepted rate: far above what one core can format, so only typos are refused.
const MAX_RATE_PER_S: f64 = 100_000_000.0;
/// How often live mode wakes to write what is due: short enough that a tailer sees a steady
/// stream, long enough that each wake writes a batch.
const LIVE_TICK: Duration = Duration::from_millis(50);
/// Live mode never writes more than this many seconds' worth in one wake, so a stalled
/// process does not dump a burst when it resumes.
const LIVE_MAX_CATCH_UP_S: f64 = 2.0;
/// The timeline live mode plans when it runs without a duration: long enough for every
/// incident; stopping early clips it.
const LIVE_PLAN: Duration = Duration::from_secs(24 * 3600);
const NANOS_PER_SEC: i64 = 1_000_000_000;

/// What to generate. Filled by the CLI; [`GenerateConfig::validate`] checks it.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateConfig {
    /// Root of the pod-log tree (created; must be empty if it exists).
    pub out: PathBuf,
    /// Seed of every random choice.
    pub seed: u64,
    /// Total records (events after multi-line joining) across all pods. With `duration` too,
    /// the records are spread over that duration; alone, the span is `lines / rate_per_s`.
    pub lines: Option<u64>,
    /// Records per second of event time (batch) or wall time (live); the traffic-spike decoy
    /// runs at three times this.
    pub rate_per_s: f64,
    /// Span of event time. Without `lines`, `rate_per_s × duration` records are written.
    pub duration: Option<Duration>,
    /// Which incidents to inject.
    pub incidents: IncidentSelection,
    /// Event time of the first record. Default: now minus the span, truncated to the minute.
    pub start: Option<DateTime<Utc>>,
    /// Size at which `0.log` is rotated.
    pub rotate_bytes: u64,
}

impl Default for GenerateConfig {
    fn default() -> GenerateConfig {
        GenerateConfig {
            out: PathBuf::from("pods"),
            seed: 0,
            lines: None,
            rate_per_s: DEFAULT_RATE_PER_S,
            duration: None,
            incidents: IncidentSelection::All,
            start: None,
            rotate_bytes: DEFAULT_ROTATE_BYTES,
        }
    }
}

impl GenerateConfig {
    /// Checks the values before anything is written.
    ///
    /// # Errors
    /// Names the offending field and why.
    pub fn validate(&self) -> anyhow::Result<()> {
        if !(self.rate_per_s.is_finite() && self.rate_per_s > 0.0) {
            bail!(
                "rate_per_s must be a positive number, got {}",
                self.rate_per_s
            );
        }
        if self.rate_per_s > MAX_RATE_PER_S {
            bail!(
                "rate_per_s must be at most {MAX_RATE_PER_S}, got {}",
                self.rate_per_s
            );
        }
        if self.lines == Some(0) {
            bail!("lines must be at least 1");
        }
        if self.duration.is_some_and(|d| d.is_zero()) {
            bail!("duration must be longer than zero");
        }
        if self.rotate_bytes < MIN_ROTATE_BYTES {
            bail!(
                "rotate_bytes must be at least {MIN_ROTATE_BYTES}, got {}",
                self.rotate_bytes
            );
        }
        Ok(())
    }

    /// Records to write and the span of event time they cover, in seconds.
    fn records_and_span_s(&self) -> (u64, f64) {
        match (self.lines, self.duration) {
            (Some(n), Some(d)) => (n, d.as_secs_f64()),
            (Some(n), None) => (n, n as f64 / self.rate_per_s),
            (None, Some(d)) => (
                ((self.rate_per_s * d.as_secs_f64()).round() as u64).max(1),
                d.as_secs_f64(),
            ),
            (None, None) => (
                ((self.rate_per_s * DEFAULT_SPAN.as_secs_f64()).round() as u64).max(1),
                DEFAULT_SPAN.as_secs_f64(),
            ),
        }
    }
}

/// What was written. The CLI prints it as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct GenerateReport {
    /// Records (events after multi-line joining: a traceback counts as one).
    pub records: u64,
    /// CRI lines written.
    pub physical_lines: u64,
    /// Every log file on disk with its record count: per container, rotated files oldest
    /// first, then `0.log`. In batch mode the counts sum to `records`; live mode deletes
    /// rotated files beyond the kubelet's limit, so theirs are missing.
    pub files: Vec<(PathBuf, u64)>,
    /// Rotations performed.
    pub rotated_files: u64,
    /// Ground truth, as written to `incidents.json`: incidents and decoys.
    pub incidents: Vec<Incident>,
    /// Selected incidents that did not fit in the span.
    pub skipped_incidents: Vec<IncidentKind>,
    /// Bytes of log files written (without `incidents.json`).
    pub bytes: u64,
    /// Event time of the first record.
    pub start: DateTime<Utc>,
    /// End of the span of event time (exclusive).
    pub end: DateTime<Utc>,
}

/// Writes the whole workload in event time, as fast as the disk allows.
///
/// # Errors
/// On an invalid config, a non-empty `out`, or an I/O failure.
pub fn generate(config: &GenerateConfig) -> anyhow::Result<GenerateReport> {
    config.validate()?;
    prepare_out(&config.out)?;
    let (records, span_s) = config.records_and_span_s();
    let span_ns = (span_s * NANOS_PER_SEC as f64) as i64;
    let start_ns = match config.start {
        Some(start) => time_to_ns(start)?,
        None => {
            let begin = now_ns()? - span_ns;
            begin - begin.rem_euclid(60 * NANOS_PER_SEC)
        }
    };
    let timeline = Timeline::plan(start_ns, span_s, &config.incidents.kinds(), false);
    // The spike runs at three times the base rate; lowering the base rate by the spike's
    // extra records keeps the span exactly `span_s` for any record budget.
    let base_rate =
        records as f64 / (span_s + (SPIKE_MULTIPLIER - 1.0) * timeline.spike_s()).max(1e-9);
    let mut sink = Sink::new(config.rotate_bytes, None);
    let mut w = Workload::new(config.seed, &config.out, &mut sink, timeline, base_rate)?;
    let mut jitter = Rng::new(config.seed).fork(4);
    let dt_base_ns = NANOS_PER_SEC as f64 / base_rate;
    let mut offset_ns = 0.0f64;
    let mut remaining = records;
    while remaining > 0 {
        let nominal = start_ns + offset_ns as i64;
        let dt = if w.timeline.phase_at(nominal).spike {
            dt_base_ns / SPIKE_MULTIPLIER
        } else {
            dt_base_ns
        };
        // Uniform within the slot: irregular like real arrivals, still in order.
        let t = nominal + (jitter.f64() * dt) as i64;
        let n = w.emit(t, remaining, &mut sink)?;
        if n == 0 {
            bail!("internal error: the workload wrote nothing with {remaining} records to go");
        }
        remaining -= n;
        offset_ns += dt * n as f64;
    }
    let incidents = w.timeline.incidents(&|k| w.labels(k), i64::MAX);
    write_incidents(&config.out, &incidents)?;
    let skipped_incidents = w.timeline.skipped.clone();
    let (files, stats) = sink.finish()?;
    debug_assert_eq!(stats.records, records);
    Ok(GenerateReport {
        records: stats.records,
        physical_lines: stats.physical_lines,
        files,
        rotated_files: stats.rotations,
        incidents,
        skipped_incidents,
        bytes: stats.bytes,
        start: incident::ns_to_time(start_ns),
        end: incident::ns_to_time(start_ns + span_ns),
    })
}

/// Live mode for `sluice demo`: event time = wall time (`start` is ignored), writes at
/// `rate_per_s` until `stop` is set, `duration` passes, or `lines` records are written. Every
/// ~50 ms it writes what is due and flushes, so a tailer sees a steady stream. Incidents are planned from the
/// start (after a one-minute warm-up, incidents before decoys so a demo shows alerts soon);
/// `incidents.json` is written at the start with the full plan and rewritten at the end,
/// clipped to what was actually generated. Rotated files beyond the kubelet's limit are
/// deleted, as the kubelet does.
///
/// # Errors
/// On an invalid config, a non-empty `out`, or an I/O failure.
pub fn generate_live(config: &GenerateConfig, stop: &AtomicBool) -> anyhow::Result<GenerateReport> {
    config.validate()?;
    prepare_out(&config.out)?;
    let plan = config.duration.unwrap_or(LIVE_PLAN);
    let start_ns = now_ns()?;
    let timeline = Timeline::plan(
        start_ns,
        plan.as_secs_f64(),
        &config.incidents.kinds(),
        true,
    );
    let mut sink = Sink::new(config.rotate_bytes, Some(MAX_ROTATED_FILES_LIVE));
    let mut w = Workload::new(
        config.seed,
        &config.out,
        &mut sink,
        timeline,
        config.rate_per_s,
    )?;
    write_incidents(
        &config.out,
        &w.timeline.incidents(&|k| w.labels(k), i64::MAX),
    )?;
    let mut jitter = Rng::new(config.seed).fork(4);
    let deadline = config.duration.map(|d| Instant::now() + d);
    let limit = config.lines.unwrap_or(u64::MAX);
    let mut written = 0u64;
    let mut last_ns = start_ns;
    let mut due = 0.0f64;
    while !stop.load(Ordering::Relaxed) && written < limit {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        std::thread::sleep(LIVE_TICK);
        let now = now_ns()?.max(last_ns);
        let rate = if w.timeline.phase_at(now).spike {
            config.rate_per_s * SPIKE_MULTIPLIER
        } else {
            config.rate_per_s
        };
        let elapsed_s = ((now - last_ns) as f64 / NANOS_PER_SEC as f64).min(LIVE_MAX_CATCH_UP_S);
        due += rate * elapsed_s;
        let batch = due.floor().max(0.0) as u64;
        let span = (now - last_ns) as f64;
        let mut i = 0u64;
        while i < batch && written < limit {
            let frac = (i as f64 + jitter.f64()) / batch as f64;
            let t = last_ns + (span * frac) as i64;
            let n = w.emit(t, limit - written, &mut sink)?;
            i += n;
            written += n;
        }
        due -= i as f64;
        sink.flush()?;
        last_ns = now;
    }
    let incidents = w.timeline.incidents(&|k| w.labels(k), last_ns);
    write_incidents(&config.out, &incidents)?;
    let skipped_incidents = w.timeline.skipped.clone();
    let (files, stats) = sink.finish()?;
    Ok(GenerateReport {
        records: stats.records,
        physical_lines: stats.physical_lines,
        files,
        rotated_files: stats.rotations,
        incidents,
        skipped_incidents,
        bytes: stats.bytes,
        start: incident::ns_to_time(start_ns),
        end: incident::ns_to_time(last_ns),
    })
}

/// Creates `out`, refusing one that already holds files: two workloads in one tree would
/// make every count and the ground truth wrong.
fn prepare_out(out: &Path) -> anyhow::Result<()> {
    if out.exists() {
        let mut entries =
            fs::read_dir(out).with_context(|| format!("failed to read {}", out.display()))?;
        if entries.next().is_some() {
            bail!(
                "output directory {} is not empty: generate into a new or empty directory",
                out.display()
            );
        }
    }
    fs::create_dir_all(out).with_context(|| format!("failed to create {}", out.display()))
}

fn write_incidents(out: &Path, incidents: &[Incident]) -> anyhow::Result<()> {
    let path = out.join(INCIDENTS_FILE);
    let mut json = serde_json::to_string_pretty(incidents).context("failed to encode incidents")?;
    json.push('\n');
    // Write then rename, so a reader polling the file never sees half of it.
    let tmp = out.join(format!(".{INCIDENTS_FILE}.tmp"));
    fs::write(&tmp, json).with_context(|| format!("failed to write {}", tmp.display()))?;
    fs::rename(&tmp, &path).with_context(|| format!("failed to write {}", path.display()))
}

fn time_to_ns(t: DateTime<Utc>) -> anyhow::Result<i64> {
    t.timestamp_nanos_opt()
        .with_context(|| format!("start {t} is out of range (years 1678–2261)"))
}

fn now_ns() -> anyhow::Result<i64> {
    time_to_ns(Utc::now())
}
