//! The dead-letter file: documents Elasticsearch refused for good, with the reason.

use std::path::{Path, PathBuf};

use chrono::Utc;
use std::io::Write as _;

use super::error::EsError;

/// One refused document.
pub(crate) struct DeadLetter<'a> {
    pub(crate) id: &'a str,
    pub(crate) status: u16,
    /// The `error` object of the bulk item, or a JSON description of why it was refused.
    pub(crate) error: &'a serde_json::Value,
    /// The document exactly as sent (one line of JSON).
    pub(crate) source: &'a [u8],
}

/// Appends refused documents to `<dir>/es-dead-letter-<UTC date>.ndjson`, one JSON object per
/// line: `{"dead_lettered_at", "data_stream", "_id", "status", "error", "document"}`.
#[derive(Debug)]
pub(crate) struct DeadLetterFile {
    dir: PathBuf,
    data_stream: String,
    /// Serializes appends from concurrent bulk requests so lines never interleave.
    lock: tokio::sync::Mutex<()>,
}

impl DeadLetterFile {
    /// Creates the directory now, so a bad path fails at start-up rather than at the first
    /// refused document.
    pub(crate) fn try_new(dir: &Path, data_stream: String) -> Result<DeadLetterFile, EsError> {
        std::fs::create_dir_all(dir).map_err(|source| EsError::DeadLetter {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(DeadLetterFile {
            dir: dir.to_path_buf(),
            data_stream,
            lock: tokio::sync::Mutex::new(()),
        })
    }

    /// Appends `letters` and syncs the file: once this returns, the documents may be
    /// acknowledged upstream.
    ///
    /// # Errors
    /// [`EsError::DeadLetter`] when the file cannot be opened, written or synced.
    pub(crate) async fn append(&self, letters: &[DeadLetter<'_>]) -> Result<(), EsError> {
        if letters.is_empty() {
            return Ok(());
        }
        let now = Utc::now();
        let path = self
            .dir
            .join(format!("es-dead-letter-{}.ndjson", now.format("%Y-%m-%d")));
        let mut buf = Vec::new();
        for letter in letters {
            let head = serde_json::json!({
                "dead_lettered_at": now.to_rfc3339(),
                "data_stream": self.data_stream,
                "_id": letter.id,
                "status": letter.status,
                "error": letter.error,
            });
            let head = serde_json::to_vec(&head).expect("a serde_json::Value always serializes");
            // Splice the document in verbatim (it is one line of JSON) instead of re-parsing it.
            buf.extend_from_slice(&head[..head.len() - 1]);
            buf.extend_from_slice(b",\"document\":");
            buf.extend_from_slice(letter.source);
            buf.extend_from_slice(b"}\n");
        }
        let _guard = self.lock.lock().await;
        let write = {
            let path = path.clone();
            move || -> std::io::Result<()> {
                let mut file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)?;
                file.write_all(&buf)?;
                file.sync_data()
            }
        };
        match tokio::task::spawn_blocking(write).await {
            Ok(result) => result.map_err(|source| EsError::DeadLetter { path, source })?,
            Err(e) => {
                return Err(EsError::Internal(format!(
                    "dead-letter write task failed: {e}"
                )));
            }
        }
        Ok(())
    }
}
