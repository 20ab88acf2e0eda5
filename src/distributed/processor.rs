//! The `processor` role: consume raw records, parse and detect, produce events and alerts.
//!
//! Every consumed raw message yields exactly one tracked output: its event on the events topic
//! (same key as the raw message), or, when the message cannot be decoded, the message itself on
//! the dead-letter topic with a [`super::HEADER_ERROR`] header. The [`OffsetTracker`] records
//! which outputs are acknowledged; the processor commits a raw partition only up to its
//! contiguous acknowledged prefix. On revocation it waits (bounded by
//! `kafka.consumer.revoke_flush_ms`) for outstanding outputs, commits what is acknowledged and
//! forgets the partition; late delivery reports for it are ignored. The next owner replays from
//! the committed offset, and the indexers drop the repeats.
//!
//! Detection: the security detections and the pattern miner run over everything this processor
//! consumes; the runbook rules run per raw partition in partial-export mode and publish closed
//! buckets to the aggregates topic, where the aggregate owners ([`super::aggregate`], a thread
//! of this role) merge and evaluate them. A raw offset is committed only once the buckets it was
//! counted in was published and acknowledged.
//!
//! State across restarts: the per-partition rule state is *rebuilt*, not saved — it only ever
//! holds buckets not yet published, and their raw offsets are not committed, so the next owner
//! of the partition replays exactly those events. The merged windows and alert phases live in
//! the aggregate owners, rebuilt from the aggregates topic. The security detections' and the
//! pattern miner's state (offenders, known templates) is *snapshotted* to
//! `<data_dir>/state/detect.json` every [`DETECT_SNAPSHOT_INTERVAL`] and at shutdown, and
//! restored at start, as the embedded pipeline does: without it a restart would re-learn
//! every template and report it as new.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Headers, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};

use super::aggregate::{AggregateMessage, partial_key};
use super::alerts::DeliveryThread;
use super::offsets::{InputRef, OffsetTracker};
use super::owner::OwnerThread;
use super::{HEADER_ERROR, HEADER_EVENT_VERSION, HEADER_RAW_VERSION, KafkaConfig};
use crate::config::SluiceConfig;

/// How long one consumer poll waits when no message is ready.
const POLL_WAIT: Duration = Duration::from_millis(100);
/// How long to sleep while the in-flight bound or librdkafka's queue is full.
const BACKPRESSURE_WAIT: Duration = Duration::from_millis(2);
/// How long a graceful shutdown waits for outstanding outputs.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(30);
/// How often the per-partition detectors look at the wall clock and idleness while messages
/// keep arriving (an idle poll ticks at once).
const DETECT_TICK: Duration = Duration::from_millis(500);
/// Progress is re-sent this often even when unchanged: an aggregate owner that rebuilt from
/// the middle of the topic (after a rebalance) learns every raw partition's state within it.
const PROGRESS_HEARTBEAT: Duration = Duration::from_secs(5);
/// How often the security and pattern state is written to `<data_dir>/state/detect.json`.
pub const DETECT_SNAPSHOT_INTERVAL: Duration = Duration::from_secs(30);
/// How long to wait for topic metadata at start-up.
const METADATA_TIMEOUT: Duration = Duration::from_secs(30);

