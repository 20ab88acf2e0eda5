//! The `agent` role: tail pod logs and produce each record to the raw topic.
//!
//! ```text
//!  ingest::Tailer ──Batch──▶ agent thread ──produce──▶ librdkafka ──▶ raw topic
//!        ▲          bounded   (waits while max_in_flight_records are unacknowledged)
//!        └──── Acker::ack(source) ◀── delivery report (success only) ◀──┘
//! ```
//!
//! A record's file checkpoint advances only from its successful delivery report, so a crash
//! anywhere replays from the last delivered record. Memory stays bounded while the brokers are
//! down: at `max_in_flight_records` unacknowledged records the agent stops pulling batches, the
//! tailer's bounded channel fills and reading pauses.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use crossbeam_channel::{RecvTimeoutError, bounded};
use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use schemas::SourceRef;

use super::{HEADER_RAW_VERSION, write_record_key};
use crate::config::SluiceConfig;

/// Batches queued between the tailer and the agent thread; small because the producer queue
/// behind it is the real buffer.
const RAW_QUEUE_BATCHES: usize = 4;
/// How often the agent thread wakes to check for shutdown when no batch arrives.
const IDLE_TICK: Duration = Duration::from_millis(100);
/// How long to sleep while the in-flight bound or librdkafka's queue is full.
const BACKPRESSURE_WAIT: Duration = Duration::from_millis(2);
/// How long a graceful shutdown waits for outstanding deliveries.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(30);

/// Counters of an agent, for tests and `/metrics`.
#[derive(Debug, Default)]
pub struct AgentStats {
    /// Records handed to the producer.
    pub records_produced: AtomicU64,
    /// Records whose delivery was confirmed (and acknowledged to the tailer).
    pub records_delivered: AtomicU64,
    /// Records whose delivery failed; never acknowledged, so they replay after a restart.
    pub delivery_failures: AtomicU64,
    /// Produced and not yet reported (gauge).
    pub in_flight: AtomicU64,
    /// Highest `in_flight` seen (gauge); never above `max_in_flight_records`.
    pub in_flight_max: AtomicU64,
    /// Times the agent waited because the in-flight bound or the producer queue was full.
    pub backpressure_waits: AtomicU64,
}

impl AgentStats {
    /// Prometheus text exposition.
    pub fn render_prometheus(&self, out: &mut String) {
        super::render_counters(
            out,
            &[
                (
                    "sluice_agent_records_produced_total",
                    &self.records_produced,
                    "counter",
                ),
                (
                    "sluice_agent_records_delivered_total",
                    &self.records_delivered,
                    "counter",
                ),
                (
                    "sluice_agent_delivery_failures_total",
                    &self.delivery_failures,
                    "counter",
                ),
                ("sluice_agent_in_flight_records", &self.in_flight, "gauge"),
                (
                    "sluice_agent_in_flight_records_max",
                    &self.in_flight_max,
                    "gauge",
                ),
                (
                    "sluice_agent_backpressure_waits_total",
                    &self.backpressure_waits,
                    "counter",
                ),
            ],
        );
    }
}

struct AgentContext {
    acker: ingest::Acker,
    stats: Arc<AgentStats>,
    /// The first delivery failure: the agent stops on it (a restart replays in order).
    failure: Arc<Mutex<Option<String>>>,
}

impl ClientContext for AgentContext {}

impl ProducerContext for AgentContext {
    type DeliveryOpaque = Box<SourceRef>;

