//! The crate's error type, sorted by who must act: configuration, input, I/O, internal.

use std::path::PathBuf;

/// Everything that can go wrong in `ingest` outside the per-line path (per-line problems are
/// flagged on the record itself, see [`crate::codes`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The configuration is invalid; `field` is the dotted path of the offending field.
    #[error("invalid config: {field}: {reason}")]
    InvalidConfig { field: String, reason: String },
    /// The checkpoint file exists but cannot be understood.
    #[error("corrupt checkpoint file {path}: {reason}")]
    CorruptCheckpoint { path: PathBuf, reason: String },
    /// A file-system operation failed.
    #[error("failed to {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A worker thread could not be started.
    #[error("failed to spawn thread {name}: {source}")]
    Spawn {
        name: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A worker thread panicked: a bug in this crate.
    #[error("thread {name} panicked")]
    ThreadPanicked { name: &'static str },
}

impl IngestError {
    /// A stable, low-cardinality code for logs and metric labels.
    pub fn error_code(&self) -> &'static str {
        match self {
            IngestError::InvalidConfig { .. } => "config_invalid",
            IngestError::CorruptCheckpoint { .. } => "checkpoint_corrupt",
            IngestError::Io { .. } => "io",
            IngestError::Spawn { .. } => "thread_spawn",
            IngestError::ThreadPanicked { .. } => "internal_panic",
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        IngestError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn config(field: &str, reason: impl Into<String>) -> Self {
        IngestError::InvalidConfig {
            field: field.to_string(),
            reason: reason.into(),
        }
    }
}