/// Counters of a processor.
#[derive(Debug, Default)]
pub struct ProcessorStats {
    /// Raw messages consumed and processed.
    pub records_in: AtomicU64,
    /// Events produced.
    pub events_out: AtomicU64,
    /// Outputs (events and dead letters) acknowledged by the brokers.
    pub outputs_acked: AtomicU64,
    /// Raw messages that could not be decoded, sent to the dead-letter topic.
    pub dead_letters: AtomicU64,
    /// Alerts produced.
    pub alerts_out: AtomicU64,
    /// Outputs or alerts whose delivery failed (the input is not committed; it replays).
    pub delivery_failures: AtomicU64,
    /// Consumer errors reported by poll.
    pub consumer_errors: AtomicU64,
    /// Offset commits requested.
    pub commits: AtomicU64,
    /// Partitions revoked from this processor.
    pub revocations: AtomicU64,
    /// Highest number of unacknowledged outputs seen (gauge).
    pub in_flight_max: AtomicU64,
    /// Raw partitions currently assigned (gauge).
    pub assigned_partitions: AtomicU64,
    /// Offset commits the brokers refused (e.g. during a rebalance); the next commit covers
    /// them, a crash first only replays more.
    pub offset_commit_failures: AtomicU64,
    /// Rule partials (one closed bucket of one rule and key) published to the aggregates topic.
    pub partials_out: AtomicU64,
    /// Progress markers published (one per aggregates partition per closed bucket).
    pub progress_out: AtomicU64,
    /// Aggregate owners: partials merged.
    pub aggregate_merged: AtomicU64,
    /// Aggregate owners: partials of buckets already complete (replays), dropped.
    pub aggregate_duplicates: AtomicU64,
    /// Aggregate owners: partials of a crashed generation replaced by the replay's.
    pub aggregate_superseded: AtomicU64,
    /// Aggregate owners: partials of already evaluated buckets (an idle partition woke up).
    pub aggregate_late: AtomicU64,
    /// Aggregate owners: partials of an unknown rule or definition, or refused by a full key
    /// table, or undecodable.
    pub aggregate_rejected: AtomicU64,
    /// Aggregate owners: buckets evaluated.
    pub aggregate_buckets: AtomicU64,
    /// Aggregate owners: alerts withheld while rebuilding after an owner move.
    pub aggregate_alerts_suppressed: AtomicU64,
    /// Aggregate owners: rule alerts produced.
    pub aggregate_alerts_out: AtomicU64,
    /// Aggregate owners: aggregates partitions currently assigned (gauge).
    pub aggregate_partitions: AtomicU64,
    /// Alert delivery: alerts consumed from the alerts topic and handed to the dispatcher.
    pub alerts_in: AtomicU64,
    /// Alert delivery: messages on the alerts topic that are not alerts (skipped).
    pub alerts_undecodable: AtomicU64,
}

impl ProcessorStats {
    /// Prometheus text exposition.
    pub fn render_prometheus(&self, out: &mut String) {
        super::render_counters(
            out,
            &[
                (
                    "sluice_processor_records_in_total",
                    &self.records_in,
                    "counter",
                ),
                (
                    "sluice_processor_events_out_total",
                    &self.events_out,
                    "counter",
                ),
                (
                    "sluice_processor_outputs_acked_total",
                    &self.outputs_acked,
                    "counter",
                ),
                (
                    "sluice_processor_dead_letters_total",
                    &self.dead_letters,
                    "counter",
                ),
                (
                    "sluice_processor_alerts_out_total",
                    &self.alerts_out,
                    "counter",
                ),
                (
                    "sluice_processor_delivery_failures_total",
                    &self.delivery_failures,
                    "counter",
                ),
                (
                    "sluice_processor_consumer_errors_total",
                    &self.consumer_errors,
                    "counter",
                ),
                ("sluice_processor_commits_total", &self.commits, "counter"),
                (
                    "sluice_processor_revocations_total",
                    &self.revocations,
                    "counter",
                ),
                (
                    "sluice_processor_in_flight_max",
                    &self.in_flight_max,
                    "gauge",
                ),
                (
                    "sluice_processor_assigned_partitions",
                    &self.assigned_partitions,
                    "gauge",
                ),
                (
                    "sluice_processor_offset_commit_failures_total",
                    &self.offset_commit_failures,
                    "counter",
                ),
                (
                    "sluice_processor_partials_out_total",
                    &self.partials_out,
                    "counter",
                ),
                (
                    "sluice_processor_progress_out_total",
                    &self.progress_out,
                    "counter",
                ),
                (
                    "sluice_aggregate_partials_merged_total",
                    &self.aggregate_merged,
                    "counter",
                ),
                (
                    "sluice_aggregate_partials_duplicate_total",
                    &self.aggregate_duplicates,
                    "counter",
                ),
                (
                    "sluice_aggregate_partials_superseded_total",
                    &self.aggregate_superseded,
                    "counter",
                ),
                (
                    "sluice_aggregate_partials_late_total",
                    &self.aggregate_late,
                    "counter",
                ),
                (
                    "sluice_aggregate_partials_rejected_total",
                    &self.aggregate_rejected,
                    "counter",
                ),
                (
                    "sluice_aggregate_buckets_evaluated_total",
                    &self.aggregate_buckets,
                    "counter",
                ),
                (
                    "sluice_aggregate_alerts_suppressed_total",
                    &self.aggregate_alerts_suppressed,
                    "counter",
                ),
                (
                    "sluice_aggregate_alerts_out_total",
                    &self.aggregate_alerts_out,
                    "counter",
                ),
                (
                    "sluice_aggregate_partitions",
                    &self.aggregate_partitions,
                    "gauge",
                ),
                (
                    "sluice_processor_alerts_in_total",
                    &self.alerts_in,
                    "counter",
                ),
                (
                    "sluice_processor_alerts_undecodable_total",
                    &self.alerts_undecodable,
                    "counter",
                ),
            ],
        );
    }
}

