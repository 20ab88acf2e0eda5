//! Alert delivery in the processor role: a consumer in `kafka.groups.alerts` on
//! `kafka.topics.alerts` feeds the [`crate::delivery::Dispatcher`] (durable outbox per target,
//! retries with backoff) and commits an alert's offset only once the dispatcher has written it
//! to every target's outbox. Alerts are consumed by one processor per alerts partition, so each
//! reaches Alertmanager and the webhooks once in steady state; after a crash the uncommitted
//! ones are delivered again (Alertmanager deduplicates by labels).
//!
//! Runs only when `[alerting]` names a target (Alertmanager, a webhook or stdout).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

use super::KafkaConfig;
use super::processor::ProcessorStats;
use crate::delivery::{AlertingConfig, DeliveryStats, Dispatcher};

/// How long one consumer poll waits when no message is ready.
const POLL_WAIT: Duration = Duration::from_millis(100);
/// Alerts handed to the dispatcher and not yet in its outboxes before consuming pauses; the
/// dispatcher's own queue holds more, so handing over never blocks for long.
const MAX_UNPERSISTED: usize = 256;
/// How long shutdown waits for handed-over alerts to reach the outboxes.
const SHUTDOWN_PERSIST: Duration = Duration::from_secs(5);

/// True when `[alerting]` has somewhere to deliver.
pub(super) fn has_targets(alerting: &AlertingConfig) -> bool {
    alerting.stdout || !alerting.alertmanager.is_empty() || !alerting.webhooks.is_empty()
}

/// The running delivery thread.
pub(super) struct DeliveryThread {
    thread: Option<JoinHandle<anyhow::Result<()>>>,
    delivery: Arc<DeliveryStats>,
}

impl DeliveryThread {
    /// Starts the dispatcher (on a runtime of its own) and the alerts consumer.
    pub(super) fn start(
        kafka: &KafkaConfig,
        alerting: &AlertingConfig,
        stats: Arc<ProcessorStats>,
        stop: Arc<AtomicBool>,
        crash: Arc<AtomicBool>,
    ) -> anyhow::Result<DeliveryThread> {
        alerting.validate().map_err(anyhow::Error::msg)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("sluice-alert-delivery")
            .enable_all()
            .build()
            .context("failed to start the alert delivery runtime")?;
        let dispatcher = {
            let _guard = rt.enter();
            Dispatcher::start(alerting)?
        };
        let delivery = dispatcher.stats();
        let consumer: BaseConsumer = kafka
            .consumer_config("alerts", &kafka.groups.alerts)
            .create()
            .context("failed to create the alerts consumer")?;
        consumer
            .subscribe(&[&kafka.topics.alerts])
            .with_context(|| format!("failed to subscribe to {}", kafka.topics.alerts))?;
        let topic = kafka.topics.alerts.clone();
        let commit_interval = Duration::from_millis(kafka.consumer.commit_interval_ms);
        let thread = std::thread::Builder::new()
            .name("sluice-alerts".into())
            .spawn(move || {
                let worker = Worker {
                    topic,
                    commit_interval,
                    stats,
                    stop,
                    crash: crash.clone(),
                    handed: 0,
                    waiting: VecDeque::new(),
                };
                let result = worker.run(&consumer, &dispatcher);
                if crash.load(Ordering::SeqCst) {
                    drop(dispatcher);
                } else {
                    rt.block_on(dispatcher.shutdown());
                }
                rt.shutdown_timeout(SHUTDOWN_PERSIST);
                result
            })?;
        Ok(DeliveryThread {
            thread: Some(thread),
            delivery,
        })
    }

    pub(super) fn stats(&self) -> Arc<DeliveryStats> {
        self.delivery.clone()
    }

    pub(super) fn check_health(&mut self) -> anyhow::Result<()> {
        super::check_thread(&mut self.thread, "alert delivery")
    }

