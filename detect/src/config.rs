//! [`DetectConfig`]: engine settings and rules, with the runbook's rules built in.
//!
//! ```toml
//! bucket_secs = 10
//! allowed_lateness_secs = 30
//! generator_url = "https://kibana.example/app/discover#/?query=service.name:{{service}}"
//!
//! [[rules]]
//! name = "CheckoutPaymentErrors"
//! kind = "count"
//! severity = "critical"
//! match = 'service.name == "checkout" && message contains "payment declined"'
//! threshold = 20
//! window_secs = 300
//! summary = "{{value}} declined payments in 5 min on {{service}}"
//! ```
//!
//! A user rule whose name equals a built-in one replaces it; `builtin_rules = false` drops all
//! built-ins.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::DetectError;
use crate::expr;

/// Fine bucket width: alerts are evaluated at every bucket end, so this is the detection
/// granularity; 10 s keeps a 1 h window at 360 buckets.
const DEFAULT_BUCKET_SECS: u64 = 10;
/// Kubernetes log shipping delays lines by seconds (kubelet rotation, agent batching); 30 s
/// covers that while keeping alert latency low.
const DEFAULT_ALLOWED_LATENESS_SECS: u64 = 30;
/// Node clocks in a cluster agree within seconds; five minutes ahead of the wall clock is a
/// broken timestamp, not skew.
const DEFAULT_MAX_FUTURE_SECS: u64 = 300;
/// Keys per rule before eviction: 10 000 services × endpoints is far beyond a normal cluster but
/// small enough (a few MB per rule) to survive a cardinality explosion.
const DEFAULT_MAX_KEYS_PER_RULE: usize = 10_000;
/// Alertmanager drops an alert that is not re-sent within `resolve_timeout` (5 min default), so
/// firing alerts are repeated every 4 min.
const DEFAULT_REPEAT_INTERVAL_SECS: u64 = 240;
/// The longest window a rule may use; the bucket ring of a key grows with it.
const MAX_WINDOW_SECS: u64 = 24 * 3600;
/// Where the built-in rules' `runbook_url` points unless configured.
const DEFAULT_RUNBOOK_BASE_URL: &str = "https://example.invalid/sluice/runbook";
/// Resolve (hysteresis) threshold as a fraction of the firing threshold when a rule sets none:
/// an alert at 5.1 % errors must fall under 4 % to resolve, so it does not flap around 5 %.
pub(crate) const DEFAULT_RESOLVE_FRACTION: f64 = 0.8;

/// Settings of the whole detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectConfig {
    /// Width of the fine time buckets; windows are whole multiples of it and rules are evaluated
    /// at every bucket end (event time).
    pub bucket_secs: u64,
    /// How far behind the newest event a line may arrive and still be counted; older lines are
    /// dropped and counted in `late_events`. Alerts are emitted this much after their event time.
    pub allowed_lateness_secs: u64,
    /// Live mode (once `advance_watermark` has given a wall clock): events stamped further than
    /// this ahead of it are counted in `future_events` and kept out of the rules, so one bogus
    /// timestamp cannot push the watermark past every other line.
    pub max_future_secs: u64,
    /// Cap on tracked keys (e.g. services, endpoints) per rule; beyond it idle keys with the
    /// fewest events are evicted, least recently seen first (counted in `keys_evicted`).
    pub max_keys_per_rule: usize,
    /// Re-send a firing alert after this long (event time); 0 sends it once.
    pub repeat_interval_secs: u64,
    /// Template for each alert's `generatorURL`: `{{label}}` is replaced with the URL-encoded
    /// label value, `{{starts_at}}`/`{{ends_at}}` with RFC 3339 times. Empty leaves it empty.
    pub generator_url: String,
    /// Base URL of the runbook the built-in rules link to (`#anchor` per rule is appended).
    pub runbook_base_url: String,
    /// Whether the runbook's built-in rules are active (see [`builtin_rules`]).
    pub builtin_rules: bool,
    /// User rules; one with a built-in rule's name replaces that rule.
    pub rules: Vec<RuleConfig>,
    /// Whether the security detections (brute force, web attacks, scanners, secret leaks) run.
    pub security_enabled: bool,
    /// Settings of the security detections (`[security]`).
    pub security: crate::security::SecurityConfig,
    /// Whether the log-pattern miner runs (it sets `sluice.pattern.*` on every event before the
    /// rules see it, and raises `NewErrorPattern` / pattern spikes).
    pub patterns_enabled: bool,
    /// Settings of the pattern miner (`[patterns]`).
    pub patterns: crate::patterns::PatternConfig,
}

