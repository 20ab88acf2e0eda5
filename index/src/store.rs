//! [`Store`]: stages events into day partitions, commits them durably, skips replays and
//! enforces retention.
//!
//! # Exactly-once over replays
//!
//! After a crash the ingest layer replays records from its last checkpoint, which may be behind
//! the last index commit. Each day partition's commit payload records, per *lane* — a source
//! `file_id` and stream (stdout/stderr) — the highest `sluice.source.offset` committed to that
//! day. Records of one lane are added in offset order (within a file they are not: a multi-line
//! stderr traceback is emitted after the stdout lines written while it was still open, yet
//! starts before them), and a day partition commits everything staged in it at once, so the
//! records of a lane committed to a day are exactly those at or below that mark: [`Store::add`] skips them
//! without a per-document lookup. This holds per day, so it also holds when a commit over
//! several days failed part-way (some days durable, others rolled back). Records without a file
//! (`file_id` 0) fall back to delete-then-add on `event.id`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use schemas::LogEvent;
use serde::{Deserialize, Serialize};
use tantivy::indexer::UserOperation;
use tantivy::{Index, IndexWriter, Term};

use crate::IndexError;
use crate::config::IndexConfig;
use crate::in_flight::{InFlight, StagedDoc};
use crate::partition;
use crate::schema::{self, LogSchema};
use crate::search::Searcher;

/// Version of the commit payload layout.
const PAYLOAD_VERSION: u32 = 1;
/// Operations handed to tantivy's indexing threads at once. Each hand-over is a channel send
/// that wakes a sleeping indexing thread (a futex syscall); one per document was ~6% of
/// indexing CPU. 256 documents (~0.5 MB) keep both threads fed and the wake-ups negligible,
/// while a commit waits for at most one partial batch per day.
const SEND_BATCH_OPS: usize = 256;

/// What a day partition's commit payload records.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Payload {
    v: u32,
    /// Lane id ([`lane`]: `file_id` and stream; decimal string, as JSON keys are strings) →
    /// highest committed offset.
    high_water: BTreeMap<String, u64>,
}

/// The replay-tracking lane of a record: its file and stream. Offsets only increase within a
/// lane; records with no stream use the file id itself.
fn lane(file_id: u64, stream: Option<schemas::Stream>) -> u64 {
    match stream {
        None => file_id,
        Some(stream) => {
            let mut buf = [0u8; 9];
            buf[..8].copy_from_slice(&file_id.to_le_bytes());
            buf[8] = match stream {
                schemas::Stream::Stdout => 1,
                schemas::Stream::Stderr => 2,
            };
            // Never 0: 0 means "no file" to `add`.
            xxhash_rust::xxh3::xxh3_64(&buf).max(1)
        }
    }
}

/// Result of a successful [`Store::commit`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CommitStats {
    /// Events made durable by this commit.
    pub docs: u64,
    /// Day partitions committed (`YYYY-MM-DD`).
    pub days: Vec<String>,
    /// Wall time of the commit.
    pub duration_ms: u64,
}

/// Running counters of a [`Store`], for `/metrics` and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StoreStats {
    /// Events staged (accepted by [`Store::add`] with `Ok(true)`).
    pub added: u64,
    /// Events skipped as replays of committed records.
    pub replays_skipped: u64,
    /// Events not indexed because their day is already past retention.
    pub expired_skipped: u64,
    /// Events rejected as invalid (timestamp out of range).
    pub invalid: u64,
    /// Events made durable by commits.
    pub committed: u64,
    /// Successful commits (including early commits of evicted day writers).
    pub commits: u64,
    /// Failed commits.
    pub commit_failures: u64,
    /// Day partitions dropped by retention.
    pub days_dropped: u64,
}