/// What a delivery report is about.
enum Output {
    /// The event or dead letter of a consumed raw message.
    Input(InputRef),
    /// An alert; not tied to an input offset.
    Alert,
    /// A rule partial; ordered before its bucket's progress markers, which vouch for it.
    Partial,
    /// One of the progress markers of raw partition `partition` through bucket `through`:
    /// when the last of them (`remaining`) is acknowledged, the bucket's events may be
    /// committed.
    Progress {
        partition: i32,
        epoch: u64,
        through: Option<i64>,
        remaining: Arc<AtomicUsize>,
    },
}

struct OutputContext {
    tracker: Arc<Mutex<OffsetTracker>>,
    stats: Arc<ProcessorStats>,
}

impl ClientContext for OutputContext {}

impl ProducerContext for OutputContext {
    type DeliveryOpaque = Box<Output>;

    fn delivery(&self, result: &DeliveryResult<'_>, output: Box<Output>) {
        match (result, *output) {
            (Ok(_), Output::Input(input)) => {
                if lock(&self.tracker).acknowledged(input) {
                    self.stats.outputs_acked.fetch_add(1, Ordering::Relaxed);
                }
            }
            (Ok(_), Output::Alert | Output::Partial) => {}
            (
                Ok(_),
                Output::Progress {
                    partition,
                    epoch,
                    through,
                    remaining,
                },
            ) => {
                if remaining.fetch_sub(1, Ordering::AcqRel) == 1
                    && let Some(through) = through
                {
                    lock(&self.tracker).release(partition, epoch, through);
                }
            }
            (Err((err, _)), output) => {
                let n = self.stats.delivery_failures.fetch_add(1, Ordering::Relaxed);
                if n.is_power_of_two() {
                    let input = match output {
                        Output::Input(i) => format!("{}@{}", i.partition, i.offset),
                        Output::Alert => "alert".into(),
                        Output::Partial => "rule partial".into(),
                        Output::Progress { partition, .. } => {
                            format!("progress of raw partition {partition}")
                        }
                    };
                    tracing::error!(error = %err, input = %input, failures = n + 1,
                        "processor output not delivered; its input is not committed and replays");
                }
            }
        }
    }
}

type OutputProducer = ThreadedProducer<OutputContext>;

struct RebalanceContext {
    topic: String,
    tracker: Arc<Mutex<OffsetTracker>>,
    producer: Arc<OutputProducer>,
    revoke_flush: Duration,
    stats: Arc<ProcessorStats>,
    /// Set when the processor is dropped without shutdown: the consumer's close then revokes
    /// everything, and a crash must not flush or commit.
    crash: Arc<AtomicBool>,
}

impl ClientContext for RebalanceContext {}

impl ConsumerContext for RebalanceContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let revoked = super::revoked_partitions(rebalance, &self.topic, &self.crash);
        if revoked.is_empty() {
            return;
        }
        self.stats
            .revocations
            .fetch_add(revoked.len() as u64, Ordering::Relaxed);
        // Not holding the tracker: delivery reports served by the flush need it.
        if let Err(err) = self.producer.flush(self.revoke_flush) {
            tracing::warn!(error = %err, "outputs of revoked partitions still unacknowledged; \
                committing what is acknowledged, the next owner replays the rest");
        }
        let mut commit = TopicPartitionList::new();
        {
            let mut tracker = lock(&self.tracker);
            for partition in revoked {
                if let Some(offset) = tracker.committable(partition) {
                    let _ =
                        commit.add_partition_offset(&self.topic, partition, Offset::Offset(offset));
                }
                tracker.revoke(partition);
            }
            self.stats
                .assigned_partitions
                .store(tracker.partitions().len() as u64, Ordering::Relaxed);
        }
        if commit.count() > 0 {
            self.stats.commits.fetch_add(1, Ordering::Relaxed);
            if let Err(err) = consumer.commit(&commit, CommitMode::Sync) {
                tracing::warn!(error = %err, "offset commit on revocation failed; the next owner replays more");
            }
        }
    }

    fn commit_callback(
        &self,
        result: rdkafka::error::KafkaResult<()>,
        _offsets: &TopicPartitionList,
    ) {
        if result.is_err() {
            self.stats
                .offset_commit_failures
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(list) => {
                let mut tracker = lock(&self.tracker);
                for e in list.elements_for_topic(&self.topic) {
                    tracker.assign(e.partition());
                }
                self.stats
                    .assigned_partitions
                    .store(tracker.partitions().len() as u64, Ordering::Relaxed);
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(err) => tracing::error!(error = %err, "rebalance failed"),
        }
    }
}