impl Default for DetectConfig {
    fn default() -> DetectConfig {
        DetectConfig {
            bucket_secs: DEFAULT_BUCKET_SECS,
            allowed_lateness_secs: DEFAULT_ALLOWED_LATENESS_SECS,
            max_future_secs: DEFAULT_MAX_FUTURE_SECS,
            max_keys_per_rule: DEFAULT_MAX_KEYS_PER_RULE,
            repeat_interval_secs: DEFAULT_REPEAT_INTERVAL_SECS,
            generator_url: String::new(),
            runbook_base_url: DEFAULT_RUNBOOK_BASE_URL.to_owned(),
            builtin_rules: true,
            rules: Vec::new(),
            security_enabled: true,
            security: crate::security::SecurityConfig::default(),
            patterns_enabled: true,
            patterns: crate::patterns::PatternConfig::default(),
        }
    }
}

/// What a rule measures over its window, per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleKind {
    /// Number of events matching `match`; fires when above `threshold`.
    Count,
    /// Fraction of the events matching `of` that also match `match`; fires above `threshold`
    /// (0..1) once at least `min_samples` events matched `of`.
    Ratio,
    /// The `quantile` of numeric `field` over events matching `match`; fires above `threshold`
    /// once at least `min_samples` values were seen.
    Quantile,
    /// Like `ratio` (or `count` without `of`), but against the key's own robust baseline
    /// (EWMA mean and variance) instead of a fixed threshold.
    Anomaly,
}

/// Alert severity, the `severity` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    Warning,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// A number, or a duration string (`"2s"`, `"500ms"`) meaning nanoseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Threshold {
    Number(f64),
    Duration(String),
}

impl Threshold {
    /// The threshold as a number (durations in nanoseconds).
    ///
    /// # Errors
    /// A duration string that does not parse.
    pub fn value(&self) -> Result<f64, String> {
        match self {
            Threshold::Number(n) => Ok(*n),
            Threshold::Duration(s) => parse_duration_ns(s),
        }
    }
}

fn parse_duration_ns(s: &str) -> Result<f64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like \"2s\" or \"500ms\""))?;
    let scale = match unit.trim() {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        u => return Err(format!("unknown duration unit {u:?} in {s:?}")),
    };
    Ok(n * scale)
}

/// One alerting rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// The `alertname`: letters, digits and `_`, unique among rules.
    pub name: String,
    pub kind: RuleKind,
    /// Inactive rules are validated but not evaluated.
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "warning")]
    pub severity: Severity,
    /// Match expression (see [`crate::expr`] docs): the events counted (count), the "bad" events
    /// (ratio, anomaly) or the events whose `field` is measured (quantile). Empty matches all.
    #[serde(default, rename = "match")]
    pub match_expr: String,
    /// Ratio and anomaly: the population the ratio is taken over (empty = every event of the key).
    /// Anomaly without `of` watches the raw count instead of a ratio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub of: Option<String>,
    /// Quantile: the numeric field (default `event.duration`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Quantile: which quantile, 0 < q < 1 (default 0.95).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantile: Option<f64>,
    /// Fires when the value is above this (count, ratio 0..1, quantile in the field's unit; a
    /// duration string such as `"2s"` is nanoseconds). Required except for anomaly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<Threshold>,
    /// Hysteresis: a firing alert resolves only once the value is at or below this (default
    /// 0.8 × threshold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolve_threshold: Option<Threshold>,
    /// Fields whose values split the rule into keys (one alert each); `route` and `upstream` are
    /// derived fields. Default `["service.name"]`.
    #[serde(default = "default_group_by")]
    pub group_by: Vec<String>,
    /// Sliding window the value is computed over (multiple of `bucket_secs`).
    #[serde(default = "default_window_secs")]
    pub window_secs: u64,
    /// The condition must hold this long (pending) before the alert fires.
    #[serde(default = "default_for_secs")]
    pub for_secs: u64,
    /// The value must stay at or below `resolve_threshold` this long before the alert resolves.
    #[serde(default = "default_resolve_for_secs")]
    pub resolve_for_secs: u64,
    /// Overrides the engine's `repeat_interval_secs` for this rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_interval_secs: Option<u64>,
    /// Ratio/quantile/anomaly: minimum population in the window before the rule may fire, so a
    /// quiet service with 1 error in 3 requests does not page. Default 20 (0 for count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_samples: Option<u64>,
    /// Anomaly: how many standard deviations above the baseline fire (default 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub z_threshold: Option<f64>,
    /// Anomaly: the value must also be at least this multiple of the baseline (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_factor: Option<f64>,
    /// Anomaly: minimum matching events in the window (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_count: Option<u64>,
    /// Anomaly: half-life of the EWMA baseline (default 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_half_life_secs: Option<u64>,
    /// Anomaly: history needed before the rule may fire (default 1800).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup_secs: Option<u64>,
    /// `summary` annotation template: `{{label}}`, `{{value}}`, `{{threshold}}`, `{{window}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// `description` annotation template (same placeholders).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `runbook_url` annotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook_url: Option<String>,
    /// Extra static labels (part of the fingerprint).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Extra static annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

