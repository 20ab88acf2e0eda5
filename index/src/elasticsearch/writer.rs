//! [`EsWriter`]: bulk `create` with the deterministic `event.id` as `_id`, bounded concurrency,
//! retries with backoff, and a dead-letter file for documents Elasticsearch refuses for good.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use elasticsearch::http::StatusCode;
use elasticsearch::{BulkParts, Elasticsearch};
use schemas::LogEvent;
use serde_json::Value;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::client::build_client;
use super::config::{EsConfig, EsRetry};
use super::dead_letter::{DeadLetter, DeadLetterFile};
use super::error::EsError;
use super::metrics::{EsMetrics, EsMetricsSnapshot};

/// Only what the writer needs from a bulk response: ES drops the rest (`_index`, `_shards`,
/// `_seq_no`, ...) server-side, which shrinks a 5 000-item response several times.
const BULK_FILTER_PATH: &[&str] = &["errors", "items.*.status", "items.*.error"];
/// The retry delay stops doubling after this many attempts (2^20 × initial is far beyond any
/// sensible `max_backoff_ms`); keeps the shift from overflowing.
const MAX_BACKOFF_DOUBLINGS: u32 = 20;
/// Estimated bytes of one serialized event before it is written, to size the buffer once.
const TYPICAL_DOC_BYTES: usize = 512;

/// What happened to one event of a [`EsWriter::write`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemStatus {
    /// Elasticsearch stored it (201).
    Created,
    /// Elasticsearch already had a document with this `_id` (409 on `create`): a replay.
    Duplicate,
    /// Refused for good (a 400 mapping or parse error); written to the dead-letter file.
    DeadLettered,
    /// Not known to be stored: the retry limit was reached or the writer shut down. Do not
    /// acknowledge it upstream; replaying it later is safe.
    Unacked,
}

impl ItemStatus {
    /// True when the event may be acknowledged upstream: it is stored or dead-lettered.
    pub fn is_acked(self) -> bool {
        !matches!(self, ItemStatus::Unacked)
    }
}

/// The result of one [`EsWriter::write`]: `statuses[i]` is the fate of `events[i]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkOutcome {
    pub statuses: Vec<ItemStatus>,
}

impl BulkOutcome {
    /// How many events ended with `status`.
    pub fn count(&self, status: ItemStatus) -> usize {
        self.statuses.iter().filter(|s| **s == status).count()
    }

    /// True when every event may be acknowledged upstream.
    pub fn all_acked(&self) -> bool {
        self.statuses.iter().all(|s| s.is_acked())
    }

    /// The number of leading events that are all acknowledged: what an offset-based source
    /// (a Kafka partition, a file checkpoint) may commit.
    pub fn acked_prefix(&self) -> usize {
        self.statuses
            .iter()
            .position(|s| !s.is_acked())
            .unwrap_or(self.statuses.len())
    }

    /// Indices (into the written slice) of the events that may be acknowledged.
    pub fn acked_indices(&self) -> impl Iterator<Item = usize> + '_ {
        self.statuses
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_acked())
            .map(|(i, _)| i)
    }
}

/// One event, serialized once as its two `_bulk` lines.
#[derive(Debug)]
pub(crate) struct Doc {
    /// Position of the event in the caller's batch.
    pos: usize,
    id: String,
    /// `{"create":{"_id":...}}\n<source>\n`
    lines: Bytes,
    /// Where `<source>` starts in `lines`.
    source_start: usize,
}

impl Doc {
    fn prepare(pos: usize, event: &LogEvent) -> Result<Doc, EsError> {
        let id = event.event.id.clone();
        let ser_err = |e: serde_json::Error| EsError::Serialize {
            event_id: id.clone(),
            reason: e.to_string(),
        };
        let mut buf = action_line(&id, TYPICAL_DOC_BYTES).map_err(ser_err)?;
        let source_start = buf.len();
        schemas::write_event_json(event, &mut buf).map_err(ser_err)?;
        buf.push(b'\n');
        Ok(Doc {
            pos,
            id,
            lines: Bytes::from(buf),
            source_start,
        })
    }