/// An open writer on one day partition.
struct DayWriter {
    writer: IndexWriter<StagedDoc>,
    /// Documents handed over and not yet indexed, shared by all writers of the store.
    in_flight: InFlight,
    /// Operations staged but not yet handed to the indexing threads (at most
    /// [`SEND_BATCH_OPS`]); [`DayWriter::send`] hands them over in order.
    batch: Vec<UserOperation<StagedDoc>>,
    /// High-water marks durable in this partition's last commit.
    committed_hw: HashMap<u64, u64>,
    /// High-water marks of records staged since.
    pending_hw: HashMap<u64, u64>,
    /// Events staged since the last commit.
    pending_docs: u64,
    /// [`Store::tick`] value of the last add, for least-recently-used eviction.
    last_used: u64,
}

impl DayWriter {
    /// Hands the staged operations to the indexing threads, in order, as one batch, once the
    /// queue has room for them.
    fn send(&mut self) -> Result<(), tantivy::TantivyError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        // After a stall the hand-over goes ahead: dead indexing threads then surface their error.
        let _ = self.in_flight.wait_for_room();
        self.writer.run(self.batch.drain(..))?;
        Ok(())
    }

    /// Stages a document.
    fn add(&mut self, doc: schema::EventDoc) -> Result<(), tantivy::TantivyError> {
        let doc = StagedDoc::new(doc, self.in_flight.ticket());
        self.push(UserOperation::Add(doc))
    }

    /// Stages `op`, handing the batch over once it is full.
    fn push(&mut self, op: UserOperation<StagedDoc>) -> Result<(), tantivy::TantivyError> {
        self.batch.push(op);
        if self.batch.len() >= SEND_BATCH_OPS {
            self.send()?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for DayWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DayWriter")
            .field("files", &self.committed_hw.len())
            .field("pending_docs", &self.pending_docs)
            .finish_non_exhaustive()
    }
}

/// The embedded tantivy store: one index per UTC day.
///
/// Single writer: [`Store::open`] takes tantivy's writer lock on each partition it writes.
/// Readers ([`Searcher`]) may run in this or other processes.
#[derive(Debug)]
pub struct Store {
    config: IndexConfig,
    root: PathBuf,
    schema: LogSchema,
    writers: BTreeMap<NaiveDate, DayWriter>,
    /// Events staged in all open writers since their last commit.
    staged_docs: u64,
    /// When the oldest uncommitted event was staged.
    first_staged_at: Option<Instant>,
    tick: u64,
    searcher: Searcher,
    stats: StoreStats,
    /// Reused buffer for each event's source JSON.
    json_buf: Vec<u8>,
    /// Documents handed to the indexing threads and not yet indexed (all writers).
    in_flight: InFlight,
}

impl Store {
    /// Opens (creating when needed) the store under `config.data_dir`.
    ///
    /// # Errors
    /// [`IndexError::Config`] for an invalid config, [`IndexError::Io`] when the data dir
    /// cannot be created or read.
    pub fn open(config: &IndexConfig) -> Result<Store, IndexError> {
        config.validate()?;
        let root = partition::root(&config.data_dir);
        std::fs::create_dir_all(&root).map_err(|e| IndexError::io(&root, e))?;
        partition::clean_leftovers(&root)?;
        let searcher = Searcher::open(&config.data_dir, config.retention_days)?;
        Ok(Store {
            config: config.clone(),
            root,
            schema: LogSchema::new(),
            writers: BTreeMap::new(),
            staged_docs: 0,
            first_staged_at: None,
            tick: 0,
            searcher,
            stats: StoreStats::default(),
            json_buf: Vec::with_capacity(4096),
            in_flight: InFlight::default(),
        })
    }

