//! A [`LogEvent`]'s JSON without serde: [`write_event_json`] writes byte for byte what
//! `serde_json::to_writer` writes, in about a third of its CPU time.
//!
//! Every stage that hands an event on serializes it (the embedded store's `_source`, the
//! processor's events topic, the Elasticsearch bulk body, NDJSON sinks), and serde_json over the
//! nested event was ~11 CPU-seconds per GiB of logs, its string escaping alone ~4% of the
//! embedded path. Here strings are escaped eight bytes at a time ([`write_json_str`]) and an
//! object is written in one pass: each member is written as `,"key":value` and the first comma
//! becomes the object's `{`, so a group with no member set (what `skip_serializing_if =
//! "..::is_empty"` leaves out) is simply cut off again.
//!
//! [`read_event_json`] reads that layout back in one pass, to exactly what serde reads, and
//! hands any other spelling to serde_json.

use std::borrow::Cow;

use serde_json::Value;

use crate::json::{Cursor, write_json_str, write_time, write_u64};
use crate::raw::write_source;
use crate::{AppFields, EventInfo, Kubernetes, Level, LogEvent, SluiceMeta, Stream};

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

/// Reads a [`LogEvent`] from its JSON: what `serde_json::from_slice::<LogEvent>(json)`
/// returns, the same event or the same error.
///
/// The layout [`write_event_json`] writes is read in one straight pass, in about half serde's
/// CPU time (serde's decoding was a large part of the distributed indexer's ~6 µs per event);
/// anything else (other field orders, unknown fields, whitespace, `null`s, surrogate escapes,
/// deep nesting in `app`, invalid input) is handed to serde_json, so values and errors stay
/// serde's.
///
/// ```
/// let ev = schemas::LogEvent::new(chrono::DateTime::UNIX_EPOCH, "hi");
/// let json = serde_json::to_vec(&ev).unwrap();
/// assert_eq!(schemas::read_event_json(&json).unwrap(), ev);
/// assert!(schemas::read_event_json(b"{}").is_err());
/// ```
///
/// # Errors
/// What `serde_json::from_slice::<LogEvent>` returns for `json`.
pub fn read_event_json(json: &[u8]) -> serde_json::Result<LogEvent> {
    match read_layout(json) {
        Some(event) => Ok(event),
        None => serde_json::from_slice(json),
    }
}

/// How deep arrays and objects in `app` may nest on the fast path: far below serde's
/// recursion limit (128), so whatever this path reads serde reads too; deeper goes to serde.
const MAX_FAST_DEPTH: usize = 32;

/// The fast path: `None` when `json` is not exactly the writer's layout.
fn read_layout(json: &[u8]) -> Option<LogEvent> {
    let mut c = Cursor {
        bytes: json,
        pos: 0,
    };
    c.eat(b"{\"@timestamp\":")?;
    let timestamp = c.time()?;
    let mut top = Members { first: false };
    if !top.next(&mut c, b"\"message\":") {
        return None;
    }
    let mut ev = LogEvent::new(timestamp, c.string()?);
    if top.next(&mut c, b"\"log\":") {
        let mut m = c.open()?;
        if m.next(&mut c, b"\"level\":") {
            ev.log.level = Some(read_level(&c.string()?)?);
        }
        ev.log.logger = m.string(&mut c, b"\"logger\":")?;
        c.eat(b"}")?;
    }
    if top.next(&mut c, b"\"service\":") {
        read_strs(&mut c, [(b"\"name\":", &mut ev.service.name)])?;
    }
    if top.next(&mut c, b"\"kubernetes\":") {
        read_kubernetes(&mut c, &mut ev.kubernetes)?;
    }
    if top.next(&mut c, b"\"stream\":") {
        ev.stream = Some(match c.string()?.as_str() {
            "stdout" => Stream::Stdout,
            "stderr" => Stream::Stderr,
            _ => return None,
        });
    }
    if top.next(&mut c, b"\"http\":") {
        let http = &mut ev.http;
        let mut m = c.open()?;
        if m.next(&mut c, b"\"request\":") {
            let request = &mut http.request;
            read_strs(
                &mut c,
                [
                    (b"\"method\":", &mut request.method),
                    (b"\"referrer\":", &mut request.referrer),
                ],
            )?;
        }
        if m.next(&mut c, b"\"response\":") {
            let mut r = c.open()?;
            if r.next(&mut c, b"\"status_code\":") {
                http.response.status_code = Some(u16::try_from(c.number()?).ok()?);
            }
            if r.next(&mut c, b"\"bytes\":") {
                http.response.bytes = Some(c.number()?);
            }
            c.eat(b"}")?;
        }
        http.version = m.string(&mut c, b"\"version\":")?;
        c.eat(b"}")?;
    }
    if top.next(&mut c, b"\"url\":") {
        let url = &mut ev.url;
        read_strs(
            &mut c,
            [
                (b"\"path\":", &mut url.path),
                (b"\"query\":", &mut url.query),
                (b"\"original\":", &mut url.original),
            ],
        )?;
    }
    let singles = [
        (
            b"\"client\":".as_slice(),
            b"\"ip\":".as_slice(),
            &mut ev.client.ip,
        ),
        (b"\"user\":", b"\"name\":", &mut ev.user.name),
        (
            b"\"user_agent\":",
            b"\"original\":",
            &mut ev.user_agent.original,
        ),
        (b"\"trace\":", b"\"id\":", &mut ev.trace.id),
        (b"\"span\":", b"\"id\":", &mut ev.span.id),
    ];
    for (key, member, slot) in singles {
        if top.next(&mut c, key) {
            read_strs(&mut c, [(member, slot)])?;
        }
    }
    if top.next(&mut c, b"\"error\":") {
        let error = &mut ev.error;
        read_strs(
            &mut c,
            [
                (b"\"type\":", &mut error.kind),
                (b"\"message\":", &mut error.message),
                (b"\"stack_trace\":", &mut error.stack_trace),
            ],
        )?;
    }
    if !top.next(&mut c, b"\"event\":") {
        return None;
    }
    read_event_info(&mut c, &mut ev.event)?;
    if top.next(&mut c, b"\"app\":") {
        read_app(&mut c, &mut ev.app)?;
    }
    if top.next(&mut c, b"\"tags\":") {
        ev.tags = read_str_list(&mut c)?;
    }
    if !top.next(&mut c, b"\"sluice\":") {
        return None;
    }
    read_sluice(&mut c, &mut ev.sluice)?;
    c.eat(b"}")?;
    (c.pos == json.len()).then_some(ev)
}

