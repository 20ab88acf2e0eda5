//! What the agent ships: one reassembled container log record and where it came from.
//!
//! [`RawRecordWriter`] writes a record's JSON several times faster than `serde_json` (the
//! agent's hot path), byte for byte the same.

use std::sync::Arc;

use chrono::{DateTime, Datelike, Timelike, Utc};
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

/// Writes [`RawRecord`]s as JSON, byte for byte what `serde_json::to_writer` writes (the wire
/// format), at a fraction of its cost: strings are escaped eight bytes at a time, and the pod
/// metadata, which every record of a file shares (one `Arc`), is serialized once per file
/// instead of once per record. serde_json's escaping was a quarter of the agent thread's CPU.
#[derive(Debug, Default)]
pub struct RawRecordWriter {
    /// The last record's pod metadata and its JSON (empty when the field is left out). Holding
    /// the `Arc` keeps its address from being reused, so pointer equality means same content
    /// (`Arc::make_mut` on a shared `Arc` moves the copy to a new address).
    kubernetes: Option<(Arc<Kubernetes>, Vec<u8>)>,
}

impl RawRecordWriter {
    /// Appends `record`'s JSON to `out`.
    ///
    /// # Errors
    /// Only what `serde_json` would return for the pod metadata or an out-of-range timestamp
    /// (neither fails for the types involved).
    pub fn write(&mut self, record: &RawRecord, out: &mut Vec<u8>) -> serde_json::Result<()> {
        out.extend_from_slice(b"{\"v\":");
        write_u64(out, u64::from(record.v));
        if let Some(time) = &record.time {
            out.extend_from_slice(b",\"time\":");
            write_time(out, time)?;
        }
        if let Some(stream) = record.stream {
            out.extend_from_slice(b",\"stream\":");
            write_json_str(out, stream.as_str());
        }
        out.extend_from_slice(b",\"message\":");
        write_json_str(out, &record.message);
        let source = &record.source;
        out.extend_from_slice(b",\"source\":{\"path\":");
        write_json_str(out, &source.path);
        out.extend_from_slice(b",\"file_id\":");
        write_u64(out, source.file_id);
        out.extend_from_slice(b",\"offset\":");
        write_u64(out, source.offset);
        out.extend_from_slice(b",\"end_offset\":");
        write_u64(out, source.end_offset);
        out.push(b'}');
        out.extend_from_slice(self.kubernetes_json(&record.kubernetes)?);
        if let Some(service) = &record.service {
            out.extend_from_slice(b",\"service\":");
            write_json_str(out, service);
        }
        if !record.errors.is_empty() {
            out.extend_from_slice(b",\"errors\":[");
            for (i, error) in record.errors.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json_str(out, error);
            }
            out.push(b']');
        }
        if !is_one(&record.lines) {
            out.extend_from_slice(b",\"lines\":");
            write_u64(out, u64::from(record.lines));
        }
        out.push(b'}');
        Ok(())
    }

    /// `,"kubernetes":{..}` for `k`, or nothing when it is empty; cached per `Arc`.
    fn kubernetes_json(&mut self, k: &Arc<Kubernetes>) -> serde_json::Result<&[u8]> {
        let cached = self
            .kubernetes
            .as_ref()
            .is_some_and(|(last, _)| Arc::ptr_eq(last, k));
        if !cached {
            let mut json = Vec::new();
            if !is_empty_kubernetes(k) {
                json.extend_from_slice(b",\"kubernetes\":");
                serde_json::to_writer(&mut json, &**k)?;
            }
            self.kubernetes = Some((k.clone(), json));
        }
        Ok(self.kubernetes.as_ref().map_or(&[], |(_, json)| json))
    }
}

/// Appends `s` as a JSON string, quotes included, escaped as `serde_json` escapes it: `\"`,
/// `\\`, `\b \f \n \r \t`, every other byte below 0x20 as `\u00xx` (lowercase hex), everything
/// else (DEL and non-ASCII UTF-8 included) as is.
pub(crate) fn write_json_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut copied = 0;
    while let Some(i) = next_escape(bytes, copied) {
        out.extend_from_slice(&bytes[copied..i]);
        push_escape(out, bytes[i]);
        copied = i + 1;
    }
    out.extend_from_slice(&bytes[copied..]);
    out.push(b'"');
}

