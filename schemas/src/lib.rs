//! Sluice's shared data: the types every stage passes to the next, and their versions.
//!
//! - [`LogEvent`]: a parsed log record with Elastic Common Schema 8.x field names;
//!   [`write_event_json`] writes its JSON (serde_json's exact bytes) and [`read_event_json`]
//!   reads it (serde_json's exact results) without serde.
//! - [`RawRecord`]: what the agent ships (Kafka raw topic, or in-process in embedded mode).
//! - [`Alert`]: an alert, shaped like Alertmanager's v2 API.
//!
//! This crate is plain data: serde types, versions and field-name constants. The JSON Schema of
//! each type is checked in under `schemas/json/` and a test fails when it drifts from the code.
//!
//! ```
//! use schemas::{LogEvent, Level};
//! let mut ev = LogEvent::new(chrono::Utc::now(), "db connection refused");
//! ev.log.level = Some(Level::Error);
//! let json = serde_json::to_string(&ev).unwrap();
//! assert!(json.contains(r#""log":{"level":"error"}"#));
//! ```

mod alert;
#[cfg(test)]
mod arb;
mod event;
mod event_json;
pub mod fields;
pub mod fuzzing;
mod json;
mod raw;

pub use alert::{
    ANNOTATION_DESCRIPTION, ANNOTATION_RUNBOOK_URL, ANNOTATION_SUMMARY, Alert, AlertStatus,
    LABEL_ALERTNAME, LABEL_SEVERITY, alert_fingerprint,
};
pub use event::{
    AppFields, Client, Container, ErrorInfo, EventInfo, Http, HttpRequest, HttpResponse,
    Kubernetes, Level, Log, LogEvent, Node, Pattern, Pod, Service, SluiceMeta, Span, Stream, Trace,
    Url, User, UserAgent,
};
pub use event_json::{read_event_json, write_event_json};
pub use raw::{RawRecord, RawRecordReader, RawRecordWriter, SourceRef};

/// Version of the [`LogEvent`] JSON layout. Bump on any incompatible change; readers accept
/// every version they know.
pub const LOG_EVENT_VERSION: u32 = 1;
/// Version of the [`RawRecord`] wire layout (the `v` field).
pub const RAW_RECORD_VERSION: u32 = 1;
/// Version of the [`Alert`] JSON layout.
pub const ALERT_VERSION: u32 = 1;
/// The ECS version the field names follow.
pub const ECS_VERSION: &str = "8.11";

fn raw_record_version() -> u32 {
    RAW_RECORD_VERSION
}

/// The deterministic `event.id` of the record starting at `offset` in file `file_id`:
/// 32 hex digits of xxh3-128 over both, so a replayed line always gets the same id.
pub fn event_id(file_id: u64, offset: u64) -> String {
    let mut buf = [0u8; 16];
    buf[..8].copy_from_slice(&file_id.to_le_bytes());
    buf[8..].copy_from_slice(&offset.to_le_bytes());
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&buf))
}

/// The JSON Schemas of the shared types, as `(file name, schema JSON)`: what is checked in
/// under `schemas/json/`.
pub fn json_schemas() -> Vec<(&'static str, String)> {
    fn pretty(schema: schemars::Schema) -> String {
        let mut s = serde_json::to_string_pretty(&schema).expect("a schema is always valid JSON");
        s.push('\n');
        s
    }
    vec![
        (
            "log_event.v1.schema.json",
            pretty(schemars::schema_for!(LogEvent)),
        ),
        (
            "raw_record.v1.schema.json",
            pretty(schemars::schema_for!(RawRecord)),
        ),
        ("alert.v1.schema.json", pretty(schemars::schema_for!(Alert))),
    ]
}
