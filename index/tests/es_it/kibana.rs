//! The Kibana saved objects in `deploy/kibana/*.ndjson` parse, hang together, and reference
//! only fields that `schemas::fields::FIELDS` defines and the ES mapping indexes, each used in
//! a way its type allows (no terms aggregation on a text field, no percentile of a keyword).

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;

use anyhow::Context as _;
use schemas::fields::{self, FieldKind};
use serde_json::Value;

/// Lens's pseudo-field for "count of records".
const LENS_RECORDS: &str = "___records___";
/// The four dashboards of the runbook.
const RUNBOOK_DASHBOARDS: [&str; 4] = [
    "production overview",
    "api per endpoint",
    "business activity",
    "security",
];

fn kibana_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/kibana")
}

fn load_objects() -> anyhow::Result<Vec<Value>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(kibana_dir())
        .with_context(|| format!("{}", kibana_dir().display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "ndjson"))
        .collect();
    files.sort();
    anyhow::ensure!(
        !files.is_empty(),
        "no .ndjson under {}",
        kibana_dir().display()
    );
    let mut objects = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let obj: Value = serde_json::from_str(line)
                .with_context(|| format!("{}:{}", file.display(), n + 1))?;
            anyhow::ensure!(
                obj["type"].is_string() && obj["id"].is_string() && obj["attributes"].is_object(),
                "{}:{}: not a saved object",
                file.display(),
                n + 1
            );
            objects.push(obj);
        }
    }
    Ok(objects)
}

/// How a saved object uses a field.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Use {
    field: String,
    /// The Lens operation (`terms`, `percentile`, ...), or `query` / `column` / `time`.
    how: String,
    object: String,
}

