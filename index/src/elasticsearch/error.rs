//! [`EsError`]: what can go wrong talking to Elasticsearch.

use std::path::PathBuf;

/// Errors of the Elasticsearch writer and setup, sorted by who must act: the operator (config,
/// secrets, a cluster that refuses setup), the machine (I/O), or us (internal).
///
/// Per-document failures are not errors: they are reported in [`super::BulkOutcome`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EsError {
    /// A configuration value is invalid.
    #[error("invalid elasticsearch config: {field}: {reason}")]
    Config { field: &'static str, reason: String },
    /// A secret named by the config cannot be read. Only its source is named, never its value.
    #[error("cannot read secret {field} from {source_name}: {reason}")]
    Secret {
        field: &'static str,
        source_name: String,
        reason: String,
    },
    /// The TLS CA file cannot be read or parsed.
    #[error("cannot load tls ca {path}: {reason}")]
    Tls { path: PathBuf, reason: String },
    /// The HTTP client cannot be built.
    #[error("cannot build elasticsearch client: {0}")]
    Client(String),
    /// A setup request (`sluice es setup`) was refused or could not be sent.
    #[error("elasticsearch setup of {resource} failed: {reason}")]
    Setup { resource: String, reason: String },
    /// Writing the dead-letter file failed; the affected documents stay unacknowledged.
    #[error("cannot write dead-letter file {path}: {source}")]
    DeadLetter {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A writer task panicked or a semaphore closed (a bug).
    #[error("internal error: {0}")]
    Internal(String),
    /// A document cannot be serialized (a bug: every `LogEvent` serializes).
    #[error("cannot serialize event {event_id:?}: {reason}")]
    Serialize { event_id: String, reason: String },
}

impl EsError {
    /// A stable, lowercase code for metrics labels and logs.
    pub fn error_code(&self) -> &'static str {
        match self {
            EsError::Config { .. } => "es_config",
            EsError::Secret { .. } => "es_secret",
            EsError::Tls { .. } => "es_tls",
            EsError::Client(_) => "es_client",
            EsError::Setup { .. } => "es_setup",
            EsError::DeadLetter { .. } => "es_dead_letter_io",
            EsError::Serialize { .. } => "es_serialize",
            EsError::Internal(_) => "es_internal",
        }
    }

    pub(crate) fn config(field: &'static str, reason: impl Into<String>) -> EsError {
        EsError::Config {
            field,
            reason: reason.into(),
        }
    }
}
