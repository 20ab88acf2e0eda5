//! Shared helpers: a temporary pods dir, CRI line writers, and a downstream that acknowledges
//! what it receives and keeps it like an index would (deduplicated by `event.id`).

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use crossbeam_channel::Receiver;
use ingest::{Batch, Tailer, TailerConfig, TailerHandle};
use schemas::RawRecord;

/// Channel capacity of the test downstream (small, so backpressure paths are exercised).
pub const CHANNEL_CAPACITY: usize = 4;

pub struct Env {
    pub dir: tempfile::TempDir,
    pub pods: PathBuf,
    pub state: PathBuf,
}

impl Env {
    pub fn new() -> Result<Env> {
        let dir = tempfile::tempdir()?;
        let pods = dir.path().join("pods");
        let state = dir.path().join("state");
        fs::create_dir_all(&pods)?;
        Ok(Env { dir, pods, state })
    }

    /// A fast-polling config for tests.
    pub fn config(&self) -> TailerConfig {
        let mut cfg = TailerConfig {
            pods_dir: Some(self.pods.clone()),
            state_dir: self.state.clone(),
            poll_interval_ms: 10,
            discovery_interval_ms: 40,
            checkpoint_interval_ms: 20,
            node_name: Some("node-test".into()),
            ..TailerConfig::default()
        };
        cfg.multiline.flush_timeout_ms = 100;
        cfg
    }

    /// `<pods>/<ns>_<pod>_<uid>/<container>`, created.
    pub fn container(&self, ns: &str, pod: &str, container: &str) -> Result<PathBuf> {
        let d = self
            .pods
            .join(format!("{ns}_{pod}_uid-{pod}"))
            .join(container);
        fs::create_dir_all(&d)?;
        Ok(d)
    }
}

/// A CRI line with a distinct nanosecond timestamp per `seq`.
pub fn cri(seq: u64, stream: &str, partial: bool, msg: &str) -> String {
    let tag = if partial { "P" } else { "F" };
    format!(
        "2026-12-04T16:{:02}:{:02}.{:09}Z {stream} {tag} {msg}\n",
        (seq / 60_000_000_000) % 60,
        (seq / 1_000_000_000) % 60,
        seq % 1_000_000_000
    )
}

pub fn append(path: &Path, data: &[u8]) -> Result<()> {
    let mut f = OpenOptions::new().create(true).append(true).open(path)?;
    f.write_all(data)?;
    Ok(())
}

pub fn gzip_file(src: &Path, dst: &Path) -> Result<()> {
    let data = fs::read(src)?;
    let tmp = dst.with_extension("gz.tmp");
    let mut enc = flate2::write::GzEncoder::new(File::create(&tmp)?, flate2::Compression::fast());
    enc.write_all(&data)?;
    enc.finish()?;
    fs::rename(&tmp, dst)?;
    Ok(())
}

/// The tailer plus a downstream that acknowledges and indexes by event id.
pub struct Run {
    pub handle: Option<TailerHandle>,
    pub rx: Receiver<Batch>,
    /// Every record received, in order (replays included).
    pub received: Vec<RawRecord>,
    /// Acknowledge received batches (false simulates a downstream that never commits).
    pub ack: bool,
    /// How long the tailer may take to notice a change (its idle flag is that stale).
    settle: Duration,
}

impl Run {
    pub fn start(cfg: &TailerConfig) -> Result<Run> {
        let (tx, rx) = crossbeam_channel::bounded(CHANNEL_CAPACITY);
        let handle = Tailer::try_new(cfg)?.spawn(tx)?;
        Ok(Run {
            handle: Some(handle),
            rx,
            received: Vec::new(),
            ack: true,
            settle: Duration::from_millis(
                2 * cfg.poll_interval_ms.max(cfg.discovery_interval_ms) + 100,
            ),
        })
    }

    pub fn handle(&self) -> Result<&TailerHandle> {
        self.handle.as_ref().context("tailer already stopped")
    }

    /// Receives (and acknowledges) for `d`.
    pub fn pump(&mut self, d: Duration) -> Result<usize> {
        let until = Instant::now() + d;
        let mut n = 0;
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            match self.rx.recv_timeout(left.min(Duration::from_millis(20))) {
                Ok(batch) => {
                    n += batch.records.len();
                    if self.ack {
                        self.handle()?
                            .acker()
                            .ack(batch.records.iter().map(|r| &r.source));
                    }
                    self.received.extend(batch.records);
                }
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            }
        }
        Ok(n)
    }

    /// Receives and acknowledges until the tailer reports idle twice in a row with nothing
    /// received in between; fails after `timeout`.
    pub fn until_idle(&mut self, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        // Let the tailer see what was just written before trusting its idle flag.
        self.pump(self.settle)?;
        let mut idle_seen = 0;
        while start.elapsed() < timeout {
            let n = self.pump(Duration::from_millis(40))?;
            if n == 0 && self.handle()?.is_idle() {
                idle_seen += 1;
                if idle_seen >= 2 {
                    return Ok(());
                }
            } else {
                idle_seen = 0;
            }
        }
        bail!(
            "tailer not idle after {timeout:?}; received {} records",
            self.received.len()
        )
    }

    /// Clean shutdown.
    pub fn shutdown(mut self) -> Result<Vec<RawRecord>> {
        if let Some(h) = self.handle.take() {
            h.shutdown()?;
        }
        Ok(self.received)
    }

    /// Crash: drop the handle without shutdown.
    pub fn crash(mut self) -> Vec<RawRecord> {
        drop(self.handle.take());
        self.received
    }
}

/// Keeps the first record per event id, as the index does.
pub fn dedup(records: &[RawRecord]) -> Vec<RawRecord> {
    let mut seen: HashMap<String, ()> = HashMap::new();
    records
        .iter()
        .filter(|r| seen.insert(r.event_id(), ()).is_none())
        .cloned()
        .collect()
}

/// Open file descriptors of this process that point below `dir` (deleted files included),
/// so tests running in parallel do not disturb the count.
pub fn fds_under(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir("/proc/self/fd") else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| fs::read_link(e.path()).ok())
        .filter(|target| target.starts_with(dir))
        .count()
}
