//! The embedded pipeline: tail → parse → detect → tantivy, in one process.
//!
//! ```text
//!  ingest::Tailer ──Batch──▶ parse+detect thread ──EventBatch──▶ index thread ──commit──┐
//!   (own threads)  bounded        │ alerts                   bounded                    │
//!        ▲                        ▼                                                     │
//!        └──────── Acker::ack(end offsets) ◀────────────── acknowledgements ◀───────────┘
//! ```
//!
//! Checkpoints advance only after the index has committed the records, so a crash anywhere
//! loses nothing: the tailer replays from its last checkpoint and the store drops the replayed
//! records it already holds (same `event.id`, same source offset).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};

use crate::config::SluiceConfig;

/// Raw batches queued between the tailer and the parse thread. With the tailer's batch size
/// this bounds raw records in flight; a full queue pauses reading (backpressure).
pub const RAW_QUEUE_BATCHES: usize = 16;
/// Parsed batches queued between the parse thread and the index thread.
pub const EVENT_QUEUE_BATCHES: usize = 8;
/// Indexed batches on their way back to the parse thread, which frees their events (it
/// allocated them; see [`IndexStage::recycle`]). As many as can be in flight forward.
const SPENT_QUEUE_BATCHES: usize = EVENT_QUEUE_BATCHES;
/// How often idle stages wake up to tick watermarks, commit on time and publish metrics.
const IDLE_TICK: Duration = Duration::from_millis(200);
/// How often the detector's state is persisted while running.
const DETECT_SNAPSHOT_INTERVAL: Duration = Duration::from_secs(10);
/// How often retention is enforced.
const RETENTION_INTERVAL: Duration = Duration::from_secs(3600);

/// Counters of the pipeline's own stages, for `/metrics` and the demo's status line.
#[derive(Debug, Default)]
pub struct PipelineMetrics {
    pub records_received: AtomicU64,
    pub events_indexed: AtomicU64,
    pub replays_skipped: AtomicU64,
    pub commits: AtomicU64,
    pub alerts_raised: AtomicU64,
    pub stage_errors: AtomicU64,
    pub invalid_events: AtomicU64,
    /// Prometheus text of the parse and detect stages, refreshed by their thread about once a
    /// second (their counters live on that thread, not in shared atomics).
    pub stage_text: Mutex<String>,
}

impl PipelineMetrics {
    /// Prometheus text exposition of the pipeline counters.
    pub fn render_prometheus(&self, out: &mut String) {
        use std::fmt::Write;
        let rows = [
            (
                "sluice_records_received_total",
                &self.records_received,
                "raw records received from ingest",
            ),
            (
                "sluice_events_indexed_total",
                &self.events_indexed,
                "events committed to the index",
            ),
            (
                "sluice_replays_skipped_total",
                &self.replays_skipped,
                "replayed records the index already held",
            ),
            ("sluice_index_commits_total", &self.commits, "index commits"),
            (
                "sluice_alerts_raised_total",
                &self.alerts_raised,
                "alert transitions raised by detectors",
            ),
            (
                "sluice_index_rejected_events_total",
                &self.invalid_events,
                "events the index could not hold (e.g. timestamp out of range), dead-lettered and acknowledged",
            ),
            (
                "sluice_stage_errors_total",
                &self.stage_errors,
                "errors that stopped a pipeline stage",
            ),
        ];
        for (name, value, help) in rows {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
        out.push_str(&self.stage_text.lock().expect("metrics lock poisoned"));
    }
}

/// Read access to a running pipeline's counters, for `/metrics`; see
/// [`EmbeddedPipeline::observer`].
#[derive(Debug)]
pub struct PipelineObserver {
    ingest: Arc<ingest::IngestStats>,
    metrics: Arc<PipelineMetrics>,
    delivery: Option<Arc<crate::delivery::DeliveryStats>>,
}

impl crate::api::Observe for PipelineObserver {
    fn render_prometheus(&self, out: &mut String) {
        self.ingest.render_prometheus(out);
        self.metrics.render_prometheus(out);
        if let Some(delivery) = &self.delivery {
            delivery.render_prometheus(out);
        }
    }
}

/// How the pipeline should behave.
#[derive(Debug, Clone, Default)]
pub struct PipelineOptions {
    /// Backfill mode: commit as soon as the queue is empty and do not advance detector
    /// watermarks with the wall clock (the data may be old).
    pub drain: bool,
    /// Where alerts go; `None` discards them after counting.
    pub alerts: Option<tokio::sync::mpsc::Sender<schemas::Alert>>,
}

/// A running embedded pipeline. [`EmbeddedPipeline::shutdown`] stops it cleanly; dropping it
/// without shutdown simulates a crash: threads stop without committing or acknowledging more.
pub struct EmbeddedPipeline {
    tailer: Option<ingest::TailerHandle>,
    parse_thread: Option<JoinHandle<anyhow::Result<()>>>,
    index_thread: Option<JoinHandle<anyhow::Result<()>>>,
    crash: Arc<AtomicBool>,
    metrics: Arc<PipelineMetrics>,
    ingest_stats: Arc<ingest::IngestStats>,
    searcher: index::Searcher,
    in_flight: Arc<AtomicU64>,
    reload_tx: Sender<detect::DetectConfig>,
}

/// Rule reloads waiting for the parse thread; more than one pending reload is pointless.
const RELOAD_QUEUE: usize = 1;

impl std::fmt::Debug for EmbeddedPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedPipeline").finish_non_exhaustive()
    }
}