/// True for the bytes JSON strings must escape.
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Index of the first byte at or after `from` that needs escaping. Eight bytes at a time: the
/// classic "has a zero byte" bit trick for `"`, `\` and bytes below 0x20. Its false positives
/// only ever sit above a true one (a borrow runs upwards), so the lowest flagged byte is exact.
fn next_escape(bytes: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut i = from;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let w = u64::from_le_bytes(chunk.try_into().expect("an 8-byte slice"));
        let quote = w ^ (ONES * u64::from(b'"'));
        let backslash = w ^ (ONES * u64::from(b'\\'));
        let flagged = (w.wrapping_sub(ONES * 0x20) & !w
            | quote.wrapping_sub(ONES) & !quote
            | backslash.wrapping_sub(ONES) & !backslash)
            & HIGHS;
        if flagged != 0 {
            return Some(i + (flagged.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    bytes[i.min(bytes.len())..]
        .iter()
        .position(|&b| needs_escape(b))
        .map(|p| i + p)
}

fn push_escape(out: &mut Vec<u8>, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match b {
        b'"' => out.extend_from_slice(b"\\\""),
        b'\\' => out.extend_from_slice(b"\\\\"),
        0x08 => out.extend_from_slice(b"\\b"),
        0x0c => out.extend_from_slice(b"\\f"),
        b'\n' => out.extend_from_slice(b"\\n"),
        b'\r' => out.extend_from_slice(b"\\r"),
        b'\t' => out.extend_from_slice(b"\\t"),
        _ => out.extend_from_slice(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX[usize::from(b >> 4)],
            HEX[usize::from(b & 0xf)],
        ]),
    }
}

fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

/// Two decimal digits of `n` (below 100).
fn push_2_digits(out: &mut Vec<u8>, n: u32) {
    out.extend_from_slice(&[b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8]);
}

/// A UTC timestamp as chrono's `Serialize` writes it: RFC 3339 with `Z` and 0, 3, 6 or 9
/// fraction digits (the fewest that are exact), a leap second as `:60`. Years outside
/// 0..=9999 (a sign and more digits) go through chrono itself.
fn write_time(out: &mut Vec<u8>, t: &DateTime<Utc>) -> serde_json::Result<()> {
    let Ok(year) = u32::try_from(t.year()) else {
        return serde_json::to_writer(out, t);
    };
    if year > 9999 {
        return serde_json::to_writer(out, t);
    }
    let (mut second, mut nano) = (t.second(), t.nanosecond());
    if nano >= 1_000_000_000 {
        second += 1;
        nano -= 1_000_000_000;
    }
    out.push(b'"');
    push_2_digits(out, year / 100);
    push_2_digits(out, year % 100);
    out.push(b'-');
    push_2_digits(out, t.month());
    out.push(b'-');
    push_2_digits(out, t.day());
    out.push(b'T');
    push_2_digits(out, t.hour());
    out.push(b':');
    push_2_digits(out, t.minute());
    out.push(b':');
    push_2_digits(out, second);
    let (fraction, digits) = if nano == 0 {
        (0, 0)
    } else if nano % 1_000_000 == 0 {
        (nano / 1_000_000, 3)
    } else if nano % 1_000 == 0 {
        (nano / 1_000, 6)
    } else {
        (nano, 9)
    };
    if digits > 0 {
        out.push(b'.');
        let mut buf = [0u8; 9];
        let mut f = fraction;
        for d in buf[..digits].iter_mut().rev() {
            *d = b'0' + (f % 10) as u8;
            f /= 10;
        }
        out.extend_from_slice(&buf[..digits]);
    }
    out.extend_from_slice(b"Z\"");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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

    /// The bytes on the raw topic, pinned: a record with every field set, written by
    /// [`RawRecordWriter`] and by serde, and read back equal.
    #[test]
    fn writer_output_is_the_pinned_wire_format() -> Result<(), Box<dyn std::error::Error>> {
        let mut r = RawRecord::new(
            "{\"msg\": \"tab\there\"}\\ \u{1} caf\u{e9} \u{7f}",
            SourceRef {
                path: "/var/log/pods/ns_p_u/c/0.log".into(),
                file_id: u64::MAX,
                offset: 10,
                end_offset: 99,
            },
        );
        r.time = Some("2026-12-04T21:55:26.120Z".parse()?);
        r.stream = Some(Stream::Stderr);
        let k = Arc::make_mut(&mut r.kubernetes);
        k.pod.uid = Some("u".into());
        r.service = Some("web".into());
        r.errors = vec!["line_truncated".into(), "invalid_utf8".into()];
        r.lines = 3;
        let pinned = concat!(
            r#"{"v":1,"time":"2026-12-04T21:55:26.120Z","stream":"stderr","#,
            r#""message":"{\"msg\": \"tab\there\"}\\ \u0001 café "#,
            "\u{7f}\",",
            r#""source":{"path":"/var/log/pods/ns_p_u/c/0.log","file_id":18446744073709551615,"offset":10,"end_offset":99},"#,
            r#""kubernetes":{"pod":{"uid":"u"}},"service":"web","errors":["line_truncated","invalid_utf8"],"lines":3}"#
        );
        let mut out = Vec::new();
        RawRecordWriter::default().write(&r, &mut out)?;
        assert_eq!(String::from_utf8(out)?, pinned);
        assert_eq!(serde_json::to_string(&r)?, pinned);
        assert_eq!(serde_json::from_str::<RawRecord>(pinned)?, r);
        Ok(())
    }

    fn arb_time() -> impl Strategy<Value = DateTime<Utc>> {
        let fraction = prop_oneof![
            Just(0u32),
            (0u32..1000).prop_map(|m| m * 1_000_000),
            (0u32..1_000_000).prop_map(|u| u * 1000),
            0u32..1_000_000_000,
        ];
        prop_oneof![
            // Around now, with every fraction width.
            (1_700_000_000i64..1_900_000_000, fraction),
            // Any representable instant, including years outside 0..=9999.
            (
                -8_000_000_000_000i64..8_000_000_000_000,
                0u32..1_000_000_000
            ),
        ]
        .prop_filter_map("representable", |(secs, nanos)| {
            DateTime::from_timestamp(secs, nanos)
        })
    }

    fn arb_text() -> impl Strategy<Value = String> {
        // Heavy on what needs escaping, plus multi-byte characters and DEL.
        proptest::collection::vec(
            prop_oneof![
                4 => proptest::char::range(' ', '~'),
                2 => proptest::char::range('\u{0}', '\u{1f}'),
                1 => Just('"'),
                1 => Just('\\'),
                1 => Just('\u{7f}'),
                1 => proptest::char::any(),
            ],
            0..80,
        )
        .prop_map(|chars| chars.into_iter().collect())
    }

    fn arb_kubernetes() -> impl Strategy<Value = Kubernetes> {
        (
            proptest::option::of(arb_text()),
            proptest::option::of(arb_text()),
            proptest::option::of(arb_text()),
            proptest::collection::btree_map(arb_text(), arb_text(), 0..3),
        )
            .prop_map(|(namespace, uid, container, labels)| {
                let mut k = Kubernetes {
                    namespace,
                    labels,
                    ..Kubernetes::default()
                };
                k.pod.uid = uid;
                k.container.name = container;
                k
            })
    }

    fn arb_record() -> impl Strategy<Value = RawRecord> {
        (
            (
                any::<u32>(),
                proptest::option::of(arb_time()),
                proptest::option::of(prop_oneof![Just(Stream::Stdout), Just(Stream::Stderr)]),
                arb_text(),
            ),
            (arb_text(), any::<u64>(), any::<u64>(), any::<u64>()),
            (
                proptest::option::of(arb_text()),
                proptest::collection::vec(arb_text(), 0..3),
                prop_oneof![Just(1u32), any::<u32>()],
            ),
        )
            .prop_map(
                |((v, time, stream, message), (path, file_id, offset, end_offset), rest)| {
                    let (service, errors, lines) = rest;
                    RawRecord {
                        v,
                        time,
                        stream,
                        message,
                        source: SourceRef {
                            path,
                            file_id,
                            offset,
                            end_offset,
                        },
                        kubernetes: Arc::default(),
                        service: service.map(Arc::from),
                        errors,
                        lines,
                    }
                },
            )
    }

    proptest! {
        /// Records of a few files, each file's records sharing one pod metadata `Arc` as the
        /// tailer builds them, interleaved, through one writer: serde_json's exact bytes.
        #[test]
        fn writer_matches_serde_json_byte_for_byte(
            pods in proptest::collection::vec(
                prop_oneof![Just(Kubernetes::default()), arb_kubernetes()],
                1..4,
            ),
            records in proptest::collection::vec(
                (any::<proptest::sample::Index>(), arb_record()),
                1..12,
            ),
        ) {
            let pods: Vec<Arc<Kubernetes>> = pods.into_iter().map(Arc::new).collect();
            let mut writer = RawRecordWriter::default();
            let mut out = Vec::new();
            for (pod, mut record) in records {
                record.kubernetes = pods[pod.index(pods.len())].clone();
                out.clear();
                writer.write(&record, &mut out).expect("write");
                let expected = serde_json::to_vec(&record).expect("serialize");
                prop_assert_eq!(
                    String::from_utf8_lossy(&out),
                    String::from_utf8_lossy(&expected)
                );
            }
        }

        /// Every ASCII byte at every position of a word, and leap seconds (a nanosecond field
        /// of 1e9 and more): the string and time writers alone.
        #[test]
        fn escapes_at_every_offset_and_leap_seconds(
            prefix in 0usize..17,
            escaped in proptest::char::range('\u{0}', '\u{7f}'),
            leap_nanos in 1_000_000_000u32..2_000_000_000,
            day in 0i32..20_000,
        ) {
            let text: String = std::iter::repeat_n('a', prefix).chain([escaped, 'b']).collect();
            let mut out = Vec::new();
            write_json_str(&mut out, &text);
            prop_assert_eq!(out, serde_json::to_vec(&text).expect("serialize"));
            let leap = chrono::NaiveDate::from_num_days_from_ce_opt(719_163 + day)
                .and_then(|d| d.and_hms_nano_opt(23, 59, 59, leap_nanos))
                .map(|t| t.and_utc());
            prop_assert!(leap.is_some());
            if let Some(t) = leap {
                let mut out = Vec::new();
                write_time(&mut out, &t).expect("write");
                prop_assert_eq!(out, serde_json::to_vec(&t).expect("serialize"));
            }
        }
    }
}