    /// A document whose source is already serialized: `source` is copied as it is.
    fn prepare_json(pos: usize, id: &str, source: &[u8]) -> Result<Doc, EsError> {
        let ser_err = |reason: String| EsError::Serialize {
            event_id: id.to_owned(),
            reason,
        };
        // `_bulk` is newline-delimited: a source spanning lines would be read as the next
        // action. Compact JSON escapes every newline inside strings.
        if memchr::memchr(b'\n', source).is_some() {
            return Err(ser_err("the source JSON spans several lines".into()));
        }
        let mut buf = action_line(id, source.len() + 64).map_err(|e| ser_err(e.to_string()))?;
        let source_start = buf.len();
        buf.extend_from_slice(source);
        buf.push(b'\n');
        Ok(Doc {
            pos,
            id: id.to_owned(),
            lines: Bytes::from(buf),
            source_start,
        })
    }

    fn source(&self) -> &[u8] {
        // Without the trailing newline.
        &self.lines[self.source_start..self.lines.len() - 1]
    }
}

/// The `create` action line for `id` (none when empty: ES assigns one) in a buffer with room
/// for `capacity` bytes.
fn action_line(id: &str, capacity: usize) -> serde_json::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(capacity);
    if id.is_empty() {
        // ES assigns an _id; counted by the caller, as replays of it will duplicate.
        buf.extend_from_slice(b"{\"create\":{}}\n");
    } else {
        buf.extend_from_slice(b"{\"create\":{\"_id\":");
        serde_json::to_writer(&mut buf, id)?;
        buf.extend_from_slice(b"}}\n");
    }
    Ok(buf)
}

/// Writes [`LogEvent`]s to the data stream `logs-sluice-<namespace>`.
///
/// Cheap to clone; clones share the connection pool, the concurrency limit and the counters.
///
/// ```no_run
/// # async fn demo(events: Vec<schemas::LogEvent>) -> Result<(), index::elasticsearch::EsError> {
/// use index::elasticsearch::{EsConfig, EsWriter};
/// let writer = EsWriter::try_new(&EsConfig::default())?;
/// let outcome = writer.write(&events).await?;
/// let committable = outcome.acked_prefix(); // acknowledge events[..committable] upstream
/// # let _ = committable; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct EsWriter {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: Elasticsearch,
    data_stream: String,
    batch_max_bytes: usize,
    batch_max_docs: usize,
    batch_interval: Duration,
    retry: EsRetry,
    /// One permit per concurrent `_bulk` request; bounds in-flight memory.
    permits: Arc<Semaphore>,
    metrics: EsMetrics,
    dead_letters: DeadLetterFile,
    shutdown: watch::Sender<bool>,
    /// State of the jitter generator (a counter hashed with xxh3).
    jitter: AtomicU64,
}

/// Subtracts a request's bytes from the in-flight gauge however the request ends.
struct InFlight<'a> {
    metrics: &'a EsMetrics,
    bytes: u64,
}

impl<'a> InFlight<'a> {
    fn new(metrics: &'a EsMetrics, bytes: u64) -> InFlight<'a> {
        metrics.in_flight_add(bytes);
        InFlight { metrics, bytes }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.metrics.in_flight_sub(self.bytes);
    }
}

/// How a bulk round ended for the documents it carried.
enum Round {
    /// Every document has its final status.
    Done,
    /// These documents must be sent again after a backoff.
    Retry(Vec<Doc>),
    /// The request was too large (413): send the halves separately, without waiting.
    Split(Vec<Doc>, Vec<Doc>),
}

impl EsWriter {
    /// Validates `cfg`, reads the secrets and CA file, builds the client and creates the
    /// dead-letter directory. Sends nothing.
    ///
    /// # Errors
    /// [`EsError::Config`], [`EsError::Secret`], [`EsError::Tls`], [`EsError::Client`], or
    /// [`EsError::DeadLetter`] when the dead-letter directory cannot be created.
    pub fn try_new(cfg: &EsConfig) -> Result<EsWriter, EsError> {
        cfg.validate()?;
        let client = build_client(cfg)?;
        let data_stream = cfg.data_stream();
        let dead_letters = DeadLetterFile::try_new(&cfg.dead_letter_dir, data_stream.clone())?;
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Ok(EsWriter {
            inner: Arc::new(Inner {
                client,
                data_stream,
                batch_max_bytes: cfg.batch_max_bytes,
                batch_max_docs: cfg.batch_max_docs,
                batch_interval: Duration::from_millis(cfg.batch_interval_ms),
                retry: cfg.retry.clone(),
                permits: Arc::new(Semaphore::new(cfg.max_concurrency)),
                metrics: EsMetrics::default(),
                dead_letters,
                shutdown: watch::Sender::new(false),
                jitter: AtomicU64::new(seed),
            }),
        })
    }

