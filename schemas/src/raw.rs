//! What the agent ships: one reassembled container log record and where it came from.
//!
//! [`RawRecordWriter`] writes a record's JSON several times faster than `serde_json` (the
//! agent's hot path), byte for byte the same; [`RawRecordReader`] reads it back (the
//! processor's), to the same value serde reads.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::event_json::write_kubernetes;
use crate::json::{Cursor, write_json_str, write_time, write_u64};
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
    /// Only what `serde_json` would return for an out-of-range timestamp (it does not fail
    /// for the types involved).
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
        out.extend_from_slice(b",\"source\":");
        write_source(out, &record.source);
        out.extend_from_slice(self.kubernetes_json(&record.kubernetes));
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
    fn kubernetes_json(&mut self, k: &Arc<Kubernetes>) -> &[u8] {
        let cached = self
            .kubernetes
            .as_ref()
            .is_some_and(|(last, _)| Arc::ptr_eq(last, k));
        if !cached {
            let mut json = Vec::new();
            write_kubernetes(&mut json, k);
            self.kubernetes = Some((k.clone(), json));
        }
        self.kubernetes.as_ref().map_or(&[], |(_, json)| json)
    }
}

/// Appends `source` as JSON, byte for byte what serde writes (every field, in order).
pub(crate) fn write_source(out: &mut Vec<u8>, source: &SourceRef) {
    out.extend_from_slice(b"{\"path\":");
    write_json_str(out, &source.path);
    out.extend_from_slice(b",\"file_id\":");
    write_u64(out, source.file_id);
    out.extend_from_slice(b",\"offset\":");
    write_u64(out, source.offset);
    out.extend_from_slice(b",\"end_offset\":");
    write_u64(out, source.end_offset);
    out.push(b'}');
}

/// Reads raw records, equal to what `serde_json::from_slice` returns for the same bytes, at a
/// fraction of its cost on what [`RawRecordWriter`] writes: a straight pass over that exact
/// layout, with the pod metadata and `service` of the previous record reused (one `Arc` for a
/// file's records, as the agent had them) when their bytes repeat. Anything else (other field
/// orders, unknown fields, whitespace, surrogate escapes, invalid input) goes to `serde_json`,
/// so results and errors stay serde's. serde's decoding was about a third of a processor's CPU.
#[derive(Debug, Default)]
pub struct RawRecordReader {
    /// The last `kubernetes` value read and its JSON bytes.
    kubernetes: Option<(Vec<u8>, Arc<Kubernetes>)>,
    /// The last `service` read.
    service: Option<Arc<str>>,
}

impl RawRecordReader {
    /// Reads one record from its JSON.
    ///
    /// # Errors
    /// What `serde_json::from_slice::<RawRecord>` returns for `json`.
    pub fn read(&mut self, json: &[u8]) -> serde_json::Result<RawRecord> {
        match self.read_layout(json) {
            Some(record) => Ok(record),
            None => serde_json::from_slice(json),
        }
    }

    /// The fast path: `None` when `json` is not exactly the writer's layout.
    fn read_layout(&mut self, json: &[u8]) -> Option<RawRecord> {
        let mut c = Cursor {
            bytes: json,
            pos: 0,
        };
        c.eat(b"{\"v\":")?;
        let v = u32::try_from(c.number()?).ok()?;
        let time = match c.eat(b",\"time\":") {
            Some(()) => Some(c.time()?),
            None => None,
        };
        let stream = match c.eat(b",\"stream\":") {
            Some(()) => Some(match c.string()?.as_str() {
                "stdout" => Stream::Stdout,
                "stderr" => Stream::Stderr,
                _ => return None,
            }),
            None => None,
        };
        c.eat(b",\"message\":")?;
        let message = c.string()?;
        c.eat(b",\"source\":{\"path\":")?;
        let path = c.string()?;
        c.eat(b",\"file_id\":")?;
        let file_id = c.number()?;
        c.eat(b",\"offset\":")?;
        let offset = c.number()?;
        c.eat(b",\"end_offset\":")?;
        let end_offset = c.number()?;
        c.eat(b"}")?;
        let kubernetes = match c.eat(b",\"kubernetes\":") {
            Some(()) => self.kubernetes(&mut c)?,
            None => Arc::default(),
        };
        let service = match c.eat(b",\"service\":") {
            Some(()) => {
                let s = c.string()?;
                match &self.service {
                    Some(last) if **last == *s => Some(last.clone()),
                    _ => {
                        let s: Arc<str> = Arc::from(s);
                        self.service = Some(s.clone());
                        Some(s)
                    }
                }
            }
            None => None,
        };
        let mut errors = Vec::new();
        // `[]` is eaten by the second test.
        if c.eat(b",\"errors\":[").is_some() && c.eat(b"]").is_none() {
            loop {
                errors.push(c.string()?);
                if c.eat(b"]").is_some() {
                    break;
                }
                c.eat(b",")?;
            }
        }
        let lines = match c.eat(b",\"lines\":") {
            Some(()) => u32::try_from(c.number()?).ok()?,
            None => 1,
        };
        c.eat(b"}")?;
        if c.pos != json.len() {
            return None;
        }
        Some(RawRecord {
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
            kubernetes,
            service,
            errors,
            lines,
        })
    }

