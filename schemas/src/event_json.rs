//! A [`LogEvent`]'s JSON without serde: [`write_event_json`] writes byte for byte what
//! `serde_json::to_writer` writes, several times faster.
//!
//! Every stage that hands an event on serializes it (the embedded store's `_source`, the
//! processor's events topic, the Elasticsearch bulk body, NDJSON sinks), and serde_json over the
//! nested event was ~11 CPU-seconds per GiB of logs, its string escaping alone ~4% of the
//! embedded path. Here strings are escaped eight bytes at a time ([`write_json_str`]) and an
//! object is written in one pass: each member is written as `,"key":value` and the first comma
//! becomes the object's `{`, so a group with no member set (what `skip_serializing_if =
//! "..::is_empty"` leaves out) is simply cut off again.

use serde_json::Value;

use crate::json::{write_json_str, write_time, write_u64};
use crate::raw::write_source;
use crate::{AppFields, Kubernetes, LogEvent, SluiceMeta};

/// Room reserved up front: a typical event's JSON (access lines with `event.original` run
/// 1–1.5 KiB), so most events need no reallocation of a fresh buffer.
const EVENT_BYTES_HINT: usize = 1024;

/// Appends `event`'s JSON to `out`: exactly the bytes `serde_json::to_writer(out, event)`
/// writes (the on-disk and wire format; pinned and property-tested against serde_json).
///
/// ```
/// let ev = schemas::LogEvent::new(chrono::DateTime::UNIX_EPOCH, "hi");
/// let mut out = Vec::new();
/// schemas::write_event_json(&ev, &mut out).unwrap();
/// assert_eq!(out, serde_json::to_vec(&ev).unwrap());
/// ```
///
/// # Errors
/// What `serde_json` returns for the same event, which for these types is nothing: the
/// numbers in `app` and timestamps outside years 0..=9999 are handed to serde_json itself.
/// As with `serde_json::to_writer`, `out` may hold part of the event after an error.
pub fn write_event_json(event: &LogEvent, out: &mut Vec<u8>) -> serde_json::Result<()> {
    out.reserve(EVENT_BYTES_HINT);
    out.extend_from_slice(b"{\"@timestamp\":");
    write_time(out, &event.timestamp)?;
    out.extend_from_slice(b",\"message\":");
    write_json_str(out, &event.message);
    object(out, b",\"log\":", |out| {
        if let Some(level) = event.log.level {
            out.extend_from_slice(b",\"level\":");
            write_json_str(out, level.as_str());
        }
        opt_str(out, b",\"logger\":", &event.log.logger);
        Ok(())
    })?;
    str_object(
        out,
        b",\"service\":",
        &[(b",\"name\":", &event.service.name)],
    );
    write_kubernetes(out, &event.kubernetes);
    if let Some(stream) = event.stream {
        out.extend_from_slice(b",\"stream\":");
        write_json_str(out, stream.as_str());
    }
    let http = &event.http;
    object(out, b",\"http\":", |out| {
        let request = &http.request;
        let method = (b",\"method\":".as_slice(), &request.method);
        str_object(
            out,
            b",\"request\":",
            &[method, (b",\"referrer\":", &request.referrer)],
        );
        object(out, b",\"response\":", |out| {
            if let Some(code) = http.response.status_code {
                out.extend_from_slice(b",\"status_code\":");
                write_u64(out, u64::from(code));
            }
            if let Some(bytes) = http.response.bytes {
                out.extend_from_slice(b",\"bytes\":");
                write_u64(out, bytes);
            }
            Ok(())
        })?;
        opt_str(out, b",\"version\":", &http.version);
        Ok(())
    })?;
    let url = &event.url;
    let url_members = [
        (b",\"path\":".as_slice(), &url.path),
        (b",\"query\":", &url.query),
        (b",\"original\":", &url.original),
    ];
    str_object(out, b",\"url\":", &url_members);
    str_object(out, b",\"client\":", &[(b",\"ip\":", &event.client.ip)]);
    str_object(out, b",\"user\":", &[(b",\"name\":", &event.user.name)]);
    let agent = &event.user_agent.original;
    str_object(out, b",\"user_agent\":", &[(b",\"original\":", agent)]);
    str_object(out, b",\"trace\":", &[(b",\"id\":", &event.trace.id)]);
    str_object(out, b",\"span\":", &[(b",\"id\":", &event.span.id)]);
    let error = &event.error;
    let error_members = [
        (b",\"type\":".as_slice(), &error.kind),
        (b",\"message\":", &error.message),
        (b",\"stack_trace\":", &error.stack_trace),
    ];
    str_object(out, b",\"error\":", &error_members);
    let info = &event.event;
    out.extend_from_slice(b",\"event\":{\"id\":");
    write_json_str(out, &info.id);
    if let Some(duration) = info.duration {
        out.extend_from_slice(b",\"duration\":");
        write_i64(out, duration);
    }
    opt_str(out, b",\"original\":", &info.original);
    opt_str(out, b",\"dataset\":", &info.dataset);
    if let Some(ingested) = &info.ingested {
        out.extend_from_slice(b",\"ingested\":");
        write_time(out, ingested)?;
    }
    out.push(b'}');
    write_app(out, &event.app)?;
    write_str_list(out, b",\"tags\":", &event.tags);
    write_sluice(out, &event.sluice);
    out.push(b'}');
    Ok(())
}