    /// The data stream this writer writes to.
    pub fn data_stream(&self) -> &str {
        &self.inner.data_stream
    }

    /// Writes `events` and returns once each one is stored, known to be a duplicate,
    /// dead-lettered, or given up on (see [`ItemStatus`]).
    ///
    /// Events are cut into `_bulk` requests of at most `batch_max_bytes` / `batch_max_docs`;
    /// at most `max_concurrency` requests are in flight across all callers, so this waits when
    /// the cluster is slow. 429s, 5xx and connection failures are retried with exponential
    /// backoff and jitter until accepted, until `retry.max_attempts`, or until
    /// [`EsWriter::shutdown`].
    ///
    /// Cancel-safe in the sense that matters: dropping the future aborts its requests, and
    /// nothing was acknowledged, so replaying all events is correct (duplicates are 409s).
    ///
    /// # Errors
    /// [`EsError::Serialize`] if an event cannot be serialized (a bug); nothing is then
    /// acknowledged.
    pub async fn write(&self, events: &[LogEvent]) -> Result<BulkOutcome, EsError> {
        let docs = events
            .iter()
            .enumerate()
            .map(|(pos, ev)| Doc::prepare(pos, ev));
        self.write_docs(events.len(), docs).await
    }

    async fn write_docs(
        &self,
        n: usize,
        docs: impl Iterator<Item = Result<Doc, EsError>>,
    ) -> Result<BulkOutcome, EsError> {
        let mut outcome = BulkOutcome {
            statuses: vec![ItemStatus::Unacked; n],
        };
        let mut tasks = JoinSet::new();
        let mut chunk: Vec<Doc> = Vec::new();
        let mut chunk_bytes = 0usize;
        let mut without_id = 0u64;
        for doc in docs {
            let doc = doc?;
            if doc.id.is_empty() {
                without_id += 1;
            }
            let full = chunk_bytes + doc.lines.len() > self.inner.batch_max_bytes
                || chunk.len() >= self.inner.batch_max_docs;
            if full && !chunk.is_empty() {
                self.dispatch(&mut tasks, std::mem::take(&mut chunk), &mut outcome)
                    .await?;
                chunk_bytes = 0;
            }
            chunk_bytes += doc.lines.len();
            chunk.push(doc);
        }
        EsMetrics::add(&self.inner.metrics.docs_without_id, without_id);
        if !chunk.is_empty() {
            self.dispatch(&mut tasks, chunk, &mut outcome).await?;
        }
        while let Some(joined) = tasks.join_next().await {
            apply(&mut outcome, joined)?;
        }
        Ok(outcome)
    }

    /// Waits for a concurrency permit, then sends `docs` as one request on its own task.
    async fn dispatch(
        &self,
        tasks: &mut JoinSet<Vec<(usize, ItemStatus)>>,
        docs: Vec<Doc>,
        outcome: &mut BulkOutcome,
    ) -> Result<(), EsError> {
        let permit = Arc::clone(&self.inner.permits)
            .acquire_owned()
            .await
            .map_err(|_| EsError::Internal("the concurrency semaphore was closed".to_owned()))?;
        while let Some(joined) = tasks.try_join_next() {
            apply(outcome, joined)?;
        }
        let inner = Arc::clone(&self.inner);
        tasks.spawn(async move {
            let _permit = permit;
            inner.send_chunk(docs).await
        });
        Ok(())
    }

    /// Stops retrying: pending and future writes return promptly, with the events not yet
    /// stored reported as [`ItemStatus::Unacked`].
    pub fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
    }

