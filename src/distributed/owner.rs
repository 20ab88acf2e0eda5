//! The aggregate-owner thread of the processor role: a consumer in `kafka.groups.aggregator`
//! on `kafka.topics.aggregates`, one [`AggregateOwner`] per owned partition, rule alerts to
//! `kafka.topics.alerts`. See [`super::aggregate`] for the protocol.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};

use super::KafkaConfig;
use super::aggregate::{AggregateMessage, AggregateOwner, OwnerCounters, horizon_buckets};
use super::processor::{ProcessorStats, topic_partitions};

/// How long one consumer poll waits when no message is ready.
const POLL_WAIT: Duration = Duration::from_millis(100);
/// How long a commit waits for produced alerts to be acknowledged first.
const ALERT_FLUSH: Duration = Duration::from_secs(10);
/// How often the raw topic's partition count is re-read (partitions can be added).
const METADATA_REFRESH: Duration = Duration::from_secs(60);
/// How long reading a partition's committed offset (rebuild metadata) may take.
const COMMITTED_TIMEOUT: Duration = Duration::from_secs(10);

type Owners = Arc<Mutex<BTreeMap<i32, AggregateOwner>>>;

fn lock(
    owners: &Mutex<BTreeMap<i32, AggregateOwner>>,
) -> MutexGuard<'_, BTreeMap<i32, AggregateOwner>> {
    owners.lock().unwrap_or_else(|p| p.into_inner())
}

struct AlertContext {
    stats: Arc<ProcessorStats>,
}

impl ClientContext for AlertContext {}

impl ProducerContext for AlertContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((err, _)) = result {
            let n = self.stats.delivery_failures.fetch_add(1, Ordering::Relaxed);
            if n.is_power_of_two() {
                tracing::error!(error = %err, failures = n + 1, "rule alert not delivered");
            }
        }
    }
}

type AlertProducer = ThreadedProducer<AlertContext>;

/// Commits the owners' rebuild points on revocation and forgets them.
struct OwnerRebalance {
    topic: String,
    owners: Owners,
    producer: Arc<AlertProducer>,
    stats: Arc<ProcessorStats>,
    crash: Arc<AtomicBool>,
}

impl ClientContext for OwnerRebalance {}

impl ConsumerContext for OwnerRebalance {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let revoked = super::revoked_partitions(rebalance, &self.topic, &self.crash);
        if revoked.is_empty() {
            return;
        }
        let flushed = self.producer.flush(ALERT_FLUSH).is_ok();
        let mut owners = lock(&self.owners);
        let mut commit = TopicPartitionList::new();
        for q in revoked {
            if let Some(owner) = owners.remove(&q)
                && flushed
            {
                add_commit(&mut commit, &self.topic, q, &owner);
            }
        }
        drop(owners);
        if commit.count() > 0 && consumer.commit(&commit, CommitMode::Sync).is_err() {
            self.stats
                .offset_commit_failures
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, _rebalance: &Rebalance<'_>) {
        self.count_assigned(consumer);
    }
}

impl OwnerRebalance {
    fn count_assigned(&self, consumer: &BaseConsumer<Self>) {
        if let Ok(assignment) = consumer.assignment() {
            let n = assignment.elements_for_topic(&self.topic).len();
            self.stats
                .aggregate_partitions
                .store(n as u64, Ordering::Relaxed);
        }
    }
}

fn add_commit(list: &mut TopicPartitionList, topic: &str, q: i32, owner: &AggregateOwner) {
    if let Some((offset, metadata)) = owner.commit_point() {
        let mut e = list.add_partition(topic, q);
        if e.set_offset(Offset::Offset(offset)).is_ok() {
            e.set_metadata(metadata);
        }
    }
}

/// The running owner thread.
pub(super) struct OwnerThread {
    thread: Option<JoinHandle<anyhow::Result<()>>>,
}