fn lock(tracker: &Mutex<OffsetTracker>) -> MutexGuard<'_, OffsetTracker> {
    tracker.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running processor. [`Processor::shutdown`] stops cleanly; dropping it without shutdown
/// behaves like a crash: nothing more is committed, queued outputs are purged.
pub struct Processor {
    thread: Option<JoinHandle<anyhow::Result<()>>>,
    owner: Option<OwnerThread>,
    delivery: Option<DeliveryThread>,
    stop: Arc<AtomicBool>,
    crash: Arc<AtomicBool>,
    stats: Arc<ProcessorStats>,
}

impl std::fmt::Debug for Processor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Processor")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

type RawConsumer = BaseConsumer<RebalanceContext>;

/// The rules of one raw partition (one assignment of it), in partial-export mode.
struct PartitionRules {
    detector: detect::Detector,
    epoch: u64,
    /// Distinguishes this assignment's partials from another's (a replay after a crash).
    generation: u64,
    last_message: Instant,
    idle: bool,
    /// The (closed bucket, idle) last published as progress, and when.
    published: Option<(Option<i64>, bool)>,
    published_at: Instant,
}

struct Worker {
    producer: Arc<OutputProducer>,
    tracker: Arc<Mutex<OffsetTracker>>,
    parser: parse::Parser,
    /// Security detections and the pattern miner over everything this processor consumes
    /// (no rules).
    detector: detect::Detector,
    /// The rules config the per-partition detectors are built from.
    rules_config: detect::DetectConfig,
    partitions: BTreeMap<i32, PartitionRules>,
    /// Partitions of the aggregates topic: progress goes to each.
    aggregate_partitions: i32,
    /// Random per processor start, so generations differ across restarts.
    instance: u64,
    /// Where the security and pattern state is snapshotted.
    snapshot_path: Option<std::path::PathBuf>,
    kafka: KafkaConfig,
    stop: Arc<AtomicBool>,
    crash: Arc<AtomicBool>,
    stats: Arc<ProcessorStats>,
    /// Events produced under a version header.
    event_headers: OwnedHeaders,
    payload: Vec<u8>,
    /// Decodes raw records (shares each file's pod metadata across its records).
    raw_reader: schemas::RawRecordReader,
}