struct EventBatch {
    events: Vec<schemas::LogEvent>,
}

impl EmbeddedPipeline {
    /// Builds every stage from the configuration (paths already resolved) and starts them.
    ///
    /// # Errors
    /// A stage rejects its configuration or cannot open its state.
    pub fn start(config: &SluiceConfig, options: PipelineOptions) -> anyhow::Result<Self> {
        let parser = parse::Parser::try_new(&config.parse).context("invalid [parse] config")?;
        let mut detect_config = config.detect.clone();
        if let Some(rules) = &config.rules_file {
            detect_config = load_rules_file(rules)?;
        }
        let mut detector =
            detect::Detector::try_new(&detect_config).context("invalid [detect] config")?;
        let detect_state = config.detect_state_path();
        restore_detector(&mut detector, &detect_state)?;
        let store = index::Store::open(&config.index).context("failed to open the index")?;
        let searcher = store.searcher();
        let tailer = ingest::Tailer::try_new(&config.ingest).context("invalid [ingest] config")?;

        let (raw_tx, raw_rx) = bounded::<ingest::Batch>(RAW_QUEUE_BATCHES);
        let (event_tx, event_rx) = bounded::<EventBatch>(EVENT_QUEUE_BATCHES);
        let (spent_tx, spent_rx) = bounded::<EventBatch>(SPENT_QUEUE_BATCHES);
        let tailer = tailer.spawn(raw_tx).context("failed to start the tailer")?;
        let ingest_stats = tailer.stats();
        let acker = tailer.acker();
        let crash = Arc::new(AtomicBool::new(false));
        let metrics = Arc::new(PipelineMetrics::default());
        let in_flight = Arc::new(AtomicU64::new(0));
        let (reload_tx, reload_rx) = bounded::<detect::DetectConfig>(RELOAD_QUEUE);

        let parse_thread = {
            let stage = ParseStage {
                parser,
                detector,
                detect_state,
                rx: raw_rx,
                reload_rx,
                tx: event_tx,
                spent_rx,
                alerts: options.alerts.clone(),
                crash: crash.clone(),
                metrics: metrics.clone(),
                in_flight: in_flight.clone(),
                wall_clock_watermark: !options.drain,
            };
            std::thread::Builder::new()
                .name("sluice-parse".into())
                .spawn(move || stage.run())?
        };
        let index_thread = {
            let stage = IndexStage {
                store,
                rx: event_rx,
                spent_tx,
                acker,
                crash: crash.clone(),
                metrics: metrics.clone(),
                in_flight: in_flight.clone(),
                commit_when_empty: options.drain,
                commit_interval: Duration::from_millis(config.index.commit_interval_ms.max(1)),
                dead_letters: DeadLetterFile::new(config.dead_letter_path()),
            };
            std::thread::Builder::new()
                .name("sluice-index".into())
                .spawn(move || stage.run())?
        };
        Ok(EmbeddedPipeline {
            tailer: Some(tailer),
            parse_thread: Some(parse_thread),
            index_thread: Some(index_thread),
            crash,
            metrics,
            ingest_stats,
            searcher,
            in_flight,
            reload_tx,
        })
    }

