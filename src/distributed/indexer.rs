//! The `indexer` role: consume events into one embedded store per events partition.
//!
//! Partition `n`'s events always go to the store under `<data_dir>/partitions/<n>/`, whichever
//! indexer owns the partition at the moment: the store is opened when the first message of the
//! partition arrives and committed and closed when the partition is revoked (eager rebalancing
//! revokes everywhere before it assigns, so a store is never open twice). Kafka offsets are
//! committed only after the store commit that made their events durable; a replay after a crash
//! is dropped by the store's per-file high-water marks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::BorrowedMessage;
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};

use crate::config::SluiceConfig;

/// How long one consumer poll waits when no message is ready.
const POLL_WAIT: Duration = Duration::from_millis(100);
/// How often open partition stores drop expired day partitions (as the embedded pipeline).
const RETENTION_INTERVAL: Duration = Duration::from_secs(3600);
/// While the consumer has had a message ready at every poll for longer than the commit
/// interval (it is catching up on a backlog), a store commits only at `commit_max_docs` staged
/// events or after this many commit intervals. Lines in a backlog are late anyway, and tantivy
/// commits of a few thousand events cost several times the CPU per event of ~50 000-event
/// ones, which is what kept a lagging indexer from ever catching up.
const BACKLOG_COMMIT_STRETCH: u32 = 10;
/// Directory under the data dir that holds the partition stores.
const PARTITIONS_DIR: &str = "partitions";

/// Where the partition stores live: `<data_dir>/partitions`.
pub fn partitions_root(data_dir: &Path) -> PathBuf {
    data_dir.join(PARTITIONS_DIR)
}

/// The store directory of events partition `partition`: `<data_dir>/partitions/<n>`.
pub fn partition_dir(data_dir: &Path, partition: i32) -> PathBuf {
    partitions_root(data_dir).join(partition.to_string())
}

/// Counters of an indexer.
#[derive(Debug, Default)]
pub struct IndexerStats {
    /// Event messages consumed.
    pub records_in: AtomicU64,
    /// Events staged in a store (committed by a later store commit).
    pub events_added: AtomicU64,
    /// Replayed events the store already held.
    pub replays_skipped: AtomicU64,
    /// Messages that were not a valid event, or an event the store refused; counted, skipped.
    pub invalid_events: AtomicU64,
    /// Store commits (each followed by an offset commit).
    pub store_commits: AtomicU64,
    /// Partition stores opened.
    pub stores_opened: AtomicU64,
    /// Partition stores committed and closed on revocation.
    pub stores_closed: AtomicU64,
    /// Consumer errors reported by poll.
    pub consumer_errors: AtomicU64,
    /// Offset commits the brokers refused (the next commit covers them; a crash first only
    /// replays more).
    pub offset_commit_failures: AtomicU64,
    /// Elasticsearch sink: events not accepted within the writer's retries; their partition is
    /// sought back and they are sent again.
    pub es_unaccepted: AtomicU64,
}

impl IndexerStats {
    /// Prometheus text exposition.
    pub fn render_prometheus(&self, out: &mut String) {
        super::render_counters(
            out,
            &[
                (
                    "sluice_indexer_records_in_total",
                    &self.records_in,
                    "counter",
                ),
                (
                    "sluice_indexer_events_added_total",
                    &self.events_added,
                    "counter",
                ),
                (
                    "sluice_indexer_replays_skipped_total",
                    &self.replays_skipped,
                    "counter",
                ),
                (
                    "sluice_indexer_invalid_events_total",
                    &self.invalid_events,
                    "counter",
                ),
                (
                    "sluice_indexer_store_commits_total",
                    &self.store_commits,
                    "counter",
                ),
                (
                    "sluice_indexer_stores_opened_total",
                    &self.stores_opened,
                    "counter",
                ),
                (
                    "sluice_indexer_stores_closed_total",
                    &self.stores_closed,
                    "counter",
                ),
                (
                    "sluice_indexer_consumer_errors_total",
                    &self.consumer_errors,
                    "counter",
                ),
                (
                    "sluice_indexer_offset_commit_failures_total",
                    &self.offset_commit_failures,
                    "counter",
                ),
                (
                    "sluice_indexer_es_unaccepted_total",
                    &self.es_unaccepted,
                    "counter",
                ),
            ],
        );
    }
}

