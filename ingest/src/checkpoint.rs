//! Durable checkpoints: per file id, the offset up to which every record was acknowledged.
//!
//! All entries live in one JSON file, `checkpoints.json` in the state dir, replaced atomically:
//! write a temp file, fsync it, rename it over the old one, fsync the directory. A crash at any
//! point leaves either the old or the new file, never a torn one.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::IngestError;

/// Name of the checkpoint file inside the state dir.
pub const CHECKPOINT_FILE: &str = "checkpoints.json";
const CHECKPOINT_TMP: &str = "checkpoints.json.tmp";
/// Version of the checkpoint file layout.
const CHECKPOINT_VERSION: u32 = 1;

/// One file's durable position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Every record that starts before this offset (uncompressed) is acknowledged.
    pub offset: u64,
    /// The file was rotated away or deleted, read to its end, and everything acknowledged:
    /// a copy of it (e.g. its `.gz`) must not be read again.
    #[serde(default)]
    pub done: bool,
    /// Last path the file was read under (informational).
    #[serde(default)]
    pub path: String,
    /// Unix time in seconds when the file was last seen by discovery.
    #[serde(default)]
    pub seen_unix_secs: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct CheckpointFile {
    version: u32,
    /// File id (16 hex digits) to checkpoint.
    files: HashMap<String, Checkpoint>,
}

/// The checkpoint file of one state dir.
#[derive(Debug)]
pub struct CheckpointStore {
    dir: PathBuf,
}

impl CheckpointStore {
    /// Opens (creating) the state dir.
    ///
    /// # Errors
    /// [`IngestError::Io`] when the directory cannot be created.
    pub fn open(dir: &Path) -> Result<CheckpointStore, IngestError> {
        fs::create_dir_all(dir).map_err(|e| IngestError::io("create state dir", dir, e))?;
        Ok(CheckpointStore {
            dir: dir.to_path_buf(),
        })
    }

    /// Path of the checkpoint file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(CHECKPOINT_FILE)
    }

    /// Loads every checkpoint; an absent file means none.
    ///
    /// # Errors
    /// [`IngestError::CorruptCheckpoint`] when the file does not parse, [`IngestError::Io`]
    /// when it cannot be read.
    pub fn load(&self) -> Result<HashMap<u64, Checkpoint>, IngestError> {
        let path = self.path();
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
            Err(e) => return Err(IngestError::io("read checkpoint", &path, e)),
        };
        let corrupt = |reason: String| IngestError::CorruptCheckpoint {
            path: path.clone(),
            reason,
        };
        let file: CheckpointFile =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if file.version != CHECKPOINT_VERSION {
            return Err(corrupt(format!("unknown version {}", file.version)));
        }
        let mut out = HashMap::with_capacity(file.files.len());
        for (key, cp) in file.files {
            let id = u64::from_str_radix(&key, 16)
                .map_err(|_| corrupt(format!("bad file id {key:?}")))?;
            out.insert(id, cp);
        }
        Ok(out)
    }

    /// Replaces the checkpoint file with `entries`, atomically and durably.
    ///
    /// # Errors
    /// [`IngestError::Io`] naming the failed step.
    pub fn save(&self, entries: &HashMap<u64, Checkpoint>) -> Result<(), IngestError> {
        let file = CheckpointFile {
            version: CHECKPOINT_VERSION,
            files: entries
                .iter()
                .map(|(id, cp)| (format!("{id:016x}"), cp.clone()))
                .collect(),
        };
        let json = serde_json::to_vec(&file).map_err(|e| {
            IngestError::io(
                "serialize checkpoint",
                self.path(),
                std::io::Error::other(e),
            )
        })?;
        let tmp = self.dir.join(CHECKPOINT_TMP);
        let mut f = File::create(&tmp).map_err(|e| IngestError::io("create", &tmp, e))?;
        f.write_all(&json)
            .map_err(|e| IngestError::io("write", &tmp, e))?;
        f.sync_all()
            .map_err(|e| IngestError::io("fsync", &tmp, e))?;
        drop(f);
        let path = self.path();
        fs::rename(&tmp, &path).map_err(|e| IngestError::io("rename checkpoint", &path, e))?;
        let dir = File::open(&self.dir).map_err(|e| IngestError::io("open", &self.dir, e))?;
        dir.sync_all()
            .map_err(|e| IngestError::io("fsync", &self.dir, e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = CheckpointStore::open(&dir.path().join("state"))?;
        assert!(store.load()?.is_empty());
        let mut m = HashMap::new();
        m.insert(
            u64::MAX - 3,
            Checkpoint {
                offset: 42,
                done: true,
                path: "/x/0.log".into(),
                seen_unix_secs: 7,
            },
        );
        store.save(&m)?;
        assert_eq!(store.load()?, m);
        assert!(!dir.path().join("state").join(CHECKPOINT_TMP).exists());
        fs::write(store.path(), b"{\"version\":1,\"files\":{\"zz\":")?;
        let err = store.load().err().map(|e| e.error_code());
        assert_eq!(err, Some("checkpoint_corrupt"));
        Ok(())
    }
}