    /// Hands new detection rules to the detector, which keeps the window state of rules that
    /// did not change. Returns false when a reload is already pending.
    pub fn reload_rules(&self, config: detect::DetectConfig) -> bool {
        self.reload_tx.try_send(config).is_ok()
    }

    /// True when every file is read to EOF and everything read is indexed and checkpointed.
    pub fn is_idle(&self) -> bool {
        // In-flight is read before and after the tailer: a batch handed over while the
        // tailer was being asked shows up in the second read.
        self.in_flight.load(Ordering::SeqCst) == 0
            && self.tailer.as_ref().is_some_and(|t| t.is_idle())
            && self.in_flight.load(Ordering::SeqCst) == 0
    }

    /// Fails when a stage thread has stopped with an error.
    ///
    /// # Errors
    /// The error that stopped the stage.
    pub fn check_health(&mut self) -> anyhow::Result<()> {
        for slot in [&mut self.parse_thread, &mut self.index_thread] {
            if slot.as_ref().is_some_and(|h| h.is_finished())
                && let Some(handle) = slot.take()
            {
                match handle.join() {
                    Ok(Ok(())) => anyhow::bail!("a pipeline stage stopped unexpectedly"),
                    Ok(Err(err)) => return Err(err),
                    Err(_) => anyhow::bail!("a pipeline stage panicked"),
                }
            }
        }
        Ok(())
    }

    /// Waits until [`EmbeddedPipeline::is_idle`] holds (the backfill mode's exit condition).
    ///
    /// # Errors
    /// A stage failed while waiting.
    pub fn wait_idle(&mut self, poll: Duration) -> anyhow::Result<()> {
        // Idle must hold twice in a row, a poll apart, so a batch between the tailer and the
        // parse thread cannot slip through the check.
        let mut seen_idle = false;
        loop {
            self.check_health()?;
            if self.is_idle() {
                if seen_idle {
                    return Ok(());
                }
                seen_idle = true;
            } else {
                seen_idle = false;
            }
            std::thread::sleep(poll);
        }
    }

    pub fn searcher(&self) -> index::Searcher {
        self.searcher.clone()
    }

    pub fn metrics(&self) -> Arc<PipelineMetrics> {
        self.metrics.clone()
    }

    pub fn ingest_stats(&self) -> Arc<ingest::IngestStats> {
        self.ingest_stats.clone()
    }

    /// What the API's `/metrics` shows for this pipeline: every stage's counters, plus alert
    /// delivery's when alerts go through a [`crate::delivery::Dispatcher`].
    pub fn observer(
        &self,
        delivery: Option<Arc<crate::delivery::DeliveryStats>>,
    ) -> Arc<PipelineObserver> {
        Arc::new(PipelineObserver {
            ingest: self.ingest_stats.clone(),
            metrics: self.metrics.clone(),
            delivery,
        })
    }

