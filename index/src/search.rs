//! [`Searcher`]: queries, counts and aggregations over the committed day partitions.
//!
//! Results are ordered newest first by `(@timestamp, _tiebreak)`. Day partitions hold disjoint
//! time ranges, so a search walks them newest first and stops as soon as the page is full.
//! The `search_after` cursor is the sort key of the last hit of the previous page, so pages stay
//! stable while new events arrive.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use chrono::{DateTime, NaiveDate, Utc};
use schemas::LogEvent;
use schemas::fields;
use serde::{Deserialize, Serialize};
use tantivy::collector::{Count, TopDocs};
use tantivy::columnar::ColumnValues;
use tantivy::query::{
    AllQuery, BooleanQuery, Occur, Query, QueryParser, QueryParserError, RangeQuery,
};
use tantivy::schema::Value;
use tantivy::tokenizer::TokenizerManager;
use tantivy::{DocId, IndexReader, ReloadPolicy, SegmentReader, TantivyDocument, Term};

use crate::IndexError;
use crate::partition;
use crate::schema::{
    LOG_TOKENIZER, LogSchema, SOURCE_FIELD, SOURCE_ONLY_FIELDS, TIEBREAK_FIELD, log_tokenizer,
};

/// Default page size.
pub const DEFAULT_LIMIT: usize = 100;
/// Largest page: each hit loads and decodes a stored document, so a bigger page is better served
/// by paging with `search_after`.
pub const MAX_LIMIT: usize = 10_000;
/// Full-text fields searched by a query term without a field name.
const DEFAULT_FIELDS: &[&str] = &[fields::MESSAGE, fields::ERROR_MESSAGE];

/// A search: tantivy query syntax over the dotted ECS field names, a time range and a page.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SearchRequest {
    /// tantivy query syntax, e.g. `log.level:error AND service.name:api`,
    /// `http.response.status_code:[500 TO 599]`, `"connection refused"`. Bare terms search
    /// `message` and `error.message`; terms are ANDed unless `OR` is written. Empty or `*`
    /// matches everything.
    pub query: String,
    /// Inclusive lower bound on `@timestamp`.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive upper bound on `@timestamp`.
    pub to: Option<DateTime<Utc>>,
    /// Page size, 1..=10000; 0 means the default (100).
    pub limit: usize,
    /// The `next_cursor` of the previous page.
    pub search_after: Option<String>,
}

/// One page of events, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchResponse {
    /// The events as indexed (their stored source).
    pub events: Vec<LogEvent>,
    /// Pass as `search_after` to get the next page; absent when this page is the last.
    pub next_cursor: Option<String>,
}

/// The position of an event in search order: `(@timestamp in ns, tiebreak)`.
type SortKey = (i64, u64);

fn encode_cursor(key: SortKey) -> String {
    format!("{}-{:016x}", key.0, key.1)
}

fn decode_cursor(cursor: &str) -> Result<SortKey, IndexError> {
    let bad = || IndexError::BadRequest(format!("invalid search_after cursor {cursor:?}"));
    let (ts, tb) = cursor.rsplit_once('-').ok_or_else(bad)?;
    let ts: i64 = ts.parse().map_err(|_| bad())?;
    let tb = u64::from_str_radix(tb, 16).map_err(|_| bad())?;
    Ok((ts, tb))
}

/// A cached reader of one day partition and the `meta.json` state it last loaded.
struct DayReader {
    reader: IndexReader,
    stamp: Option<(SystemTime, u64)>,
}

struct Inner {
    data_dir: PathBuf,
    root: PathBuf,
    retention_days: u32,
    schema: LogSchema,
    parser: QueryParser,
    readers: Mutex<BTreeMap<NaiveDate, DayReader>>,
}

/// Read access to a store's committed data: cheap to clone, shareable across threads.
///
/// Sees new partitions and commits of a writer in another process on the next call (it checks
/// each partition's `meta.json`), and those of an in-process [`crate::Store`] as soon as its
/// commit returns. Partitions past retention are never searched, dropped or not.
#[derive(Clone)]
pub struct Searcher {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Searcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Searcher")
            .field("data_dir", &self.inner.data_dir)
            .field("retention_days", &self.inner.retention_days)
            .finish_non_exhaustive()
    }
}

