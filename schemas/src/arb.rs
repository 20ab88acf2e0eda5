//! proptest generators for the shared types, used by the tests of every module that writes or
//! reads them (one generator per type, so each test covers the same shapes).

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::Value;

use crate::{AppFields, Kubernetes, Level, LogEvent, SourceRef, Stream};

pub(crate) fn arb_time() -> impl Strategy<Value = DateTime<Utc>> {
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

pub(crate) fn arb_text() -> impl Strategy<Value = String> {
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

/// Pod metadata with each field present or absent, labels included.
pub(crate) fn arb_kubernetes() -> impl Strategy<Value = Kubernetes> {
    (
        proptest::option::of(arb_text()),
        (
            proptest::option::of(arb_text()),
            proptest::option::of(arb_text()),
        ),
        proptest::option::of(arb_text()),
        proptest::option::of(arb_text()),
        proptest::collection::btree_map(arb_text(), arb_text(), 0..3),
    )
        .prop_map(|(namespace, (pod, uid), container, node, labels)| {
            let mut k = Kubernetes {
                namespace,
                labels,
                ..Kubernetes::default()
            };
            (k.pod.name, k.pod.uid) = (pod, uid);
            k.container.name = container;
            k.node.name = node;
            k
        })
}

/// A JSON value of any type, nested two deep, with escapes in strings and every number kind.
pub(crate) fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[a-z\"\\\\\u{0}-\u{1f}\u{e9}\u{1f600}]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-c]{0,2}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_opt_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(arb_text())
}

/// A log event with every optional field present or absent (so every group is sometimes
/// empty and left out), text heavy on escapes, `app` values of every JSON type.
pub(crate) fn arb_event() -> impl Strategy<Value = LogEvent> {
    let head = (
        arb_time(),
        arb_text(),
        proptest::option::of(proptest::sample::select(Level::ALL.to_vec())),
        arb_opt_text(),
        arb_opt_text(),
        prop_oneof![Just(Kubernetes::default()), arb_kubernetes()],
        proptest::option::of(prop_oneof![Just(Stream::Stdout), Just(Stream::Stderr)]),
    );
    let http = (
        (arb_opt_text(), arb_opt_text(), arb_opt_text()),
        proptest::option::of(any::<u16>()),
        proptest::option::of(any::<u64>()),
        (arb_opt_text(), arb_opt_text(), arb_opt_text()),
        (arb_opt_text(), arb_opt_text(), arb_opt_text()),
    );
    let ids = (
        (arb_opt_text(), arb_opt_text()),
        (arb_opt_text(), arb_opt_text(), arb_opt_text()),
        arb_text(),
        proptest::option::of(any::<i64>()),
        (arb_opt_text(), arb_opt_text()),
        proptest::option::of(arb_time()),
    );
    let tail = (
        proptest::collection::vec((prop_oneof![arb_text(), "[a-c_.]{0,3}"], arb_value()), 0..4),
        proptest::collection::vec(arb_text(), 0..3),
        (arb_text(), any::<u64>(), any::<u64>(), any::<u64>()),
        (arb_opt_text(), arb_opt_text(), arb_opt_text()),
        proptest::collection::vec(arb_text(), 0..3),
        proptest::collection::vec(arb_text(), 0..3),
    );
    (head, http, ids, tail).prop_map(|(head, http, ids, tail)| {
        let (timestamp, message, level, logger, service, kubernetes, stream) = head;
        let mut ev = LogEvent::new(timestamp, message);
        (ev.log.level, ev.log.logger, ev.service.name) = (level, logger, service);
        (ev.kubernetes, ev.stream) = (kubernetes, stream);
        let ((method, referrer, version), status_code, bytes, url, rest) = http;
        (ev.http.request.method, ev.http.request.referrer) = (method, referrer);
        (ev.http.response.status_code, ev.http.response.bytes) = (status_code, bytes);
        ev.http.version = version;
        (ev.url.path, ev.url.query, ev.url.original) = url;
        (ev.client.ip, ev.user.name, ev.user_agent.original) = rest;
        let ((trace, span), error, id, duration, (original, dataset), ingested) = ids;
        (ev.trace.id, ev.span.id) = (trace, span);
        (ev.error.kind, ev.error.message, ev.error.stack_trace) = error;
        (ev.event.id, ev.event.duration, ev.event.ingested) = (id, duration, ingested);
        (ev.event.original, ev.event.dataset) = (original, dataset);
        let (app, tags, (path, file_id, offset, end_offset), pattern, redacted, errors) = tail;
        ev.app = AppFields::from_unsorted(app);
        ev.tags = tags;
        ev.sluice.source = SourceRef {
            path,
            file_id,
            offset,
            end_offset,
        };
        let (format, pattern_id, template) = pattern;
        ev.sluice.format = format.map(Cow::Owned);
        (ev.sluice.pattern.id, ev.sluice.pattern.template) = (pattern_id, template);
        (ev.sluice.redacted, ev.sluice.errors) = (redacted, errors);
        ev
    })
}

/// Damage to a JSON document, for readers that must fail exactly as serde does: a few bytes
/// overwritten (often with JSON's own punctuation, digits and escapes) and maybe a cut.
#[derive(Debug, Clone)]
pub(crate) struct Damage {
    edits: Vec<(Index, u8)>,
    cut: Option<Index>,
}

impl Damage {
    /// Applies the damage to `json` (not empty).
    pub(crate) fn apply(&self, json: &mut Vec<u8>) {
        for (at, byte) in &self.edits {
            let i = at.index(json.len());
            json[i] = *byte;
        }
        if let Some(cut) = &self.cut {
            json.truncate(cut.index(json.len() + 1));
        }
    }
}

pub(crate) fn arb_damage() -> impl Strategy<Value = Damage> {
    let byte = prop_oneof![
        any::<u8>(),
        proptest::sample::select(b"\"\\{}[],:0123456789.eE+-uZTtn /".to_vec()),
    ];
    (
        proptest::collection::vec((any::<Index>(), byte), 0..4),
        proptest::option::of(any::<Index>()),
    )
        .prop_map(|(edits, cut)| Damage { edits, cut })
}
