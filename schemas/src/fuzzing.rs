//! Fuzzing support for the hand-written wire readers, shared by the cargo-fuzz targets in
//! `fuzz/` (`raw_record_json`, `event_json`) and the stable-toolchain smoke test
//! (`tests/schemas/fuzz_smoke.rs`): one [`Target`] per reader, with its invariants
//! ([`check_raw_record_json`], [`check_event_json`]), seeds written by the matching writer, and
//! a deterministic [`Mutator`].
//!
//! The readers promise serde_json's exact results, so every check compares against
//! `serde_json::from_slice` on the same bytes: equal values, or errors with the same message
//! (line and column included) and category.

use std::fmt::Debug;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::{
    Kubernetes, Level, LogEvent, RawRecord, RawRecordReader, RawRecordWriter, SourceRef, Stream,
    read_event_json, write_event_json,
};

/// One fuzz target: a reader's invariants and the writer outputs it starts from.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// The cargo-fuzz target's name.
    pub name: &'static str,
    /// The invariants, for any input bytes: `Ok(true)` when the input read as a value,
    /// `Ok(false)` when it was refused (as serde refuses it), `Err` with the first broken one.
    pub check: fn(&[u8]) -> Result<bool, String>,
    /// Named seed inputs: what the writer writes.
    pub seeds: fn() -> Vec<(&'static str, Vec<u8>)>,
}

/// Every target, one per hand-written reader.
pub const TARGETS: &[Target] = &[
    Target {
        name: "raw_record_json",
        check: check_raw_record_json,
        seeds: raw_record_seeds,
    },
    Target {
        name: "event_json",
        check: check_event_json,
        seeds: event_seeds,
    },
];

/// Checks [`RawRecordReader`] on `data`: read whole by a fresh reader, then, when `data` holds
/// several lines, line by line through one reader and one writer, so the reuse of the previous
/// record's pod metadata and `service` is exercised too. For every piece the reader returns
/// what serde returns, and a record it reads is written as serde writes it and reads back
/// equal. `true` when some piece read as a record.
///
/// # Errors
/// A description of the first broken invariant.
pub fn check_raw_record_json(data: &[u8]) -> Result<bool, String> {
    let mut reader = RawRecordReader::default();
    let mut writer = RawRecordWriter::default();
    let mut read = check_raw_record(&mut reader, &mut writer, data)?;
    if data.contains(&b'\n') {
        let mut reader = RawRecordReader::default();
        for (i, line) in data.split(|&b| b == b'\n').enumerate() {
            read |= check_raw_record(&mut reader, &mut writer, line)
                .map_err(|e| format!("line {i}: {e}"))?;
        }
    }
    Ok(read)
}

fn check_raw_record(
    reader: &mut RawRecordReader,
    writer: &mut RawRecordWriter,
    json: &[u8],
) -> Result<bool, String> {
    let serde = serde_json::from_slice::<RawRecord>(json);
    let Some(record) = agree(reader.read(json), serde)? else {
        return Ok(false);
    };
    let mut written = Vec::new();
    writer
        .write(&record, &mut written)
        .map_err(|e| format!("the writer failed: {e}"))?;
    let expected = serde_json::to_vec(&record).map_err(|e| format!("serde failed: {e}"))?;
    same_bytes(&written, &expected)?;
    let back = reader
        .read(&written)
        .map_err(|e| format!("the writer's output does not read back: {e}"))?;
    if back != record {
        return Err(format!("read back {back:?}, wrote {record:?}"));
    }
    Ok(true)
}

/// Checks [`read_event_json`] on `data`: it returns what serde returns, and an event it reads
/// is written by [`write_event_json`] as serde writes it and reads back as serde reads it
/// (equal to the event itself unless `app` holds floats, which serde_json reads back exactly
/// only with its `float_roundtrip` feature). `true` when `data` read as an event.
///
/// # Errors
/// A description of the first broken invariant.
pub fn check_event_json(data: &[u8]) -> Result<bool, String> {
    let serde = serde_json::from_slice::<LogEvent>(data);
    let Some(event) = agree(read_event_json(data), serde)? else {
        return Ok(false);
    };
    let mut written = Vec::new();
    write_event_json(&event, &mut written).map_err(|e| format!("the writer failed: {e}"))?;
    let expected = serde_json::to_vec(&event).map_err(|e| format!("serde failed: {e}"))?;
    same_bytes(&written, &expected)?;
    let serde = serde_json::from_slice::<LogEvent>(&written);
    let back =
        agree(read_event_json(&written), serde)?.ok_or("the writer's output does not read back")?;
    let floats = event.app.iter().any(|(_, v)| has_float(v));
    if !floats && back != event {
        return Err(format!("read back {back:?}, wrote {event:?}"));
    }
    Ok(true)
}