    /// Stops reading, drains what was read through parse and index, commits, persists the
    /// detector state and the checkpoints, and joins every thread.
    ///
    /// # Errors
    /// A stage failed; what was committed before the failure stays committed.
    pub fn shutdown(mut self) -> anyhow::Result<()> {
        let tailer_result = match self.tailer.take() {
            Some(tailer) => tailer.shutdown().context("failed to stop the tailer"),
            None => Ok(()),
        };
        let mut first_err = tailer_result.err();
        for handle in [self.parse_thread.take(), self.index_thread.take()]
            .into_iter()
            .flatten()
        {
            let result = match handle.join() {
                Ok(r) => r,
                Err(_) => Err(anyhow::anyhow!("a pipeline stage panicked")),
            };
            if let Err(err) = result {
                first_err.get_or_insert(err);
            }
        }
        match first_err {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }
}

impl Drop for EmbeddedPipeline {
    fn drop(&mut self) {
        if self.tailer.is_none() && self.parse_thread.is_none() && self.index_thread.is_none() {
            return;
        }
        // Not shut down: behave like a crash. Stages stop without committing or acknowledging.
        self.crash.store(true, Ordering::SeqCst);
        drop(self.tailer.take());
        for handle in [self.parse_thread.take(), self.index_thread.take()]
            .into_iter()
            .flatten()
        {
            let _ = handle.join();
        }
    }
}

/// Reads and validates a rules file (the `[detect]` section's format).
///
/// # Errors
/// The file is unreadable or invalid.
pub fn load_rules_file(path: &std::path::Path) -> anyhow::Result<detect::DetectConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read rules file {}", path.display()))?;
    detect::DetectConfig::from_toml_str(&text)
        .with_context(|| format!("invalid rules file {}", path.display()))
}

fn restore_detector(detector: &mut detect::Detector, path: &Path) -> anyhow::Result<()> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("failed to read {}", path.display())),
    };
    match serde_json::from_slice::<detect::DetectorState>(&bytes) {
        Ok(state) => detector
            .restore(state)
            .with_context(|| format!("failed to restore detector state {}", path.display())),
        Err(err) => {
            // Losing window state only delays alerts; refusing to start would stop log
            // shipping. Keep the file for inspection and start fresh.
            let aside = path.with_extension("corrupt");
            tracing::error!(path = %path.display(), error = %err, moved_to = %aside.display(),
                "detector state unreadable; starting with empty windows");
            let _ = std::fs::rename(path, aside);
            Ok(())
        }
    }
}

fn persist_detector(detector: &detect::Detector, path: &Path) -> anyhow::Result<()> {
    let bytes = serde_json::to_vec(&detector.snapshot())?;
    crate::util::write_atomic(path, &bytes)
}

struct ParseStage {
    parser: parse::Parser,
    detector: detect::Detector,
    detect_state: PathBuf,
    rx: Receiver<ingest::Batch>,
    reload_rx: Receiver<detect::DetectConfig>,
    tx: Sender<EventBatch>,
    /// Batches the index thread is done with, to free here.
    spent_rx: Receiver<EventBatch>,
    alerts: Option<tokio::sync::mpsc::Sender<schemas::Alert>>,
    crash: Arc<AtomicBool>,
    metrics: Arc<PipelineMetrics>,
    in_flight: Arc<AtomicU64>,
    wall_clock_watermark: bool,
}