/// The members of an object as the writer writes them: each one optional, in field order,
/// commas between.
struct Members {
    /// No member read yet (the next one has no comma before it).
    first: bool,
}

impl Members {
    /// Steps over `key` (`"name":`, and the comma before it after the first member) when that
    /// member comes next.
    fn next(&mut self, c: &mut Cursor<'_>, key: &[u8]) -> bool {
        let rest = &c.bytes[c.pos..];
        let comma = usize::from(!self.first);
        if rest.get(..comma) != Some(&b","[..comma]) || !rest[comma..].starts_with(key) {
            return false;
        }
        c.pos += comma + key.len();
        self.first = false;
        true
    }

    /// The string of member `key` when it comes next, else `None`; `None` outside when the
    /// member is there but its value is not a string the fast path reads.
    fn string(&mut self, c: &mut Cursor<'_>, key: &[u8]) -> Option<Option<String>> {
        if !self.next(c, key) {
            return Some(None);
        }
        c.string().map(Some)
    }
}

impl Cursor<'_> {
    /// Steps over the `{` of an object and starts on its members.
    fn open(&mut self) -> Option<Members> {
        self.eat(b"{")?;
        Some(Members { first: true })
    }
}

fn read_level(name: &str) -> Option<Level> {
    Level::ALL.into_iter().find(|l| l.as_str() == name)
}

/// An object of optional strings (what `str_object` writes), each member's key paired with
/// where its value goes.
fn read_strs<const N: usize>(
    c: &mut Cursor<'_>,
    members: [(&[u8], &mut Option<String>); N],
) -> Option<()> {
    let mut m = c.open()?;
    for (key, slot) in members {
        *slot = m.string(c, key)?;
    }
    c.eat(b"}")
}

fn read_str_list(c: &mut Cursor<'_>) -> Option<Vec<String>> {
    c.eat(b"[")?;
    let mut list = Vec::new();
    if c.eat(b"]").is_some() {
        return Some(list);
    }
    loop {
        list.push(c.string()?);
        if c.eat(b"]").is_some() {
            return Some(list);
        }
        c.eat(b",")?;
    }
}