/// The value when both results are the same `Ok`, `None` when both are the same error.
fn agree<T: PartialEq + Debug>(
    ours: serde_json::Result<T>,
    serde: serde_json::Result<T>,
) -> Result<Option<T>, String> {
    match (ours, serde) {
        (Ok(ours), Ok(serde)) if ours == serde => Ok(Some(ours)),
        (Err(ours), Err(serde))
            if ours.to_string() == serde.to_string() && ours.classify() == serde.classify() =>
        {
            Ok(None)
        }
        (ours, serde) => Err(format!("the reader returned {ours:?}, serde {serde:?}")),
    }
}

fn same_bytes(ours: &[u8], serde: &[u8]) -> Result<(), String> {
    if ours == serde {
        return Ok(());
    }
    Err(format!(
        "the writer wrote {:?}, serde {:?}",
        String::from_utf8_lossy(ours),
        String::from_utf8_lossy(serde)
    ))
}

fn has_float(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.is_f64(),
        Value::Array(items) => items.iter().any(has_float),
        Value::Object(map) => map.values().any(has_float),
        Value::Null | Value::Bool(_) | Value::String(_) => false,
    }
}

/// Text with every kind of byte the string escaper and reader handle: quotes, backslashes,
/// control characters, DEL, two- to four-byte UTF-8 and something that looks like an escape.
const AWKWARD: &str = "{\"msg\": \"tab\there\"}\\ \u{1} caf\u{e9} \u{7f} \u{20ac}\u{1f600} \\u00e9";

fn time(rfc3339: &str) -> DateTime<Utc> {
    rfc3339
        .parse()
        .expect("the seeds' timestamps are valid RFC 3339")
}

fn source(offset: u64) -> SourceRef {
    SourceRef {
        path: "/var/log/pods/shop_api-1_u-1/api/0.log".into(),
        file_id: u64::MAX,
        offset,
        end_offset: offset + 120,
    }
}

fn pod() -> Kubernetes {
    let mut k = Kubernetes {
        namespace: Some("shop".into()),
        ..Kubernetes::default()
    };
    (k.pod.name, k.pod.uid) = (Some("api-1".into()), Some("u-1".into()));
    k.container.name = Some("api".into());
    k.node.name = Some("node-1".into());
    k.labels.insert("app".into(), "api".into());
    k.labels.insert("tier".into(), "web".into());
    k
}

/// Raw records as [`RawRecordWriter`] writes them: one with every field set, a minimal one,
/// three lines of one pod (one `Arc`, so the reader reuses the metadata), and lines with the
/// timestamps only chrono reads.
pub fn raw_record_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut full = RawRecord::new(AWKWARD, source(10));
    full.time = Some(time("2026-12-04T21:55:26.120Z"));
    full.stream = Some(Stream::Stderr);
    full.kubernetes = Arc::new(pod());
    full.service = Some("api".into());
    full.errors = vec!["line_truncated".into(), "invalid_utf8".into()];
    full.lines = 3;
    let minimal = RawRecord::new("", SourceRef::default());
    let kubernetes = Arc::new(pod());
    let service: Arc<str> = Arc::from("api");
    let lines: Vec<RawRecord> = (0..3u32)
        .map(|i| {
            let mut r = RawRecord::new(format!("GET /item/{i} 200"), source(u64::from(i) * 120));
            r.time = Some(time("2026-12-04T21:55:26.000123Z"));
            r.stream = Some(Stream::Stdout);
            (r.kubernetes, r.service) = (kubernetes.clone(), Some(service.clone()));
            r
        })
        .collect();
    let mut writer = RawRecordWriter::default();
    let mut write = |records: &[RawRecord]| {
        let mut out = Vec::new();
        for (i, r) in records.iter().enumerate() {
            if i > 0 {
                out.push(b'\n');
            }
            let written = writer.write(r, &mut out);
            debug_assert!(written.is_ok(), "a record with a year in 0..=9999 writes");
        }
        out
    };
    // Times the fast paths leave to chrono: a leap second, years past 9999 and before 0.
    let edge_times: Vec<RawRecord> = [
        "2016-12-31T23:59:60.5Z",
        "+10000-01-01T00:00:00Z",
        "-0001-12-31T23:59:59.000000001Z",
    ]
    .into_iter()
    .map(|t| {
        let mut r = RawRecord::new("m", SourceRef::default());
        r.time = Some(time(t));
        r
    })
    .collect();
    vec![
        ("full", write(std::slice::from_ref(&full))),
        ("minimal", write(&[minimal])),
        ("one_pod_lines", write(&lines)),
        ("edge_times", write(&edge_times)),
    ]
}