impl Processor {
    /// Builds the parser and detector (`[parse]`, `[detect]`), joins the processor group and
    /// starts consuming `kafka.topics.raw` on its own thread.
    ///
    /// # Errors
    /// An invalid section, or a client librdkafka rejects.
    pub fn start(config: &SluiceConfig) -> anyhow::Result<Processor> {
        let kafka = config.kafka.clone();
        kafka.validate().map_err(anyhow::Error::msg)?;
        let parser = parse::Parser::try_new(&config.parse).context("invalid [parse] config")?;
        let mut detect_config = config.detect.clone();
        if let Some(rules) = &config.rules_file {
            detect_config = crate::pipeline::load_rules_file(rules)?;
        }
        // Validate the whole config once; then split it: the rules run per raw partition
        // (exported to the aggregate owners), security and patterns over this processor's input.
        detect::Detector::try_new(&detect_config).context("invalid [detect] config")?;
        let rules_config = detect::DetectConfig {
            security_enabled: false,
            patterns_enabled: false,
            ..detect_config.clone()
        };
        let local_config = detect::DetectConfig {
            builtin_rules: false,
            rules: Vec::new(),
            ..detect_config
        };
        let mut detector =
            detect::Detector::try_new(&local_config).context("invalid [detect] config")?;
        let snapshot_path = config
            .data_dir
            .as_ref()
            .map(|d| d.join("state").join("detect.json"));
        if let Some(path) = &snapshot_path {
            restore_local_state(&mut detector, path);
        }
        let stats = Arc::new(ProcessorStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let crash = Arc::new(AtomicBool::new(false));
        let tracker = Arc::new(Mutex::new(OffsetTracker::default()));
        let producer: Arc<OutputProducer> = Arc::new(
            kafka
                .producer_config("processor")
                .create_with_context(OutputContext {
                    tracker: tracker.clone(),
                    stats: stats.clone(),
                })
                .context("failed to create the Kafka producer")?,
        );
        let consumer: RawConsumer = kafka
            .consumer_config("processor", &kafka.groups.processor)
            .create_with_context(RebalanceContext {
                topic: kafka.topics.raw.clone(),
                tracker: tracker.clone(),
                producer: producer.clone(),
                revoke_flush: Duration::from_millis(kafka.consumer.revoke_flush_ms),
                stats: stats.clone(),
                crash: crash.clone(),
            })
            .context("failed to create the Kafka consumer")?;
        let aggregate_partitions = topic_partitions(&consumer, &kafka.topics.aggregates)?;
        consumer
            .subscribe(&[&kafka.topics.raw])
            .with_context(|| format!("failed to subscribe to {}", kafka.topics.raw))?;
        let delivery = if super::alerts::has_targets(&config.alerting) {
            Some(DeliveryThread::start(
                &kafka,
                &config.alerting,
                stats.clone(),
                stop.clone(),
                crash.clone(),
            )?)
        } else {
            None
        };
        let owner = OwnerThread::start(
            &kafka,
            &rules_config,
            stats.clone(),
            stop.clone(),
            crash.clone(),
        )?;
        let event_headers = OwnedHeaders::new().insert(Header {
            key: HEADER_EVENT_VERSION,
            value: Some(&schemas::LOG_EVENT_VERSION.to_string()),
        });
        let worker = Worker {
            producer,
            tracker,
            parser,
            detector,
            rules_config,
            partitions: BTreeMap::new(),
            aggregate_partitions,
            instance: instance_id(),
            snapshot_path,
            kafka,
            stop: stop.clone(),
            crash: crash.clone(),
            stats: stats.clone(),
            event_headers,
            payload: Vec::with_capacity(4096),
            raw_reader: schemas::RawRecordReader::default(),
        };
        let thread = std::thread::Builder::new()
            .name("sluice-processor".into())
            .spawn(move || worker.run(&consumer))?;
        Ok(Processor {
            thread: Some(thread),
            owner: Some(owner),
            delivery,
            stop,
            crash,
            stats,
        })
    }

    /// The processor's counters.
    pub fn stats(&self) -> Arc<ProcessorStats> {
        self.stats.clone()
    }

    /// The alert dispatcher's counters, when `[alerting]` names a target.
    pub fn delivery_stats(&self) -> Option<Arc<crate::delivery::DeliveryStats>> {
        self.delivery.as_ref().map(DeliveryThread::stats)
    }

    /// Fails when the processor thread stopped with an error.
    ///
    /// # Errors
    /// That error.
    pub fn check_health(&mut self) -> anyhow::Result<()> {
        super::check_thread(&mut self.thread, "processor")?;
        if let Some(delivery) = &mut self.delivery {
            delivery.check_health()?;
        }
        match &mut self.owner {
            Some(owner) => owner.check_health(),
            None => Ok(()),
        }
    }

    /// Stops consuming, waits (bounded) for outstanding outputs, commits what is acknowledged
    /// and leaves the group.
    ///
    /// # Errors
    /// The processor thread failed.
    pub fn shutdown(mut self) -> anyhow::Result<()> {
        self.stop.store(true, Ordering::SeqCst);
        let processed = super::join_thread(&mut self.thread, "processor");
        let owned = match self.owner.take() {
            Some(owner) => owner.join(),
            None => Ok(()),
        };
        let delivered = match self.delivery.take() {
            Some(delivery) => delivery.join(),
            None => Ok(()),
        };
        processed.and(owned).and(delivered)
    }
}

impl Drop for Processor {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.crash.store(true, Ordering::SeqCst);
            let _ = t.join();
        }
        if let Some(owner) = self.owner.take() {
            self.crash.store(true, Ordering::SeqCst);
            let _ = owner.join();
        }
        if let Some(delivery) = self.delivery.take() {
            self.crash.store(true, Ordering::SeqCst);
            let _ = delivery.join();
        }
    }
}

/// Restores the security and pattern state saved by a previous run. A missing file is a first
/// start; an unreadable one is set aside (`.corrupt`) and the processor starts fresh, since
/// refusing to start would stop the pipeline over state that is only re-learnt.
fn restore_local_state(detector: &mut detect::Detector, path: &std::path::Path) {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => {
            tracing::warn!(error = %e, path = %path.display(), "detector state unreadable");
            return;
        }
    };
    let restored = serde_json::from_slice::<detect::DetectorState>(&bytes)
        .map_err(anyhow::Error::from)
        .and_then(|state| detector.restore(state).map_err(anyhow::Error::from));
    if let Err(err) = restored {
        tracing::warn!(error = %format!("{err:#}"), path = %path.display(),
            "detector state not restored; starting fresh");
        let _ = std::fs::rename(path, path.with_extension("corrupt"));
    }
}