fn read_kubernetes(c: &mut Cursor<'_>, k: &mut Kubernetes) -> Option<()> {
    let mut m = c.open()?;
    k.namespace = m.string(c, b"\"namespace\":")?;
    if m.next(c, b"\"pod\":") {
        let pod = &mut k.pod;
        read_strs(
            c,
            [(b"\"name\":", &mut pod.name), (b"\"uid\":", &mut pod.uid)],
        )?;
    }
    if m.next(c, b"\"container\":") {
        read_strs(c, [(b"\"name\":", &mut k.container.name)])?;
    }
    if m.next(c, b"\"node\":") {
        read_strs(c, [(b"\"name\":", &mut k.node.name)])?;
    }
    if m.next(c, b"\"labels\":") {
        let mut labels = c.open()?;
        while labels.next(c, b"\"") {
            // `next` stepped over the key's opening quote.
            c.pos -= 1;
            let name = c.string()?;
            c.eat(b":")?;
            // Of repeated keys the last wins, as in serde's map.
            k.labels.insert(name, c.string()?);
        }
        c.eat(b"}")?;
    }
    c.eat(b"}")
}

fn read_event_info(c: &mut Cursor<'_>, info: &mut EventInfo) -> Option<()> {
    c.eat(b"{\"id\":")?;
    info.id = c.string()?;
    let mut m = Members { first: false };
    if m.next(c, b"\"duration\":") {
        info.duration = Some(c.signed()?);
    }
    info.original = m.string(c, b"\"original\":")?;
    info.dataset = m.string(c, b"\"dataset\":")?;
    if m.next(c, b"\"ingested\":") {
        info.ingested = Some(c.time()?);
    }
    c.eat(b"}")
}

/// `app`'s members; of repeated keys the last wins, as `AppFields` reads them with serde.
fn read_app(c: &mut Cursor<'_>, app: &mut AppFields) -> Option<()> {
    let mut m = c.open()?;
    while m.next(c, b"\"") {
        c.pos -= 1;
        let key = c.string()?;
        c.eat(b":")?;
        app.insert(key, read_value(c, 0)?);
    }
    c.eat(b"}")
}

/// A JSON value as serde_json reads it into a `Value`; numbers other than plain
/// non-negative integers are read by serde_json itself.
fn read_value(c: &mut Cursor<'_>, depth: usize) -> Option<Value> {
    match c.bytes.get(c.pos)? {
        b'"' => c.string().map(Value::String),
        b'n' => c.eat(b"null").map(|()| Value::Null),
        b't' => c.eat(b"true").map(|()| Value::Bool(true)),
        b'f' => c.eat(b"false").map(|()| Value::Bool(false)),
        b'[' if depth < MAX_FAST_DEPTH => {
            c.pos += 1;
            let mut items = Vec::new();
            if c.eat(b"]").is_some() {
                return Some(Value::Array(items));
            }
            loop {
                items.push(read_value(c, depth + 1)?);
                if c.eat(b"]").is_some() {
                    return Some(Value::Array(items));
                }
                c.eat(b",")?;
            }
        }
        b'{' if depth < MAX_FAST_DEPTH => {
            let mut m = c.open()?;
            let mut map = serde_json::Map::new();
            while m.next(c, b"\"") {
                c.pos -= 1;
                let key = c.string()?;
                c.eat(b":")?;
                map.insert(key, read_value(c, depth + 1)?);
            }
            c.eat(b"}")?;
            Some(Value::Object(map))
        }
        b'-' | b'0'..=b'9' => read_number(c),
        _ => None,
    }
}

/// A number: a plain integer that fits a `u64` directly (serde reads those as one too), any
/// other by serde_json (signs, fractions, exponents, big integers).
fn read_number(c: &mut Cursor<'_>) -> Option<Value> {
    let start = c.pos;
    if let Some(n) = c.number()
        && matches!(c.bytes.get(c.pos), Some(b',' | b'}' | b']'))
    {
        return Some(Value::from(n));
    }
    c.pos = start;
    let mut values = serde_json::Deserializer::from_slice(&c.bytes[start..]).into_iter::<Value>();
    let value = values.next()?.ok()?;
    if !value.is_number() {
        return None;
    }
    c.pos = start + values.byte_offset();
    Some(value)
}

fn read_sluice(c: &mut Cursor<'_>, meta: &mut SluiceMeta) -> Option<()> {
    c.eat(b"{\"source\":{\"path\":")?;
    let source = &mut meta.source;
    source.path = c.string()?;
    c.eat(b",\"file_id\":")?;
    source.file_id = c.number()?;
    c.eat(b",\"offset\":")?;
    source.offset = c.number()?;
    c.eat(b",\"end_offset\":")?;
    source.end_offset = c.number()?;
    c.eat(b"}")?;
    let mut m = Members { first: false };
    meta.format = m.string(c, b"\"format\":")?.map(Cow::Owned);
    if m.next(c, b"\"pattern\":") {
        let pattern = &mut meta.pattern;
        read_strs(
            c,
            [
                (b"\"id\":", &mut pattern.id),
                (b"\"template\":", &mut pattern.template),
            ],
        )?;
    }
    if m.next(c, b"\"redacted\":") {
        meta.redacted = read_str_list(c)?;
    }
    if m.next(c, b"\"errors\":") {
        meta.errors = read_str_list(c)?;
    }
    c.eat(b"}")
}