    /// Stages one event in the partition of its `@timestamp` day.
    ///
    /// Returns `Ok(true)` when staged, `Ok(false)` when skipped: a replay of a committed record,
    /// or an event whose day is already past retention. Either way the caller may acknowledge it
    /// after the next successful [`Store::commit`].
    ///
    /// Staging an event for a day whose writer is not open may commit and close the least
    /// recently used writer first (see [`IndexConfig::max_open_writers`]).
    ///
    /// # Errors
    /// [`IndexError::InvalidEvent`] for a timestamp tantivy cannot store (before 1677 or after
    /// 2262); [`IndexError::Commit`] when closing another day's writer failed, with the same
    /// meaning as from [`Store::commit`]; [`IndexError::Tantivy`] or [`IndexError::Io`] when the
    /// partition cannot be opened or written.
    pub fn add(&mut self, event: &LogEvent) -> Result<bool, IndexError> {
        if event.timestamp.timestamp_nanos_opt().is_none() {
            self.stats.invalid += 1;
            return Err(IndexError::InvalidEvent {
                event_id: event.event.id.clone(),
                reason: format!("@timestamp {} is outside 1677..2262", event.timestamp),
            });
        }
        let day = partition::day_of(event.timestamp);
        if day < partition::oldest_kept_day(Utc::now(), self.config.retention_days) {
            self.stats.expired_skipped += 1;
            return Ok(false);
        }
        self.tick += 1;
        let tick = self.tick;
        let file_id = event.sluice.source.file_id;
        let lane = if file_id == 0 {
            0
        } else {
            lane(file_id, event.stream)
        };
        let offset = event.sluice.source.offset;
        let event_id_field = self.schema.event_id;
        let day_writer = self.writer_for(day)?;
        day_writer.last_used = tick;
        if lane != 0 {
            let committed = day_writer.committed_hw.get(&lane).copied();
            let pending = day_writer.pending_hw.get(&lane).copied();
            if committed.max(pending).is_some_and(|hw| offset <= hw) {
                self.stats.replays_skipped += 1;
                return Ok(false);
            }
        } else if !event.event.id.is_empty() {
            day_writer
                .push(UserOperation::Delete(Term::from_field_text(
                    event_id_field,
                    &event.event.id,
                )))
                .map_err(|e| IndexError::tantivy(partition::day_name(day), e))?;
        }

        self.json_buf.clear();
        schemas::write_event_json(event, &mut self.json_buf).map_err(|e| {
            IndexError::InvalidEvent {
                event_id: event.event.id.clone(),
                reason: format!("cannot serialize: {e}"),
            }
        })?;
        let tiebreak = schema::tiebreak(event, &self.json_buf);
        let doc = self.schema.document(event, &self.json_buf, tiebreak);
        // `writer_for` just inserted or found this day; look it up again to appease the borrow
        // of `self.schema` and `self.json_buf` above.
        let day_writer = self
            .writers
            .get_mut(&day)
            .ok_or_else(|| IndexError::Internal("day writer vanished".into()))?;
        day_writer
            .add(doc)
            .map_err(|e| IndexError::tantivy(partition::day_name(day), e))?;
        if lane != 0 {
            day_writer.pending_hw.insert(lane, offset);
        }
        day_writer.pending_docs += 1;
        self.staged_docs += 1;
        self.first_staged_at.get_or_insert_with(Instant::now);
        self.stats.added += 1;
        Ok(true)
    }

    /// True when the commit policy says it is time: `commit_max_docs` events are staged, or the
    /// oldest staged event waited `commit_interval_ms`.
    pub fn should_commit(&self) -> bool {
        if self.staged_docs == 0 {
            return false;
        }
        let max_docs = u64::try_from(self.config.commit_max_docs).unwrap_or(u64::MAX);
        self.staged_docs >= max_docs
            || self.first_staged_at.is_some_and(|t| {
                t.elapsed() >= Duration::from_millis(self.config.commit_interval_ms)
            })
    }

    /// Events staged and not yet committed.
    pub fn staged_docs(&self) -> u64 {
        self.staged_docs
    }