fn yes() -> bool {
    true
}
fn warning() -> Severity {
    Severity::Warning
}
fn default_group_by() -> Vec<String> {
    vec![schemas::fields::SERVICE_NAME.to_owned()]
}
fn default_window_secs() -> u64 {
    300
}
fn default_for_secs() -> u64 {
    60
}
fn default_resolve_for_secs() -> u64 {
    60
}

impl RuleConfig {
    /// A rule of `kind` with every optional setting at its default.
    pub fn new(name: &str, kind: RuleKind) -> RuleConfig {
        RuleConfig {
            name: name.to_owned(),
            kind,
            enabled: true,
            severity: Severity::Warning,
            match_expr: String::new(),
            of: None,
            field: None,
            quantile: None,
            threshold: None,
            resolve_threshold: None,
            group_by: default_group_by(),
            window_secs: default_window_secs(),
            for_secs: default_for_secs(),
            resolve_for_secs: default_resolve_for_secs(),
            repeat_interval_secs: None,
            min_samples: None,
            z_threshold: None,
            min_factor: None,
            min_count: None,
            baseline_half_life_secs: None,
            warmup_secs: None,
            summary: None,
            description: None,
            runbook_url: None,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
        }
    }
}

/// The runbook's rules, linking to `runbook_base_url`.
///
/// | rule | what | window / for | severity |
/// |---|---|---|---|
/// | `HighErrorRate` | 5xx / requests > 5 % per service (≥ 20 requests) | 5 min / 1 min | critical |
/// | `HighLatency` | p95 `event.duration` > 2 s per service (≥ 20 requests) | 5 min / 1 min | warning |
/// | `HighEndpointLatency` | the same per service and normalized route | 5 min / 1 min | warning |
/// | `DatabaseConnectionError` | > 5 DB connection failures per service | 5 min / 0 | critical |
/// | `ExternalApiFailures` | > 10 failing upstream calls per service and upstream host | 5 min / 1 min | warning |
/// | `ErrorRateAnomaly` | error-level share of a service's lines ≥ 4 σ and 2× above its 1 h baseline | 2 min / 1 min | warning |
/// | `SloErrorRate` | 5xx / requests > 1 % per service (≥ 50 requests) | 5 min / 2 min | warning |
/// | `SloLatency` | p95 `event.duration` > 500 ms per service (≥ 50 requests) | 5 min / 2 min | warning |
pub fn builtin_rules(runbook_base_url: &str) -> Vec<RuleConfig> {
    let runbook = |anchor: &str| Some(format!("{runbook_base_url}#{anchor}"));
    let http = "http.response.status_code exists";

    let mut error_rate = RuleConfig::new("HighErrorRate", RuleKind::Ratio);
    error_rate.severity = Severity::Critical;
    error_rate.match_expr = "http.response.status_code >= 500".into();
    error_rate.of = Some(http.into());
    error_rate.threshold = Some(Threshold::Number(0.05));
    error_rate.min_samples = Some(20);
    error_rate.summary = Some("{{service}}: {{value}} of requests fail with 5xx".into());
    error_rate.description = Some(
        "{{hits}} of {{total}} requests of {{service}} returned 5xx in the last {{window}} \
         (threshold {{threshold}})."
            .into(),
    );
    error_rate.runbook_url = runbook("higherrorrate");

    let mut latency = RuleConfig::new("HighLatency", RuleKind::Quantile);
    // Requests only: an app line that logs how long some work took (an LLM call's
    // `latency_ms`) is not a request latency and would inflate the service's p95.
    latency.match_expr = "event.duration exists && http.response.status_code exists".into();
    latency.quantile = Some(0.95);
    latency.threshold = Some(Threshold::Duration("2s".into()));
    latency.min_samples = Some(20);
    latency.summary = Some("{{service}}: p95 latency {{value}}".into());
    latency.description = Some(
        "p95 of event.duration over {{total}} requests of {{service}} in the last {{window}} is \
         {{value}} (threshold {{threshold}}); {{hits}} were slower than the threshold."
            .into(),
    );
    latency.runbook_url = runbook("highlatency");

    let mut endpoint = latency.clone();
    endpoint.name = "HighEndpointLatency".into();
    endpoint.match_expr =
        "event.duration exists && http.response.status_code exists && url.path exists".into();
    endpoint.group_by = vec!["service.name".into(), "route".into()];
    endpoint.summary = Some("{{service}} {{route}}: p95 latency {{value}}".into());
    endpoint.description = Some(
        "p95 of event.duration over {{total}} requests to {{route}} of {{service}} in the last \
         {{window}} is {{value}} (threshold {{threshold}})."
            .into(),
    );

    let mut db = RuleConfig::new("DatabaseConnectionError", RuleKind::Count);
    db.severity = Severity::Critical;
    db.match_expr = "db_connection_error()".into();
    db.threshold = Some(Threshold::Number(5.0));
    db.for_secs = 0;
    db.summary = Some("{{service}}: {{value}} database connection errors".into());
    db.description = Some(
        "{{service}} logged {{value}} database connection failures (refused, exhausted pool, \
         too many clients, timeouts) in the last {{window}} (threshold {{threshold}})."
            .into(),
    );
    db.runbook_url = runbook("databaseconnectionerror");

    let mut upstream = RuleConfig::new("ExternalApiFailures", RuleKind::Count);
    upstream.match_expr = "upstream_failure()".into();
    upstream.group_by = vec!["service.name".into(), "upstream".into()];
    upstream.threshold = Some(Threshold::Number(10.0));
    upstream.summary = Some("{{service}}: {{value}} failing calls to {{upstream}}".into());
    upstream.description = Some(
        "{{service}} saw {{value}} timeouts, 429s or 5xx from {{upstream}} in the last \
         {{window}} (threshold {{threshold}})."
            .into(),
    );
    upstream.runbook_url = runbook("externalapifailures");

    let mut anomaly = RuleConfig::new("ErrorRateAnomaly", RuleKind::Anomaly);
    anomaly.match_expr = "log.level >= error".into();
    anomaly.of = Some(String::new());
    anomaly.window_secs = 120;
    anomaly.min_samples = Some(50);
    anomaly.summary = Some("{{service}}: error lines at {{value}}, baseline {{baseline}}".into());
    anomaly.description = Some(
        "{{hits}} of {{total}} lines of {{service}} in the last {{window}} are errors ({{value}}), \
         {{z}} standard deviations above its baseline of {{baseline}}."
            .into(),
    );
    anomaly.runbook_url = runbook("errorrateanomaly");

    let mut slo_errors = error_rate.clone();
    slo_errors.name = "SloErrorRate".into();
    slo_errors.severity = Severity::Warning;
    slo_errors.threshold = Some(Threshold::Number(0.01));
    slo_errors.min_samples = Some(50);
    slo_errors.for_secs = 120;
    slo_errors.summary = Some("{{service}}: error budget burning, {{value}} 5xx".into());
    slo_errors.runbook_url = runbook("sloerrorrate");

    let mut slo_latency = latency.clone();
    slo_latency.name = "SloLatency".into();
    slo_latency.threshold = Some(Threshold::Duration("500ms".into()));
    slo_latency.min_samples = Some(50);
    slo_latency.for_secs = 120;
    slo_latency.summary = Some("{{service}}: p95 latency {{value}} above the 500 ms SLO".into());
    slo_latency.runbook_url = runbook("slolatency");

    vec![
        error_rate,
        latency,
        endpoint,
        db,
        upstream,
        anomaly,
        slo_errors,
        slo_latency,
    ]
}