/// Walks `v`, descending into strings that hold JSON (`panelsJSON`, `searchSourceJSON`).
fn collect(v: &Value, object: &str, out: &mut Vec<Use>) {
    match v {
        Value::Object(map) => {
            if let Some(field) = map.get("sourceField").and_then(Value::as_str) {
                let how = map
                    .get("operationType")
                    .and_then(Value::as_str)
                    .unwrap_or("column");
                out.push(Use {
                    field: field.to_owned(),
                    how: how.to_owned(),
                    object: object.to_owned(),
                });
            }
            if let Some(field) = map.get("timeFieldName").and_then(Value::as_str) {
                out.push(Use {
                    field: field.to_owned(),
                    how: "time".to_owned(),
                    object: object.to_owned(),
                });
            }
            if map.get("language").and_then(Value::as_str) == Some("kuery")
                && let Some(query) = map.get("query").and_then(Value::as_str)
            {
                for field in kql_fields(query) {
                    out.push(Use {
                        field,
                        how: "query".to_owned(),
                        object: object.to_owned(),
                    });
                }
            }
            for (key, child) in map {
                // Saved searches list their table columns by field name.
                if key == "columns"
                    && let Some(columns) = child.as_array()
                {
                    for c in columns.iter().filter_map(Value::as_str) {
                        out.push(Use {
                            field: c.to_owned(),
                            how: "column".to_owned(),
                            object: object.to_owned(),
                        });
                    }
                    continue;
                }
                collect(child, object, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect(i, object, out)),
        Value::String(s) if s.starts_with(['{', '[']) => {
            if let Ok(inner) = serde_json::from_str::<Value>(s) {
                collect(&inner, object, out);
            }
        }
        _ => {}
    }
}

/// Field names in a KQL query: a bare token directly followed by `:`, `<` or `>`.
fn kql_fields(query: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = query.chars().peekable();
    let mut token = String::new();
    let is_break = |c: char| c.is_whitespace() || "()<>=:\"".contains(c);
    while let Some(c) = chars.next() {
        if c == '"' {
            // Skip a quoted value, honouring backslash escapes.
            while let Some(q) = chars.next() {
                match q {
                    '\\' => {
                        chars.next();
                    }
                    '"' => break,
                    _ => {}
                }
            }
            token.clear();
            continue;
        }
        if !is_break(c) {
            token.push(c);
            continue;
        }
        if !token.is_empty() {
            let mut next = c;
            while next.is_whitespace() {
                match chars.peek() {
                    Some(&p) if p.is_whitespace() => {
                        chars.next();
                    }
                    Some(&p) => {
                        next = p;
                        break;
                    }
                    None => break,
                }
            }
            if matches!(next, ':' | '<' | '>') {
                out.push(std::mem::take(&mut token));
            }
            token.clear();
        }
    }
    out
}

/// The kind of `name`, allowing keys under a `flattened` field (`app.order_id`).
fn kind_of(name: &str) -> Option<FieldKind> {
    if let Some(def) = fields::field(name) {
        return Some(def.kind);
    }
    fields::FIELDS
        .iter()
        .filter(|d| d.kind == FieldKind::Flattened)
        .find(|d| {
            name.strip_prefix(d.name)
                .is_some_and(|rest| rest.starts_with('.'))
        })
        .map(|_| FieldKind::Keyword)
}

/// Whether a field of `kind` supports `how` in ES/Kibana.
fn usable(kind: FieldKind, how: &str) -> bool {
    use FieldKind::*;
    match how {
        "terms" | "unique_count" | "last_value" => {
            matches!(kind, Keyword | Long | Ip | Date | Flattened)
        }
        "percentile" | "percentile_rank" | "median" | "average" | "sum" | "min" | "max"
        | "standard_deviation" => matches!(kind, Long),
        "date_histogram" | "time" => matches!(kind, Date),
        "range" => matches!(kind, Long | Date | Ip),
        _ => true,
    }
}

#[test]
fn kql_field_extraction() {
    assert_eq!(kql_fields(""), Vec::<String>::new());
    assert_eq!(
        kql_fields("log.level : (error or fatal)"),
        vec!["log.level"]
    );
    assert_eq!(
        kql_fields(r#"url.path : "/a:b" and http.response.status_code >= 500"#),
        vec!["url.path", "http.response.status_code"]
    );
    assert_eq!(
        kql_fields(r#"message : "say \"x: y\"" or not user.name:*"#),
        vec!["message", "user.name"]
    );
}

#[test]
fn kibana_objects_reference_only_schema_fields() -> anyhow::Result<()> {
    let objects = load_objects()?;
    let mut ids = HashSet::new();
    for obj in &objects {
        let id = obj["id"].as_str().unwrap_or_default();
        anyhow::ensure!(ids.insert(id.to_owned()), "duplicate saved object id {id}");
    }
    for obj in &objects {
        for reference in obj["references"].as_array().into_iter().flatten() {
            let target = reference["id"].as_str().unwrap_or_default();
            anyhow::ensure!(
                ids.contains(target),
                "{} references {target}, which is not in deploy/kibana",
                obj["id"]
            );
        }
    }

    let data_views: Vec<&Value> = objects
        .iter()
        .filter(|o| o["type"] == "index-pattern")
        .collect();
    anyhow::ensure!(
        data_views
            .iter()
            .any(|d| d["attributes"]["title"] == "logs-sluice-*"
                && d["attributes"]["timeFieldName"] == fields::TIMESTAMP),
        "no data view over logs-sluice-* with @timestamp as time field"
    );
    let titles: Vec<String> = objects
        .iter()
        .filter(|o| o["type"] == "dashboard")
        .filter_map(|o| o["attributes"]["title"].as_str().map(str::to_lowercase))
        .collect();
    for wanted in RUNBOOK_DASHBOARDS {
        anyhow::ensure!(
            titles.iter().any(|t| t.contains(wanted)),
            "no {wanted:?} dashboard among {titles:?}"
        );
    }

    let mut uses = Vec::new();
    for obj in &objects {
        let name = format!(
            "{} {:?}",
            obj["type"].as_str().unwrap_or_default(),
            obj["attributes"]["title"].as_str().unwrap_or_default()
        );
        collect(obj, &name, &mut uses);
    }
    let mut problems = BTreeSet::new();
    let mut checked = BTreeSet::new();
    for u in &uses {
        if u.field == LENS_RECORDS {
            continue;
        }
        checked.insert(u.field.clone());
        match kind_of(&u.field) {
            None => {
                problems.insert(format!("{}: unknown field {}", u.object, u.field));
            }
            Some(kind) if !usable(kind, &u.how) => {
                problems.insert(format!(
                    "{}: {} on {} ({kind:?}) is not possible",
                    u.object, u.how, u.field
                ));
            }
            Some(_) => {}
        }
    }
    anyhow::ensure!(problems.is_empty(), "{problems:#?}");
    // The walk must have found something, or this test would pass on any input.
    anyhow::ensure!(
        checked.contains(fields::TIMESTAMP) && checked.len() >= 5,
        "suspiciously few fields found: {checked:?}"
    );
    Ok(())
}

#[test]
fn a_bad_field_would_be_caught() {
    let obj: Value = serde_json::json!({
        "type": "lens",
        "attributes": { "state": { "datasourceStates": { "formBased": { "layers": { "l": {
            "columns": {
                "a": { "operationType": "terms", "sourceField": "message" },
                "b": { "operationType": "percentile", "sourceField": "no.such.field" }
            }
        }}}}, "query": { "language": "kuery", "query": "kubernetes.labels.app : web" } } }
    });
    let mut uses = Vec::new();
    collect(&obj, "test", &mut uses);
    let bad: Vec<&Use> = uses
        .iter()
        .filter(|u| kind_of(&u.field).is_none_or(|k| !usable(k, &u.how)))
        .collect();
    let fields: Vec<&str> = bad.iter().map(|u| u.field.as_str()).collect();
    assert_eq!(fields, vec!["message", "no.such.field"], "{uses:?}");
}
