//! `sluice es setup`: the ILM policy, the component and index templates generated from
//! [`schemas::fields::FIELDS`], and the data stream.

use elasticsearch::Elasticsearch;
use elasticsearch::cluster::ClusterPutComponentTemplateParts;
use elasticsearch::http::StatusCode;
use elasticsearch::ilm::IlmPutLifecycleParts;
use elasticsearch::indices::{IndicesCreateDataStreamParts, IndicesPutIndexTemplateParts};
use schemas::fields::{self, FieldKind};
use serde_json::{Map, Value, json};

use super::client::build_client;
use super::config::EsConfig;
use super::error::EsError;

/// The ILM policy every Sluice data stream uses.
pub const ILM_POLICY_NAME: &str = "logs-sluice";
/// The component template holding the ECS mappings (Elastic's `<name>@mappings` convention).
pub const COMPONENT_TEMPLATE_NAME: &str = "logs-sluice@mappings";
/// The index template matching `logs-sluice-*`.
pub const INDEX_TEMPLATE_NAME: &str = "logs-sluice";
/// Data streams `logs-sluice-<namespace>` match this pattern.
pub const INDEX_PATTERN: &str = "logs-sluice-*";
/// Above the built-in `logs` template (priority 100, pattern `logs-*-*`), which would otherwise
/// win and apply its own mappings; below 500 so an operator can still override ours.
const INDEX_TEMPLATE_PRIORITY: u32 = 200;
/// Rollover when the write index is a day old: one backing index per day makes retention
/// precise to a day.
const ROLLOVER_MAX_AGE: &str = "1d";
/// ...or when a primary shard reaches Elastic's recommended maximum shard size.
const ROLLOVER_MAX_PRIMARY_SHARD_SIZE: &str = "50gb";
/// ECS keyword fields are capped at 1024 characters; longer values are kept in `_source`
/// but not indexed, instead of failing the document.
const KEYWORD_IGNORE_ABOVE: u32 = 1024;
/// Fields that are `u64` in [`schemas::LogEvent`] whose values can exceed `i64::MAX` (the file
/// id is a 64-bit fingerprint; offsets follow it), so ES `long` would reject them.
const UNSIGNED_FIELDS: &[&str] = &[
    fields::SLUICE_SOURCE_FILE_ID,
    fields::SLUICE_SOURCE_OFFSET,
    fields::SLUICE_SOURCE_END_OFFSET,
];

/// The checked-in files under `deploy/elasticsearch/`, as `(file name, pretty JSON)`, for the
/// default config (90 days of retention).
pub fn setup_files(cfg: &EsConfig) -> Vec<(&'static str, String)> {
    fn pretty(v: &Value) -> String {
        let mut s = serde_json::to_string_pretty(v).expect("a serde_json::Value always serializes");
        s.push('\n');
        s
    }
    vec![
        ("ilm-policy.json", pretty(&ilm_policy(cfg))),
        ("component-template.json", pretty(&component_template())),
        ("index-template.json", pretty(&index_template())),
    ]
}

/// `PUT _ilm/policy/logs-sluice`: hot with rollover at 1 day or 50 GB per primary shard, then
/// delete `retention_days` after rollover.
pub fn ilm_policy(cfg: &EsConfig) -> Value {
    canonical(json!({
        "policy": {
            "_meta": meta("retention of Sluice log data streams"),
            "phases": {
                "hot": {
                    "min_age": "0ms",
                    "actions": {
                        "rollover": {
                            "max_age": ROLLOVER_MAX_AGE,
                            "max_primary_shard_size": ROLLOVER_MAX_PRIMARY_SHARD_SIZE,
                        }
                    }
                },
                "delete": {
                    "min_age": format!("{}d", cfg.retention_days),
                    "actions": { "delete": {} }
                }
            }
        }
    }))
}

/// `PUT _component_template/logs-sluice@mappings`: ECS mappings for every field in
/// [`schemas::fields::FIELDS`]; `app` and `kubernetes.labels` are `flattened`.
pub fn component_template() -> Value {
    canonical(json!({
        "_meta": meta("ECS mappings of Sluice log events, generated from schemas::fields::FIELDS"),
        "template": {
            "mappings": {
                // Fields outside FIELDS stay in _source but are not indexed, so a new field in
                // a newer Sluice neither fails documents nor grows the mapping unbounded.
                "dynamic": false,
                "properties": Value::Object(properties()),
            }
        }
    }))
}