struct OwnerWorker {
    kafka: KafkaConfig,
    rules_config: detect::DetectConfig,
    horizon_buckets: i64,
    owners: Owners,
    producer: Arc<AlertProducer>,
    stats: Arc<ProcessorStats>,
    stop: Arc<AtomicBool>,
    crash: Arc<AtomicBool>,
    raw_partitions: i32,
}

impl OwnerThread {
    /// Joins the aggregator group and starts owning on a thread of its own.
    pub(super) fn start(
        kafka: &KafkaConfig,
        rules_config: &detect::DetectConfig,
        stats: Arc<ProcessorStats>,
        stop: Arc<AtomicBool>,
        crash: Arc<AtomicBool>,
    ) -> anyhow::Result<OwnerThread> {
        let owners: Owners = Arc::new(Mutex::new(BTreeMap::new()));
        let producer: Arc<AlertProducer> = Arc::new(
            kafka
                .producer_config("aggregator")
                .create_with_context(AlertContext {
                    stats: stats.clone(),
                })
                .context("failed to create the alerts producer")?,
        );
        let consumer: BaseConsumer<OwnerRebalance> = kafka
            .consumer_config("aggregator", &kafka.groups.aggregator)
            .create_with_context(OwnerRebalance {
                topic: kafka.topics.aggregates.clone(),
                owners: owners.clone(),
                producer: producer.clone(),
                stats: stats.clone(),
                crash: crash.clone(),
            })
            .context("failed to create the aggregates consumer")?;
        let raw_partitions = topic_partitions(&consumer, &kafka.topics.raw)?;
        consumer
            .subscribe(&[&kafka.topics.aggregates])
            .with_context(|| format!("failed to subscribe to {}", kafka.topics.aggregates))?;
        let worker = OwnerWorker {
            kafka: kafka.clone(),
            rules_config: rules_config.clone(),
            horizon_buckets: horizon_buckets(rules_config),
            owners,
            producer,
            stats,
            stop,
            crash,
            raw_partitions,
        };
        let thread = std::thread::Builder::new()
            .name("sluice-aggregator".into())
            .spawn(move || worker.run(&consumer))?;
        Ok(OwnerThread {
            thread: Some(thread),
        })
    }

    pub(super) fn check_health(&mut self) -> anyhow::Result<()> {
        super::check_thread(&mut self.thread, "aggregate owner")
    }

    pub(super) fn join(mut self) -> anyhow::Result<()> {
        super::join_thread(&mut self.thread, "aggregate owner")
    }
}

impl OwnerWorker {
    fn run(self, consumer: &BaseConsumer<OwnerRebalance>) -> anyhow::Result<()> {
        let result = self.consume(consumer);
        if self.crash.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.commit(consumer, CommitMode::Sync);
        result
    }