/// An event with every field set, `app` holding every JSON type, nested (the one the
/// writer's pinned-format test pins).
pub fn full_event() -> LogEvent {
    let mut ev = LogEvent::new(
        time("2026-12-04T21:55:26.120Z"),
        "GET /x \"q\"\t\u{1} caf\u{e9} \u{7f}",
    );
    ev.log.level = Some(Level::Error);
    ev.log.logger = Some("app.web".into());
    ev.service.name = Some("api".into());
    ev.kubernetes = pod();
    ev.stream = Some(Stream::Stderr);
    let request = &mut ev.http.request;
    (request.method, request.referrer) = (Some("GET".into()), Some("-".into()));
    (ev.http.response.status_code, ev.http.response.bytes) = (Some(503), Some(u64::MAX));
    ev.http.version = Some("1.1".into());
    let url = &mut ev.url;
    (url.path, url.query) = (Some("/x".into()), Some("a=1".into()));
    url.original = Some("/x?a=1".into());
    ev.client.ip = Some("10.0.0.1".into());
    ev.user.name = Some("bob".into());
    ev.user_agent.original = Some("curl/8".into());
    (ev.trace.id, ev.span.id) = (Some("t".into()), Some("s".into()));
    let error = &mut ev.error;
    (error.kind, error.message) = (Some("E".into()), Some("boom".into()));
    error.stack_trace = Some("at a\n\tat b".into());
    let info = &mut ev.event;
    (info.id, info.duration) = ("0123".into(), Some(-5));
    info.original = Some("raw \\ line".into());
    info.dataset = Some("nginx.access".into());
    info.ingested = Some(time("2026-12-04T21:55:27.000123456Z"));
    ev.app.insert("n".into(), serde_json::json!(-7));
    ev.app.insert("f".into(), serde_json::json!(0.1));
    let nested = serde_json::json!({"b": [true, null, 1e300], "a": {}, "c": []});
    ev.app.insert("o".into(), nested);
    ev.tags = vec!["t1".into(), String::new()];
    ev.sluice.source = SourceRef {
        path: "/var/log/pods/a/0.log".into(),
        file_id: 1,
        offset: 2,
        end_offset: 3,
    };
    ev.sluice.format = Some("nginx_combined".into());
    let pattern = &mut ev.sluice.pattern;
    (pattern.id, pattern.template) = (Some("p".into()), Some("GET <*>".into()));
    ev.sluice.redacted = vec!["jwt".into()];
    ev.sluice.errors = vec!["line_truncated".into()];
    ev
}

/// Events as [`write_event_json`] writes them: [`full_event`], the same with every kind of
/// awkward text and more `app` values, and a minimal one.
pub fn event_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut awkward = full_event();
    awkward.message = AWKWARD.into();
    awkward
        .app
        .insert(AWKWARD.into(), serde_json::json!(AWKWARD));
    awkward.app.insert(
        "u".into(),
        serde_json::json!([12, -0.5, false, "\u{8}\u{c}\r", {}]),
    );
    let minimal = LogEvent::new(DateTime::<Utc>::UNIX_EPOCH, "");
    let write = |event: &LogEvent| {
        let mut out = Vec::new();
        let written = write_event_json(event, &mut out);
        debug_assert!(written.is_ok(), "an event with years in 0..=9999 writes");
        out
    };
    vec![
        ("full", write(&full_event())),
        ("awkward", write(&awkward)),
        ("minimal", write(&minimal)),
    ]
}

/// Bytes that matter to a JSON reader, inserted more often than random ones.
const JSON_BYTES: &[u8] = b"\"\\{}[],:-+.0123456789eEuZTtnf ";

/// Multi-byte UTF-8, escapes and invalid UTF-8, inserted whole.
const PIECES: &[&[u8]] = &[
    "\u{e9}".as_bytes(),
    "\u{20ac}".as_bytes(),
    "\u{1f600}".as_bytes(),
    b"\\u00e9",
    b"\\ud83d\\ude00",
    b"\\ud83d",
    b"\\b\\f\\r\\/",
    b"\xff",
    b"\xc3",
    b"null",
    b"\n",
];