/// `PUT _index_template/logs-sluice`: `logs-sluice-*` as data streams, with the mappings and
/// the ILM policy.
pub fn index_template() -> Value {
    canonical(json!({
        "_meta": meta("Sluice log data streams logs-sluice-<namespace>"),
        "index_patterns": [INDEX_PATTERN],
        "data_stream": {},
        "composed_of": [COMPONENT_TEMPLATE_NAME],
        "priority": INDEX_TEMPLATE_PRIORITY,
        "template": {
            "settings": {
                "index": {
                    "lifecycle": { "name": ILM_POLICY_NAME },
                    // Logs are written once and read rarely: trade a little CPU for disk.
                    "codec": "best_compression",
                }
            }
        }
    }))
}

fn meta(description: &str) -> Value {
    json!({
        "managed_by": "sluice",
        "description": description,
        "ecs_version": schemas::ECS_VERSION,
        "log_event_version": schemas::LOG_EVENT_VERSION,
    })
}

/// The nested `properties` tree of the mapping, built from the dotted field names.
fn properties() -> Map<String, Value> {
    let mut root = Map::new();
    for def in fields::FIELDS {
        let mut node = &mut root;
        let mut parts = def.name.split('.').peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                node.insert(part.to_owned(), leaf_mapping(def.name, def.kind));
                break;
            }
            let entry = node
                .entry(part.to_owned())
                .or_insert_with(|| json!({ "properties": {} }));
            node = entry
                .get_mut("properties")
                .and_then(Value::as_object_mut)
                .expect("an object node is only ever created with properties");
        }
    }
    root
}

fn leaf_mapping(name: &str, kind: FieldKind) -> Value {
    match kind {
        FieldKind::Date => json!({ "type": "date" }),
        FieldKind::Keyword => json!({ "type": "keyword", "ignore_above": KEYWORD_IGNORE_ABOVE }),
        // What ECS uses for `message`: full text without scores or positions, a fraction of
        // `text`'s disk; phrase queries still work (verified against _source).
        FieldKind::Text => json!({ "type": "match_only_text" }),
        FieldKind::Long if UNSIGNED_FIELDS.contains(&name) => json!({ "type": "unsigned_long" }),
        FieldKind::Long => json!({ "type": "long" }),
        FieldKind::Ip => json!({ "type": "ip" }),
        FieldKind::Flattened => json!({ "type": "flattened" }),
    }
}

/// `v` with every object's keys sorted, whatever serde_json's `preserve_order` feature says,
/// so the checked-in JSON is stable.
fn canonical(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, canonical(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other => other,
    }
}

/// What [`setup`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupReport {
    /// The data stream events are written to.
    pub data_stream: String,
    /// False when the data stream already existed (setup is idempotent).
    pub created_data_stream: bool,
}

/// Installs the ILM policy, the component and index templates, and creates the data stream
/// `logs-sluice-<namespace>`. Safe to run again: templates and policy are replaced, an existing
/// data stream is kept.
///
/// # Errors
/// [`EsError::Setup`] naming the resource the cluster refused (with its error body), or the
/// errors of building the client.
pub async fn setup(cfg: &EsConfig) -> Result<SetupReport, EsError> {
    cfg.validate()?;
    let client = build_client(cfg)?;
    setup_with(&client, cfg).await
}

pub(crate) async fn setup_with(
    client: &Elasticsearch,
    cfg: &EsConfig,
) -> Result<SetupReport, EsError> {
    let resource = format!("_ilm/policy/{ILM_POLICY_NAME}");
    let resp = client
        .ilm()
        .put_lifecycle(IlmPutLifecycleParts::Policy(ILM_POLICY_NAME))
        .body(ilm_policy(cfg))
        .send()
        .await;
    expect_success(&resource, resp).await?;

    let resource = format!("_component_template/{COMPONENT_TEMPLATE_NAME}");
    let resp = client
        .cluster()
        .put_component_template(ClusterPutComponentTemplateParts::Name(
            COMPONENT_TEMPLATE_NAME,
        ))
        .body(component_template())
        .send()
        .await;
    expect_success(&resource, resp).await?;

    let resource = format!("_index_template/{INDEX_TEMPLATE_NAME}");
    let resp = client
        .indices()
        .put_index_template(IndicesPutIndexTemplateParts::Name(INDEX_TEMPLATE_NAME))
        .body(index_template())
        .send()
        .await;
    expect_success(&resource, resp).await?;

    let data_stream = cfg.data_stream();
    let resource = format!("_data_stream/{data_stream}");
    let resp = client
        .indices()
        .create_data_stream(IndicesCreateDataStreamParts::Name(&data_stream))
        .send()
        .await
        .map_err(|e| setup_error(&resource, e.to_string()))?;
    let status = resp.status_code();
    if status.is_success() {
        return Ok(SetupReport {
            data_stream,
            created_data_stream: true,
        });
    }
    let body = resp.text().await.unwrap_or_default();
    if status == StatusCode::BAD_REQUEST && body.contains("resource_already_exists_exception") {
        return Ok(SetupReport {
            data_stream,
            created_data_stream: false,
        });
    }
    Err(setup_error(&resource, format!("status {status}: {body}")))
}

