//! What the agent ships: one reassembled container log record and where it came from.

use std::sync::Arc;

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
    // `kubernetes` and `service` are shared by every record of a file (`Arc`): copying the
    // pod strings and labels into each record was ~40% of the tailer's CPU. They serialize
    // exactly like a plain `Kubernetes` and `String` (serde `rc`), and their doc comments are
    // the JSON Schema's descriptions; use `Arc::make_mut` to change one record's copy.
    /// Pod metadata: from the log path, the node name, and the Kubernetes API when reachable.
    #[serde(default, skip_serializing_if = "is_empty_kubernetes")]
    pub kubernetes: Arc<Kubernetes>,
    /// `service.name` the agent derived from labels (`app.kubernetes.io/name`, `app`) or the
    /// container name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<Arc<str>>,
    /// Stable error codes for problems met while reading (`line_truncated`, `invalid_utf8`,
    /// `malformed_cri`, `malformed_docker_json`, ...). Empty for a clean record.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Number of physical lines joined into this record by multi-line or partial merging
    /// (1 for an ordinary line).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub lines: u32,
}

fn is_empty_kubernetes(k: &Arc<Kubernetes>) -> bool {
    k.is_empty()
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
            kubernetes: Arc::default(),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The shared (`Arc`) metadata is invisible on the wire: the JSON is what the owned
    /// `Kubernetes` / `String` fields produced, and it reads back equal.
    #[test]
    fn shared_metadata_serializes_as_plain_values() -> Result<(), serde_json::Error> {
        let mut r = RawRecord::new(
            "hello",
            SourceRef {
                path: "/var/log/pods/ns_p_u/c/0.log".into(),
                file_id: 7,
                offset: 0,
                end_offset: 6,
            },
        );
        assert_eq!(
            serde_json::to_string(&r)?,
            r#"{"v":1,"message":"hello","source":{"path":"/var/log/pods/ns_p_u/c/0.log","file_id":7,"offset":0,"end_offset":6}}"#
        );
        let k = Arc::make_mut(&mut r.kubernetes);
        k.namespace = Some("ns".into());
        k.labels.insert("app".into(), "web".into());
        r.service = Some("web".into());
        let json = serde_json::to_string(&r)?;
        assert_eq!(
            json,
            r#"{"v":1,"message":"hello","source":{"path":"/var/log/pods/ns_p_u/c/0.log","file_id":7,"offset":0,"end_offset":6},"kubernetes":{"namespace":"ns","labels":{"app":"web"}},"service":"web"}"#
        );
        assert_eq!(serde_json::from_str::<RawRecord>(&json)?, r);
        Ok(())
    }
}