struct PartitionStore {
    store: index::Store,
    /// Next offset to consume once the store's staged events are committed.
    next_offset: Option<i64>,
    /// Messages handled since the last store commit.
    uncommitted: bool,
    last_commit: Instant,
}

/// The stores of the partitions this indexer owns, shared with the rebalance callback.
struct Stores {
    topic: String,
    data_dir: PathBuf,
    index: index::IndexConfig,
    open: BTreeMap<i32, PartitionStore>,
    stats: Arc<IndexerStats>,
    /// A store commit failed in the rebalance callback; the worker stops with it.
    failure: Option<String>,
}

impl Stores {
    fn store_for(&mut self, partition: i32) -> anyhow::Result<&mut PartitionStore> {
        if !self.open.contains_key(&partition) {
            let config = index::IndexConfig {
                data_dir: partition_dir(&self.data_dir, partition),
                ..self.index.clone()
            };
            let store = index::Store::open(&config).with_context(|| {
                format!(
                    "failed to open the store of partition {partition} at {}",
                    config.data_dir.display()
                )
            })?;
            self.stats.stores_opened.fetch_add(1, Ordering::Relaxed);
            self.open.insert(
                partition,
                PartitionStore {
                    store,
                    next_offset: None,
                    uncommitted: false,
                    last_commit: Instant::now(),
                },
            );
        }
        self.open
            .get_mut(&partition)
            .context("partition store vanished")
    }

    /// Commits the stores that are due (or all with pending data when `all`), returning the
    /// offsets that are now safe to commit to Kafka. With `backlog`, time alone makes a store
    /// due only after [`BACKLOG_COMMIT_STRETCH`] intervals.
    fn commit_due(
        &mut self,
        interval: Duration,
        all: bool,
        backlog: bool,
        only: Option<&[i32]>,
    ) -> anyhow::Result<TopicPartitionList> {
        let max_docs = u64::try_from(self.index.commit_max_docs).unwrap_or(u64::MAX);
        let mut list = TopicPartitionList::new();
        for (partition, ps) in &mut self.open {
            if only.is_some_and(|o| !o.contains(partition)) || !ps.uncommitted {
                continue;
            }
            let age = ps.last_commit.elapsed();
            let due = all
                || ps.store.staged_docs() >= max_docs
                || if backlog {
                    age >= interval * BACKLOG_COMMIT_STRETCH
                } else {
                    ps.store.should_commit() || age >= interval
                };
            if !due {
                continue;
            }
            ps.store
                .commit()
                .with_context(|| format!("store commit of partition {partition} failed"))?;
            self.stats.store_commits.fetch_add(1, Ordering::Relaxed);
            ps.uncommitted = false;
            ps.last_commit = Instant::now();
            if let Some(offset) = ps.next_offset {
                let _ = list.add_partition_offset(&self.topic, *partition, Offset::Offset(offset));
            }
        }
        Ok(list)
    }
}

fn lock(stores: &Mutex<Stores>) -> MutexGuard<'_, Stores> {
    stores.lock().unwrap_or_else(|p| p.into_inner())
}

struct RebalanceContext {
    stores: Arc<Mutex<Stores>>,
    /// Set when the indexer is dropped without shutdown: the consumer's close then revokes
    /// everything, and a crash must not commit.
    crash: Arc<AtomicBool>,
}

impl ClientContext for RebalanceContext {}

impl ConsumerContext for RebalanceContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if !matches!(rebalance, Rebalance::Revoke(_)) || self.crash.load(Ordering::SeqCst) {
            return;
        }
        let mut stores = lock(&self.stores);
        let revoked = super::revoked_partitions(rebalance, &stores.topic, &self.crash);
        let commit = stores.commit_due(Duration::ZERO, true, false, Some(&revoked));
        for partition in &revoked {
            if stores.open.remove(partition).is_some() {
                stores.stats.stores_closed.fetch_add(1, Ordering::Relaxed);
            }
        }
        match commit {
            Ok(list) if list.count() > 0 => {
                if let Err(err) = consumer.commit(&list, CommitMode::Sync) {
                    tracing::warn!(error = %err, "offset commit on revocation failed; the next owner replays more");
                }
            }
            Ok(_) => {}
            Err(err) => {
                // Staged events are lost from the store but their offsets are not committed:
                // the next owner replays them.
                tracing::error!(error = %format!("{err:#}"), "store commit on revocation failed");
                stores.failure.get_or_insert(format!("{err:#}"));
            }
        }
    }

    fn commit_callback(
        &self,
        result: rdkafka::error::KafkaResult<()>,
        _offsets: &TopicPartitionList,
    ) {
        if result.is_err() {
            lock(&self.stores)
                .stats
                .offset_commit_failures
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Error(err) = rebalance {
            tracing::error!(error = %err, "rebalance failed");
        }
    }
}