    fn delivery(&self, result: &DeliveryResult<'_>, source: Box<SourceRef>) {
        match result {
            Ok(_) => {
                self.acker.ack(std::iter::once(&*source));
                self.stats.records_delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((err, _)) => {
                let n = self.stats.delivery_failures.fetch_add(1, Ordering::Relaxed);
                let mut failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
                if failure.is_none() {
                    *failure = Some(format!(
                        "delivery of {} offset {} failed: {err}",
                        source.path, source.offset
                    ));
                }
                if n == 0 {
                    tracing::error!(path = %source.path, offset = source.offset, error = %err,
                        "raw record not delivered; stopping so a restart replays it in order");
                }
            }
        }
        self.stats.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

type AgentProducer = ThreadedProducer<AgentContext>;

/// A running agent. [`Agent::shutdown`] stops cleanly; dropping it without shutdown behaves like
/// a crash (no further acknowledgement or checkpoint).
pub struct Agent {
    tailer: Option<ingest::TailerHandle>,
    thread: Option<JoinHandle<anyhow::Result<()>>>,
    stop: Arc<AtomicBool>,
    crash: Arc<AtomicBool>,
    stats: Arc<AgentStats>,
    ingest_stats: Arc<ingest::IngestStats>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

struct Worker {
    producer: AgentProducer,
    topic: String,
    max_in_flight: u64,
    rx: crossbeam_channel::Receiver<ingest::Batch>,
    stop: Arc<AtomicBool>,
    crash: Arc<AtomicBool>,
    stats: Arc<AgentStats>,
    failure: Arc<Mutex<Option<String>>>,
}

impl Agent {
    /// Starts the tailer (`[ingest]`) and the producer (`[kafka]`).
    ///
    /// # Errors
    /// An invalid section, unreadable checkpoints, or a producer librdkafka rejects.
    pub fn start(config: &SluiceConfig) -> anyhow::Result<Agent> {
        let kafka = &config.kafka;
        kafka.validate().map_err(anyhow::Error::msg)?;
        let tailer = ingest::Tailer::try_new(&config.ingest).context("invalid [ingest] config")?;
        let (tx, rx) = bounded::<ingest::Batch>(RAW_QUEUE_BATCHES);
        let tailer = tailer.spawn(tx).context("failed to start the tailer")?;
        let stats = Arc::new(AgentStats::default());
        let failure = Arc::new(Mutex::new(None));
        let context = AgentContext {
            acker: tailer.acker(),
            stats: stats.clone(),
            failure: failure.clone(),
        };
        let producer: AgentProducer = kafka
            .producer_config("agent")
            .create_with_context(context)
            .context("failed to create the Kafka producer")?;
        let stop = Arc::new(AtomicBool::new(false));
        let crash = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            producer,
            topic: kafka.topics.raw.clone(),
            max_in_flight: kafka.producer.max_in_flight_records as u64,
            rx,
            stop: stop.clone(),
            crash: crash.clone(),
            stats: stats.clone(),
            failure,
        };
        let thread = std::thread::Builder::new()
            .name("sluice-agent".into())
            .spawn(move || worker.run())?;
        Ok(Agent {
            ingest_stats: tailer.stats(),
            tailer: Some(tailer),
            thread: Some(thread),
            stop,
            crash,
            stats,
        })
    }

    /// The agent's counters.
    pub fn stats(&self) -> Arc<AgentStats> {
        self.stats.clone()
    }

    /// The tailer's counters.
    pub fn ingest_stats(&self) -> Arc<ingest::IngestStats> {
        self.ingest_stats.clone()
    }

    /// True when every file is read to its end and every record read is delivered and
    /// checkpointed.
    pub fn is_idle(&self) -> bool {
        self.stats.in_flight.load(Ordering::Acquire) == 0
            && self.tailer.as_ref().is_some_and(|t| t.is_idle())
    }

    /// Fails when the agent thread stopped (a delivery failure or a producer error).
    ///
    /// # Errors
    /// The error that stopped it.
    pub fn check_health(&mut self) -> anyhow::Result<()> {
        super::check_thread(&mut self.thread, "agent")
    }

    /// Stops reading, waits (bounded) for outstanding deliveries, writes the checkpoints of
    /// everything delivered and joins the threads.
    ///
    /// # Errors
    /// The agent or tailer thread failed.
    pub fn shutdown(mut self) -> anyhow::Result<()> {
        self.stop.store(true, Ordering::SeqCst);
        let worker = super::join_thread(&mut self.thread, "agent");
        let tailer = match self.tailer.take() {
            Some(t) => t.shutdown().context("failed to stop the tailer"),
            None => Ok(()),
        };
        worker.and(tailer)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if self.thread.is_none() && self.tailer.is_none() {
            return;
        }
        self.crash.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        drop(self.tailer.take());
    }
}

impl Worker {
    fn run(self) -> anyhow::Result<()> {
        let result = self.pump();
        if self.crash.load(Ordering::SeqCst) {
            // Crash semantics: the producer's drop purges what is queued; nothing more is acked.
            return Ok(());
        }
        let flushed = self.producer.flush(SHUTDOWN_FLUSH);
        result?;
        flushed.context("outstanding raw records were not delivered before shutdown")
    }

    fn pump(&self) -> anyhow::Result<()> {
        let headers = OwnedHeaders::new().insert(Header {
            key: HEADER_RAW_VERSION,
            value: Some(&schemas::RAW_RECORD_VERSION.to_string()),
        });
        let mut payload = Vec::with_capacity(4096);
        let mut key = String::with_capacity(128);
        let mut writer = schemas::RawRecordWriter::default();
        loop {
            if self.stop.load(Ordering::SeqCst) || self.crash.load(Ordering::SeqCst) {
                return Ok(());
            }
            self.check_failure()?;
            let batch = match self.rx.recv_timeout(IDLE_TICK) {
                Ok(batch) => batch,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            };
            // Records are consumed by value: each one's `SourceRef` moves into its delivery
            // opaque instead of being cloned (one allocation and copy less per record).
            for record in batch.records {
                if !self.wait_for_room()? {
                    return Ok(());
                }
                payload.clear();
                writer
                    .write(&record, &mut payload)
                    .context("a raw record failed to serialize")?;
                write_record_key(&record, &mut key);
                self.send(record.source, &key, &payload, &headers)?;
            }
        }
    }

    /// Waits until fewer than `max_in_flight` records are unacknowledged. False on shutdown.
    fn wait_for_room(&self) -> anyhow::Result<bool> {
        let mut waited = false;
        while self.stats.in_flight.load(Ordering::Acquire) >= self.max_in_flight {
            if self.crash.load(Ordering::SeqCst) || self.stop.load(Ordering::SeqCst) {
                return Ok(false);
            }
            self.check_failure()?;
            if !waited {
                self.stats
                    .backpressure_waits
                    .fetch_add(1, Ordering::Relaxed);
                waited = true;
            }
            std::thread::sleep(BACKPRESSURE_WAIT);
        }
        Ok(true)
    }

    fn check_failure(&self) -> anyhow::Result<()> {
        let failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        match &*failure {
            Some(message) => anyhow::bail!("{message}"),
            None => Ok(()),
        }
    }

    /// Produces one record, waiting while librdkafka's queue is full.
    fn send(
        &self,
        source: SourceRef,
        key: &str,
        payload: &[u8],
        headers: &OwnedHeaders,
    ) -> anyhow::Result<()> {
        let in_flight = self.stats.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
        self.stats
            .in_flight_max
            .fetch_max(in_flight, Ordering::Relaxed);
        let mut message = BaseRecord::with_opaque_to(&self.topic, Box::new(source))
            .key(key.as_bytes())
            .payload(payload)
            .headers(headers.clone());
        loop {
            match self.producer.send(message) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    if self.crash.load(Ordering::SeqCst) {
                        self.stats.in_flight.fetch_sub(1, Ordering::AcqRel);
                        return Ok(());
                    }
                    self.stats
                        .backpressure_waits
                        .fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(BACKPRESSURE_WAIT);
                    message = back;
                }
                Err((err, back)) => {
                    self.stats.in_flight.fetch_sub(1, Ordering::AcqRel);
                    self.stats.delivery_failures.fetch_add(1, Ordering::Relaxed);
                    let source = back.delivery_opaque;
                    anyhow::bail!(
                        "failed to produce {} offset {} to {}: {err}",
                        source.path,
                        source.offset,
                        self.topic
                    );
                }
            }
        }
        self.stats.records_produced.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