    /// A copy of the counters.
    pub fn metrics(&self) -> EsMetricsSnapshot {
        self.inner.metrics.snapshot()
    }

    /// Appends the counters in the Prometheus text format.
    pub fn render_prometheus(&self, out: &mut String) {
        self.metrics().render_prometheus(out);
    }
}

fn apply(
    outcome: &mut BulkOutcome,
    joined: Result<Vec<(usize, ItemStatus)>, tokio::task::JoinError>,
) -> Result<(), EsError> {
    let results = joined.map_err(|e| EsError::Internal(format!("bulk task failed: {e}")))?;
    for (pos, status) in results {
        debug_assert!(pos < outcome.statuses.len());
        if let Some(slot) = outcome.statuses.get_mut(pos) {
            *slot = status;
        }
    }
    Ok(())
}

impl Inner {
    /// Sends one chunk until every document has a final status.
    async fn send_chunk(&self, docs: Vec<Doc>) -> Vec<(usize, ItemStatus)> {
        let bytes = docs.iter().map(|d| d.lines.len() as u64).sum();
        let _in_flight = InFlight::new(&self.metrics, bytes);
        let mut results = Vec::with_capacity(docs.len());
        let mut queue = VecDeque::from([docs]);
        while let Some(batch) = queue.pop_front() {
            self.send_with_retries(batch, &mut queue, &mut results)
                .await;
        }
        results
    }