    fn consume(&self, consumer: &BaseConsumer<OwnerRebalance>) -> anyhow::Result<()> {
        let commit_interval = Duration::from_millis(self.kafka.consumer.commit_interval_ms);
        let mut last_commit = Instant::now();
        let mut last_metadata = Instant::now();
        let mut raw_partitions = self.raw_partitions;
        let mut alerts = Vec::new();
        loop {
            if self.stop.load(Ordering::SeqCst) || self.crash.load(Ordering::SeqCst) {
                return Ok(());
            }
            if last_commit.elapsed() >= commit_interval {
                self.commit(consumer, CommitMode::Async);
                last_commit = Instant::now();
            }
            if last_metadata.elapsed() >= METADATA_REFRESH {
                if let Ok(n) = topic_partitions(consumer, &self.kafka.topics.raw) {
                    raw_partitions = raw_partitions.max(n);
                    for owner in lock(&self.owners).values_mut() {
                        owner.set_raw_partitions(raw_partitions);
                    }
                }
                last_metadata = Instant::now();
            }
            let message = match consumer.poll(POLL_WAIT) {
                None => continue,
                Some(Err(err)) => {
                    let n = self.stats.consumer_errors.fetch_add(1, Ordering::Relaxed);
                    if n.is_power_of_two() {
                        tracing::warn!(error = %err, errors = n + 1, "aggregates consumer error");
                    }
                    continue;
                }
                Some(Ok(message)) => message,
            };
            let q = message.partition();
            let decoded = message
                .payload()
                .map(serde_json::from_slice::<AggregateMessage>);
            let Some(Ok(decoded)) = decoded else {
                self.stats
                    .aggregate_rejected
                    .fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let needs_owner = !lock(&self.owners).contains_key(&q);
            if needs_owner {
                let suppress = self.evaluated_before(consumer, q);
                let detector = detect::Detector::try_new(&self.rules_config)
                    .context("invalid [detect] config")?;
                let owner =
                    AggregateOwner::new(detector, raw_partitions, self.horizon_buckets, suppress);
                lock(&self.owners).insert(q, owner);
            }
            {
                let mut owners = lock(&self.owners);
                let Some(owner) = owners.get_mut(&q) else {
                    continue;
                };
                let before = owner.counters();
                owner.handle(decoded, message.offset(), &mut alerts);
                self.count(before, owner.counters());
            }
            for alert in alerts.drain(..) {
                let payload = serde_json::to_vec(&alert).context("an alert failed to serialize")?;
                let mut record = BaseRecord::to(&self.kafka.topics.alerts)
                    .key(alert.fingerprint.as_str())
                    .payload(payload.as_slice());
                loop {
                    match self.producer.send(record) {
                        Ok(()) => break,
                        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                            if self.crash.load(Ordering::SeqCst) {
                                return Ok(());
                            }
                            std::thread::sleep(Duration::from_millis(5));
                            record = back;
                        }
                        Err((err, back)) => {
                            anyhow::bail!("failed to produce to {}: {err}", back.topic);
                        }
                    }
                }
                self.stats
                    .aggregate_alerts_out
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The last bucket a previous owner of `q` evaluated, from its commit metadata.
    fn evaluated_before(&self, consumer: &BaseConsumer<OwnerRebalance>, q: i32) -> Option<i64> {
        let mut list = TopicPartitionList::new();
        list.add_partition(&self.kafka.topics.aggregates, q);
        let committed = consumer.committed_offsets(list, COMMITTED_TIMEOUT).ok()?;
        let e = committed.find_partition(&self.kafka.topics.aggregates, q)?;
        AggregateOwner::parse_metadata(e.metadata())
    }

    fn count(&self, before: OwnerCounters, after: OwnerCounters) {
        let s = &self.stats;
        let add = |c: &AtomicU64, a: u64, b: u64| {
            if a > b {
                c.fetch_add(a - b, Ordering::Relaxed);
            }
        };
        add(&s.aggregate_merged, after.merged, before.merged);
        add(
            &s.aggregate_duplicates,
            after.duplicate_partials,
            before.duplicate_partials,
        );
        add(
            &s.aggregate_superseded,
            after.superseded_partials,
            before.superseded_partials,
        );
        add(&s.aggregate_late, after.late_partials, before.late_partials);
        add(
            &s.aggregate_rejected,
            after.unknown_rule_partials + after.rejected_partials,
            before.unknown_rule_partials + before.rejected_partials,
        );
        add(
            &s.aggregate_buckets,
            after.buckets_evaluated,
            before.buckets_evaluated,
        );
        add(
            &s.aggregate_alerts_suppressed,
            after.alerts_suppressed,
            before.alerts_suppressed,
        );
    }

    /// Commits every owner's rebuild point once the alerts produced so far are acknowledged.
    fn commit(&self, consumer: &BaseConsumer<OwnerRebalance>, mode: CommitMode) {
        if self.producer.flush(ALERT_FLUSH).is_err() {
            return; // alerts not acknowledged: do not move past the buckets that raised them
        }
        let mut list = TopicPartitionList::new();
        for (q, owner) in lock(&self.owners).iter() {
            add_commit(&mut list, &self.kafka.topics.aggregates, *q, owner);
        }
        if list.count() == 0 {
            return;
        }
        self.stats.commits.fetch_add(1, Ordering::Relaxed);
        if consumer.commit(&list, mode).is_err() {
            self.stats
                .offset_commit_failures
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}