fn meta_stamp(root: &Path, day: NaiveDate) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(root.join(partition::day_name(day)).join("meta.json")).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

impl Searcher {
    /// Opens the store under `data_dir` read-only; works while a writer runs in another process.
    ///
    /// # Errors
    /// [`IndexError::Io`] when `data_dir` does not exist, [`IndexError::Config`] when
    /// `retention_days` is 0.
    pub fn open(data_dir: &Path, retention_days: u32) -> Result<Searcher, IndexError> {
        std::fs::metadata(data_dir).map_err(|e| IndexError::io(data_dir, e))?;
        if retention_days == 0 {
            return Err(IndexError::Config {
                field: "retention_days",
                reason: "must be at least 1".into(),
            });
        }
        let schema = LogSchema::new();
        let tokenizers = TokenizerManager::default();
        tokenizers.register(LOG_TOKENIZER, log_tokenizer());
        let default_fields = DEFAULT_FIELDS
            .iter()
            .filter_map(|name| schema.schema.get_field(name).ok())
            .collect();
        let mut parser = QueryParser::new(schema.schema.clone(), default_fields, tokenizers);
        parser.set_conjunction_by_default();
        Ok(Searcher {
            inner: Arc::new(Inner {
                data_dir: data_dir.to_path_buf(),
                root: partition::root(data_dir),
                retention_days,
                schema,
                parser,
                readers: Mutex::new(BTreeMap::new()),
            }),
        })
    }

    /// One page of events matching `req`, newest first.
    ///
    /// # Errors
    /// [`IndexError::BadRequest`] for a bad query, limit or cursor; [`IndexError::Tantivy`] or
    /// [`IndexError::Io`] when a partition cannot be read.
    pub fn search(&self, req: &SearchRequest) -> Result<SearchResponse, IndexError> {
        let limit = match req.limit {
            0 => DEFAULT_LIMIT,
            n if n > MAX_LIMIT => {
                return Err(IndexError::BadRequest(format!(
                    "limit {n} is above the maximum {MAX_LIMIT}"
                )));
            }
            n => n,
        };
        let cursor = req.search_after.as_deref().map(decode_cursor).transpose()?;
        let mut upper = req.to.map(Bound::Excluded).unwrap_or(Bound::Unbounded);
        if let Some((ts, _)) = cursor {
            let cursor_ts = DateTime::<Utc>::from_timestamp_nanos(ts);
            upper = match upper {
                Bound::Excluded(to) if to <= cursor_ts => Bound::Excluded(to),
                _ => Bound::Included(cursor_ts),
            };
        }
        let query = self.query(&req.query, req.from, upper)?;
        let scorer = SortKeyScorer { cursor };
        let mut hits: Vec<(SortKey, TantivyDocument)> = Vec::with_capacity(limit);
        for (day, searcher) in self.snapshot(req.from, upper)?.into_iter().rev() {
            let want = limit - hits.len();
            let collector = TopDocs::with_limit(want).custom_score(scorer);
            let top = searcher
                .search(query.for_day(day), &collector)
                .map_err(|e| IndexError::tantivy(partition::day_name(day), e))?;
            for (key, addr) in top {
                let Some(key) = key else { continue };
                let doc: TantivyDocument = searcher
                    .doc(addr)
                    .map_err(|e| IndexError::tantivy(partition::day_name(day), e))?;
                hits.push((key, doc));
            }
            if hits.len() >= limit {
                break;
            }
        }
        let next_cursor = if hits.len() >= limit {
            hits.last().map(|(key, _)| encode_cursor(*key))
        } else {
            None
        };
        let mut events = Vec::with_capacity(hits.len());
        for (_, doc) in hits {
            events.push(self.decode_source(&doc)?);
        }
        Ok(SearchResponse {
            events,
            next_cursor,
        })
    }