    pub(super) fn join(mut self) -> anyhow::Result<()> {
        super::join_thread(&mut self.thread, "alert delivery")
    }
}

struct Worker {
    topic: String,
    commit_interval: Duration,
    stats: Arc<ProcessorStats>,
    stop: Arc<AtomicBool>,
    crash: Arc<AtomicBool>,
    /// Alerts handed to the dispatcher since start.
    handed: u64,
    /// (alerts handed to the dispatcher up to and including this message, partition, offset)
    /// not yet known to be in the outboxes; the dispatcher persists in hand-over order.
    waiting: VecDeque<(u64, i32, i64)>,
}

impl Worker {
    fn run(mut self, consumer: &BaseConsumer, dispatcher: &Dispatcher) -> anyhow::Result<()> {
        let tx = dispatcher.sender();
        let delivery = dispatcher.stats();
        let mut last_commit = Instant::now();
        let result = loop {
            if self.stop.load(Ordering::SeqCst) || self.crash.load(Ordering::SeqCst) {
                break Ok(());
            }
            if last_commit.elapsed() >= self.commit_interval {
                self.commit(consumer, &delivery, CommitMode::Async);
                last_commit = Instant::now();
            }
            if self.waiting.len() >= MAX_UNPERSISTED {
                std::thread::sleep(Duration::from_millis(5));
                self.commit(consumer, &delivery, CommitMode::Async);
                continue;
            }
            let message = match consumer.poll(POLL_WAIT) {
                None => continue,
                Some(Err(err)) => {
                    let n = self.stats.consumer_errors.fetch_add(1, Ordering::Relaxed);
                    if n.is_power_of_two() {
                        tracing::warn!(error = %err, errors = n + 1, "alerts consumer error");
                    }
                    continue;
                }
                Some(Ok(m)) => m,
            };
            let alert = message
                .payload()
                .map(serde_json::from_slice::<schemas::Alert>);
            match alert {
                Some(Ok(alert)) => {
                    if tx.blocking_send(alert).is_err() {
                        break Err(anyhow::anyhow!("the alert dispatcher stopped"));
                    }
                    self.handed += 1;
                    self.stats.alerts_in.fetch_add(1, Ordering::Relaxed);
                }
                _ => {
                    // Counted and skipped: it can never be delivered. Committed once the
                    // alerts before it are persisted.
                    self.stats
                        .alerts_undecodable
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
            self.waiting
                .push_back((self.handed, message.partition(), message.offset()));
        };
        drop(tx);
        if !self.crash.load(Ordering::SeqCst) {
            let deadline = Instant::now() + SHUTDOWN_PERSIST;
            while !self.waiting.is_empty() && Instant::now() < deadline {
                self.commit(consumer, &delivery, CommitMode::Sync);
                std::thread::sleep(Duration::from_millis(10));
            }
            self.commit(consumer, &delivery, CommitMode::Sync);
        }
        result
    }

    /// Commits past every alert the dispatcher has persisted.
    fn commit(&mut self, consumer: &BaseConsumer, delivery: &DeliveryStats, mode: CommitMode) {
        let persisted = delivery.persisted.load(Ordering::Relaxed);
        let mut list = TopicPartitionList::new();
        while let Some(&(n, partition, offset)) = self.waiting.front() {
            if n > persisted {
                break;
            }
            self.waiting.pop_front();
            // Later entries of a partition overwrite earlier ones: the highest offset wins.
            match list.find_partition(&self.topic, partition) {
                Some(mut e) => {
                    let _ = e.set_offset(Offset::Offset(offset + 1));
                }
                None => {
                    let _ = list.add_partition_offset(
                        &self.topic,
                        partition,
                        Offset::Offset(offset + 1),
                    );
                }
            }
        }
        if list.count() == 0 {
            return;
        }
        if consumer.commit(&list, mode).is_err() {
            self.stats
                .offset_commit_failures
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}