/// Spellings put where a value starts (after `:`, `[` or `,`): signs, leading zeros, other
/// number forms, whitespace, `null` and escapes, the near misses the readers' fast paths must
/// leave to serde.
const VALUE_STARTS: &[&[u8]] = &[
    b"0",
    b"-",
    b"-0,",
    b"1",
    b"9",
    b".5",
    b"e1",
    b"1.0",
    b" ",
    b"\t",
    b"null,",
    b"\"\\u0000\",",
];

/// Deterministic mutations of JSON documents (xorshift64*, so a failure reproduces from its
/// iteration number): byte flips, truncations, deletions, repeats (duplicate keys), insertions
/// of JSON's punctuation, digits, escapes and unicode, splices from another document, and
/// near-miss spellings where a value starts.
#[derive(Debug, Clone)]
pub struct Mutator {
    state: u64,
}

impl Mutator {
    /// A mutator whose sequence is fixed by `seed` (any value; zero is replaced).
    pub fn new(seed: u64) -> Mutator {
        Mutator { state: seed.max(1) }
    }

    fn next(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        match u64::try_from(n) {
            Ok(0) | Err(_) => 0,
            Ok(n) => usize::try_from(self.next() % n).unwrap_or(0),
        }
    }

    /// Applies one to three mutations to `data`, splicing from `other` at times.
    pub fn mutate(&mut self, data: &mut Vec<u8>, other: &[u8]) {
        for _ in 0..=self.below(2) {
            let at = self.below(data.len() + 1);
            let len = self.below(data.len() - at + 1).min(1 + self.below(24));
            match self.below(10) {
                0 if at < data.len() => data[at] ^= 1 << self.below(8),
                1 => data.insert(at, JSON_BYTES[self.below(JSON_BYTES.len())]),
                2 => data.insert(at, self.next().to_le_bytes()[0]),
                3 => {
                    data.drain(at..at + len);
                }
                4 => {
                    let chunk = data[at..at + len].to_vec();
                    let to = self.below(data.len() + 1);
                    data.splice(to..to, chunk);
                }
                5 => data.truncate(at),
                6 => {
                    let from = self.below(other.len());
                    let chunk = other[from..].iter().take(1 + self.below(32)).copied();
                    data.splice(at..at, chunk);
                }
                7 => {
                    let piece = PIECES[self.below(PIECES.len())];
                    data.splice(at..at, piece.iter().copied());
                }
                _ => {
                    let starts = data.iter().filter(|b| b"[:,".contains(b)).count();
                    let nth = self.below(starts);
                    let mut positions = (0..data.len()).filter(|&i| b"[:,".contains(&data[i]));
                    let at = positions.nth(nth).map_or(0, |i| i + 1);
                    let piece = VALUE_STARTS[self.below(VALUE_STARTS.len())];
                    data.splice(at..at, piece.iter().copied());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each seed passes its target's check and is read on the reader's fast path, so
    /// mutations start from the layout the fast path reads.
    #[test]
    fn seeds_pass_their_checks() {
        for target in TARGETS {
            for (name, seed) in (target.seeds)() {
                assert_eq!((target.check)(&seed), Ok(true), "{} {name}", target.name);
            }
        }
    }

    /// The checks fail when the reader and serde disagree, on values and on errors.
    #[test]
    fn agree_catches_differences() {
        let err = |json: &str| serde_json::from_str::<u32>(json);
        assert_eq!(agree(Ok(1u32), Ok(1)), Ok(Some(1)));
        assert!(agree(Ok(1u32), Ok(2)).is_err());
        assert!(agree(Ok(1u32), err("x")).is_err());
        assert_eq!(agree(err("x"), err("x")), Ok(None));
        assert!(agree(err("x"), err(" x")).is_err());
        assert!(same_bytes(b"{}", b"{ }").is_err());
    }

    /// The mutator changes its input and is deterministic.
    #[test]
    fn mutator_is_deterministic() {
        let seed = b"{\"v\":1,\"message\":\"m\"}".to_vec();
        let run = || {
            let mut m = Mutator::new(7);
            (0..50)
                .map(|_| {
                    let mut data = seed.clone();
                    m.mutate(&mut data, b"\"x\":[1,2]");
                    data
                })
                .collect::<Vec<_>>()
        };
        let outputs = run();
        assert_eq!(outputs, run());
        assert!(outputs.iter().filter(|d| **d != seed).count() > 40);
    }
}
