//! Alerts, shaped like Alertmanager's v2 API `postableAlert` plus status and fingerprint.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Label every alert carries: the rule's name, as Prometheus does.
pub const LABEL_ALERTNAME: &str = "alertname";
/// Label with the alert's severity (`critical`, `warning`, `info`).
pub const LABEL_SEVERITY: &str = "severity";
/// Annotation with a one-line summary.
pub const ANNOTATION_SUMMARY: &str = "summary";
/// Annotation with a longer description.
pub const ANNOTATION_DESCRIPTION: &str = "description";
/// Annotation linking the runbook section.
pub const ANNOTATION_RUNBOOK_URL: &str = "runbook_url";

/// Whether an alert is active.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

/// One alert notification. The JSON is accepted as-is by Alertmanager's
/// `POST /api/v2/alerts` (which ignores `status` and `fingerprint`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Alert {
    /// Identifying labels: `alertname`, `severity`, and the rule's group-by labels
    /// (`service`, `client_ip`, ...).
    pub labels: BTreeMap<String, String>,
    /// Non-identifying details: `summary`, `description`, `runbook_url`, observed values.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// When the condition started (event time).
    #[serde(rename = "startsAt")]
    pub starts_at: DateTime<Utc>,
    /// When the alert resolved, or when Alertmanager should consider it resolved if no update
    /// arrives; unset while firing without an expiry.
    #[serde(rename = "endsAt", default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<DateTime<Utc>>,
    /// A link back to the events behind the alert.
    #[serde(rename = "generatorURL", default)]
    pub generator_url: String,
    pub status: AlertStatus,
    /// Stable hash of the rule name and labels: the same condition on the same subject always
    /// has the same fingerprint, so receivers can deduplicate.
    pub fingerprint: String,
}

impl Alert {
    /// The `alertname` label, or "" if missing.
    pub fn name(&self) -> &str {
        self.labels
            .get(LABEL_ALERTNAME)
            .map(String::as_str)
            .unwrap_or("")
    }
}

/// The fingerprint of an alert's label set: a hex xxh3-64 over the sorted `name=value` pairs.
pub fn alert_fingerprint(labels: &BTreeMap<String, String>) -> String {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    for (k, v) in labels {
        hasher.update(k.as_bytes());
        hasher.update(&[0xff]);
        hasher.update(v.as_bytes());
        hasher.update(&[0xfe]);
    }
    format!("{:016x}", hasher.digest())
}
