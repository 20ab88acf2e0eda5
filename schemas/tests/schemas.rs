//! The checked-in JSON Schemas match the Rust types, field constants exist, events
//! round-trip through JSON, and the wire readers survive fuzz-like mutations (`fuzz_smoke`).

// A module of its own, in a folder cargo does not build as another test binary.
#[path = "schemas/fuzz_smoke.rs"]
mod fuzz_smoke;

use std::path::PathBuf;

use proptest::prelude::*;
use schemas::{LogEvent, fields};

fn json_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("json")
}

/// Run with `SLUICE_UPDATE_SCHEMAS=1` to rewrite the files after an intended change.
#[test]
fn checked_in_json_schemas_match_the_types() -> Result<(), Box<dyn std::error::Error>> {
    let update = std::env::var_os("SLUICE_UPDATE_SCHEMAS").is_some();
    for (name, generated) in schemas::json_schemas() {
        let path = json_dir().join(name);
        if update {
            std::fs::write(&path, &generated)?;
            continue;
        }
        let on_disk = std::fs::read_to_string(&path)
            .map_err(|e| format!("{}: {e} (run with SLUICE_UPDATE_SCHEMAS=1)", path.display()))?;
        assert_eq!(
            on_disk,
            generated,
            "{} drifted from the Rust type; run `SLUICE_UPDATE_SCHEMAS=1 cargo test -p schemas` \
             and bump the version if the change is incompatible",
            path.display()
        );
    }
    Ok(())
}

/// Every dotted name in `fields::FIELDS` resolves to a property in the LogEvent schema.
#[test]
fn every_indexed_field_exists_in_the_event_schema() {
    let schema = serde_json::to_value(schemars::schema_for!(LogEvent)).expect("schema to json");
    let defs = schema.get("$defs").cloned().unwrap_or_default();
    for def in fields::FIELDS {
        let mut node = &schema;
        for part in def.name.split('.') {
            let resolved = resolve(node, &defs);
            node = resolved
                .get("properties")
                .and_then(|p| p.get(part))
                .unwrap_or_else(|| panic!("{} has no property {part:?}", def.name));
        }
    }
}

fn resolve<'a>(node: &'a serde_json::Value, defs: &'a serde_json::Value) -> &'a serde_json::Value {
    if let Some(r) = node.get("$ref").and_then(|r| r.as_str()) {
        let name = r.trim_start_matches("#/$defs/");
        return defs.get(name).expect("dangling $ref");
    }
    if let Some(all) = node.get("allOf").and_then(|a| a.as_array())
        && let Some(first) = all.first()
    {
        return resolve(first, defs);
    }
    node
}

fn arb_opt_string() -> impl Strategy<Value = Option<String>> {
    proptest::option::of("[a-zA-Z0-9 _./:-]{0,24}")
}

prop_compose! {
    fn arb_event()(
        secs in 0i64..4_000_000_000,
        nanos in 0u32..1_000_000_000,
        message in ".{0,64}",
        level in proptest::option::of(proptest::sample::select(schemas::Level::ALL.to_vec())),
        service in arb_opt_string(),
        ns in arb_opt_string(),
        status in proptest::option::of(100u16..600),
        duration in proptest::option::of(0i64..i64::MAX),
        path in arb_opt_string(),
        ip in arb_opt_string(),
        app_key in "[a-z]{1,8}",
        app_val in proptest::option::of(any::<i64>()),
        offset in any::<u64>(),
    ) -> LogEvent {
        let ts = chrono::DateTime::from_timestamp(secs, nanos).expect("in range");
        let mut ev = LogEvent::new(ts, message);
        ev.log.level = level;
        ev.service.name = service;
        ev.kubernetes.namespace = ns;
        ev.http.response.status_code = status;
        ev.event.duration = duration;
        ev.url.path = path;
        ev.client.ip = ip;
        ev.event.id = schemas::event_id(7, offset);
        ev.sluice.source.offset = offset;
        if let Some(v) = app_val {
            ev.app.insert(app_key, serde_json::json!({ "n": v }));
        }
        ev
    }
}

proptest! {
    #[test]
    fn any_event_round_trips_through_json(ev in arb_event()) {
        let json = serde_json::to_string(&ev).expect("serialize");
        let back: LogEvent = serde_json::from_str(&json).expect("deserialize");
        prop_assert_eq!(back, ev);
    }
}

#[test]
fn event_id_is_deterministic_and_distinct() {
    assert_eq!(schemas::event_id(1, 2), schemas::event_id(1, 2));
    assert_ne!(schemas::event_id(1, 2), schemas::event_id(2, 1));
    assert_ne!(schemas::event_id(1, 2), schemas::event_id(1, 3));
    assert_eq!(schemas::event_id(1, 2).len(), 32);
}

#[test]
fn alert_serializes_in_alertmanager_shape() -> Result<(), serde_json::Error> {
    let mut labels = std::collections::BTreeMap::new();
    labels.insert("alertname".to_string(), "HighErrorRate".to_string());
    let alert = schemas::Alert {
        fingerprint: schemas::alert_fingerprint(&labels),
        labels,
        annotations: Default::default(),
        starts_at: chrono::DateTime::from_timestamp(0, 0).expect("epoch"),
        ends_at: None,
        generator_url: "http://127.0.0.1:7280/".into(),
        status: schemas::AlertStatus::Firing,
    };
    let v = serde_json::to_value(&alert)?;
    assert!(v.get("startsAt").is_some());
    assert!(v.get("generatorURL").is_some());
    assert_eq!(v["status"], "firing");
    Ok(())
}