/// The partition count of `topic`.
pub(super) fn topic_partitions<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
) -> anyhow::Result<i32> {
    let metadata = consumer
        .fetch_metadata(Some(topic), METADATA_TIMEOUT)
        .with_context(|| format!("failed to read the metadata of {topic}"))?;
    let n = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map_or(0, |t| t.partitions().len());
    anyhow::ensure!(n > 0, "topic {topic} has no partitions (does it exist?)");
    Ok(n as i32)
}

/// A random-enough id per processor start (no RNG dependency): process id and start time.
fn instance_id() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(&std::process::id().to_le_bytes());
    h.update(&nanos.to_le_bytes());
    h.update(&format!("{:?}", std::thread::current().id()).into_bytes());
    h.digest()
}

impl Worker {
    fn run(mut self, consumer: &RawConsumer) -> anyhow::Result<()> {
        let result = self.consume(consumer);
        if self.crash.load(Ordering::SeqCst) {
            // Crash semantics: drop everything without committing. Dropping the producer
            // purges its queue; the consumer leaves the group on drop.
            return Ok(());
        }
        let flushed = self.producer.flush(SHUTDOWN_FLUSH);
        self.commit(consumer, CommitMode::Sync);
        self.snapshot();
        result?;
        flushed.context("outstanding events were not delivered before shutdown")
    }

    fn consume(&mut self, consumer: &RawConsumer) -> anyhow::Result<()> {
        let commit_interval = Duration::from_millis(self.kafka.consumer.commit_interval_ms);
        let max_in_flight = self.kafka.producer.max_in_flight_records;
        let mut alerts = Vec::new();
        let mut last_commit = Instant::now();
        let mut last_tick = Instant::now();
        let mut last_snapshot = Instant::now();
        loop {
            if self.stop.load(Ordering::SeqCst) || self.crash.load(Ordering::SeqCst) {
                return Ok(());
            }
            if last_commit.elapsed() >= commit_interval {
                self.commit(consumer, CommitMode::Async);
                last_commit = Instant::now();
            }
            let in_flight = lock(&self.tracker).in_flight();
            self.stats
                .in_flight_max
                .fetch_max(in_flight as u64, Ordering::Relaxed);
            if in_flight >= max_in_flight {
                std::thread::sleep(BACKPRESSURE_WAIT);
                continue;
            }
            if last_snapshot.elapsed() >= DETECT_SNAPSHOT_INTERVAL {
                self.snapshot();
                last_snapshot = Instant::now();
            }
            if last_tick.elapsed() >= DETECT_TICK {
                self.tick(&mut alerts)?;
                last_tick = Instant::now();
            }
            match consumer.poll(POLL_WAIT) {
                None => {
                    if self.kafka.consumer.wall_clock_watermark {
                        self.detector
                            .advance_watermark(chrono::Utc::now(), &mut alerts);
                    }
                    self.tick(&mut alerts)?;
                    last_tick = Instant::now();
                }
                Some(Err(err)) => {
                    let n = self.stats.consumer_errors.fetch_add(1, Ordering::Relaxed);
                    if n.is_power_of_two() {
                        tracing::warn!(error = %err, errors = n + 1, "consumer error");
                    }
                }
                Some(Ok(message)) => self.process(&message, &mut alerts)?,
            }
            self.produce_alerts(&mut alerts)?;
        }
    }

    fn process(
        &mut self,
        message: &BorrowedMessage<'_>,
        alerts: &mut Vec<schemas::Alert>,
    ) -> anyhow::Result<()> {
        let Some(input) = lock(&self.tracker).consumed(message.partition(), message.offset())
        else {
            // Polled after its partition was revoked: the next owner processes it.
            return Ok(());
        };
        self.stats.records_in.fetch_add(1, Ordering::Relaxed);
        let key = message.key().unwrap_or_default();
        match decode_raw(message, &mut self.raw_reader) {
            Ok(record) => {
                let mut event = self.parser.parse_record(&record);
                self.detector.process(&mut event, alerts);
                let rules = self.rules_for(input)?;
                rules.detector.process(&mut event, alerts);
                rules.last_message = Instant::now();
                rules.idle = false;
                if let Some(bucket) = rules.detector.last_event_bucket() {
                    lock(&self.tracker).hold(input, bucket);
                }
                self.payload.clear();
                schemas::write_event_json(&event, &mut self.payload)
                    .context("an event failed to serialize")?;
                let topic = self.kafka.topics.events.as_str();
                let record = BaseRecord::with_opaque_to(topic, Box::new(Output::Input(input)))
                    .key(key)
                    .payload(self.payload.as_slice())
                    .headers(self.event_headers.clone());
                send(&self.producer, record, &self.crash)?;
                self.stats.events_out.fetch_add(1, Ordering::Relaxed);
                self.publish(input.partition)?;
            }
            Err(reason) => {
                let n = self.stats.dead_letters.fetch_add(1, Ordering::Relaxed);
                if n.is_power_of_two() {
                    tracing::warn!(partition = input.partition, offset = input.offset,
                        reason = %reason, dead_letters = n + 1, "raw message sent to the dead-letter topic");
                }
                let headers = OwnedHeaders::new().insert(Header {
                    key: HEADER_ERROR,
                    value: Some(&reason),
                });
                let topic = self.kafka.topics.dead_letter.as_str();
                let record = BaseRecord::with_opaque_to(topic, Box::new(Output::Input(input)))
                    .key(key)
                    .payload(message.payload().unwrap_or_default())
                    .headers(headers);
                send(&self.producer, record, &self.crash)?;
            }
        }
        Ok(())
    }