async fn expect_success(
    resource: &str,
    resp: Result<elasticsearch::http::response::Response, elasticsearch::Error>,
) -> Result<(), EsError> {
    let resp = resp.map_err(|e| setup_error(resource, e.to_string()))?;
    let status = resp.status_code();
    if status.is_success() {
        return Ok(());
    }
    let body = resp.text().await.unwrap_or_default();
    Err(setup_error(resource, format!("status {status}: {body}")))
}

fn setup_error(resource: &str, reason: String) -> EsError {
    EsError::Setup {
        resource: resource.to_owned(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn mapping_of<'a>(props: &'a Value, dotted: &str) -> Option<&'a Value> {
        let mut node = props;
        let mut parts = dotted.split('.').peekable();
        while let Some(part) = parts.next() {
            let leaf = node.get(part)?;
            if parts.peek().is_none() {
                return Some(leaf);
            }
            node = leaf.get("properties")?;
        }
        None
    }

    #[test]
    fn every_field_is_mapped_with_its_kind() -> TestResult {
        let tpl = component_template();
        let props = &tpl["template"]["mappings"]["properties"];
        for def in fields::FIELDS {
            let m = mapping_of(props, def.name).ok_or(format!("{} is not mapped", def.name))?;
            let ty = m["type"]
                .as_str()
                .ok_or(format!("{} has no type", def.name))?;
            let expected = match def.kind {
                FieldKind::Date => "date",
                FieldKind::Keyword => "keyword",
                FieldKind::Text => "match_only_text",
                FieldKind::Long if UNSIGNED_FIELDS.contains(&def.name) => "unsigned_long",
                FieldKind::Long => "long",
                FieldKind::Ip => "ip",
                FieldKind::Flattened => "flattened",
            };
            assert_eq!(ty, expected, "{}", def.name);
        }
        assert_eq!(props["app"]["type"], "flattened");
        assert_eq!(
            props["kubernetes"]["properties"]["labels"]["type"],
            "flattened"
        );
        assert_eq!(props["@timestamp"]["type"], "date");
        Ok(())
    }

    #[test]
    fn ilm_deletes_at_retention_days() {
        let cfg = EsConfig {
            retention_days: 30,
            ..EsConfig::default()
        };
        let p = ilm_policy(&cfg);
        assert_eq!(p["policy"]["phases"]["delete"]["min_age"], "30d");
        let rollover = &p["policy"]["phases"]["hot"]["actions"]["rollover"];
        assert_eq!(rollover["max_age"], "1d");
        assert_eq!(rollover["max_primary_shard_size"], "50gb");
    }

    #[test]
    fn index_template_is_a_data_stream_over_the_component() {
        let t = index_template();
        assert_eq!(t["index_patterns"][0], "logs-sluice-*");
        assert!(t["data_stream"].is_object());
        assert_eq!(t["composed_of"][0], COMPONENT_TEMPLATE_NAME);
        assert_eq!(
            t["template"]["settings"]["index"]["lifecycle"]["name"],
            ILM_POLICY_NAME
        );
        assert!(t["priority"].as_u64() > Some(100));
    }

    #[test]
    fn canonical_sorts_keys_recursively() {
        let v = canonical(json!({"b": 1, "a": {"d": [ {"z": 1, "y": 2} ], "c": 0}}));
        assert_eq!(
            serde_json::to_string(&v).unwrap_or_default(),
            r#"{"a":{"c":0,"d":[{"y":2,"z":1}]},"b":1}"#
        );
    }
}