    /// Makes every staged event durable and searchable. Only after `Ok` may the caller
    /// acknowledge the records upstream.
    ///
    /// # Errors
    /// [`IndexError::Commit`] when a day partition failed to commit: the days it lists as
    /// committed are durable, every other staged event is discarded, and the caller must replay
    /// from its last acknowledged position (replays of the durable days are skipped).
    pub fn commit(&mut self) -> Result<CommitStats, IndexError> {
        let started = Instant::now();
        let days: Vec<NaiveDate> = self
            .writers
            .iter()
            .filter(|(_, w)| w.pending_docs > 0)
            .map(|(day, _)| *day)
            .collect();
        let mut stats = CommitStats::default();
        for (i, day) in days.iter().enumerate() {
            match self.commit_day(*day) {
                Ok(docs) => {
                    stats.docs += docs;
                    stats.days.push(partition::day_name(*day));
                }
                Err(source) => {
                    for rest in &days[i..] {
                        self.discard_writer(*rest);
                    }
                    self.stats.commit_failures += 1;
                    self.searcher.reload_days(&days[..i]);
                    return Err(IndexError::Commit {
                        day: partition::day_name(*day),
                        committed: stats.days,
                        source,
                    });
                }
            }
        }
        debug_assert_eq!(self.staged_docs, 0);
        self.staged_docs = 0;
        self.first_staged_at = None;
        self.searcher.reload_days(&days);
        stats.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        Ok(stats)
    }

    /// Drops the day partitions older than `now - retention_days` and returns their names.
    /// Staged events of those days are discarded (they are expired).
    ///
    /// # Errors
    /// [`IndexError::Io`] when a partition cannot be removed; earlier ones are gone.
    pub fn enforce_retention(&mut self, now: DateTime<Utc>) -> Result<Vec<String>, IndexError> {
        let oldest_kept = partition::oldest_kept_day(now, self.config.retention_days);
        let mut dropped = Vec::new();
        for day in partition::list_days(&self.root)? {
            if day >= oldest_kept {
                break;
            }
            self.discard_writer(day);
            partition::remove(&self.root, day)?;
            self.searcher.forget_day(day);
            self.stats.days_dropped += 1;
            dropped.push(partition::day_name(day));
        }
        Ok(dropped)
    }

    /// A searcher over this store's committed data; it sees each commit as soon as it returns.
    pub fn searcher(&self) -> Searcher {
        self.searcher.clone()
    }

    /// The running counters.
    pub fn stats(&self) -> &StoreStats {
        &self.stats
    }

    /// The config the store was opened with.
    pub fn config(&self) -> &IndexConfig {
        &self.config
    }

    /// The open writer for `day`, opening it (and closing the least recently used one when at
    /// the limit) if needed.
    fn writer_for(&mut self, day: NaiveDate) -> Result<&mut DayWriter, IndexError> {
        if !self.writers.contains_key(&day) {
            if self.writers.len() >= self.config.max_open_writers {
                self.evict_lru()?;
            }
            let writer = self.open_writer(day)?;
            self.writers.insert(day, writer);
        }
        self.writers
            .get_mut(&day)
            .ok_or_else(|| IndexError::Internal("day writer missing after insert".into()))
    }

    fn evict_lru(&mut self) -> Result<(), IndexError> {
        let Some(lru) = self
            .writers
            .iter()
            .min_by_key(|(_, w)| w.last_used)
            .map(|(day, _)| *day)
        else {
            return Ok(());
        };
        match self.commit_day(lru) {
            Ok(_) => {
                self.searcher.reload_days(&[lru]);
                self.writers.remove(&lru);
                Ok(())
            }
            Err(source) => {
                let days: Vec<NaiveDate> = self.writers.keys().copied().collect();
                for day in days {
                    self.discard_writer(day);
                }
                self.stats.commit_failures += 1;
                Err(IndexError::Commit {
                    day: partition::day_name(lru),
                    committed: Vec::new(),
                    source,
                })
            }
        }
    }

    fn open_writer(&self, day: NaiveDate) -> Result<DayWriter, IndexError> {
        let name = partition::day_name(day);
        if !partition::is_nameable(day) {
            return Err(IndexError::InvalidEvent {
                event_id: String::new(),
                reason: format!("day {name} has no partition name"),
            });
        }
        let index: Index = partition::open_or_create(&self.root, day, &self.schema)?;
        let committed_hw = read_payload(&index, &name)?;
        let writer = index
            .writer_with_num_threads(self.config.writer_threads, self.config.writer_heap_bytes)
            .map_err(|e| IndexError::tantivy(&name, e))?;
        Ok(DayWriter {
            writer,
            in_flight: self.in_flight.clone(),
            batch: Vec::with_capacity(SEND_BATCH_OPS),
            committed_hw,
            pending_hw: HashMap::new(),
            pending_docs: 0,
            last_used: 0,
        })
    }