impl ParseStage {
    fn run(mut self) -> anyhow::Result<()> {
        let mut alerts = Vec::new();
        let mut last_snapshot = Instant::now();
        let mut last_metrics = Instant::now();
        loop {
            if self.crash.load(Ordering::SeqCst) {
                return Ok(());
            }
            match self.rx.recv_timeout(IDLE_TICK) {
                Ok(batch) => {
                    let n = batch.records.len() as u64;
                    self.in_flight.fetch_add(n, Ordering::SeqCst);
                    self.metrics
                        .records_received
                        .fetch_add(n, Ordering::Relaxed);
                    // Backfills too: a line stamped far in the future stays out of event
                    // time instead of dragging every window shut.
                    self.detector.set_wall_clock(chrono::Utc::now());
                    let mut events = self.spent_events(batch.records.len());
                    for record in &batch.records {
                        let mut event = self.parser.parse_record(record);
                        self.detector.process(&mut event, &mut alerts);
                        events.push(event);
                    }
                    if self.tx.send(EventBatch { events }).is_err() {
                        // The index stage is gone (crash or failure); it reports why.
                        return Ok(());
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    if self.wall_clock_watermark {
                        self.detector
                            .advance_watermark(chrono::Utc::now(), &mut alerts);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if let Ok(config) = self.reload_rx.try_recv() {
                match self.detector.reload(&config) {
                    Ok(()) => tracing::info!("detection rules reloaded"),
                    Err(err) => {
                        tracing::error!(error = %err, "rules reload rejected; keeping the old rules")
                    }
                }
            }
            self.emit_alerts(&mut alerts);
            if last_snapshot.elapsed() >= DETECT_SNAPSHOT_INTERVAL {
                self.snapshot();
                last_snapshot = Instant::now();
            }
            if last_metrics.elapsed() >= Duration::from_secs(1) {
                self.publish_metrics();
                last_metrics = Instant::now();
            }
        }
        self.emit_alerts(&mut alerts);
        self.snapshot();
        self.publish_metrics();
        Ok(())
    }

    /// An empty event vector with room for `n`: a spent batch's, emptied here, or a new one.
    ///
    /// Events are freed on this thread, which allocated them: freed on the index thread, each
    /// of their strings was a cross-thread free, which mimalloc queues for the owning thread
    /// to collect later.
    fn spent_events(&self, n: usize) -> Vec<schemas::LogEvent> {
        let mut reused: Option<Vec<schemas::LogEvent>> = None;
        while let Ok(spent) = self.spent_rx.try_recv() {
            let mut events = spent.events;
            events.clear();
            reused = Some(events);
        }
        let mut events = reused.unwrap_or_default();
        events.reserve(n);
        events
    }

    fn emit_alerts(&mut self, alerts: &mut Vec<schemas::Alert>) {
        if alerts.is_empty() {
            return;
        }
        self.metrics
            .alerts_raised
            .fetch_add(alerts.len() as u64, Ordering::Relaxed);
        for alert in alerts.drain(..) {
            if let Some(tx) = &self.alerts
                && tx.blocking_send(alert).is_err()
            {
                tracing::error!("alert dispatcher is gone; alert not delivered");
            }
        }
    }

    fn snapshot(&self) {
        if let Err(err) = persist_detector(&self.detector, &self.detect_state) {
            tracing::error!(error = %err, "failed to persist detector state");
        }
    }

    fn publish_metrics(&self) {
        let mut text = String::new();
        self.parser.stats().render_prometheus(&mut text);
        self.detector.stats().render_prometheus(&mut text);
        *self
            .metrics
            .stage_text
            .lock()
            .expect("metrics lock poisoned") = text;
    }
}

struct IndexStage {
    store: index::Store,
    rx: Receiver<EventBatch>,
    /// Where indexed batches go to be freed (see [`IndexStage::recycle`]).
    spent_tx: Sender<EventBatch>,
    acker: ingest::Acker,
    crash: Arc<AtomicBool>,
    metrics: Arc<PipelineMetrics>,
    in_flight: Arc<AtomicU64>,
    commit_when_empty: bool,
    commit_interval: Duration,
    dead_letters: DeadLetterFile,
}

/// Append-only NDJSON file of events the index rejected. A rejected event is acknowledged
/// upstream (it would be rejected again on every replay), so it is written here and synced
/// before that acknowledgement: counted, kept, never silently dropped.
struct DeadLetterFile {
    path: std::path::PathBuf,
    file: Option<std::io::BufWriter<std::fs::File>>,
    unsynced: bool,
}

impl DeadLetterFile {
    fn new(path: std::path::PathBuf) -> Self {
        DeadLetterFile {
            path,
            file: None,
            unsynced: false,
        }
    }

    fn append(&mut self, event: &schemas::LogEvent, reason: &str) -> anyhow::Result<()> {
        use std::io::Write;
        if self.file.is_none() {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .with_context(|| format!("cannot open dead-letter file {}", self.path.display()))?;
            self.file = Some(std::io::BufWriter::new(file));
        }
        let out = self.file.as_mut().context("dead-letter file is not open")?;
        let line = serde_json::json!({ "reason": reason, "event": event });
        serde_json::to_writer(&mut *out, &line).context("cannot serialize a dead letter")?;
        out.write_all(b"\n")
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        self.unsynced = true;
        Ok(())
    }

    /// Makes every appended dead letter durable; called before acknowledging them.
    fn sync(&mut self) -> anyhow::Result<()> {
        use std::io::Write;
        if !self.unsynced {
            return Ok(());
        }
        if let Some(out) = self.file.as_mut() {
            out.flush()
                .and_then(|()| out.get_ref().sync_data())
                .with_context(|| format!("cannot sync {}", self.path.display()))?;
        }
        self.unsynced = false;
        Ok(())
    }
}

impl IndexStage {
    /// Hands an indexed batch back to the parse thread to free; frees it here when that
    /// queue is full or the parse thread is gone.
    fn recycle(&self, batch: EventBatch) {
        let _ = self.spent_tx.try_send(batch);
    }

    fn run(mut self) -> anyhow::Result<()> {
        let result = self.run_inner();
        if result.is_err() {
            self.metrics.stage_errors.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    fn run_inner(&mut self) -> anyhow::Result<()> {
        let mut pending: Vec<schemas::SourceRef> = Vec::new();
        let mut added: u64 = 0;
        let mut last_commit = Instant::now();
        let mut last_retention: Option<Instant> = None;
        loop {
            if self.crash.load(Ordering::SeqCst) {
                return Ok(());
            }
            if last_retention.is_none_or(|t| t.elapsed() >= RETENTION_INTERVAL) {
                let dropped = self.store.enforce_retention(chrono::Utc::now())?;
                if !dropped.is_empty() {
                    tracing::info!(days = ?dropped, "retention dropped expired day partitions");
                }
                last_retention = Some(Instant::now());
            }
            // `idle`: a whole tick passed without a batch. Drain mode commits then, not whenever
            // the queue is momentarily empty: committing after every batch made commits tiny
            // (13 MB per CPU-second at 500 events against 52 at 60 000).
            let (disconnected, idle) = match self.rx.recv_timeout(IDLE_TICK) {
                Ok(batch) => {
                    for event in &batch.events {
                        match self.store.add(event) {
                            Ok(true) => added += 1,
                            Ok(false) => {
                                self.metrics.replays_skipped.fetch_add(1, Ordering::Relaxed);
                            }
                            // An event the store cannot hold (a timestamp outside tantivy's
                            // range) must not stop the pipeline: count it, dead-letter it, and
                            // acknowledge it (after the dead letter is synced) so the file
                            // moves on.
                            Err(err @ index::IndexError::InvalidEvent { .. }) => {
                                self.dead_letters.append(event, &err.to_string())?;
                                let n = self.metrics.invalid_events.fetch_add(1, Ordering::Relaxed);
                                if n.is_power_of_two() || n == 0 {
                                    tracing::warn!(error = %err, rejected_so_far = n + 1, "event rejected by the index");
                                }
                            }
                            Err(err) => return Err(err.into()),
                        }
                        // The acknowledgement needs the file and offsets only; copying the path
                        // was an allocation per event.
                        pending.push(schemas::SourceRef {
                            path: String::new(),
                            ..event.sluice.source
                        });
                    }
                    self.recycle(batch);
                    (false, false)
                }
                Err(RecvTimeoutError::Timeout) => (false, true),
                Err(RecvTimeoutError::Disconnected) => (true, false),
            };
            if self.crash.load(Ordering::SeqCst) {
                return Ok(());
            }
            let due = self.store.should_commit()
                || (!pending.is_empty() && last_commit.elapsed() >= self.commit_interval)
                || (self.commit_when_empty && !pending.is_empty() && idle)
                || (disconnected && !pending.is_empty());
            if due {
                self.store.commit().context("index commit failed")?;
                self.dead_letters.sync()?;
                self.metrics.commits.fetch_add(1, Ordering::Relaxed);
                self.metrics
                    .events_indexed
                    .fetch_add(added, Ordering::Relaxed);
                added = 0;
                self.acker.ack(pending.iter());
                self.in_flight
                    .fetch_sub(pending.len() as u64, Ordering::SeqCst);
                pending.clear();
                last_commit = Instant::now();
            }
            if disconnected {
                return Ok(());
            }
        }
    }
}