    /// How many events match `req` (its `limit` and `search_after` are ignored).
    ///
    /// # Errors
    /// As [`Searcher::search`].
    pub fn count(&self, req: &SearchRequest) -> Result<u64, IndexError> {
        let upper = req.to.map(Bound::Excluded).unwrap_or(Bound::Unbounded);
        let query = self.query(&req.query, req.from, upper)?;
        let mut total = 0u64;
        for (day, searcher) in self.snapshot(req.from, upper)? {
            let n = searcher
                .search(query.for_day(day), &Count)
                .map_err(|e| IndexError::tantivy(partition::day_name(day), e))?;
            total += n as u64;
        }
        Ok(total)
    }

    /// The day partitions currently searchable (present and within retention), oldest first.
    ///
    /// # Errors
    /// [`IndexError::Io`] when the data dir cannot be read.
    pub fn days(&self) -> Result<Vec<String>, IndexError> {
        let oldest = partition::oldest_kept_day(Utc::now(), self.inner.retention_days);
        Ok(partition::list_days(&self.inner.root)?
            .into_iter()
            .filter(|d| *d >= oldest)
            .map(partition::day_name)
            .collect())
    }

    /// Parses `text` and restricts it to `[from, upper)`.
    pub(crate) fn query(
        &self,
        text: &str,
        from: Option<DateTime<Utc>>,
        upper: Bound<DateTime<Utc>>,
    ) -> Result<PreparedQuery, IndexError> {
        let text = text.trim();
        let user: Box<dyn Query> = if text.is_empty() || text == "*" {
            Box::new(AllQuery)
        } else {
            match self.inner.parser.parse_query(text) {
                Ok(query) => query,
                // `NOT x` alone means "everything but x" to someone searching logs; tantivy
                // wants it spelled `* NOT x`.
                Err(QueryParserError::AllButQueryForbidden) => self
                    .inner
                    .parser
                    .parse_query(&format!("* {text}"))
                    .map_err(|e| IndexError::BadRequest(format!("invalid query {text:?}: {e}")))?,
                Err(QueryParserError::FieldNotIndexed(field))
                    if SOURCE_ONLY_FIELDS.contains(&field.as_str()) =>
                {
                    return Err(IndexError::BadRequest(format!(
                        "invalid query {text:?}: field {field} is not searchable; it is kept in \
                         the event source only (search message, url.*, client.ip or http.* \
                         instead)"
                    )));
                }
                Err(QueryParserError::FieldNotIndexed(field)) => {
                    return Err(IndexError::BadRequest(format!(
                        "invalid query {text:?}: field {field} can only be searched by range, \
                         e.g. {field}:[100 TO 200]"
                    )));
                }
                Err(e) => {
                    return Err(IndexError::BadRequest(format!(
                        "invalid query {text:?}: {e}"
                    )));
                }
            }
        };
        let user = complete_negations(user);
        let ts = self.inner.schema.timestamp;
        let term = |t: DateTime<Utc>| -> Result<Term, IndexError> {
            let ns = t
                .timestamp_nanos_opt()
                .ok_or_else(|| IndexError::BadRequest(format!("time {t} is outside 1677..2262")))?;
            Ok(Term::from_field_date(
                ts,
                tantivy::DateTime::from_timestamp_nanos(ns),
            ))
        };
        let lower = match from {
            Some(t) => Bound::Included(term(t)?),
            None => Bound::Unbounded,
        };
        let upper_term = match upper {
            Bound::Included(t) => Bound::Included(term(t)?),
            Bound::Excluded(t) => Bound::Excluded(term(t)?),
            Bound::Unbounded => Bound::Unbounded,
        };
        if matches!((&lower, &upper_term), (Bound::Unbounded, Bound::Unbounded)) {
            return Ok(PreparedQuery {
                ranged: user.box_clone(),
                user,
                from: None,
                upper: Bound::Unbounded,
            });
        }
        let range: Box<dyn Query> = Box::new(RangeQuery::new(lower, upper_term));
        Ok(PreparedQuery {
            ranged: Box::new(BooleanQuery::new(vec![
                (Occur::Must, user.box_clone()),
                (Occur::Must, range),
            ])),
            user,
            from,
            upper,
        })
    }