/// A running indexer. [`Indexer::shutdown`] commits and stops; dropping it without shutdown
/// behaves like a crash: staged events are discarded and no offset is committed.
pub struct Indexer {
    thread: Option<JoinHandle<anyhow::Result<()>>>,
    stop: Arc<AtomicBool>,
    crash: Arc<AtomicBool>,
    stats: Arc<IndexerStats>,
}

impl std::fmt::Debug for Indexer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Indexer")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

struct Worker {
    consumer: BaseConsumer<RebalanceContext>,
    stores: Arc<Mutex<Stores>>,
    commit_interval: Duration,
    stop: Arc<AtomicBool>,
    crash: Arc<AtomicBool>,
    stats: Arc<IndexerStats>,
}

impl Indexer {
    /// Joins the indexer group and starts consuming `kafka.topics.events` into partition
    /// stores under `<data_dir>/partitions/`, with the `[index]` settings.
    ///
    /// # Errors
    /// An invalid section, or a consumer librdkafka rejects.
    pub fn start(config: &SluiceConfig) -> anyhow::Result<Indexer> {
        let kafka = &config.kafka;
        kafka.validate().map_err(anyhow::Error::msg)?;
        if kafka.indexer_sink == super::IndexerSink::Elasticsearch {
            return super::es_indexer::start(config);
        }
        config.index.validate().context("invalid [index] config")?;
        let stats = Arc::new(IndexerStats::default());
        let stores = Arc::new(Mutex::new(Stores {
            topic: kafka.topics.events.clone(),
            data_dir: config.data_dir(),
            index: config.index.clone(),
            open: BTreeMap::new(),
            stats: stats.clone(),
            failure: None,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let crash = Arc::new(AtomicBool::new(false));
        let consumer: BaseConsumer<RebalanceContext> = kafka
            .consumer_config("indexer", &kafka.groups.indexer)
            .create_with_context(RebalanceContext {
                stores: stores.clone(),
                crash: crash.clone(),
            })
            .context("failed to create the Kafka consumer")?;
        consumer
            .subscribe(&[&kafka.topics.events])
            .with_context(|| format!("failed to subscribe to {}", kafka.topics.events))?;
        let worker = Worker {
            consumer,
            stores,
            commit_interval: Duration::from_millis(
                kafka
                    .consumer
                    .commit_interval_ms
                    .min(config.index.commit_interval_ms.max(1)),
            ),
            stop: stop.clone(),
            crash: crash.clone(),
            stats: stats.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("sluice-indexer".into())
            .spawn(move || worker.run())?;
        Ok(Indexer {
            thread: Some(thread),
            stop,
            crash,
            stats,
        })
    }

    /// Wraps a running indexer thread (the Elasticsearch sink builds its own).
    pub(super) fn from_parts(
        thread: JoinHandle<anyhow::Result<()>>,
        stop: Arc<AtomicBool>,
        crash: Arc<AtomicBool>,
        stats: Arc<IndexerStats>,
    ) -> Indexer {
        Indexer {
            thread: Some(thread),
            stop,
            crash,
            stats,
        }
    }

    /// The indexer's counters.
    pub fn stats(&self) -> Arc<IndexerStats> {
        self.stats.clone()
    }

    /// Fails when the indexer thread stopped with an error.
    ///
    /// # Errors
    /// That error.
    pub fn check_health(&mut self) -> anyhow::Result<()> {
        super::check_thread(&mut self.thread, "indexer")
    }

    /// Commits every open store and its offsets, leaves the group and stops.
    ///
    /// # Errors
    /// The indexer thread failed.
    pub fn shutdown(mut self) -> anyhow::Result<()> {
        self.stop.store(true, Ordering::SeqCst);
        super::join_thread(&mut self.thread, "indexer")
    }
}

impl Drop for Indexer {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.crash.store(true, Ordering::SeqCst);
            let _ = t.join();
        }
    }
}

impl Worker {
    fn run(self) -> anyhow::Result<()> {
        let result = self.consume();
        if self.crash.load(Ordering::SeqCst) {
            return Ok(());
        }
        let committed = self.commit(true, false);
        // Close the stores before leaving the group, so the next owner can open them.
        lock(&self.stores).open.clear();
        result.and(committed)
    }

    fn consume(&self) -> anyhow::Result<()> {
        let mut last_check = Instant::now();
        let mut last_retention: Option<Instant> = None;
        // When a poll last found nothing to read: long ago means the indexer is catching up.
        let mut last_idle = Instant::now();
        loop {
            if self.stop.load(Ordering::SeqCst) || self.crash.load(Ordering::SeqCst) {
                return Ok(());
            }
            match self.consumer.poll(POLL_WAIT) {
                None => last_idle = Instant::now(),
                Some(Err(err)) => {
                    let n = self.stats.consumer_errors.fetch_add(1, Ordering::Relaxed);
                    if n.is_power_of_two() {
                        tracing::warn!(error = %err, errors = n + 1, "consumer error");
                    }
                }
                Some(Ok(message)) => self.index(&message)?,
            }
            if let Some(failure) = lock(&self.stores).failure.take() {
                anyhow::bail!("{failure}");
            }
            if last_check.elapsed() >= POLL_WAIT {
                self.commit(false, last_idle.elapsed() > self.commit_interval)?;
                last_check = Instant::now();
            }
            if last_retention.is_none_or(|t| t.elapsed() >= RETENTION_INTERVAL) {
                self.enforce_retention()?;
                last_retention = Some(Instant::now());
            }
        }
    }

    fn index(&self, message: &BorrowedMessage<'_>) -> anyhow::Result<()> {
        self.stats.records_in.fetch_add(1, Ordering::Relaxed);
        let mut stores = lock(&self.stores);
        let ps = stores.store_for(message.partition())?;
        ps.next_offset = Some(message.offset() + 1);
        ps.uncommitted = true;
        let event = match message.payload().map(schemas::read_event_json) {
            Some(Ok(event)) => event,
            Some(Err(err)) => {
                self.invalid(message, &err.to_string());
                return Ok(());
            }
            None => {
                self.invalid(message, "empty message");
                return Ok(());
            }
        };
        match ps.store.add(&event) {
            Ok(true) => self.stats.events_added.fetch_add(1, Ordering::Relaxed),
            Ok(false) => self.stats.replays_skipped.fetch_add(1, Ordering::Relaxed),
            Err(index::IndexError::InvalidEvent { event_id, reason }) => {
                self.invalid(message, &format!("event {event_id}: {reason}"));
                return Ok(());
            }
            Err(err) => {
                return Err(err).with_context(|| {
                    format!("failed to index into partition {}", message.partition())
                });
            }
        };
        Ok(())
    }

    /// Drops expired day partitions of every open partition store.
    fn enforce_retention(&self) -> anyhow::Result<()> {
        let mut stores = lock(&self.stores);
        for (partition, ps) in &mut stores.open {
            let dropped = ps
                .store
                .enforce_retention(chrono::Utc::now())
                .with_context(|| format!("retention failed in partition {partition}"))?;
            if !dropped.is_empty() {
                tracing::info!(partition, days = ?dropped, "retention dropped expired day partitions");
            }
        }
        Ok(())
    }

    fn invalid(&self, message: &BorrowedMessage<'_>, reason: &str) {
        let n = self.stats.invalid_events.fetch_add(1, Ordering::Relaxed);
        if n.is_power_of_two() {
            tracing::error!(partition = message.partition(), offset = message.offset(),
                reason = %reason, invalid = n + 1, "event not indexed");
        }
    }

    /// Commits due stores (all with `all`) and then their offsets.
    fn commit(&self, all: bool, backlog: bool) -> anyhow::Result<()> {
        let list = lock(&self.stores).commit_due(self.commit_interval, all, backlog, None)?;
        if list.count() > 0 {
            let mode = if all {
                CommitMode::Sync
            } else {
                CommitMode::Async
            };
            if let Err(err) = self.consumer.commit(&list, mode) {
                tracing::warn!(error = %err, "offset commit failed; a restart replays more");
            }
        }
        Ok(())
    }
}