    /// The `kubernetes` object at the cursor: the previous record's when the bytes repeat it
    /// (a JSON object ends at its closing brace, so a repeated prefix is the same object),
    /// else read by serde and remembered.
    fn kubernetes(&mut self, c: &mut Cursor<'_>) -> Option<Arc<Kubernetes>> {
        let rest = &c.bytes[c.pos..];
        if let Some((bytes, k)) = &self.kubernetes
            && rest.starts_with(bytes)
        {
            c.pos += bytes.len();
            return Some(k.clone());
        }
        if rest.first() != Some(&b'{') {
            return None;
        }
        let mut values = serde_json::Deserializer::from_slice(rest).into_iter::<Kubernetes>();
        let k = Arc::new(values.next()?.ok()?);
        let len = values.byte_offset();
        self.kubernetes = Some((rest[..len].to_vec(), k.clone()));
        c.pos += len;
        Some(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arb::{arb_damage, arb_kubernetes, arb_text, arb_time};
    use chrono::Datelike;
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

    /// Spellings next to the writer's layout, each read exactly as serde reads it (value or
    /// error).
    #[test]
    fn reader_agrees_with_serde_on_near_misses() {
        let src = r#""source":{"path":"p","file_id":1,"offset":2,"end_offset":3}"#;
        let cases = [
            format!(r#"{{"v":1,"message":"m",{src}}}"#),
            format!(r#"{{"v":01,"message":"m",{src}}}"#),
            format!(r#"{{"v":1.0,"message":"m",{src}}}"#),
            format!(r#"{{"v":-1,"message":"m",{src}}}"#),
            format!(r#"{{"v":4294967296,"message":"m",{src}}}"#),
            format!(r#"{{"v":1,"message":"m",{src},"lines":0}}"#),
            format!(r#"{{"v":1,"message":"m",{src},"lines":1e0}}"#),
            format!(r#"{{"v":1,"message":"\ud83d\ude00 \u00e9 \u00E9 \/",{src}}}"#),
            format!(r#"{{"v":1,"message":"\ud83d",{src}}}"#),
            format!(r#"{{"v":1,"message":"\u00g9",{src}}}"#),
            format!(r#"{{"v":1,"message":"\x",{src}}}"#),
            format!("{{\"v\":1,\"message\":\"tab\there\",{src}}}"),
            format!("{{\"v\":1,\"message\":\"m\",{src}}} \n"),
            format!(r#"{{"message":"m","v":1,{src}}}"#),
            format!(r#"{{"v":1,"message":"m",{src},"extra":true}}"#),
            format!(r#"{{"v":1,"message":"m","message":"n",{src}}}"#),
            format!(r#"{{"v":1,"time":null,"message":"m",{src}}}"#),
            format!(r#"{{"v":1,"time":"2016-12-31T23:59:60Z","message":"m",{src}}}"#),
            format!(r#"{{"v":1,"time":"2016-12-31T23:59:59.5Z","message":"m",{src}}}"#),
            format!(r#"{{"v":1,"time":"2016-12-31T23:59:59.1234567891Z","message":"m",{src}}}"#),
            format!(r#"{{"v":1,"time":"2016-12-31T23:59:59+01:00","message":"m",{src}}}"#),
            format!(r#"{{"v":1,"time":"2016-12-31t23:59:59z","message":"m",{src}}}"#),
            format!(r#"{{"v":1,"time":"2016-02-30T23:59:59Z","message":"m",{src}}}"#),
            format!(r#"{{"v":1,"stream":"STDOUT","message":"m",{src}}}"#),
            format!(
                r#"{{"v":1,"message":"m",{src},"kubernetes":{{"namespace":"n"}},"service":"s"}}"#
            ),
            format!(r#"{{"v":1,"message":"m",{src},"kubernetes":{{"namespace":1}}}}"#),
            format!(r#"{{"v":1,"message":"m",{src},"kubernetes":null}}"#),
            format!(r#"{{"v":1,"message":"m",{src},"errors":[]}}"#),
            format!(r#"{{"v":1,"message":"m",{src},"errors":["a",]}}"#),
            format!(r#"{{"v":1,"message":"m",{src},"errors":["a","b"]}}"#),
            format!(r#"{{"v":1,"message":"m",{src}"#),
        ];
        let mut reader = RawRecordReader::default();
        for json in cases {
            let ours = reader.read(json.as_bytes()).map_err(|e| e.to_string());
            let serde = serde_json::from_str::<RawRecord>(&json).map_err(|e| e.to_string());
            assert_eq!(ours, serde, "{json}");
        }
        let invalid_utf8 = [
            br#"{"v":1,"message":""#.as_slice(),
            b"\xff\"",
            src.as_bytes(),
            b"}",
        ];
        let json = invalid_utf8.concat();
        let ours = reader.read(&json).map_err(|e| e.to_string());
        let serde = serde_json::from_slice::<RawRecord>(&json).map_err(|e| e.to_string());
        assert!(ours.is_err());
        assert_eq!(ours, serde);
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
                    let source = SourceRef {
                        path,
                        file_id,
                        offset,
                        end_offset,
                    };
                    let mut r = RawRecord::new(message, source);
                    (r.v, r.time, r.stream) = (v, time, stream);
                    (r.service, r.errors, r.lines) = (rest.0.map(Arc::from), rest.1, rest.2);
                    r
                },
            )
    }

    proptest! {
        /// Records of a few files, each file's records sharing one pod metadata `Arc` as the
        /// tailer builds them, interleaved, through one writer and one reader: the writer
        /// writes serde_json's exact bytes, the reader reads back what serde reads, and a
        /// file's records share one pod metadata `Arc` again.
        #[test]
        fn writer_and_reader_match_serde_json(
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
            let mut reader = RawRecordReader::default();
            let mut previous: Option<(usize, Arc<Kubernetes>)> = None;
            for (pod, mut record) in records {
                let pod = pod.index(pods.len());
                record.kubernetes = pods[pod].clone();
                let mut json = Vec::new();
                writer.write(&record, &mut json).expect("write");
                let expected = serde_json::to_vec(&record).expect("serialize");
                prop_assert_eq!(String::from_utf8_lossy(&json), String::from_utf8_lossy(&expected));
                let read = reader.read(&json).expect("read");
                prop_assert_eq!(&read, &serde_json::from_slice::<RawRecord>(&json).expect("serde"));
                prop_assert_eq!(&read, &record);
                // Years outside 0..=9999 are read by serde, which shares nothing.
                let fast_path = record.time.is_none_or(|t| (0..=9999).contains(&t.year()));
                if let Some((last_pod, last)) = &previous
                    && *last_pod == pod
                    && fast_path
                    && !pods[pod].is_empty()
                {
                    prop_assert!(Arc::ptr_eq(last, &read.kubernetes), "metadata shared again");
                }
                previous = fast_path.then(|| (pod, read.kubernetes.clone()));
            }
        }

        /// Whatever the bytes (the writer's with a byte changed, cut short or spelled another
        /// way by serde), the reader returns what serde returns: the same record or the same
        /// error.
        #[test]
        fn reader_agrees_with_serde_on_any_bytes(
            record in arb_record(),
            k in arb_kubernetes(),
            damage in arb_damage(),
            pretty in any::<bool>(),
        ) {
            let mut record = record;
            record.kubernetes = Arc::new(k);
            let mut json = if pretty {
                serde_json::to_vec_pretty(&record).expect("serialize")
            } else {
                let mut out = Vec::new();
                RawRecordWriter::default().write(&record, &mut out).expect("write");
                out
            };
            damage.apply(&mut json);
            let ours = RawRecordReader::default().read(&json).map_err(|e| e.to_string());
            let serde = serde_json::from_slice::<RawRecord>(&json).map_err(|e| e.to_string());
            prop_assert_eq!(ours, serde);
        }
    }
}