    /// Writes the security and pattern state (a failure is logged: it only costs re-learning).
    fn snapshot(&self) {
        let Some(path) = &self.snapshot_path else {
            return;
        };
        let written = serde_json::to_vec(&self.detector.snapshot())
            .map_err(anyhow::Error::from)
            .and_then(|bytes| crate::util::write_atomic(path, &bytes));
        if let Err(err) = written {
            tracing::error!(error = %format!("{err:#}"), path = %path.display(),
                "failed to persist the processor's detector state");
        }
    }

    /// The rules of `input`'s partition, started afresh for a new assignment of it.
    fn rules_for(&mut self, input: InputRef) -> anyhow::Result<&mut PartitionRules> {
        if self
            .partitions
            .get(&input.partition)
            .is_none_or(|r| r.epoch != input.epoch)
        {
            let rules = self.new_rules(input.partition, input.epoch)?;
            self.partitions.insert(input.partition, rules);
        }
        self.partitions
            .get_mut(&input.partition)
            .ok_or_else(|| anyhow::anyhow!("partition rules just inserted"))
    }

    fn new_rules(&self, partition: i32, epoch: u64) -> anyhow::Result<PartitionRules> {
        let detector = detect::Detector::try_new(&self.rules_config)
            .context("invalid [detect] config")?
            .exporting_partials();
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        h.update(&self.instance.to_le_bytes());
        h.update(&partition.to_le_bytes());
        h.update(&epoch.to_le_bytes());
        Ok(PartitionRules {
            detector,
            epoch,
            generation: h.digest(),
            last_message: Instant::now(),
            idle: false,
            published: None,
            published_at: Instant::now(),
        })
    }

    /// Follows the assignment, advances idle partitions' event time (wall clock, when on) and
    /// idleness, and publishes what moved.
    fn tick(&mut self, alerts: &mut Vec<schemas::Alert>) -> anyhow::Result<()> {
        let assigned: BTreeMap<i32, u64> = {
            let tracker = lock(&self.tracker);
            tracker
                .partitions()
                .into_iter()
                .filter_map(|p| tracker.epoch(p).map(|e| (p, e)))
                .collect()
        };
        self.partitions
            .retain(|p, r| assigned.get(p).is_some_and(|e| *e == r.epoch));
        for (&p, &epoch) in &assigned {
            if !self.partitions.contains_key(&p) {
                let rules = self.new_rules(p, epoch)?;
                self.partitions.insert(p, rules);
            }
        }
        let idle_after = Duration::from_millis(self.kafka.consumer.idle_partition_ms);
        let now = chrono::Utc::now();
        let partitions: Vec<i32> = self.partitions.keys().copied().collect();
        for p in partitions {
            if let Some(rules) = self.partitions.get_mut(&p) {
                if self.kafka.consumer.wall_clock_watermark {
                    rules.detector.advance_watermark(now, alerts);
                }
                if rules.last_message.elapsed() >= idle_after {
                    rules.idle = true;
                }
            }
            self.publish(p)?;
        }
        Ok(())
    }