    async fn send_with_retries(
        &self,
        mut pending: Vec<Doc>,
        queue: &mut VecDeque<Vec<Doc>>,
        results: &mut Vec<(usize, ItemStatus)>,
    ) {
        let mut shutdown = self.shutdown.subscribe();
        let mut attempt: u32 = 0;
        loop {
            if *shutdown.borrow_and_update() {
                self.give_up(pending, results);
                return;
            }
            let pending_len = pending.len();
            // Refcounted views of the serialized lines: no copy until the transport writes
            // the request body.
            let body: Vec<Bytes> = pending.iter().map(|d| d.lines.clone()).collect();
            let sent = tokio::select! {
                sent = self.post_bulk(body) => sent,
                _ = shutdown.wait_for(|stop| *stop) => {
                    self.give_up(pending, results);
                    return;
                }
            };
            let round = match sent {
                Ok((status, body)) => self.judge(status, &body, pending, results).await,
                Err(reason) => {
                    EsMetrics::add(&self.metrics.bulk_request_failures, 1);
                    tracing::warn!(
                        data_stream = %self.data_stream,
                        docs = pending.len(),
                        attempt,
                        error = %reason,
                        "bulk request failed, will retry"
                    );
                    Round::Retry(pending)
                }
            };
            let sent_count = pending_len;
            pending = match round {
                Round::Done => return,
                Round::Split(a, b) => {
                    queue.push_front(b);
                    queue.push_front(a);
                    return;
                }
                Round::Retry(docs) => docs,
            };
            EsMetrics::add(&self.metrics.docs_retried, pending.len() as u64);
            // Attempts count rounds without progress: a round that settled some documents
            // retries the rest after the shortest delay, so a partial 429 storm does not push
            // the backoff to its cap while the cluster is in fact accepting work.
            attempt = if pending.len() < sent_count {
                1
            } else {
                attempt + 1
            };
            if self.retry.max_attempts > 0 && attempt >= self.retry.max_attempts {
                tracing::error!(
                    data_stream = %self.data_stream,
                    docs = pending.len(),
                    attempts = attempt,
                    "giving up on documents after the retry limit; they stay unacknowledged"
                );
                self.give_up(pending, results);
                return;
            }
            let delay = self.backoff(attempt);
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown.wait_for(|stop| *stop) => {}
            }
        }
    }

    fn give_up(&self, pending: Vec<Doc>, results: &mut Vec<(usize, ItemStatus)>) {
        EsMetrics::add(&self.metrics.docs_unacked, pending.len() as u64);
        results.extend(pending.iter().map(|d| (d.pos, ItemStatus::Unacked)));
    }

    /// POSTs one `_bulk` body; `Err` is a failure to get a response at all.
    /// `lines` each end with a newline, so the client's NDJSON body adds none.
    async fn post_bulk(&self, lines: Vec<Bytes>) -> Result<(StatusCode, Bytes), String> {
        EsMetrics::add(&self.metrics.bulk_requests, 1);
        let bytes: usize = lines.iter().map(Bytes::len).sum();
        EsMetrics::add(&self.metrics.bytes_sent, bytes as u64);
        let resp = self
            .client
            .bulk(BulkParts::Index(&self.data_stream))
            .filter_path(BULK_FILTER_PATH)
            .body(lines)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status_code();
        let body = resp.bytes().await.map_err(|e| e.to_string())?;
        Ok((status, body))
    }

    /// Sorts the documents of one answered request into final statuses and retries.
    async fn judge(
        &self,
        status: StatusCode,
        body: &[u8],
        pending: Vec<Doc>,
        results: &mut Vec<(usize, ItemStatus)>,
    ) -> Round {
        if status.is_success() {
            return self.judge_items(body, pending, results).await;
        }
        if status == StatusCode::PAYLOAD_TOO_LARGE && pending.len() > 1 {
            let mut a = pending;
            let b = a.split_off(a.len() / 2);
            return Round::Split(a, b);
        }
        let error = response_error(status, body);
        if status == StatusCode::PAYLOAD_TOO_LARGE || status == StatusCode::BAD_REQUEST {
            // The request itself is unacceptable: retrying cannot help, and keeping the
            // documents in the dead-letter file beats blocking the stream forever.
            tracing::error!(
                data_stream = %self.data_stream,
                status = status.as_u16(),
                docs = pending.len(),
                error = %error,
                "bulk request refused as a whole, dead-lettering its documents"
            );
            let refused: Vec<(Doc, u16, Value)> = pending
                .into_iter()
                .map(|d| (d, status.as_u16(), error.clone()))
                .collect();
            let retry = self.dead_letter(refused, results).await;
            return if retry.is_empty() {
                Round::Done
            } else {
                Round::Retry(retry)
            };
        }
        // 429, 5xx, and 401/403/404 that an operator can fix: keep the data and retry.
        EsMetrics::add(&self.metrics.bulk_request_failures, 1);
        tracing::warn!(
            data_stream = %self.data_stream,
            status = status.as_u16(),
            docs = pending.len(),
            error = %error,
            "bulk request rejected, will retry"
        );
        Round::Retry(pending)
    }

    async fn judge_items(
        &self,
        body: &[u8],
        pending: Vec<Doc>,
        results: &mut Vec<(usize, ItemStatus)>,
    ) -> Round {
        let items = match parse_items(body) {
            Ok(items) if items.len() == pending.len() => items,
            Ok(items) => {
                tracing::warn!(
                    data_stream = %self.data_stream,
                    sent = pending.len(),
                    answered = items.len(),
                    "bulk response item count differs from the request, will retry"
                );
                EsMetrics::add(&self.metrics.bulk_request_failures, 1);
                return Round::Retry(pending);
            }
            Err(reason) => {
                tracing::warn!(
                    data_stream = %self.data_stream,
                    error = %reason,
                    "unreadable bulk response, will retry"
                );
                EsMetrics::add(&self.metrics.bulk_request_failures, 1);
                return Round::Retry(pending);
            }
        };
        let mut retry = Vec::new();
        let mut refused = Vec::new();
        let (mut created, mut duplicate) = (0u64, 0u64);
        for (doc, (status, error)) in pending.into_iter().zip(items) {
            match status {
                200 | 201 => {
                    created += 1;
                    results.push((doc.pos, ItemStatus::Created));
                }
                409 => {
                    duplicate += 1;
                    results.push((doc.pos, ItemStatus::Duplicate));
                }
                // Overload, server faults, and missing index or privileges an operator can fix.
                403 | 404 | 408 | 429 | 500..=599 => retry.push(doc),
                _ => refused.push((doc, status, error)),
            }
        }
        EsMetrics::add(&self.metrics.docs_created, created);
        EsMetrics::add(&self.metrics.docs_duplicate, duplicate);
        retry.extend(self.dead_letter(refused, results).await);
        if retry.is_empty() {
            Round::Done
        } else {
            Round::Retry(retry)
        }
    }

    /// Appends refused documents to the dead-letter file; returns them for a retry when the
    /// file cannot be written (they must not be acknowledged then).
    async fn dead_letter(
        &self,
        refused: Vec<(Doc, u16, Value)>,
        results: &mut Vec<(usize, ItemStatus)>,
    ) -> Vec<Doc> {
        if refused.is_empty() {
            return Vec::new();
        }
        let letters: Vec<DeadLetter<'_>> = refused
            .iter()
            .map(|(doc, status, error)| DeadLetter {
                id: &doc.id,
                status: *status,
                error,
                source: doc.source(),
            })
            .collect();
        match self.dead_letters.append(&letters).await {
            Ok(()) => {
                EsMetrics::add(&self.metrics.docs_dead_lettered, refused.len() as u64);
                results.extend(
                    refused
                        .iter()
                        .map(|(d, _, _)| (d.pos, ItemStatus::DeadLettered)),
                );
                Vec::new()
            }
            Err(err) => {
                EsMetrics::add(&self.metrics.dead_letter_write_failures, 1);
                tracing::error!(
                    error = %err,
                    code = err.error_code(),
                    docs = refused.len(),
                    "cannot dead-letter refused documents; they stay unacknowledged and are retried"
                );
                refused.into_iter().map(|(d, _, _)| d).collect()
            }
        }
    }

    /// Exponential backoff with "equal jitter": half the capped delay plus a random part of
    /// the other half, so concurrent writers spread out without ever retrying immediately.
    fn backoff(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(MAX_BACKOFF_DOUBLINGS);
        let capped = self
            .retry
            .initial_backoff_ms
            .saturating_mul(1u64 << doublings)
            .min(self.retry.max_backoff_ms);
        let half = capped / 2;
        let state = self
            .jitter
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
        let random = xxhash_rust::xxh3::xxh3_64(&state.to_le_bytes());
        Duration::from_millis(half + random % (capped - half + 1))
    }
}

