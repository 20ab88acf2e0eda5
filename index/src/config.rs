//! [`IndexConfig`]: where the embedded store lives and how it commits and expires data.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::IndexError;

/// Default retention: the runbook keeps logs 90 days.
pub const DEFAULT_RETENTION_DAYS: u32 = 90;
/// Default commit interval: one second keeps search latency after ingest low while a commit
/// (an fsync per touched day) stays well under 1% of a core at steady load.
pub const DEFAULT_COMMIT_INTERVAL_MS: u64 = 1_000;
/// Default maximum staged events before a commit: bounds how much a crash makes the caller
/// replay (about 25 MB of typical events) and how long records wait for their acknowledgement.
pub const DEFAULT_COMMIT_MAX_DOCS: usize = 50_000;
/// Default indexing heap per day partition writer, shared by its threads: 32 MiB per thread
/// holds a whole default commit (`DEFAULT_COMMIT_MAX_DOCS` events, about 1.1 KB of heap per
/// typical event, split over two threads) in one segment per thread. Measured on 60 000
/// realistic events: 32 MiB and 128 MiB per thread index at the same MB per CPU-second, while
/// 16 MiB per thread flushes early and costs ~50% more commit CPU. It used to be 256 MiB, which
/// with two open writers made the index stage the largest resident cost of `sluice run`.
pub const DEFAULT_WRITER_HEAP_BYTES: usize = 64 * 1024 * 1024;
/// Default day writers open at once: today and, around midnight, yesterday.
pub const DEFAULT_MAX_OPEN_WRITERS: usize = 2;
/// Default indexing threads per writer: the deployment target is a 2-core node agent.
pub const DEFAULT_WRITER_THREADS: usize = 2;
/// tantivy refuses less than 15 MB of indexing heap per thread.
pub const MIN_WRITER_HEAP_BYTES_PER_THREAD: usize = 15_000_000;
/// More threads than this per writer only adds merge contention on the machines we target.
const MAX_WRITER_THREADS: usize = 64;
/// Retention beyond ten years is almost certainly a typo (days vs hours).
const MAX_RETENTION_DAYS: u32 = 3_650;

/// Configuration of the embedded tantivy store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IndexConfig {
    /// Root of the store; day partitions live in `<data_dir>/index/<YYYY-MM-DD>/`.
    pub data_dir: PathBuf,
    /// Days of logs to keep. Day partitions older than `today - retention_days` (UTC) are
    /// dropped by [`crate::Store::enforce_retention`] and hidden from searches before that.
    pub retention_days: u32,
    /// [`crate::Store::should_commit`] turns true this long after the first uncommitted event.
    pub commit_interval_ms: u64,
    /// [`crate::Store::should_commit`] turns true once this many events are staged.
    pub commit_max_docs: usize,
    /// Indexing memory of each open day writer, in bytes (at least 15 MB per thread). A writer
    /// flushes a segment when its threads reach it, so it is a ceiling, not a reservation; raise
    /// it with `commit_max_docs` (about 1.1 KB per typical event) so a commit stays one segment
    /// per thread.
    ///
    /// Memory bound of the store while indexing: `max_open_writers * writer_heap_bytes` of
    /// indexing heap, plus at most 8 192 built documents queued for the indexing threads
    /// (~16 MB), plus the document store's compression buffers (a few MB per writer thread).
    /// With the defaults that is 2 × 64 MiB + ~16 MB ≈ 150 MB with two days open (around
    /// midnight), half the heap part with one. Measured: a process streaming 400 000 realistic
    /// events through one default writer peaked at 146 MiB RSS (175 MiB with the former 256 MiB
    /// heap), including the event generator and the mapped index files.
    pub writer_heap_bytes: usize,
    /// Indexing threads of each open day writer.
    pub writer_threads: usize,
    /// Day writers kept open at once (today and yesterday around midnight). Staging an event for
    /// another day commits and closes the least recently used writer first; memory use is at
    /// most `max_open_writers * writer_heap_bytes`.
    pub max_open_writers: usize,
}