/// Writes `key` (`,"name":`) and an object whose members `members` writes, each as
/// `,"member":value`: the first member's comma becomes `{`. When `members` writes nothing
/// (every field unset: the group's `is_empty`), the key is taken back, as serde's
/// `skip_serializing_if` leaves the group out.
fn object(
    out: &mut Vec<u8>,
    key: &[u8],
    members: impl FnOnce(&mut Vec<u8>) -> serde_json::Result<()>,
) -> serde_json::Result<()> {
    let mark = out.len();
    out.extend_from_slice(key);
    let first = out.len();
    members(out)?;
    if out.len() == first {
        out.truncate(mark);
    } else {
        out[first] = b'{';
        out.push(b'}');
    }
    Ok(())
}

/// A group whose members are all optional strings (`url`, `error`, `trace`, ...), given as
/// `(",\"member\":", value)`; left out when none is set.
fn str_object(out: &mut Vec<u8>, key: &[u8], members: &[(&[u8], &Option<String>)]) {
    let written = object(out, key, |out| {
        for (member, value) in members {
            opt_str(out, member, value);
        }
        Ok(())
    });
    debug_assert!(written.is_ok(), "writing strings cannot fail");
}

/// `key` and a string, when `value` is set.
fn opt_str(out: &mut Vec<u8>, key: &[u8], value: &Option<String>) {
    if let Some(value) = value {
        out.extend_from_slice(key);
        write_json_str(out, value);
    }
}

fn write_i64(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    write_u64(out, n.unsigned_abs());
}

/// `key` and an array of strings, left out when `list` is empty.
fn write_str_list(out: &mut Vec<u8>, key: &[u8], list: &[String]) {
    if list.is_empty() {
        return;
    }
    out.extend_from_slice(key);
    out.push(b'[');
    for (i, s) in list.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json_str(out, s);
    }
    out.push(b']');
}

/// `,"kubernetes":{..}`, or nothing when `k` is empty (also the raw record's field).
pub(crate) fn write_kubernetes(out: &mut Vec<u8>, k: &Kubernetes) {
    let written = object(out, b",\"kubernetes\":", |out| {
        opt_str(out, b",\"namespace\":", &k.namespace);
        let pod = [
            (b",\"name\":".as_slice(), &k.pod.name),
            (b",\"uid\":", &k.pod.uid),
        ];
        str_object(out, b",\"pod\":", &pod);
        str_object(
            out,
            b",\"container\":",
            &[(b",\"name\":", &k.container.name)],
        );
        str_object(out, b",\"node\":", &[(b",\"name\":", &k.node.name)]);
        if !k.labels.is_empty() {
            out.extend_from_slice(b",\"labels\":");
            for (i, (name, value)) in k.labels.iter().enumerate() {
                out.push(if i == 0 { b'{' } else { b',' });
                write_json_str(out, name);
                out.push(b':');
                write_json_str(out, value);
            }
            out.push(b'}');
        }
        Ok(())
    });
    debug_assert!(written.is_ok(), "writing strings cannot fail");
}

