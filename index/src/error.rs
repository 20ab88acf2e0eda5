//! The one error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong in the embedded store, sorted by who must act: the operator
/// (config), the caller (bad input or query), the machine (I/O), or us (internal).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// A configuration value is out of range.
    #[error("invalid index config: {field}: {reason}")]
    Config { field: &'static str, reason: String },
    /// An event cannot be indexed (for example a timestamp outside what the index can store).
    #[error("invalid event {event_id:?}: {reason}")]
    InvalidEvent { event_id: String, reason: String },
    /// A search or aggregation request is malformed (bad query syntax, unknown field, bad cursor).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Reading or writing the data directory failed.
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// tantivy failed on one day partition.
    #[error("index error in partition {day}: {source}")]
    Tantivy {
        day: String,
        #[source]
        source: tantivy::TantivyError,
    },
    /// A commit over several day partitions failed part-way. The days in `committed` are
    /// durable; everything else staged since the last successful commit was rolled back and must
    /// be replayed by the caller (replays of the committed days are skipped).
    #[error("commit failed in partition {day} (already committed: {committed:?}): {source}")]
    Commit {
        day: String,
        committed: Vec<String>,
        #[source]
        source: tantivy::TantivyError,
    },
    /// A partition's commit payload (replay high-water marks) cannot be decoded.
    #[error("corrupt commit payload in partition {day}: {reason}")]
    CorruptPayload { day: String, reason: String },
    /// A blocking task panicked or was cancelled (a bug).
    #[error("internal error: {0}")]
    Internal(String),
}

impl IndexError {
    /// A stable, lowercase code for metrics labels and API responses.
    pub fn error_code(&self) -> &'static str {
        match self {
            IndexError::Config { .. } => "index_config",
            IndexError::InvalidEvent { .. } => "index_invalid_event",
            IndexError::BadRequest(_) => "index_bad_request",
            IndexError::Io { .. } => "index_io",
            IndexError::Tantivy { .. } => "index_tantivy",
            IndexError::Commit { .. } => "index_commit_failed",
            IndexError::CorruptPayload { .. } => "index_corrupt_payload",
            IndexError::Internal(_) => "index_internal",
        }
    }

    /// True when the caller sent something wrong (HTTP 400), not the server.
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            IndexError::BadRequest(_) | IndexError::InvalidEvent { .. }
        )
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> IndexError {
        IndexError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn tantivy(day: impl Into<String>, source: tantivy::TantivyError) -> IndexError {
        IndexError::Tantivy {
            day: day.into(),
            source,
        }
    }
}