/// `(status, error)` of each item of a bulk response, in request order.
///
/// Decoded into typed items rather than a `Value` tree: with thousands of items per response
/// the tree was most of the indexer's own CPU in the distributed benchmark.
fn parse_items(body: &[u8]) -> Result<Vec<(u16, Value)>, String> {
    #[derive(serde::Deserialize)]
    struct Response {
        items: Vec<Item>,
    }
    let resp: Response = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    Ok(resp
        .items
        .into_iter()
        .map(|item| (item.status, item.error))
        .collect())
}

/// One item of a bulk response: `{"<action>": {"status": ..., "error": {...}}}`, the action
/// (`create`, `index`, ...) ignored.
struct Item {
    status: u16,
    error: Value,
}

impl<'de> serde::Deserialize<'de> for Item {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Item, D::Error> {
        #[derive(serde::Deserialize)]
        struct Result_ {
            status: u16,
            #[serde(default)]
            error: Value,
        }
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Item;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a bulk item: an object with one action")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Item, A::Error> {
                let Some((serde::de::IgnoredAny, result)) =
                    map.next_entry::<serde::de::IgnoredAny, Result_>()?
                else {
                    return Err(serde::de::Error::custom("a bulk item has no action"));
                };
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Item {
                    status: result.status,
                    error: result.error,
                })
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

/// The `error` object of a failed whole-request response, or its text.
fn response_error(status: StatusCode, body: &[u8]) -> Value {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => v.get("error").cloned().unwrap_or(v),
        Err(_) => Value::String(format!(
            "status {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(1024)])
        )),
    }
}

/// Collects events into batches by size and time, with one token per event (a Kafka offset, a
/// checkpoint position) that is handed back with the outcome so the caller can acknowledge
/// exactly what Elasticsearch accepted.
///
/// ```no_run
/// # async fn demo(writer: index::elasticsearch::EsWriter,
/// #     mut rx: tokio::sync::mpsc::Receiver<(schemas::LogEvent, u64)>)
/// #     -> Result<(), index::elasticsearch::EsError> {
/// use index::elasticsearch::EsBatcher;
/// let mut batcher = EsBatcher::new(writer);
/// loop {
///     let deadline = batcher.deadline();
///     tokio::select! {
///         msg = rx.recv() => match msg {
///             Some((ev, offset)) => if batcher.push(&ev, offset)? {
///                 let (outcome, offsets) = batcher.flush().await?;
///                 // acknowledge offsets[..outcome.acked_prefix()]
///             },
///             None => break,
///         },
///         _ = async { tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)).await },
///             if deadline.is_some() => {
///             let (outcome, offsets) = batcher.flush().await?;
///         }
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct EsBatcher<T> {
    writer: EsWriter,
    docs: Vec<Doc>,
    tokens: Vec<T>,
    bytes: usize,
    opened_at: Option<tokio::time::Instant>,
}