impl Default for IndexConfig {
    fn default() -> IndexConfig {
        IndexConfig {
            data_dir: PathBuf::from("/var/lib/sluice"),
            retention_days: DEFAULT_RETENTION_DAYS,
            commit_interval_ms: DEFAULT_COMMIT_INTERVAL_MS,
            commit_max_docs: DEFAULT_COMMIT_MAX_DOCS,
            writer_heap_bytes: DEFAULT_WRITER_HEAP_BYTES,
            writer_threads: DEFAULT_WRITER_THREADS,
            max_open_writers: DEFAULT_MAX_OPEN_WRITERS,
        }
    }
}

impl IndexConfig {
    /// A default config rooted at `data_dir`.
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> IndexConfig {
        IndexConfig {
            data_dir: data_dir.into(),
            ..IndexConfig::default()
        }
    }

    /// Checks every value; call at start-up.
    ///
    /// # Errors
    /// [`IndexError::Config`] naming the first bad field.
    pub fn validate(&self) -> Result<(), IndexError> {
        let bad = |field: &'static str, reason: String| Err(IndexError::Config { field, reason });
        if self.data_dir.as_os_str().is_empty() {
            return bad("data_dir", "must not be empty".into());
        }
        if self.retention_days == 0 || self.retention_days > MAX_RETENTION_DAYS {
            return bad(
                "retention_days",
                format!(
                    "must be in 1..={MAX_RETENTION_DAYS}, got {}",
                    self.retention_days
                ),
            );
        }
        if self.commit_interval_ms == 0 {
            return bad("commit_interval_ms", "must be at least 1".into());
        }
        if self.commit_max_docs == 0 {
            return bad("commit_max_docs", "must be at least 1".into());
        }
        if self.writer_threads == 0 || self.writer_threads > MAX_WRITER_THREADS {
            return bad(
                "writer_threads",
                format!(
                    "must be in 1..={MAX_WRITER_THREADS}, got {}",
                    self.writer_threads
                ),
            );
        }
        let min_heap = MIN_WRITER_HEAP_BYTES_PER_THREAD * self.writer_threads;
        if self.writer_heap_bytes < min_heap {
            return bad(
                "writer_heap_bytes",
                format!(
                    "must be at least {min_heap} ({MIN_WRITER_HEAP_BYTES_PER_THREAD} per thread), got {}",
                    self.writer_heap_bytes
                ),
            );
        }
        if self.max_open_writers == 0 {
            return bad("max_open_writers", "must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_keeps_90_days() -> Result<(), IndexError> {
        let config = IndexConfig::default();
        config.validate()?;
        assert_eq!(config.retention_days, 90);
        Ok(())
    }

    #[test]
    fn validate_rejects_bad_values() {
        let cases: Vec<(&str, IndexConfig)> = vec![
            (
                "retention_days",
                IndexConfig {
                    retention_days: 0,
                    ..IndexConfig::default()
                },
            ),
            (
                "commit_max_docs",
                IndexConfig {
                    commit_max_docs: 0,
                    ..IndexConfig::default()
                },
            ),
            (
                "writer_threads",
                IndexConfig {
                    writer_threads: 0,
                    ..IndexConfig::default()
                },
            ),
            (
                "writer_heap_bytes",
                IndexConfig {
                    writer_heap_bytes: 1_000_000,
                    ..IndexConfig::default()
                },
            ),
            ("data_dir", IndexConfig::with_data_dir("")),
        ];
        for (field, config) in cases {
            match config.validate() {
                Err(IndexError::Config { field: got, .. }) => assert_eq!(got, field),
                other => panic!("{field}: expected a config error, got {other:?}"),
            }
        }
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let parsed: Result<IndexConfig, _> = serde_json::from_str(r#"{"retention_dayz": 3}"#);
        assert!(parsed.is_err());
    }
}
