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

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Headers, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};

use super::offsets::{InputRef, OffsetTracker};
use super::{HEADER_ERROR, HEADER_EVENT_VERSION, HEADER_RAW_VERSION, KafkaConfig};
use crate::config::SluiceConfig;

/// How long one consumer poll waits when no message is ready.
const POLL_WAIT: Duration = Duration::from_millis(100);
/// How long to sleep while the in-flight bound or librdkafka's queue is full.
const BACKPRESSURE_WAIT: Duration = Duration::from_millis(2);
/// How long a graceful shutdown waits for outstanding outputs.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(30);

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
            (Ok(_), Output::Alert) => {}
            (Err((err, _)), output) => {
                let n = self.stats.delivery_failures.fetch_add(1, Ordering::Relaxed);
                if n.is_power_of_two() {
                    let input = match output {
                        Output::Input(i) => format!("{}@{}", i.partition, i.offset),
                        Output::Alert => "alert".into(),
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
        let Rebalance::Revoke(list) = rebalance else {
            return;
        };
        if self.crash.load(Ordering::SeqCst) {
            return;
        }
        let revoked: Vec<i32> = list
            .elements_for_topic(&self.topic)
            .iter()
            .map(|e| e.partition())
            .collect();
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

struct Worker {
    producer: Arc<OutputProducer>,
    tracker: Arc<Mutex<OffsetTracker>>,
    parser: parse::Parser,
    detector: detect::Detector,
    kafka: KafkaConfig,
    stop: Arc<AtomicBool>,
    crash: Arc<AtomicBool>,
    stats: Arc<ProcessorStats>,
    /// Events produced under a version header.
    event_headers: OwnedHeaders,
    payload: Vec<u8>,
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
        let detector =
            detect::Detector::try_new(&detect_config).context("invalid [detect] config")?;
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
        consumer
            .subscribe(&[&kafka.topics.raw])
            .with_context(|| format!("failed to subscribe to {}", kafka.topics.raw))?;
        let event_headers = OwnedHeaders::new().insert(Header {
            key: HEADER_EVENT_VERSION,
            value: Some(&schemas::LOG_EVENT_VERSION.to_string()),
        });
        let worker = Worker {
            producer,
            tracker,
            parser,
            detector,
            kafka,
            stop: stop.clone(),
            crash: crash.clone(),
            stats: stats.clone(),
            event_headers,
            payload: Vec::with_capacity(4096),
        };
        let thread = std::thread::Builder::new()
            .name("sluice-processor".into())
            .spawn(move || worker.run(&consumer))?;
        Ok(Processor {
            thread: Some(thread),
            stop,
            crash,
            stats,
        })
    }

    /// The processor's counters.
    pub fn stats(&self) -> Arc<ProcessorStats> {
        self.stats.clone()
    }

    /// Fails when the processor thread stopped with an error.
    ///
    /// # Errors
    /// That error.
    pub fn check_health(&mut self) -> anyhow::Result<()> {
        super::check_thread(&mut self.thread, "processor")
    }

    /// Stops consuming, waits (bounded) for outstanding outputs, commits what is acknowledged
    /// and leaves the group.
    ///
    /// # Errors
    /// The processor thread failed.
    pub fn shutdown(mut self) -> anyhow::Result<()> {
        self.stop.store(true, Ordering::SeqCst);
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("the processor thread panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for Processor {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.crash.store(true, Ordering::SeqCst);
            let _ = t.join();
        }
    }
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
        result?;
        flushed.context("outstanding events were not delivered before shutdown")
    }

    fn consume(&mut self, consumer: &RawConsumer) -> anyhow::Result<()> {
        let commit_interval = Duration::from_millis(self.kafka.consumer.commit_interval_ms);
        let max_in_flight = self.kafka.producer.max_in_flight_records;
        let mut alerts = Vec::new();
        let mut last_commit = Instant::now();
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
            match consumer.poll(POLL_WAIT) {
                None => {
                    self.detector
                        .advance_watermark(chrono::Utc::now(), &mut alerts);
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
        match decode_raw(message) {
            Ok(record) => {
                let mut event = self.parser.parse_record(&record);
                self.detector.process(&mut event, alerts);
                self.payload.clear();
                serde_json::to_writer(&mut self.payload, &event)
                    .context("an event failed to serialize")?;
                let topic = self.kafka.topics.events.as_str();
                let record = BaseRecord::with_opaque_to(topic, Box::new(Output::Input(input)))
                    .key(key)
                    .payload(self.payload.as_slice())
                    .headers(self.event_headers.clone());
                send(&self.producer, record, &self.crash)?;
                self.stats.events_out.fetch_add(1, Ordering::Relaxed);
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
fn decode_raw(message: &BorrowedMessage<'_>) -> Result<schemas::RawRecord, String> {
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
    serde_json::from_slice(payload).map_err(|e| format!("invalid raw record JSON: {e}"))
}