    /// tantivy searchers of the partitions that may hold events in `[from, upper)` and are
    /// within retention, oldest first, each on its latest commit.
    pub(crate) fn snapshot(
        &self,
        from: Option<DateTime<Utc>>,
        upper: Bound<DateTime<Utc>>,
    ) -> Result<Vec<(NaiveDate, tantivy::Searcher)>, IndexError> {
        let inner = &*self.inner;
        let oldest_kept = partition::oldest_kept_day(Utc::now(), inner.retention_days);
        let first = from.map_or(oldest_kept, |f| partition::day_of(f).max(oldest_kept));
        let last = match upper {
            Bound::Included(t) => Some(partition::day_of(t)),
            // An exclusive bound at midnight excludes that whole day.
            Bound::Excluded(t) => Some(partition::day_of(t - chrono::Duration::nanoseconds(1))),
            Bound::Unbounded => None,
        };
        let on_disk = partition::list_days(&inner.root)?;
        let mut readers = self.lock_readers();
        readers.retain(|day, _| on_disk.binary_search(day).is_ok());
        let mut out = Vec::new();
        for day in on_disk {
            if day < first || last.is_some_and(|l| day > l) {
                continue;
            }
            let stamp = meta_stamp(&inner.root, day);
            if let Some(cached) = readers.get_mut(&day) {
                if cached.stamp != stamp {
                    cached
                        .reader
                        .reload()
                        .map_err(|e| IndexError::tantivy(partition::day_name(day), e))?;
                    cached.stamp = stamp;
                }
                out.push((day, cached.reader.searcher()));
                continue;
            }
            let index = match partition::open(&inner.root, day) {
                Ok(index) => index,
                // Dropped by retention between the listing and now.
                Err(_) if stamp.is_none() => continue,
                Err(e) => return Err(e),
            };
            let reader = index
                .reader_builder()
                .reload_policy(ReloadPolicy::Manual)
                .try_into()
                .map_err(|e| IndexError::tantivy(partition::day_name(day), e))?;
            let searcher = reader.searcher();
            readers.insert(day, DayReader { reader, stamp });
            out.push((day, searcher));
        }
        Ok(out)
    }

    /// Reloads the cached readers of `days` (after an in-process commit).
    pub(crate) fn reload_days(&self, days: &[NaiveDate]) {
        let mut readers = self.lock_readers();
        for day in days {
            if let Some(cached) = readers.get_mut(day) {
                // A failed reload leaves the previous commit visible; the stamp check retries
                // on the next search.
                if cached.reader.reload().is_ok() {
                    cached.stamp = meta_stamp(&self.inner.root, *day);
                } else {
                    cached.stamp = None;
                }
            }
        }
    }

    /// Forgets the reader of a dropped partition.
    pub(crate) fn forget_day(&self, day: NaiveDate) {
        self.lock_readers().remove(&day);
    }

    fn lock_readers(&self) -> MutexGuard<'_, BTreeMap<NaiveDate, DayReader>> {
        // A panic while holding the lock cannot leave the map inconsistent (each entry is
        // replaced whole), so a poisoned lock is still usable.
        self.inner
            .readers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn decode_source(&self, doc: &TantivyDocument) -> Result<LogEvent, IndexError> {
        let bytes = doc
            .get_first(self.inner.schema.source)
            .and_then(|v| v.as_bytes())
            .ok_or_else(|| IndexError::Internal(format!("document without {SOURCE_FIELD}")))?;
        serde_json::from_slice(bytes)
            .map_err(|e| IndexError::Internal(format!("stored event is not a LogEvent: {e}")))
    }

    /// Days of retention this searcher applies.
    pub fn retention_days(&self) -> u32 {
        self.inner.retention_days
    }
}