impl<T> EsBatcher<T> {
    pub fn new(writer: EsWriter) -> EsBatcher<T> {
        EsBatcher {
            writer,
            docs: Vec::new(),
            tokens: Vec::new(),
            bytes: 0,
            opened_at: None,
        }
    }

    /// Serializes and adds one event; returns true when the batch reached `batch_max_bytes`
    /// or `batch_max_docs` and should be flushed now.
    ///
    /// # Errors
    /// [`EsError::Serialize`] if the event cannot be serialized (a bug).
    pub fn push(&mut self, event: &LogEvent, token: T) -> Result<bool, EsError> {
        let doc = Doc::prepare(self.docs.len(), event)?;
        Ok(self.add(doc, token))
    }

    /// Adds one event already serialized as compact JSON (`source`, e.g. an events-topic
    /// message) with its `event.id`, without decoding it: Elasticsearch validates it against
    /// the mapping, and a document it rejects is dead-lettered as from [`EsBatcher::push`].
    /// Returns true when the batch should be flushed now.
    ///
    /// # Errors
    /// [`EsError::Serialize`] when `source` contains a newline (it would break the `_bulk`
    /// framing); decode and [`EsBatcher::push`] such an event instead.
    pub fn push_json(&mut self, id: &str, source: &[u8], token: T) -> Result<bool, EsError> {
        let doc = Doc::prepare_json(self.docs.len(), id, source)?;
        Ok(self.add(doc, token))
    }

    fn add(&mut self, doc: Doc, token: T) -> bool {
        self.bytes += doc.lines.len();
        self.docs.push(doc);
        self.tokens.push(token);
        if self.opened_at.is_none() {
            self.opened_at = Some(tokio::time::Instant::now());
        }
        self.bytes >= self.writer.inner.batch_max_bytes
            || self.docs.len() >= self.writer.inner.batch_max_docs
    }

    /// When the open batch must be flushed (`batch_interval_ms` after its first event), or
    /// `None` when it is empty.
    pub fn deadline(&self) -> Option<tokio::time::Instant> {
        self.opened_at.map(|t| t + self.writer.inner.batch_interval)
    }