/// `app`, left out when empty; its keys are sorted and unique, as the `Map` serde wrote.
fn write_app(out: &mut Vec<u8>, app: &AppFields) -> serde_json::Result<()> {
    object(out, b",\"app\":", |out| {
        for (key, value) in app.iter() {
            out.push(b',');
            write_json_str(out, key);
            out.push(b':');
            write_value(out, value)?;
        }
        Ok(())
    })
}

/// A JSON value as serde_json writes it; numbers are handed to serde_json itself (integers
/// by `itoa`, floats by `ryu`, and whatever a feature such as `arbitrary_precision` changes).
fn write_value(out: &mut Vec<u8>, value: &Value) -> serde_json::Result<()> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => serde_json::to_writer(&mut *out, n)?,
        Value::String(s) => write_json_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json_str(out, key);
                out.push(b':');
                write_value(out, item)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_sluice(out: &mut Vec<u8>, meta: &SluiceMeta) {
    out.extend_from_slice(b",\"sluice\":{\"source\":");
    write_source(out, &meta.source);
    if let Some(format) = &meta.format {
        out.extend_from_slice(b",\"format\":");
        write_json_str(out, format);
    }
    let pattern = &meta.pattern;
    let pattern_members = [
        (b",\"id\":".as_slice(), &pattern.id),
        (b",\"template\":", &pattern.template),
    ];
    str_object(out, b",\"pattern\":", &pattern_members);
    write_str_list(out, b",\"redacted\":", &meta.redacted);
    write_str_list(out, b",\"errors\":", &meta.errors);
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arb::arb_event;
    use crate::{Level, SourceRef, Stream};
    use proptest::prelude::*;

    fn ours(event: &LogEvent) -> Vec<u8> {
        let mut out = Vec::new();
        write_event_json(event, &mut out).expect("write");
        out
    }

    /// The bytes of an event with every field set, pinned: the writer's and serde's.
    #[test]
    fn full_event_is_the_pinned_format() -> Result<(), Box<dyn std::error::Error>> {
        let mut ev = LogEvent::new(
            "2026-12-04T21:55:26.120Z".parse()?,
            "GET /x \"q\"\t\u{1} caf\u{e9} \u{7f}",
        );
        ev.log.level = Some(Level::Error);
        ev.log.logger = Some("app.web".into());
        ev.service.name = Some("api".into());
        let k = &mut ev.kubernetes;
        k.namespace = Some("shop".into());
        (k.pod.name, k.pod.uid) = (Some("api-1".into()), Some("u-1".into()));
        k.container.name = Some("api".into());
        k.node.name = Some("node-1".into());
        k.labels.insert("app".into(), "api".into());
        k.labels.insert("tier".into(), "web".into());
        ev.stream = Some(Stream::Stderr);
        ev.http.request.method = Some("GET".into());
        ev.http.request.referrer = Some("-".into());
        ev.http.response.status_code = Some(503);
        ev.http.response.bytes = Some(u64::MAX);
        ev.http.version = Some("1.1".into());
        ev.url.path = Some("/x".into());
        ev.url.query = Some("a=1".into());
        ev.url.original = Some("/x?a=1".into());
        ev.client.ip = Some("10.0.0.1".into());
        ev.user.name = Some("bob".into());
        ev.user_agent.original = Some("curl/8".into());
        ev.trace.id = Some("t".into());
        ev.span.id = Some("s".into());
        ev.error.kind = Some("E".into());
        ev.error.message = Some("boom".into());
        ev.error.stack_trace = Some("at a\n\tat b".into());
        ev.event.id = "0123".into();
        ev.event.duration = Some(-5);
        ev.event.original = Some("raw \\ line".into());
        ev.event.dataset = Some("nginx.access".into());
        ev.event.ingested = Some("2026-12-04T21:55:27.000123456Z".parse()?);
        ev.app.insert("n".into(), serde_json::json!(-7));
        ev.app.insert("f".into(), serde_json::json!(0.1));
        ev.app.insert(
            "o".into(),
            serde_json::json!({"b": [true, null, 1e300], "a": {}, "c": []}),
        );
        ev.tags = vec!["t1".into(), String::new()];
        ev.sluice.source = SourceRef {
            path: "/var/log/pods/a/0.log".into(),
            file_id: 1,
            offset: 2,
            end_offset: 3,
        };
        ev.sluice.format = Some("nginx_combined".into());
        ev.sluice.pattern.id = Some("p".into());
        ev.sluice.pattern.template = Some("GET <*>".into());
        ev.sluice.redacted = vec!["jwt".into()];
        ev.sluice.errors = vec!["line_truncated".into()];
        let pinned = concat!(
            r#"{"@timestamp":"2026-12-04T21:55:26.120Z","message":"GET /x \"q\"\t\u0001 café "#,
            "\u{7f}\",",
            r#""log":{"level":"error","logger":"app.web"},"service":{"name":"api"},"#,
            r#""kubernetes":{"namespace":"shop","pod":{"name":"api-1","uid":"u-1"},"container":{"name":"api"},"#,
            r#""node":{"name":"node-1"},"labels":{"app":"api","tier":"web"}},"stream":"stderr","#,
            r#""http":{"request":{"method":"GET","referrer":"-"},"response":{"status_code":503,"bytes":18446744073709551615},"version":"1.1"},"#,
            r#""url":{"path":"/x","query":"a=1","original":"/x?a=1"},"client":{"ip":"10.0.0.1"},"#,
            r#""user":{"name":"bob"},"user_agent":{"original":"curl/8"},"trace":{"id":"t"},"span":{"id":"s"},"#,
            r#""error":{"type":"E","message":"boom","stack_trace":"at a\n\tat b"},"#,
            r#""event":{"id":"0123","duration":-5,"original":"raw \\ line","dataset":"nginx.access","ingested":"2026-12-04T21:55:27.000123456Z"},"#,
            r#""app":{"f":0.1,"n":-7,"o":{"a":{},"b":[true,null,1e+300],"c":[]}},"tags":["t1",""],"#,
            r#""sluice":{"source":{"path":"/var/log/pods/a/0.log","file_id":1,"offset":2,"end_offset":3},"#,
            r#""format":"nginx_combined","pattern":{"id":"p","template":"GET <*>"},"redacted":["jwt"],"errors":["line_truncated"]}}"#
        );
        assert_eq!(String::from_utf8(ours(&ev))?, pinned);
        assert_eq!(serde_json::to_string(&ev)?, pinned);
        assert_eq!(serde_json::from_str::<LogEvent>(pinned)?, ev);
        Ok(())
    }

    /// An event with nothing but the fields that are always written.
    #[test]
    fn minimal_event_is_the_pinned_format() -> Result<(), Box<dyn std::error::Error>> {
        let ev = LogEvent::new(chrono::DateTime::UNIX_EPOCH, "");
        let pinned = concat!(
            r#"{"@timestamp":"1970-01-01T00:00:00Z","message":"","event":{"id":""},"#,
            r#""sluice":{"source":{"path":"","file_id":0,"offset":0,"end_offset":0}}}"#
        );
        assert_eq!(String::from_utf8(ours(&ev))?, pinned);
        assert_eq!(serde_json::to_string(&ev)?, pinned);
        Ok(())
    }

    proptest! {
        /// Any event, appended after other bytes: exactly serde_json's bytes.
        #[test]
        fn writer_matches_serde_json(event in arb_event(), prefix in "[a-z]{0,3}") {
            let mut out = prefix.clone().into_bytes();
            write_event_json(&event, &mut out).expect("write");
            let mut expected = prefix.into_bytes();
            serde_json::to_writer(&mut expected, &event).expect("serialize");
            prop_assert_eq!(String::from_utf8_lossy(&out), String::from_utf8_lossy(&expected));
        }
    }
}