    /// Commits one day's writer with its new high-water marks. On error the writer is left as
    /// is; the caller discards it.
    fn commit_day(&mut self, day: NaiveDate) -> Result<u64, tantivy::TantivyError> {
        let Some(w) = self.writers.get_mut(&day) else {
            return Ok(0);
        };
        if w.pending_docs == 0 {
            return Ok(0);
        }
        let mut merged = w.committed_hw.clone();
        for (file, offset) in &w.pending_hw {
            let hw = merged.entry(*file).or_insert(*offset);
            *hw = (*hw).max(*offset);
        }
        let payload = Payload {
            v: PAYLOAD_VERSION,
            high_water: merged.iter().map(|(f, o)| (f.to_string(), *o)).collect(),
        };
        let payload = serde_json::to_string(&payload)
            .map_err(|e| tantivy::TantivyError::InternalError(format!("payload: {e}")))?;
        w.send()?;
        let mut prepared = w.writer.prepare_commit()?;
        prepared.set_payload(&payload);
        prepared.commit()?;
        let docs = w.pending_docs;
        w.committed_hw = merged;
        w.pending_hw.clear();
        w.pending_docs = 0;
        self.staged_docs = self.staged_docs.saturating_sub(docs);
        self.stats.committed += docs;
        self.stats.commits += 1;
        Ok(docs)
    }

    /// Drops `day`'s writer, discarding whatever it staged since its last commit.
    fn discard_writer(&mut self, day: NaiveDate) {
        if let Some(w) = self.writers.remove(&day) {
            self.staged_docs = self.staged_docs.saturating_sub(w.pending_docs);
            drop(w);
        }
        if self.staged_docs == 0 {
            self.first_staged_at = None;
        }
    }
}

/// The high-water marks in a partition's last commit payload.
fn read_payload(index: &Index, day: &str) -> Result<HashMap<u64, u64>, IndexError> {
    let metas = index
        .load_metas()
        .map_err(|e| IndexError::tantivy(day, e))?;
    let Some(text) = metas.payload else {
        return Ok(HashMap::new());
    };
    let corrupt = |reason: String| IndexError::CorruptPayload {
        day: day.to_string(),
        reason,
    };
    let payload: Payload = serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
    if payload.v != PAYLOAD_VERSION {
        return Err(corrupt(format!("unknown payload version {}", payload.v)));
    }
    let mut hw = HashMap::with_capacity(payload.high_water.len());
    for (file, offset) in payload.high_water {
        let file: u64 = file
            .parse()
            .map_err(|_| corrupt(format!("file id {file:?} is not a number")))?;
        hw.insert(file, offset);
    }
    Ok(hw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>() {}
    fn assert_send_sync_clone<T: Send + Sync + Clone>() {}

    #[test]
    fn store_moves_to_a_thread_and_searcher_is_shared() {
        assert_send::<Store>();
        assert_send_sync_clone::<Searcher>();
    }

    #[test]
    fn corrupt_payload_is_reported() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let schema = LogSchema::new();
        let day = NaiveDate::from_ymd_opt(2026, 12, 1).ok_or("date")?;
        let root = partition::root(dir.path());
        let index = partition::open_or_create(&root, day, &schema)?;
        let mut writer: IndexWriter<tantivy::TantivyDocument> =
            index.writer_with_num_threads(1, 15_000_000)?;
        let mut prepared = writer.prepare_commit()?;
        prepared.set_payload("{\"v\":1,\"high_water\":{\"not-a-number\":3}}");
        prepared.commit()?;
        match read_payload(&index, "2026-12-01") {
            Err(IndexError::CorruptPayload { .. }) => Ok(()),
            other => Err(format!("expected CorruptPayload, got {other:?}").into()),
        }
    }
}

