//! `parse_record`: the record's provenance and metadata land on the event.

use schemas::{Kubernetes, RawRecord, SourceRef, Stream};

use crate::{parser, utc};

fn record(message: &str) -> RawRecord {
    let mut r = RawRecord::new(
        message,
        SourceRef {
            path: "/var/log/pods/chat_api-7f9c_uid/api/0.log".into(),
            file_id: 42,
            offset: 1000,
            end_offset: 1180,
        },
    );
    r.time = Some(utc("2026-12-04T10:00:00.5Z"));
    r.stream = Some(Stream::Stderr);
    r.service = Some("chat-api".into());
    let mut k = Kubernetes {
        namespace: Some("chat".into()),
        ..Kubernetes::default()
    };
    k.pod.name = Some("api-7f9c".into());
    r.kubernetes = k.into();
    r
}

#[test]
fn metadata_and_fallbacks() {
    let mut p = parser();
    let r = record("plain text line");
    let ev = p.parse_record(&r);
    assert_eq!(ev.event.id, r.event_id());
    assert_eq!(ev.event.id.len(), 32);
    assert_eq!(ev.sluice.source, r.source);
    assert_eq!(ev.kubernetes, *r.kubernetes);
    assert_eq!(ev.stream, Some(Stream::Stderr));
    assert_eq!(ev.service.name.as_deref(), Some("chat-api"));
    assert_eq!(ev.timestamp, utc("2026-12-04T10:00:00.5Z"));
}

#[test]
fn the_apps_own_service_and_time_win() {
    let mut p = parser();
    let ev = p.parse_record(&record(
        r#"{"time":"2026-12-04T09:59:59Z","service":"billing","msg":"x"}"#,
    ));
    assert_eq!(ev.service.name.as_deref(), Some("billing"));
    assert_eq!(ev.timestamp, utc("2026-12-04T09:59:59Z"));
}

#[test]
fn agent_errors_come_first() {
    let mut p = parser();
    let mut r = record("{not json");
    r.errors = vec!["line_truncated".into()];
    let ev = p.parse_record(&r);
    assert_eq!(ev.sluice.errors, vec!["line_truncated", "json_invalid"]);
}

#[test]
fn no_runtime_time_means_now() {
    let mut p = parser();
    let mut r = record("plain");
    r.time = None;
    let before = chrono::Utc::now();
    let ev = p.parse_record(&r);
    assert!(ev.timestamp >= before && ev.timestamp <= chrono::Utc::now());
}
