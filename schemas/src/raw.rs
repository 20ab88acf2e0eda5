//! What the agent ships: one reassembled container log record and where it came from.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Kubernetes, Stream};

/// Where a record was read: the file identity and the byte range it covered.
///
/// `file_id` identifies the file's content (a fingerprint of its first bytes plus device and
/// inode), not its path, so a kubelet rename (`0.log` → `0.log.20261204-...`) keeps the id and a
/// reused inode with new content gets a new one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SourceRef {
    /// Path of the file when the record was read.
    #[serde(default)]
    pub path: String,
    /// Stable identity of the file (see the type docs).
    #[serde(default)]
    pub file_id: u64,
    /// Byte offset of the record's first byte in the file.
    #[serde(default)]
    pub offset: u64,
    /// Byte offset just past the record's last byte (newline included): the checkpoint
    /// position once this record is acknowledged.
    #[serde(default)]
    pub end_offset: u64,
}

/// One container log record after CRI/docker decoding, partial-line joining and multi-line
/// joining, with the metadata the agent attached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RawRecord {
    /// Wire version of this record ([`crate::RAW_RECORD_VERSION`]).
    #[serde(default = "crate::raw_record_version")]
    pub v: u32,
    /// The container runtime's timestamp (CRI / docker `time`), when the line had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<Stream>,
    /// The application's output for this record, without the runtime's framing. Invalid UTF-8
    /// is replaced lossily and flagged in `errors`.
    pub message: String,
    pub source: SourceRef,
    /// Pod metadata: from the log path, the node name, and the Kubernetes API when reachable.
    #[serde(default, skip_serializing_if = "Kubernetes::is_empty")]
    pub kubernetes: Kubernetes,
    /// `service.name` the agent derived from labels (`app.kubernetes.io/name`, `app`) or the
    /// container name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Stable error codes for problems met while reading (`line_truncated`, `invalid_utf8`,
    /// `malformed_cri`, `malformed_docker_json`, ...). Empty for a clean record.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Number of physical lines joined into this record by multi-line or partial merging
    /// (1 for an ordinary line).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub lines: u32,
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

impl RawRecord {
    /// A record with only a message and its source set.
    pub fn new(message: impl Into<String>, source: SourceRef) -> RawRecord {
        RawRecord {
            v: crate::RAW_RECORD_VERSION,
            time: None,
            stream: None,
            message: message.into(),
            source,
            kubernetes: Kubernetes::default(),
            service: None,
            errors: Vec::new(),
            lines: 1,
        }
    }

    /// The deterministic `event.id` of this record.
    pub fn event_id(&self) -> String {
        crate::event_id(self.source.file_id, self.source.offset)
    }
}