#[cfg(test)]
mod settings_tests {
    use super::*;
    use crate::SearchRequest;

    fn event(offset: u64, message: &str) -> LogEvent {
        let mut ev = LogEvent::new(Utc::now(), message);
        ev.sluice.source.file_id = 42;
        ev.sluice.source.offset = offset;
        ev.event.id = schemas::event_id(42, offset);
        ev
    }

    fn count(store: &Store, query: &str) -> Result<u64, IndexError> {
        store.searcher().count(&SearchRequest {
            query: query.into(),
            ..SearchRequest::default()
        })
    }

    /// A day partition created and written before the doc store compressed in the indexing
    /// threads (tantivy's default settings) still opens, is searched and takes new events,
    /// which are then written with the current settings.
    #[test]
    fn a_partition_made_with_former_settings_opens_is_searched_and_takes_new_events()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let schema = LogSchema::new();
        let old = event(10, "written by the former settings");
        let day = partition::day_of(old.timestamp);
        let root = partition::root(dir.path());
        let path = root.join(partition::day_name(day));
        std::fs::create_dir_all(&path)?;
        let index = Index::create_in_dir(&path, schema.schema.clone())?;
        schema::register_tokenizers(&index);
        assert!(
            index.settings().docstore_compress_dedicated_thread,
            "former default"
        );
        let mut writer: IndexWriter<schema::EventDoc> =
            index.writer_with_num_threads(1, 15_000_000)?;
        let json = serde_json::to_vec(&old)?;
        writer.add_document(schema.document(&old, &json, schema::tiebreak(&old, &json)))?;
        writer.commit()?;
        drop(writer);
        drop(index);

        let config = IndexConfig::with_data_dir(dir.path());
        let mut store = Store::open(&config)?;
        assert_eq!(count(&store, "message:former")?, 1);
        assert!(store.add(&event(20, "written by the current settings"))?);
        store.commit()?;
        assert_eq!(count(&store, "message:written")?, 2);
        let page = store.searcher().search(&SearchRequest {
            query: "message:former".into(),
            ..SearchRequest::default()
        })?;
        assert_eq!(
            page.events.first().map(|e| e.message.as_str()),
            Some(old.message.as_str())
        );
        drop(store);

        let reopened = partition::open(&root, day)?;
        assert!(!reopened.settings().docstore_compress_dedicated_thread);
        let mut store = Store::open(&config)?;
        assert!(store.add(&event(30, "written after a restart"))?);
        store.commit()?;
        assert_eq!(count(&store, "message:written")?, 3);
        Ok(())
    }
}

#[cfg(test)]
mod lane_tests {
    use super::*;

    fn event(offset: u64, stream: schemas::Stream) -> LogEvent {
        let mut ev = LogEvent::new(Utc::now(), format!("at {offset}"));
        ev.sluice.source.file_id = 42;
        ev.sluice.source.offset = offset;
        ev.stream = Some(stream);
        ev.event.id = schemas::event_id(42, offset);
        ev
    }

    /// Regression: a stderr traceback that started before stdout lines emitted ahead of it
    /// (multi-line joining holds it back) was skipped as a replay.
    #[test]
    fn stderr_record_behind_stdout_records_of_the_same_file_is_not_a_replay()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let mut store = Store::open(&IndexConfig::with_data_dir(dir.path()))?;
        assert!(store.add(&event(100, schemas::Stream::Stdout))?);
        assert!(store.add(&event(50, schemas::Stream::Stderr))?);
        store.commit()?;
        drop(store);
        let mut store = Store::open(&IndexConfig::with_data_dir(dir.path()))?;
        assert!(!store.add(&event(50, schemas::Stream::Stderr))?, "replay");
        assert!(!store.add(&event(100, schemas::Stream::Stdout))?, "replay");
        assert!(store.add(&event(120, schemas::Stream::Stderr))?);
        Ok(())
    }
}