impl DetectConfig {
    /// Parses and validates a TOML rules file.
    ///
    /// # Errors
    /// [`DetectError::ConfigSyntax`] for TOML or unknown-field errors (the message names the
    /// key and line), or any error of [`DetectConfig::validate`].
    pub fn from_toml_str(s: &str) -> Result<DetectConfig, DetectError> {
        let cfg: DetectConfig = toml::from_str(s).map_err(|e| DetectError::ConfigSyntax {
            message: e.to_string().trim_end().to_owned(),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The rules in effect: built-ins (unless disabled) with same-named user rules replacing
    /// them, then the other user rules, in file order.
    pub fn effective_rules(&self) -> Vec<RuleConfig> {
        let mut rules = if self.builtin_rules {
            builtin_rules(&self.runbook_base_url)
        } else {
            Vec::new()
        };
        for user in &self.rules {
            match rules.iter_mut().find(|r| r.name == user.name) {
                Some(slot) => *slot = user.clone(),
                None => rules.push(user.clone()),
            }
        }
        rules
    }

    /// Checks every setting; the error names the offending field path.
    ///
    /// # Errors
    /// [`DetectError::Config`] or [`DetectError::Expression`].
    pub fn validate(&self) -> Result<(), DetectError> {
        if self.bucket_secs == 0 || self.bucket_secs > 3600 {
            return Err(DetectError::config("bucket_secs", "must be 1..=3600"));
        }
        if self.max_keys_per_rule == 0 {
            return Err(DetectError::config(
                "max_keys_per_rule",
                "must be at least 1",
            ));
        }
        if self.allowed_lateness_secs > MAX_WINDOW_SECS {
            return Err(DetectError::config(
                "allowed_lateness_secs",
                format!("must be at most {MAX_WINDOW_SECS}"),
            ));
        }
        let mut names = HashSet::new();
        for (i, rule) in self.rules.iter().enumerate() {
            if !names.insert(rule.name.as_str()) {
                return Err(DetectError::config(
                    format!("rules[{i}].name"),
                    format!("duplicate rule name {:?}", rule.name),
                ));
            }
            validate_rule(rule, &format!("rules[{i}]"), self.bucket_secs)?;
        }
        self.security.validate()?;
        self.patterns.validate()?;
        Ok(())
    }
}

/// Validates one rule; `at` is its path (`rules[3]`).
pub(crate) fn validate_rule(
    rule: &RuleConfig,
    at: &str,
    bucket_secs: u64,
) -> Result<(), DetectError> {
    let path = |f: &str| format!("{at}.{f}");
    let bad = |f: &str, m: String| Err(DetectError::config(path(f), m));
    let name_ok = !rule.name.is_empty()
        && rule
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !rule.name.as_bytes()[0].is_ascii_digit();
    if !name_ok {
        return bad(
            "name",
            format!("{:?} must be letters, digits and _", rule.name),
        );
    }
    for (field, secs) in [
        ("window_secs", rule.window_secs),
        ("for_secs", rule.for_secs),
        ("resolve_for_secs", rule.resolve_for_secs),
    ] {
        if !secs.is_multiple_of(bucket_secs) {
            return bad(
                field,
                format!("{secs} is not a multiple of bucket_secs ({bucket_secs})"),
            );
        }
        if secs > MAX_WINDOW_SECS {
            return bad(field, format!("{secs} exceeds {MAX_WINDOW_SECS}"));
        }
    }
    if rule.window_secs == 0 {
        return bad("window_secs", "must be at least one bucket".into());
    }
    compile_expr(&rule.match_expr, &path("match"))?;
    if let Some(of) = &rule.of {
        if !matches!(rule.kind, RuleKind::Ratio | RuleKind::Anomaly) {
            return bad("of", "only ratio and anomaly rules take `of`".into());
        }
        compile_expr(of, &path("of"))?;
    }
    if rule.group_by.len() > 8 {
        return bad("group_by", "at most 8 fields".into());
    }
    for (j, g) in rule.group_by.iter().enumerate() {
        if expr::Field::parse(g).is_none() {
            return bad(&format!("group_by[{j}]"), format!("unknown field {g:?}"));
        }
    }
    let threshold = match &rule.threshold {
        Some(t) => Some(
            t.value()
                .map_err(|m| DetectError::config(path("threshold"), m))?,
        ),
        None => None,
    };
    if let Some(t) = &rule.resolve_threshold {
        let r = t
            .value()
            .map_err(|m| DetectError::config(path("resolve_threshold"), m))?;
        if threshold.is_some_and(|t| r > t) {
            return bad("resolve_threshold", "must not exceed threshold".into());
        }
    }
    match (rule.kind, threshold) {
        (RuleKind::Anomaly, Some(_)) => {
            return bad(
                "threshold",
                "anomaly rules use z_threshold, not threshold".into(),
            );
        }
        (RuleKind::Anomaly, None) => {}
        (_, None) => return bad("threshold", "required for this kind".into()),
        (RuleKind::Ratio, Some(t)) if !(0.0..1.0).contains(&t) => {
            return bad("threshold", format!("{t} is not a ratio in 0..1"));
        }
        (_, Some(t)) if !t.is_finite() || t < 0.0 => {
            return bad("threshold", format!("{t} must be a finite number ≥ 0"));
        }
        _ => {}
    }
    if rule.kind == RuleKind::Quantile {
        let q = rule.quantile.unwrap_or(0.95);
        if !(q > 0.0 && q < 1.0) {
            return bad("quantile", format!("{q} is not in (0, 1)"));
        }
        let f = rule
            .field
            .as_deref()
            .unwrap_or(schemas::fields::EVENT_DURATION);
        if !expr::Field::parse(f)
            .is_some_and(|f| f.is_numeric() || matches!(f, expr::Field::App(_)))
        {
            return bad("field", format!("{f:?} is not a numeric field"));
        }
    } else if rule.quantile.is_some() || rule.field.is_some() {
        return bad("quantile", "only quantile rules take quantile/field".into());
    }
    let anomaly_only = [
        ("z_threshold", rule.z_threshold.is_some()),
        ("min_factor", rule.min_factor.is_some()),
        ("min_count", rule.min_count.is_some()),
        (
            "baseline_half_life_secs",
            rule.baseline_half_life_secs.is_some(),
        ),
        ("warmup_secs", rule.warmup_secs.is_some()),
    ];
    if rule.kind != RuleKind::Anomaly {
        if let Some((f, _)) = anomaly_only.iter().find(|(_, set)| *set) {
            return bad(f, "only anomaly rules take this setting".into());
        }
    } else {
        if rule
            .z_threshold
            .is_some_and(|z| !(z.is_finite() && z > 0.0))
        {
            return bad("z_threshold", "must be > 0".into());
        }
        if rule
            .min_factor
            .is_some_and(|f| !(f.is_finite() && f >= 1.0))
        {
            return bad("min_factor", "must be ≥ 1".into());
        }
        if rule
            .baseline_half_life_secs
            .is_some_and(|h| h < bucket_secs)
        {
            return bad(
                "baseline_half_life_secs",
                "must be at least one bucket".into(),
            );
        }
    }
    for key in rule.labels.keys() {
        if key == schemas::LABEL_ALERTNAME || key == schemas::LABEL_SEVERITY {
            return bad("labels", format!("{key:?} is set by the rule itself"));
        }
    }
    Ok(())
}

pub(crate) fn compile_expr(src: &str, path: &str) -> Result<expr::Expr, DetectError> {
    expr::parse(src).map_err(|e| DetectError::Expression {
        path: path.to_owned(),
        offset: e.offset,
        message: e.message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid_and_has_the_runbook_rules() -> Result<(), DetectError> {
        let cfg = DetectConfig::default();
        cfg.validate()?;
        let rules = cfg.effective_rules();
        for (i, r) in rules.iter().enumerate() {
            validate_rule(r, &format!("builtin[{i}]"), cfg.bucket_secs)?;
        }
        let names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
        for want in [
            "HighErrorRate",
            "HighLatency",
            "HighEndpointLatency",
            "DatabaseConnectionError",
            "ExternalApiFailures",
            "ErrorRateAnomaly",
            "SloErrorRate",
            "SloLatency",
        ] {
            assert!(names.contains(&want), "missing {want}");
        }
        Ok(())
    }

    #[test]
    fn toml_rules_parse_and_override_builtins() -> Result<(), DetectError> {
        let cfg = DetectConfig::from_toml_str(
            r#"
            bucket_secs = 5
            [[rules]]
            name = "HighErrorRate"
            kind = "ratio"
            severity = "critical"
            match = "http.response.status_code >= 500"
            of = "http.response.status_code exists"
            threshold = 0.10
            window_secs = 60

            [[rules]]
            name = "SlowCheckout"
            kind = "quantile"
            match = 'service.name == "checkout"'
            quantile = 0.99
            threshold = "1.5s"
            group_by = ["service.name", "route"]
            "#,
        )?;
        let rules = cfg.effective_rules();
        let her = rules.iter().find(|r| r.name == "HighErrorRate");
        assert_eq!(
            her.map(|r| r.threshold.clone()),
            Some(Some(Threshold::Number(0.10)))
        );
        let slow = rules.iter().find(|r| r.name == "SlowCheckout");
        assert_eq!(
            slow.and_then(|r| r.threshold.as_ref())
                .map(Threshold::value),
            Some(Ok(1.5e9))
        );
        Ok(())
    }

    #[test]
    fn errors_name_the_field_path() {
        let cases = [
            ("bucket_secs = 0", "bucket_secs"),
            (
                "[[rules]]\nname = \"A\"\nkind = \"ratio\"\nthreshold = 2.0",
                "rules[0].threshold",
            ),
            (
                "[[rules]]\nname = \"A\"\nkind = \"count\"",
                "rules[0].threshold",
            ),
            (
                "[[rules]]\nname = \"A\"\nkind = \"count\"\nthreshold = 1\nwindow_secs = 15",
                "rules[0].window_secs",
            ),
            (
                "[[rules]]\nname = \"A\"\nkind = \"count\"\nthreshold = 1\n[[rules]]\nname = \"A\"\nkind = \"count\"\nthreshold = 1",
                "rules[1].name",
            ),
            (
                "[[rules]]\nname = \"A\"\nkind = \"count\"\nthreshold = 1\ngroup_by = [\"nope\"]",
                "rules[0].group_by[0]",
            ),
            (
                "[[rules]]\nname = \"A\"\nkind = \"count\"\nthreshold = 1\nmatch = \"status >= 5\"",
                "rules[0].match",
            ),
            (
                "[[rules]]\nname = \"A\"\nkind = \"quantile\"\nthreshold = \"2 parsecs\"",
                "rules[0].threshold",
            ),
            (
                "[[rules]]\nname = \"A\"\nkind = \"count\"\nthreshold = 1\nz_threshold = 3.0",
                "rules[0].z_threshold",
            ),
        ];
        for (toml, want) in cases {
            match DetectConfig::from_toml_str(toml) {
                Ok(_) => panic!("accepted: {toml}"),
                Err(DetectError::Config { path, .. })
                | Err(DetectError::Expression { path, .. }) => {
                    assert_eq!(path, want, "{toml}")
                }
                Err(e) => panic!("{toml}: unexpected {e}"),
            }
        }
        match DetectConfig::from_toml_str("bucket_sec = 10") {
            Err(DetectError::ConfigSyntax { message }) => assert!(message.contains("bucket_sec")),
            other => panic!("unknown field accepted: {other:?}"),
        }
    }
}