/// A parsed query with and without its time range.
pub(crate) struct PreparedQuery {
    /// The user's query alone.
    user: Box<dyn Query>,
    /// The user's query restricted to `[from, upper)`.
    ranged: Box<dyn Query>,
    from: Option<DateTime<Utc>>,
    upper: Bound<DateTime<Utc>>,
}

impl PreparedQuery {
    /// The query to run on `day`'s partition: without the range when the range covers the whole
    /// day, since a time range is a scan of the timestamp column and costs more than most term
    /// queries it is combined with (24 h searches and histograms are the common case).
    pub(crate) fn for_day(&self, day: NaiveDate) -> &dyn Query {
        let start = day.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
        let next = day
            .succ_opt()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc());
        let (Some(start), Some(next)) = (start, next) else {
            return &*self.ranged;
        };
        let covers_start = self.from.is_none_or(|from| from <= start);
        let covers_end = match self.upper {
            Bound::Unbounded => true,
            Bound::Excluded(to) => to >= next,
            Bound::Included(to) => to >= next - chrono::Duration::nanoseconds(1),
        };
        if covers_start && covers_end {
            &*self.user
        } else {
            &*self.ranged
        }
    }
}

/// Gives every purely negative boolean clause a positive "match all" side.
///
/// tantivy parses `a AND NOT b` as `+a +(-b)`, and a boolean query with only `MustNot` clauses
/// matches nothing, so the whole query would match nothing; someone searching logs means
/// "a, except b".
fn complete_negations(query: Box<dyn Query>) -> Box<dyn Query> {
    let Some(boolean) = query.downcast_ref::<BooleanQuery>() else {
        return query;
    };
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = boolean
        .clauses()
        .iter()
        .map(|(occur, sub)| (*occur, complete_negations(sub.box_clone())))
        .collect();
    if !clauses.is_empty() && clauses.iter().all(|(occur, _)| *occur == Occur::MustNot) {
        clauses.insert(0, (Occur::Must, Box::new(AllQuery)));
    }
    let mut rebuilt = BooleanQuery::new(clauses);
    rebuilt.set_minimum_number_should_match(boolean.get_minimum_number_should_match());
    Box::new(rebuilt)
}

/// Scores each hit by its sort key; hits at or after the cursor score `None` and are dropped.
#[derive(Clone, Copy)]
struct SortKeyScorer {
    cursor: Option<SortKey>,
}

struct SortKeySegmentScorer {
    timestamps: Arc<dyn ColumnValues<tantivy::DateTime>>,
    tiebreaks: Arc<dyn ColumnValues<u64>>,
    cursor: Option<SortKey>,
}

impl tantivy::collector::CustomScorer<Option<SortKey>> for SortKeyScorer {
    type Child = SortKeySegmentScorer;

    fn segment_scorer(&self, reader: &SegmentReader) -> tantivy::Result<SortKeySegmentScorer> {
        let fast = reader.fast_fields();
        Ok(SortKeySegmentScorer {
            timestamps: fast
                .date(fields::TIMESTAMP)?
                .first_or_default_col(tantivy::DateTime::MIN),
            tiebreaks: fast.u64(TIEBREAK_FIELD)?.first_or_default_col(0),
            cursor: self.cursor,
        })
    }
}

impl tantivy::collector::CustomSegmentScorer<Option<SortKey>> for SortKeySegmentScorer {
    fn score(&mut self, doc: DocId) -> Option<SortKey> {
        let key = (
            self.timestamps.get_val(doc).into_timestamp_nanos(),
            self.tiebreaks.get_val(doc),
        );
        match self.cursor {
            Some(cursor) if key >= cursor => None,
            _ => Some(key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips() -> Result<(), IndexError> {
        for key in [(0, 0), (-5, u64::MAX), (1_764_806_400_123_456_789, 42)] {
            assert_eq!(decode_cursor(&encode_cursor(key))?, key);
        }
        for bad in ["", "12", "x-1", "1-zz", "-"] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
        Ok(())
    }
}