    pub fn len(&self) -> usize {
        self.docs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// Writes the batch and returns its outcome with the tokens in the same order
    /// (`outcome.statuses[i]` belongs to `tokens[i]`).
    ///
    /// # Errors
    /// As [`EsWriter::write`].
    pub async fn flush(&mut self) -> Result<(BulkOutcome, Vec<T>), EsError> {
        let docs = std::mem::take(&mut self.docs);
        let tokens = std::mem::take(&mut self.tokens);
        self.bytes = 0;
        self.opened_at = None;
        let outcome = self
            .writer
            .write_docs(docs.len(), docs.into_iter().map(Ok))
            .await?;
        Ok((outcome, tokens))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn doc_lines_are_a_create_action_and_the_source() -> TestResult {
        let mut ev = LogEvent::new(chrono::Utc::now(), "hello \"world\"\nsecond line");
        ev.event.id = schemas::event_id(7, 42);
        let doc = Doc::prepare(3, &ev)?;
        let text = std::str::from_utf8(&doc.lines)?;
        let mut lines = text.split_terminator('\n');
        let action: Value = serde_json::from_str(lines.next().ok_or("no action line")?)?;
        assert_eq!(action["create"]["_id"], ev.event.id.as_str());
        let source: LogEvent = serde_json::from_slice(doc.source())?;
        assert_eq!(source, ev);
        assert_eq!(
            lines.count(),
            1,
            "a newline inside the message must stay escaped"
        );
        Ok(())
    }

    #[test]
    fn serialized_source_gives_the_same_lines_as_the_event() -> TestResult {
        let mut ev = LogEvent::new(chrono::Utc::now(), "multi\nline \"quoted\"");
        ev.event.id = schemas::event_id(9, 1);
        let from_event = Doc::prepare(0, &ev)?;
        let json = serde_json::to_vec(&ev)?;
        let from_json = Doc::prepare_json(0, &ev.event.id, &json)?;
        assert_eq!(from_json.lines, from_event.lines);
        assert_eq!(from_json.source(), json.as_slice());
        assert_eq!(from_json.id, ev.event.id);
        // Pretty-printed JSON would split the `_bulk` framing: refused, not sent.
        let pretty = serde_json::to_vec_pretty(&ev)?;
        assert!(matches!(
            Doc::prepare_json(0, &ev.event.id, &pretty),
            Err(EsError::Serialize { .. })
        ));
        Ok(())
    }

    #[test]
    fn event_without_id_gets_no_id_in_the_action() -> TestResult {
        let ev = LogEvent::new(chrono::Utc::now(), "x");
        let doc = Doc::prepare(0, &ev)?;
        assert!(doc.lines.starts_with(b"{\"create\":{}}\n"));
        Ok(())
    }

    #[test]
    fn items_are_parsed_in_order_with_errors() -> TestResult {
        let body = br#"{"errors":true,"items":[
            {"create":{"status":201}},
            {"create":{"status":409,"error":{"type":"version_conflict_engine_exception"}}},
            {"create":{"status":400,"error":{"type":"mapper_parsing_exception","reason":"bad ip"}}}
        ]}"#;
        let items = parse_items(body)?;
        assert_eq!(items.len(), 3);
        assert_eq!(items[0], (201, Value::Null));
        assert_eq!(items[1].0, 409);
        assert_eq!(items[2].1["type"], "mapper_parsing_exception");
        assert!(parse_items(b"{\"took\":1}").is_err());
        assert!(parse_items(b"not json").is_err());
        assert!(parse_items(br#"{"items":[{}]}"#).is_err());
        assert!(parse_items(br#"{"items":[{"create":{"error":{}}}]}"#).is_err());
        assert!(parse_items(br#"{"items":[{"create":{"status":99999}}]}"#).is_err());
        assert!(parse_items(br#"{"items":[7]}"#).is_err());
        Ok(())
    }

    #[test]
    fn outcome_prefix_stops_at_the_first_unacked() {
        let o = BulkOutcome {
            statuses: vec![
                ItemStatus::Created,
                ItemStatus::Duplicate,
                ItemStatus::DeadLettered,
                ItemStatus::Unacked,
                ItemStatus::Created,
            ],
        };
        assert_eq!(o.acked_prefix(), 3);
        assert!(!o.all_acked());
        assert_eq!(o.acked_indices().collect::<Vec<_>>(), vec![0, 1, 2, 4]);
        assert_eq!(o.count(ItemStatus::Created), 2);
    }

    #[test]
    fn backoff_grows_stays_capped_and_jitters() -> TestResult {
        let dir = tempfile::tempdir()?;
        let cfg = EsConfig {
            dead_letter_dir: dir.path().to_path_buf(),
            retry: EsRetry {
                initial_backoff_ms: 100,
                max_backoff_ms: 1_000,
                max_attempts: 0,
            },
            ..EsConfig::default()
        };
        let writer = EsWriter::try_new(&cfg)?;
        let inner = &writer.inner;
        let first: Vec<Duration> = (0..50).map(|_| inner.backoff(1)).collect();
        assert!(
            first
                .iter()
                .all(|d| *d >= Duration::from_millis(50) && *d <= Duration::from_millis(100))
        );
        assert!(first.iter().any(|d| *d != first[0]), "no jitter");
        for attempt in [5, 10, 40, u32::MAX] {
            let d = inner.backoff(attempt);
            assert!(
                d >= Duration::from_millis(500) && d <= Duration::from_millis(1_000),
                "{d:?}"
            );
        }
        let third = inner.backoff(3);
        assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
        Ok(())
    }
}
