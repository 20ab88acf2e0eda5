//! Property tests: arbitrary bytes never panic, structured records built from the keys real
//! libraries use map without panicking, and every event survives a JSON round trip.

use proptest::prelude::*;

use parse::fuzzing::check;

use crate::{fallback, parser};

/// Values real records carry under the keys below, plus hostile ones.
fn value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        any::<bool>().prop_map(serde_json::Value::from),
        Just(serde_json::Value::Null),
        "\\PC{0,40}".prop_map(serde_json::Value::from),
        prop_oneof![
            Just("2026-12-04T10:00:00.123+09:00"),
            Just("2026-12-04 10:00:00,123"),
            Just("1733306400123"),
            Just("WARNING"),
            Just("GET"),
            Just("/api/chat?x=1"),
            Just("10.0.0.1:80"),
            Just("12.5ms"),
            Just("Traceback (most recent call last):\n  File \"a\", line 1\nValueError: v"),
            Just("Bearer abcdefghijklmnop"),
            Just("4111 1111 1111 1111"),
        ]
        .prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(key(), inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop_oneof![
            Just("time"),
            Just("ts"),
            Just("@timestamp"),
            Just("level"),
            Just("lvl"),
            Just("msg"),
            Just("message"),
            Just("event"),
            Just("log"),
            Just("status"),
            Just("status_code"),
            Just("duration"),
            Just("duration_ms"),
            Just("Duration"),
            Just("method"),
            Just("path"),
            Just("url"),
            Just("client_ip"),
            Just("error"),
            Just("err"),
            Just("exception"),
            Just("stack"),
            Just("req"),
            Just("res"),
            Just("http"),
            Just("service"),
            Just("user"),
            Just("trace_id"),
            Just("instant"),
            Just("epochSecond"),
            Just("password"),
            Just("Level"),
            Just("headers"),
        ]
        .prop_map(str::to_owned),
        "[a-zA-Z_@.]{1,12}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut p = parser();
        let ev = p.parse_line(&bytes, fallback());
        prop_assert!(check(&ev).is_ok(), "{:?}", check(&ev));
    }

    #[test]
    fn structured_records_round_trip(fields in prop::collection::btree_map(key(), value(), 0..12)) {
        let obj = serde_json::Value::Object(fields.into_iter().collect());
        let line = obj.to_string();
        let mut p = parser();
        let ev = p.parse_line(line.as_bytes(), fallback());
        prop_assert_eq!(ev.sluice.format.as_deref(), Some("json"));
        prop_assert!(check(&ev).is_ok(), "{:?}", check(&ev));
    }

    #[test]
    fn logfmt_records_round_trip(pairs in prop::collection::vec((key(), "[ -~]{0,20}"), 1..8)) {
        let line: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
        let mut p = parser();
        let ev = p.parse_line(line.join(" ").as_bytes(), fallback());
        prop_assert!(check(&ev).is_ok(), "{:?}", check(&ev));
    }
}