/// Names every field of `LogEvent` and of each part it is made of, without `..`: adding a field
/// anywhere fails to compile here, which is the reminder that `write_event_json` and
/// `read_layout` must learn it too. serde would serialize the new field; these would not, and
/// the property tests catch that only when the generators learn the field first.
#[allow(dead_code)]
fn every_field_is_handled(event: &LogEvent) {
    use crate::{
        Client, Container, ErrorInfo, Http, HttpRequest, HttpResponse, Log, Node, Pattern, Pod,
        Service, SourceRef, Span, Trace, Url, User, UserAgent,
    };
    let LogEvent {
        timestamp: _,
        message: _,
        log: Log {
            level: _,
            logger: _,
        },
        service: Service { name: _ },
        kubernetes:
            Kubernetes {
                namespace: _,
                pod: Pod { name: _, uid: _ },
                container: Container { name: _ },
                node: Node { name: _ },
                labels: _,
            },
        stream: _,
        http:
            Http {
                request:
                    HttpRequest {
                        method: _,
                        referrer: _,
                    },
                response:
                    HttpResponse {
                        status_code: _,
                        bytes: _,
                    },
                version: _,
            },
        url: Url {
            path: _,
            query: _,
            original: _,
        },
        client: Client { ip: _ },
        user: User { name: _ },
        user_agent: UserAgent { original: _ },
        trace: Trace { id: _ },
        span: Span { id: _ },
        error:
            ErrorInfo {
                kind: _,
                message: _,
                stack_trace: _,
            },
        event:
            EventInfo {
                id: _,
                duration: _,
                original: _,
                dataset: _,
                ingested: _,
            },
        app: _,
        tags: _,
        sluice:
            SluiceMeta {
                source:
                    SourceRef {
                        path: _,
                        file_id: _,
                        offset: _,
                        end_offset: _,
                    },
                format: _,
                pattern: Pattern { id: _, template: _ },
                redacted: _,
                errors: _,
            },
    } = event;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arb::{arb_damage, arb_event};
    use chrono::Datelike;
    use proptest::prelude::*;

    fn ours(event: &LogEvent) -> Vec<u8> {
        let mut out = Vec::new();
        write_event_json(event, &mut out).expect("write");
        out
    }

    /// The bytes of an event with every field set, pinned: the writer's and serde's.
    #[test]
    fn full_event_is_the_pinned_format() -> Result<(), Box<dyn std::error::Error>> {
        let ev = crate::fuzzing::full_event();
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

    /// Spellings next to the writer's layout, each read exactly as serde reads it (value or
    /// error).
    #[test]
    fn reader_agrees_with_serde_on_near_misses() {
        let head = r#"{"@timestamp":"2026-12-04T21:55:26.120Z","message":"m""#;
        let tail = r#""sluice":{"source":{"path":"p","file_id":1,"offset":2,"end_offset":3}}}"#;
        let deep = format!("{}1{}", "[".repeat(40), "]".repeat(40));
        let deepest = format!("{}1{}", "[".repeat(130), "]".repeat(130));
        let middles = [
            r#""event":{"id":"x"}"#.to_owned(),
            r#""event":{"id":"x","duration":-0}"#.into(),
            r#""event":{"id":"x","duration":-9223372036854775808}"#.into(),
            r#""event":{"id":"x","duration":-9223372036854775809}"#.into(),
            r#""event":{"id":"x","duration":9223372036854775808}"#.into(),
            r#""event":{"id":"x","duration":1.5}"#.into(),
            r#""event":{"id":"x","duration":01}"#.into(),
            r#""event":{"id":"x","ingested":null}"#.into(),
            r#""event":{"id":"x","ingested":"2016-12-31T23:59:60Z"}"#.into(),
            r#""event":{}"#.into(),
            r#""event":{"duration":1,"id":"x"}"#.into(),
            r#""log":{"level":"ERROR"},"event":{"id":"x"}"#.into(),
            r#""log":{"level":"warn","logger":null},"event":{"id":"x"}"#.into(),
            r#""log":{},"service":{},"event":{"id":"x"}"#.into(),
            r#""log":{"logger":"a","level":"info"},"event":{"id":"x"}"#.into(),
            r#""stream":"stdin","event":{"id":"x"}"#.into(),
            r#""http":{"response":{"status_code":65536}},"event":{"id":"x"}"#.into(),
            r#""http":{"response":{"status_code":200,"bytes":-1}},"event":{"id":"x"}"#.into(),
            r#""http":{"request":{"method":"GET"},"version":"2"},"event":{"id":"x"}"#.into(),
            r#""kubernetes":{"labels":{"b":"1","a":"2","b":"3"}},"event":{"id":"x"}"#.into(),
            r#""kubernetes":{"labels":{"a":1}},"event":{"id":"x"}"#.into(),
            r#""kubernetes":{"pod":{"uid":"u"},"namespace":"n"},"event":{"id":"x"}"#.into(),
            r#""event":{"id":"x"},"app":{"b":1,"a":-0,"b":[1.0,1e400]}"#.into(),
            r#""event":{"id":"x"},"app":{"b":1,"a":-0,"c":[1.0,-7,18446744073709551616]}"#.into(),
            r#""event":{"id":"x"},"app":{"a":{"x":1,"x":{"y":null}},"b":[true,false,"\u00e9"]}"#
                .into(),
            r#""event":{"id":"x"},"app":{"a":tru}"#.into(),
            r#""event":{"id":"x"},"app":{"a":1x}"#.into(),
            r#""event":{"id":"x"},"app":{"a":"\ud83d\ude00"}"#.into(),
            format!(r#""event":{{"id":"x"}},"app":{{"a":{deep}}}"#),
            format!(r#""event":{{"id":"x"}},"app":{{"a":{deepest}}}"#),
            r#""event":{"id":"x"},"app":{}"#.into(),
            r#""event":{"id":"x"},"tags":[]"#.into(),
            r#""event":{"id":"x"},"tags":["a",]"#.into(),
            r#""event":{"id":"x"},"tags":["a", "b"]"#.into(),
            r#""event":{"id":"x"},"extra":1"#.into(),
            r#""event":{"id":"x"},"event":{"id":"y"}"#.into(),
        ];
        for middle in middles {
            let json = format!("{head},{middle},{tail}");
            let ours = read_event_json(json.as_bytes()).map_err(|e| e.to_string());
            let serde = serde_json::from_str::<LogEvent>(&json).map_err(|e| e.to_string());
            assert_eq!(ours, serde, "{json}");
        }
        let whole = [
            format!("{head},\"event\":{{\"id\":\"x\"}},{tail} "),
            format!("{head},\"event\":{{\"id\":\"x\"}},{tail}}}"),
            format!("{head},\"event\":{{\"id\":\"x\"}}}}"),
            r#"{"@timestamp":"2026-12-04T21:55:26Z"}"#.into(),
            r#"{"message":"m"}"#.into(),
            String::new(),
        ];
        for json in whole {
            let ours = read_event_json(json.as_bytes()).map_err(|e| e.to_string());
            let serde = serde_json::from_str::<LogEvent>(&json).map_err(|e| e.to_string());
            assert_eq!(ours, serde, "{json}");
        }
    }

    proptest! {
        /// What the writer writes, the reader reads on its fast path (years outside 0..=9999
        /// aside) to what serde reads, and that is the event written.
        #[test]
        fn reader_reads_the_writers_layout_as_serde_does(event in arb_event()) {
            let json = ours(&event);
            let read = read_event_json(&json).expect("read");
            prop_assert_eq!(&read, &serde_json::from_slice::<LogEvent>(&json).expect("serde"));
            let in_range = |t: &chrono::DateTime<chrono::Utc>| (0..=9999).contains(&t.year());
            if in_range(&event.timestamp) && event.event.ingested.as_ref().is_none_or(in_range) {
                prop_assert!(read_layout(&json).is_some(), "fast path");
            }
            // Floats read back exactly only with serde_json's `float_roundtrip`; the rest must.
            let floats = |e: &LogEvent| e.app.iter().any(|(_, v)| v.to_string().contains(['.', 'e']));
            if !floats(&event) {
                prop_assert_eq!(&read, &event);
            }
        }

        /// Whatever the bytes (the writer's with bytes changed, cut short, or pretty-printed),
        /// the reader returns what serde returns: the same event or the same error.
        #[test]
        fn reader_agrees_with_serde_on_any_bytes(
            event in arb_event(),
            damage in arb_damage(),
            pretty in any::<bool>(),
        ) {
            let mut json = if pretty {
                serde_json::to_vec_pretty(&event).expect("serialize")
            } else {
                ours(&event)
            };
            damage.apply(&mut json);
            let ours = read_event_json(&json).map_err(|e| e.to_string());
            let serde = serde_json::from_slice::<LogEvent>(&json).map_err(|e| e.to_string());
            prop_assert_eq!(ours, serde);
        }
    }
}
