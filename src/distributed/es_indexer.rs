//! The `indexer` role with `kafka.indexer_sink = "elasticsearch"`: consume events into the
//! `[elasticsearch]` cluster with the bulk writer ([`index::elasticsearch::EsBatcher`]).
//!
//! Each event is written with `create` and `_id` = `event.id`, so a replay (after a crash or a
//! rebalance) is answered 409 and counted as a replay, never stored twice. After each bulk
//! flush, a partition's offset is committed up to its first event Elasticsearch did not accept
//! (stored, duplicate or dead-lettered all count as accepted); the consumer seeks that
//! partition back to it, so the event is sent again. No store state moves between indexers, so
//! rebalances need no hand-over: offsets of partitions no longer assigned are not committed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use index::elasticsearch::{EsBatcher, EsWriter, ItemStatus};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

use super::indexer::{Indexer, IndexerStats};
use crate::config::SluiceConfig;

/// How long one consumer poll waits when no message is ready.
const POLL_WAIT: Duration = Duration::from_millis(100);
/// How long a seek back to an unaccepted event may take.
const SEEK_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts the Elasticsearch indexer (see the module docs).
pub(super) fn start(config: &SluiceConfig) -> anyhow::Result<Indexer> {
    let kafka = &config.kafka;
    config
        .elasticsearch
        .validate()
        .context("invalid [elasticsearch] config")?;
    let stats = Arc::new(IndexerStats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let crash = Arc::new(AtomicBool::new(false));
    let consumer: BaseConsumer = kafka
        .consumer_config("indexer", &kafka.groups.indexer)
        .create()
        .context("failed to create the Kafka consumer")?;
    consumer
        .subscribe(&[&kafka.topics.events])
        .with_context(|| format!("failed to subscribe to {}", kafka.topics.events))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the Elasticsearch runtime")?;
    let writer = {
        let _guard = rt.enter();
        EsWriter::try_new(&config.elasticsearch).context("invalid [elasticsearch] config")?
    };
    let worker = Worker {
        topic: kafka.topics.events.clone(),
        consumer,
        batcher: EsBatcher::new(writer),
        rt,
        skipped: Vec::new(),
        stop: stop.clone(),
        crash: crash.clone(),
        stats: stats.clone(),
    };
    let thread = std::thread::Builder::new()
        .name("sluice-indexer-es".into())
        .spawn(move || worker.run())?;
    Ok(Indexer::from_parts(thread, stop, crash, stats))
}

struct Worker {
    topic: String,
    consumer: BaseConsumer,
    batcher: EsBatcher<(i32, i64)>,
    rt: tokio::runtime::Runtime,
    /// Offsets of messages that were not events (counted invalid): accepted with the next
    /// flush.
    skipped: Vec<(i32, i64)>,
    stop: Arc<AtomicBool>,
    crash: Arc<AtomicBool>,
    stats: Arc<IndexerStats>,
}

impl Worker {
    fn run(mut self) -> anyhow::Result<()> {
        let result = self.consume();
        if self.crash.load(Ordering::SeqCst) {
            return Ok(());
        }
        let flushed = self.flush(CommitMode::Sync);
        result.and(flushed)
    }

    fn consume(&mut self) -> anyhow::Result<()> {
        loop {
            if self.stop.load(Ordering::SeqCst) || self.crash.load(Ordering::SeqCst) {
                return Ok(());
            }
            let mut full = false;
            match self.consumer.poll(POLL_WAIT) {
                None => {}
                Some(Err(err)) => {
                    let n = self.stats.consumer_errors.fetch_add(1, Ordering::Relaxed);
                    if n.is_power_of_two() {
                        tracing::warn!(error = %err, errors = n + 1, "consumer error");
                    }
                }
                Some(Ok(message)) => {
                    self.stats.records_in.fetch_add(1, Ordering::Relaxed);
                    let token = (message.partition(), message.offset());
                    match message
                        .payload()
                        .map(serde_json::from_slice::<schemas::LogEvent>)
                    {
                        Some(Ok(event)) => {
                            full = self
                                .batcher
                                .push(&event, token)
                                .context("an event failed to serialize")?;
                        }
                        _ => {
                            let n = self.stats.invalid_events.fetch_add(1, Ordering::Relaxed);
                            if n.is_power_of_two() {
                                tracing::error!(
                                    partition = token.0,
                                    offset = token.1,
                                    invalid = n + 1,
                                    "events-topic message is not an event; skipped"
                                );
                            }
                            self.skipped.push(token);
                        }
                    }
                }
            }
            let due = self
                .batcher
                .deadline()
                .is_some_and(|d| d <= tokio::time::Instant::now());
            if full || due || (self.batcher.is_empty() && !self.skipped.is_empty()) {
                self.flush(CommitMode::Async)?;
            }
        }
    }

    /// Writes the open batch, commits each partition up to its first unaccepted event and
    /// seeks back to it.
    fn flush(&mut self, mode: CommitMode) -> anyhow::Result<()> {
        let mut results: Vec<((i32, i64), bool)> = std::mem::take(&mut self.skipped)
            .into_iter()
            .map(|t| (t, true))
            .collect();
        if !self.batcher.is_empty() {
            let (outcome, tokens) = self
                .rt
                .block_on(self.batcher.flush())
                .context("Elasticsearch bulk write failed")?;
            self.stats.store_commits.fetch_add(1, Ordering::Relaxed);
            for (token, status) in tokens.into_iter().zip(&outcome.statuses) {
                let counter = match status {
                    ItemStatus::Created => &self.stats.events_added,
                    ItemStatus::Duplicate => &self.stats.replays_skipped,
                    ItemStatus::DeadLettered => &self.stats.invalid_events,
                    ItemStatus::Unacked => &self.stats.es_unaccepted,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                results.push((token, status.is_acked()));
            }
        }
        if results.is_empty() {
            return Ok(());
        }
        results.sort_by_key(|(t, _)| *t);
        // Per partition: (next offset to commit, first unaccepted offset).
        let mut plan: BTreeMap<i32, (Option<i64>, Option<i64>)> = BTreeMap::new();
        for ((partition, offset), acked) in results {
            let entry = plan.entry(partition).or_default();
            if entry.1.is_some() {
                continue;
            }
            if acked {
                entry.0 = Some(offset + 1);
            } else {
                entry.1 = Some(offset);
            }
        }
        let assigned: Vec<i32> = self
            .consumer
            .assignment()
            .map(|a| {
                a.elements_for_topic(&self.topic)
                    .iter()
                    .map(|e| e.partition())
                    .collect()
            })
            .unwrap_or_default();
        let mut list = TopicPartitionList::new();
        for (partition, (commit, retry)) in &plan {
            if !assigned.contains(partition) {
                continue; // revoked meanwhile: its new owner replays, Elasticsearch dedups
            }
            if let Some(offset) = commit {
                let _ = list.add_partition_offset(&self.topic, *partition, Offset::Offset(*offset));
            }
            if let Some(offset) = retry
                && let Err(err) = self.consumer.seek(
                    &self.topic,
                    *partition,
                    Offset::Offset(*offset),
                    SEEK_TIMEOUT,
                )
            {
                tracing::warn!(error = %err, partition, offset,
                    "seek back to an unaccepted event failed; a restart replays it");
            }
        }
        if list.count() > 0 && self.consumer.commit(&list, mode).is_err() {
            self.stats
                .offset_commit_failures
                .fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}
