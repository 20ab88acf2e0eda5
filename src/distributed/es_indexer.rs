//! The `indexer` role with `kafka.indexer_sink = "elasticsearch"`: consume events into the
//! `[elasticsearch]` cluster with the bulk writer ([`index::elasticsearch::EsBatcher`]).
//!
//! Each event is written with `create` and `_id` = `event.id`, so a replay (after a crash or a
//! rebalance) is answered 409 and counted as a replay, never stored twice. After each bulk
//! flush, a partition's offset is committed up to its first event Elasticsearch did not accept
//! (stored, duplicate or dead-lettered all count as accepted); the consumer seeks that
//! partition back to it, so the event is sent again. No store state moves between indexers, so
//! rebalances need no hand-over: offsets of partitions no longer assigned are not committed.

use std::borrow::Cow;
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

/// What the indexer needs of an events-topic message, decoded without building the event:
/// `@timestamp` (required, as in [`schemas::LogEvent`]: without a valid time it is not an event)
/// and `event.id` (the `_id`). Every other field is skipped here and checked by Elasticsearch's
/// mapping, which dead-letters what it rejects.
#[derive(serde::Deserialize)]
struct EventHead<'a> {
    #[serde(rename = "@timestamp")]
    _timestamp: chrono::DateTime<chrono::Utc>,
    #[serde(default, borrow)]
    event: EventIdHead<'a>,
}

#[derive(Default, serde::Deserialize)]
struct EventIdHead<'a> {
    #[serde(default, borrow)]
    id: Cow<'a, str>,
}

/// An events-topic message, ready for the bulk batch.
enum Decoded<'a> {
    /// Compact JSON, as the processor writes it: sent as it is, with this `_id`.
    Json(Cow<'a, str>),
    /// JSON spread over several lines, which `_bulk` framing cannot carry: decoded and
    /// serialized again.
    Event(Box<schemas::LogEvent>),
    /// Not an event.
    Invalid,
}

fn decode(payload: &[u8]) -> Decoded<'_> {
    match serde_json::from_slice::<EventHead<'_>>(payload) {
        Err(_) => Decoded::Invalid,
        Ok(head) if !payload.contains(&b'\n') => Decoded::Json(head.event.id),
        Ok(_) => serde_json::from_slice::<schemas::LogEvent>(payload)
            .map_or(Decoded::Invalid, |event| Decoded::Event(Box::new(event))),
    }
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
                    let payload = message.payload().unwrap_or_default();
                    match decode(payload) {
                        Decoded::Json(id) => {
                            full = self
                                .batcher
                                .push_json(&id, payload, token)
                                .context("an event could not be added to the bulk request")?;
                        }
                        Decoded::Event(event) => {
                            full = self
                                .batcher
                                .push(&event, token)
                                .context("an event failed to serialize")?;
                        }
                        Decoded::Invalid => {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_events_pass_through_and_others_are_decoded_or_refused() -> anyhow::Result<()> {
        let mut event = schemas::LogEvent::new(chrono::Utc::now(), "line \"one\"\nline two");
        event.event.id = "id-\"7\"".into();
        let compact = serde_json::to_vec(&event)?;
        assert!(matches!(decode(&compact), Decoded::Json(id) if id == event.event.id));
        let pretty = serde_json::to_vec_pretty(&event)?;
        assert!(matches!(decode(&pretty), Decoded::Event(e) if *e == event));
        for invalid in [
            &b""[..],
            b"not json",
            b"[1,2]",
            br#"{"message":"no time"}"#,
            br#"{"@timestamp":"yesterday","message":"x"}"#,
            br#"{"@timestamp":"2026-12-05T00:00:00Z","event":{"id":7}}"#,
        ] {
            assert!(
                matches!(decode(invalid), Decoded::Invalid),
                "{}",
                String::from_utf8_lossy(invalid)
            );
        }
        Ok(())
    }
}