    /// Publishes the closed buckets of partition `p` and then its progress to every
    /// aggregates partition, when anything moved.
    fn publish(&mut self, p: i32) -> anyhow::Result<()> {
        let Some(rules) = self.partitions.get_mut(&p) else {
            return Ok(());
        };
        let partials = rules.detector.take_partials();
        let closed = rules.detector.closed_bucket();
        let state = (closed, rules.idle);
        if partials.is_empty()
            && rules.published == Some(state)
            && rules.published_at.elapsed() < PROGRESS_HEARTBEAT
        {
            return Ok(());
        }
        rules.published = Some(state);
        rules.published_at = Instant::now();
        let (generation, epoch) = (rules.generation, rules.epoch);
        let topic = self.kafka.topics.aggregates.as_str();
        for partial in partials {
            let key = partial_key(&partial);
            let message = AggregateMessage::Partial {
                raw_partition: p,
                generation,
                partial,
            };
            let payload = serde_json::to_vec(&message).context("a partial failed to serialize")?;
            let record = BaseRecord::with_opaque_to(topic, Box::new(Output::Partial))
                .key(key.as_str())
                .payload(payload.as_slice());
            send(&self.producer, record, &self.crash)?;
            self.stats.partials_out.fetch_add(1, Ordering::Relaxed);
        }
        let message = AggregateMessage::Progress {
            raw_partition: p,
            generation,
            closed_bucket: closed,
            idle: state.1,
        };
        let payload = serde_json::to_vec(&message).context("progress failed to serialize")?;
        let remaining = Arc::new(AtomicUsize::new(self.aggregate_partitions as usize));
        for q in 0..self.aggregate_partitions {
            let output = Output::Progress {
                partition: p,
                epoch,
                through: closed,
                remaining: remaining.clone(),
            };
            let record =
                BaseRecord::<'_, [u8], [u8], Box<Output>>::with_opaque_to(topic, Box::new(output))
                    .partition(q)
                    .payload(payload.as_slice());
            send(&self.producer, record, &self.crash)?;
            self.stats.progress_out.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    fn produce_alerts(&mut self, alerts: &mut Vec<schemas::Alert>) -> anyhow::Result<()> {
        for alert in alerts.drain(..) {
            let payload = serde_json::to_vec(&alert).context("an alert failed to serialize")?;
            let topic = self.kafka.topics.alerts.as_str();
            let record = BaseRecord::with_opaque_to(topic, Box::new(Output::Alert))
                .key(alert.fingerprint.as_str())
                .payload(payload.as_slice());
            send(&self.producer, record, &self.crash)?;
            self.stats.alerts_out.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Commits every partition whose acknowledged prefix moved.
    fn commit(&mut self, consumer: &RawConsumer, mode: CommitMode) {
        let ready = lock(&self.tracker).take_committable();
        if ready.is_empty() {
            return;
        }
        let mut list = TopicPartitionList::new();
        for (partition, offset) in ready {
            let _ = list.add_partition_offset(
                &self.kafka.topics.raw,
                partition,
                Offset::Offset(offset),
            );
        }
        self.stats.commits.fetch_add(1, Ordering::Relaxed);
        if let Err(err) = consumer.commit(&list, mode) {
            // The next commit covers these offsets again; a crash first only replays more.
            tracing::warn!(error = %err, "offset commit failed");
        }
    }
}

/// Produces `record`, waiting while librdkafka's queue is full.
fn send<K, P>(
    producer: &OutputProducer,
    mut record: BaseRecord<'_, K, P, Box<Output>>,
    crash: &AtomicBool,
) -> anyhow::Result<()>
where
    K: rdkafka::message::ToBytes + ?Sized,
    P: rdkafka::message::ToBytes + ?Sized,
{
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                if crash.load(Ordering::SeqCst) {
                    return Ok(());
                }
                std::thread::sleep(BACKPRESSURE_WAIT);
                record = back;
            }
            Err((err, back)) => {
                anyhow::bail!("failed to produce to {}: {err}", back.topic);
            }
        }
    }
}

/// Decodes a raw-topic message, checking its version header.
fn decode_raw(
    message: &BorrowedMessage<'_>,
    reader: &mut schemas::RawRecordReader,
) -> Result<schemas::RawRecord, String> {
    if let Some(headers) = message.headers() {
        for header in headers.iter() {
            if header.key == HEADER_RAW_VERSION {
                let version = header
                    .value
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .and_then(|v| v.parse::<u32>().ok());
                match version {
                    Some(v) if v <= schemas::RAW_RECORD_VERSION => {}
                    _ => {
                        return Err(format!(
                            "unsupported {HEADER_RAW_VERSION} header (this processor reads up to {})",
                            schemas::RAW_RECORD_VERSION
                        ));
                    }
                }
            }
        }
    }
    let payload = message.payload().ok_or("empty message")?;
    reader
        .read(payload)
        .map_err(|e| format!("invalid raw record JSON: {e}"))
}
