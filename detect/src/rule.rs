//! A compiled rule and its per-key state: windows, baseline and alert lifecycle.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use chrono::{DateTime, Utc};
use schemas::{Alert, AlertStatus};
use serde::{Deserialize, Serialize};

use crate::DetectError;
use crate::baseline::{self, Baseline};
use crate::config::{self, DEFAULT_RESOLVE_FRACTION, RuleConfig, RuleKind};
use crate::expr::{Expr, Facts, Field};
use crate::lifecycle::{Phase, Timing, Transition};
use crate::stats::{DetectStats, RuleStats};
use crate::window::KeySeries;

/// The label value for a group-by field an event does not have.
pub const MISSING_LABEL_VALUE: &str = "unknown";
/// Separates group values in a key (0xff never occurs in UTF-8).
const KEY_SEPARATOR: u8 = 0xff;
/// Share of a full key table evicted at once, so eviction (a scan) runs once per many new keys.
const EVICT_FRACTION: usize = 10;
/// Default minimum population for ratio, quantile and anomaly rules.
const DEFAULT_MIN_SAMPLES: u64 = 20;
/// Anomaly defaults (see [`RuleConfig`]).
const DEFAULT_Z_THRESHOLD: f64 = 4.0;
const DEFAULT_MIN_FACTOR: f64 = 2.0;
const DEFAULT_MIN_COUNT: u64 = 10;
const DEFAULT_HALF_LIFE_SECS: u64 = 3600;
const DEFAULT_WARMUP_SECS: u64 = 1800;
/// An anomaly resolves once its z-score falls below this share of `z_threshold` (hysteresis).
const ANOMALY_RESOLVE_Z_FRACTION: f64 = 0.5;
/// Floor of the anomaly standard deviation for ratios: half a percentage point, so a service
/// whose error share never moved still needs a visible jump to alert.
const MIN_SD_RATIO: f64 = 0.005;
/// Floor of the anomaly standard deviation for counts: one event.
const MIN_SD_COUNT: f64 = 1.0;
/// An anomaly baseline is forgotten after this many half-lives without data: its weight is
/// below 1/64 by then.
const BASELINE_HORIZON_HALF_LIVES: u64 = 6;

/// Keys are already xxh3 hashes: hash them no further.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type KeyMap = HashMap<u64, KeyState, BuildHasherDefault<IdHasher>>;

/// The key of the current event under one group-by spec, computed once per event and shared
/// by every rule that groups the same way (most group by `service.name`).
#[derive(Debug, Default)]
pub(crate) struct KeySlot {
    valid: bool,
    hash: u64,
    bytes: Vec<u8>,
}

impl KeySlot {
    /// Forgets the previous event's key.
    pub(crate) fn reset(&mut self) {
        self.valid = false;
    }
}

/// Everything tracked for one key of one rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct KeyState {
    /// Group-by values, in `group_by` order.
    pub(crate) labels: Vec<String>,
    pub(crate) series: KeySeries,
    pub(crate) phase: Phase,
    #[serde(default)]
    pub(crate) baseline: Baseline,
    /// Newest bucket an event of this key landed in.
    pub(crate) last_seen: i64,
}

/// Persisted state of one rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RuleState {
    pub(crate) name: String,
    /// [`Rule::definition`] when saved: state is reused only for an identical rule.
    pub(crate) definition: String,
    pub(crate) keys: Vec<KeyState>,
}

#[derive(Debug, Clone, Copy)]
struct AnomalyParams {
    z_threshold: f64,
    min_factor: f64,
    min_count: u64,
    alpha: f64,
    warmup_steps: u64,
    horizon_buckets: i64,
}

/// Engine settings a rule needs while closing buckets.
#[derive(Debug, Clone)]
pub(crate) struct Ctx<'a> {
    pub(crate) generator_url: &'a str,
}

/// What a rule computed for a key at one evaluation.
#[derive(Debug, Clone, Copy, Default)]
struct Eval {
    value: Option<f64>,
    hits: u64,
    total: u64,
    baseline: Option<f64>,
    z: Option<f64>,
}

/// A compiled rule.
#[derive(Debug)]
pub(crate) struct Rule {
    pub(crate) cfg: RuleConfig,
    /// Hex xxh3 of the rule's JSON and the bucket width.
    pub(crate) definition: String,
    matcher: Expr,
    /// `None`: every event (ratio/anomaly population), or "not a ratio" for count/quantile.
    of: Option<Expr>,
    ratio_mode: bool,
    value_field: Option<Field>,
    quantile: f64,
    threshold: f64,
    resolve_threshold: f64,
    group: Vec<(String, Field)>,
    /// Index of this rule's group-by spec in the detector's [`KeySlot`]s.
    pub(crate) spec: usize,
    window_buckets: i64,
    timing: Timing,
    min_samples: u64,
    max_keys: usize,
    anomaly: AnomalyParams,
    keys: KeyMap,
    pub(crate) stats: RuleStats,
}

/// The Prometheus label name for a group-by field.
pub(crate) fn label_name(field: &str) -> String {
    let known = match field {
        "service.name" => Some("service"),
        "kubernetes.namespace" => Some("namespace"),
        "kubernetes.pod.name" => Some("pod"),
        "kubernetes.container.name" => Some("container"),
        "kubernetes.node.name" => Some("node"),
        "client.ip" => Some("client_ip"),
        "user.name" => Some("user"),
        "url.path" => Some("path"),
        "http.request.method" => Some("method"),
        "http.response.status_code" => Some("status_code"),
        "log.level" => Some("level"),
        "event.dataset" => Some("dataset"),
        "error.type" => Some("error_type"),
        _ => None,
    };
    if let Some(k) = known {
        return k.to_owned();
    }
    let base = field
        .strip_prefix("kubernetes.labels.")
        .or_else(|| field.strip_prefix("app."))
        .unwrap_or(field);
    let mut s: String = base
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

impl Rule {
    /// Compiles a validated rule.
    pub(crate) fn compile(
        cfg: &RuleConfig,
        at: &str,
        bucket_secs: u64,
        default_repeat_secs: u64,
        max_keys: usize,
    ) -> Result<Rule, DetectError> {
        config::validate_rule(cfg, at, bucket_secs)?;
        let matcher = config::compile_expr(&cfg.match_expr, &format!("{at}.match"))?;
        let of = match &cfg.of {
            Some(src) => {
                Some(config::compile_expr(src, &format!("{at}.of"))?).filter(|e| !e.is_always())
            }
            None => None,
        };
        let ratio_mode = match cfg.kind {
            RuleKind::Ratio => true,
            RuleKind::Anomaly => cfg.of.is_some(),
            _ => false,
        };
        let threshold = match &cfg.threshold {
            Some(t) => t
                .value()
                .map_err(|m| DetectError::config(format!("{at}.threshold"), m))?,
            None => 0.0,
        };
        let resolve_threshold = match &cfg.resolve_threshold {
            Some(t) => t
                .value()
                .map_err(|m| DetectError::config(format!("{at}.resolve_threshold"), m))?,
            None => threshold * DEFAULT_RESOLVE_FRACTION,
        };
        let value_field = if cfg.kind == RuleKind::Quantile {
            Field::parse(
                cfg.field
                    .as_deref()
                    .unwrap_or(schemas::fields::EVENT_DURATION),
            )
        } else {
            None
        };
        let mut group = Vec::with_capacity(cfg.group_by.len());
        for g in &cfg.group_by {
            let field = Field::parse(g).ok_or_else(|| {
                DetectError::config(format!("{at}.group_by"), format!("unknown field {g:?}"))
            })?;
            group.push((label_name(g), field));
        }
        let b = bucket_secs as i64;
        let half_life = cfg
            .baseline_half_life_secs
            .unwrap_or(DEFAULT_HALF_LIFE_SECS);
        let json =
            serde_json::to_string(cfg).map_err(|e| DetectError::config(at, e.to_string()))?;
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        h.update(json.as_bytes());
        h.update(&bucket_secs.to_le_bytes());
        Ok(Rule {
            cfg: cfg.clone(),
            definition: format!("{:016x}", h.digest()),
            matcher,
            of,
            ratio_mode,
            value_field,
            quantile: cfg.quantile.unwrap_or(0.95),
            threshold,
            resolve_threshold,
            group,
            spec: 0,
            window_buckets: cfg.window_secs as i64 / b,
            timing: Timing {
                for_secs: cfg.for_secs as i64,
                resolve_for_secs: cfg.resolve_for_secs as i64,
                repeat_secs: cfg.repeat_interval_secs.unwrap_or(default_repeat_secs) as i64,
            },
            min_samples: cfg.min_samples.unwrap_or(match cfg.kind {
                RuleKind::Count => 0,
                _ => DEFAULT_MIN_SAMPLES,
            }),
            max_keys,
            anomaly: AnomalyParams {
                z_threshold: cfg.z_threshold.unwrap_or(DEFAULT_Z_THRESHOLD),
                min_factor: cfg.min_factor.unwrap_or(DEFAULT_MIN_FACTOR),
                min_count: cfg.min_count.unwrap_or(DEFAULT_MIN_COUNT),
                alpha: baseline::alpha_for(bucket_secs, half_life),
                warmup_steps: cfg.warmup_secs.unwrap_or(DEFAULT_WARMUP_SECS) / bucket_secs,
                horizon_buckets: (half_life * BASELINE_HORIZON_HALF_LIVES / bucket_secs) as i64,
            },
            keys: KeyMap::default(),
            stats: RuleStats {
                name: cfg.name.clone(),
                ..RuleStats::default()
            },
        })
    }

    pub(crate) fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Counts one event (already known to be on time) into bucket `b`.
    pub(crate) fn observe(
        &mut self,
        facts: &Facts<'_>,
        b: i64,
        slots: &mut [KeySlot],
        stats: &mut DetectStats,
    ) {
        let (hit, value) = match self.cfg.kind {
            RuleKind::Count => {
                if !self.matcher.eval(facts) {
                    return;
                }
                (true, None)
            }
            RuleKind::Ratio | RuleKind::Anomaly => {
                if self.of.as_ref().is_some_and(|of| !of.eval(facts)) {
                    return;
                }
                if !self.ratio_mode && !self.matcher.eval(facts) {
                    return; // anomaly on a raw count
                }
                (!self.ratio_mode || self.matcher.eval(facts), None)
            }
            RuleKind::Quantile => {
                if !self.matcher.eval(facts) {
                    return;
                }
                let Some(v) = self.value_field.as_ref().and_then(|f| f.number(facts)) else {
                    return;
                };
                (v > self.threshold, Some(v))
            }
        };
        let Some(slot) = slots.get_mut(self.spec) else {
            debug_assert!(false, "rule spec {} has no key slot", self.spec);
            return;
        };
        let Some(key) = self.key_for(facts, b, slot, stats) else {
            return;
        };
        key.last_seen = key.last_seen.max(b);
        let p = key.series.bucket_mut(b);
        p.total += 1;
        p.hits += u64::from(hit);
        if let Some(v) = value {
            p.sketch.get_or_insert_with(Box::default).add(v);
        }
    }

    /// Finds or creates the key of this event.
    fn key_for(
        &mut self,
        facts: &Facts<'_>,
        b: i64,
        slot: &mut KeySlot,
        stats: &mut DetectStats,
    ) -> Option<&mut KeyState> {
        if !slot.valid {
            build_key(&self.group, facts, &mut slot.bytes);
            slot.hash = xxhash_rust::xxh3::xxh3_64(&slot.bytes);
            slot.valid = true;
        }
        let hash = slot.hash;
        if self.keys.len() >= self.max_keys && !self.keys.contains_key(&hash) && !self.evict(stats)
        {
            stats.keys_rejected += 1;
            return None;
        }
        let groups = self.group.len();
        let key = self.keys.entry(hash).or_insert_with(|| KeyState {
            labels: slot
                .bytes
                .split(|&c| c == KEY_SEPARATOR)
                .take(groups)
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect(),
            series: KeySeries::default(),
            phase: Phase::Inactive,
            baseline: Baseline::default(),
            last_seen: b,
        });
        if !labels_match(&key.labels, &slot.bytes) {
            stats.key_hash_collisions += 1;
            return None;
        }
        Some(key)
    }

    /// Evicts a tenth of the keys that have no active alert: those holding the fewest events,
    /// least recently seen first. A cardinality explosion (a crawler minting routes) creates
    /// many one-event keys, so the busy keys that matter survive it. Returns false when
    /// nothing could be evicted.
    fn evict(&mut self, stats: &mut DetectStats) -> bool {
        let mut idle: Vec<(u64, i64, u64)> = self
            .keys
            .iter()
            .filter(|(_, k)| !k.phase.is_active())
            .map(|(h, k)| (k.series.event_count(), k.last_seen, *h))
            .collect();
        if idle.is_empty() {
            return false;
        }
        let n = (self.max_keys / EVICT_FRACTION).clamp(1, idle.len());
        if n < idle.len() {
            idle.select_nth_unstable(n - 1);
        }
        for (_, _, h) in &idle[..n] {
            self.keys.remove(h);
        }
        stats.keys_evicted += n as u64;
        true
    }

    /// Closes bucket `c` (evaluation time `now`, its end) for every key, appending alert
    /// transitions sorted by fingerprint, and forgets keys with nothing left to track.
    pub(crate) fn close(&mut self, c: i64, now: i64, ctx: &Ctx<'_>, out: &mut Vec<Alert>) {
        let first = out.len();
        let mut active = 0;
        let mut transitions: Vec<(u64, Transition, Eval)> = Vec::new();
        // Evaluate with shared borrows of the settings and a mutable walk over the keys.
        let mut keys = std::mem::take(&mut self.keys);
        let this = &*self;
        keys.retain(|&hash, key| {
            key.series.close(c, this.window_buckets);
            let eval = this.evaluate(key);
            let (breach, still_bad) = this.condition(&eval);
            let step = key.phase.step(now, breach, still_bad, this.timing);
            if let Some(t) = step {
                transitions.push((hash, t, eval));
            }
            // The baseline learns only from calm windows with enough samples.
            let learn = this.cfg.kind == RuleKind::Anomaly
                && !key.phase.is_active()
                && (!this.ratio_mode || eval.total >= this.min_samples.max(1));
            if let (true, Some(x)) = (learn, eval.value) {
                key.baseline.update(x, this.anomaly.alpha);
            }
            active += usize::from(key.phase.is_active());
            let forget_after = if this.cfg.kind == RuleKind::Anomaly {
                this.anomaly.horizon_buckets
            } else {
                0
            };
            // Keys with a transition stay one more step so the alert below can name them.
            step.is_some()
                || !(key.series.is_idle()
                    && !key.phase.is_active()
                    && c - key.last_seen >= forget_after)
        });
        for (hash, t, eval) in transitions {
            if let Some(k) = keys.get(&hash) {
                out.push(self.alert(&k.labels, t, &eval, ctx));
            }
        }
        self.keys = keys;
        out[first..].sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
        for a in &out[first..] {
            match a.status {
                AlertStatus::Firing => self.stats.firing += 1,
                AlertStatus::Resolved => self.stats.resolved += 1,
            }
        }
        self.stats.keys = self.keys.len() as u64;
        self.stats.active = active as u64;
    }

    fn evaluate(&self, key: &KeyState) -> Eval {
        let w = &key.series.window;
        let mut e = Eval {
            hits: w.hits,
            total: w.total,
            ..Eval::default()
        };
        match self.cfg.kind {
            RuleKind::Count => e.value = Some(w.hits as f64),
            RuleKind::Ratio => {
                if w.total > 0 {
                    e.value = Some(w.hits as f64 / w.total as f64);
                }
            }
            RuleKind::Quantile => {
                e.value = w.sketch.as_ref().and_then(|s| s.quantile(self.quantile));
            }
            RuleKind::Anomaly => {
                e.value = if self.ratio_mode {
                    (w.total > 0).then(|| w.hits as f64 / w.total as f64)
                } else {
                    Some(w.hits as f64)
                };
                let b = key.baseline;
                if b.samples > 0 {
                    e.baseline = Some(b.mean);
                    if let Some(x) = e.value {
                        let (sampling, floor) = if self.ratio_mode {
                            let m = b.mean.clamp(0.0, 1.0);
                            (m * (1.0 - m) / w.total.max(1) as f64, MIN_SD_RATIO)
                        } else {
                            (b.mean.max(0.0), MIN_SD_COUNT)
                        };
                        e.z = Some(b.z_score(x, sampling, floor));
                    }
                }
                if b.samples < self.anomaly.warmup_steps {
                    e.z = None; // still learning
                }
            }
        }
        e
    }

    /// (breach, still_bad) for the lifecycle.
    fn condition(&self, e: &Eval) -> (bool, bool) {
        let Some(v) = e.value else {
            return (false, false);
        };
        match self.cfg.kind {
            RuleKind::Count => (v > self.threshold, v > self.resolve_threshold),
            RuleKind::Ratio | RuleKind::Quantile => {
                if e.total < self.min_samples.max(1) {
                    return (false, false);
                }
                (v > self.threshold, v > self.resolve_threshold)
            }
            RuleKind::Anomaly => {
                let (Some(z), Some(m)) = (e.z, e.baseline) else {
                    return (false, false);
                };
                if e.hits < self.anomaly.min_count
                    || (self.ratio_mode && e.total < self.min_samples)
                {
                    return (false, false);
                }
                let breach = z >= self.anomaly.z_threshold && v >= m * self.anomaly.min_factor;
                (
                    breach,
                    z >= self.anomaly.z_threshold * ANOMALY_RESOLVE_Z_FRACTION,
                )
            }
        }
    }

    fn format_value(&self, v: f64) -> String {
        match self.cfg.kind {
            RuleKind::Count => format!("{v:.0}"),
            RuleKind::Ratio => format!("{:.2}%", v * 100.0),
            RuleKind::Anomaly if self.ratio_mode => format!("{:.2}%", v * 100.0),
            RuleKind::Anomaly => format!("{v:.0}"),
            RuleKind::Quantile => match self.value_field {
                Some(Field::Duration) => format_ns(v),
                _ => format!("{v:.3}"),
            },
        }
    }

    fn alert(&self, labels: &[String], t: Transition, e: &Eval, ctx: &Ctx<'_>) -> Alert {
        let mut l = BTreeMap::new();
        l.insert(schemas::LABEL_ALERTNAME.to_owned(), self.cfg.name.clone());
        l.insert(
            schemas::LABEL_SEVERITY.to_owned(),
            self.cfg.severity.as_str().to_owned(),
        );
        for ((name, _), value) in self.group.iter().zip(labels) {
            l.insert(name.clone(), value.clone());
        }
        for (k, v) in &self.cfg.labels {
            l.insert(k.clone(), v.clone());
        }
        let (status, starts_at, ends_at) = match t {
            Transition::Firing { starts_at } => (AlertStatus::Firing, starts_at, None),
            Transition::Resolved { starts_at, ends_at } => {
                (AlertStatus::Resolved, starts_at, Some(ends_at))
            }
        };
        let starts_at = ts(starts_at);
        let ends_at = ends_at.map(ts);
        let mut vars: Vec<(&str, String)> = vec![
            (
                "value",
                e.value
                    .map_or_else(|| "n/a".into(), |v| self.format_value(v)),
            ),
            ("threshold", self.threshold_text()),
            ("window", format_secs(self.cfg.window_secs)),
            ("hits", e.hits.to_string()),
            ("total", e.total.to_string()),
            (
                "baseline",
                e.baseline
                    .map_or_else(|| "n/a".into(), |v| self.format_value(v)),
            ),
            ("z", e.z.map_or_else(|| "n/a".into(), |z| format!("{z:.1}"))),
        ];
        vars.extend(l.iter().map(|(k, v)| (k.as_str(), v.clone())));
        let mut annotations = BTreeMap::new();
        if let Some(s) = &self.cfg.summary {
            annotations.insert(
                schemas::ANNOTATION_SUMMARY.to_owned(),
                render(s, &vars, false),
            );
        }
        if let Some(s) = &self.cfg.description {
            annotations.insert(
                schemas::ANNOTATION_DESCRIPTION.to_owned(),
                render(s, &vars, false),
            );
        }
        if let Some(u) = &self.cfg.runbook_url {
            annotations.insert(schemas::ANNOTATION_RUNBOOK_URL.to_owned(), u.clone());
        }
        annotations.insert("value".to_owned(), vars[0].1.clone());
        annotations.insert("threshold".to_owned(), vars[1].1.clone());
        for (k, v) in &self.cfg.annotations {
            annotations.insert(k.clone(), render(v, &vars, false));
        }
        let mut url_vars = vars;
        url_vars.push(("starts_at", starts_at.to_rfc3339()));
        url_vars.push(("ends_at", ends_at.unwrap_or(starts_at).to_rfc3339()));
        let generator_url = render(ctx.generator_url, &url_vars, true);
        drop(url_vars);
        Alert {
            fingerprint: schemas::alert_fingerprint(&l),
            labels: l,
            annotations,
            starts_at,
            ends_at,
            generator_url,
            status,
        }
    }

    fn threshold_text(&self) -> String {
        match self.cfg.kind {
            RuleKind::Anomaly => format!(
                "z ≥ {} and ≥ {}× baseline",
                self.anomaly.z_threshold, self.anomaly.min_factor
            ),
            _ => self.format_value(self.threshold),
        }
    }

    /// The persistable state of this rule.
    pub(crate) fn snapshot(&self) -> RuleState {
        let mut keys: Vec<KeyState> = self.keys.values().cloned().collect();
        keys.sort_by(|a, b| a.labels.cmp(&b.labels));
        RuleState {
            name: self.cfg.name.clone(),
            definition: self.definition.clone(),
            keys,
        }
    }

    /// Loads saved keys (the caller checked that the definition matches).
    pub(crate) fn load(&mut self, keys: Vec<KeyState>) {
        self.keys.clear();
        let mut buf = Vec::new();
        for k in keys {
            buf.clear();
            for l in &k.labels {
                buf.extend_from_slice(l.as_bytes());
                buf.push(KEY_SEPARATOR);
            }
            self.keys.insert(xxhash_rust::xxh3::xxh3_64(&buf), k);
        }
        self.stats.keys = self.keys.len() as u64;
        self.stats.active = self.keys.values().filter(|k| k.phase.is_active()).count() as u64;
    }

    /// Moves the key state out (reload keeps it for an unchanged rule).
    pub(crate) fn take_keys(&mut self) -> KeyMap {
        std::mem::take(&mut self.keys)
    }

    pub(crate) fn put_keys(&mut self, keys: KeyMap) {
        self.keys = keys;
        self.stats.keys = self.keys.len() as u64;
    }

    /// Heap bytes of all keys' state (approximate: map slots, labels, buckets, sketches).
    pub(crate) fn state_bytes(&self) -> usize {
        let slot = std::mem::size_of::<(u64, KeyState)>() + 1;
        self.keys.capacity() * slot
            + self
                .keys
                .values()
                .map(|k| {
                    k.series.heap_bytes()
                        + k.labels.iter().map(|l| l.capacity() + 24).sum::<usize>()
                })
                .sum::<usize>()
    }

    /// The window partials of every key, for merging across processors.
    pub(crate) fn partials(&self) -> Vec<(Vec<String>, crate::WindowPartial)> {
        let mut v: Vec<_> = self
            .keys
            .values()
            .map(|k| (k.labels.clone(), k.series.window.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Partial-export mode: moves every key's buckets up to `c` into `out` and forgets keys
    /// left with nothing.
    pub(crate) fn export(&mut self, c: i64, out: &mut Vec<crate::BucketPartial>) {
        let first = out.len();
        self.keys.retain(|_, key| {
            while key.series.buckets.front().is_some_and(|(b, _)| *b <= c) {
                if let Some((b, partial)) = key.series.buckets.pop_front()
                    && !partial.is_empty()
                {
                    out.push(crate::BucketPartial {
                        rule: self.cfg.name.clone(),
                        definition: self.definition.clone(),
                        labels: key.labels.clone(),
                        bucket: b,
                        partial,
                    });
                }
            }
            !key.series.buckets.is_empty()
        });
        // Deterministic order (the key map is a hash map).
        out[first..].sort_by(|a, b| (a.bucket, &a.labels).cmp(&(b.bucket, &b.labels)));
        self.stats.keys = self.keys.len() as u64;
    }

    /// Owner side: counts a partial into bucket `b` of the key `labels`. False when the key
    /// could not be tracked (table full of active keys, or a hash collision).
    pub(crate) fn merge(
        &mut self,
        labels: &[String],
        b: i64,
        partial: &crate::WindowPartial,
        stats: &mut DetectStats,
    ) -> bool {
        if labels.len() != self.group.len() {
            return false;
        }
        let mut bytes = Vec::with_capacity(labels.iter().map(|l| l.len() + 1).sum());
        for l in labels {
            bytes.extend_from_slice(l.as_bytes());
            bytes.push(KEY_SEPARATOR);
        }
        let hash = xxhash_rust::xxh3::xxh3_64(&bytes);
        if self.keys.len() >= self.max_keys && !self.keys.contains_key(&hash) && !self.evict(stats)
        {
            stats.keys_rejected += 1;
            return false;
        }
        let key = self.keys.entry(hash).or_insert_with(|| KeyState {
            labels: labels.to_vec(),
            series: KeySeries::default(),
            phase: Phase::Inactive,
            baseline: Baseline::default(),
            last_seen: b,
        });
        if key.labels != labels {
            stats.key_hash_collisions += 1;
            return false;
        }
        key.last_seen = key.last_seen.max(b);
        key.series.bucket_mut(b).merge(partial);
        true
    }

    /// The oldest bucket any key holds.
    pub(crate) fn oldest_bucket(&self) -> Option<i64> {
        self.keys
            .values()
            .filter_map(|k| k.series.buckets.front().map(|(b, _)| *b))
            .min()
    }

    pub(crate) fn has_firing(&self) -> bool {
        self.keys.values().any(|k| k.phase.is_firing())
    }
}

/// Writes the group-by values of the event, each followed by [`KEY_SEPARATOR`].
fn build_key(group: &[(String, Field)], facts: &Facts<'_>, out: &mut Vec<u8>) {
    out.clear();
    for (_, field) in group {
        let mut wrote = false;
        field.any_str(facts, &mut |s| {
            out.extend_from_slice(s.as_bytes());
            wrote = true;
            true
        });
        if !wrote {
            if let Some(n) = field.number(facts) {
                use std::io::Write as _;
                let _ = write!(out, "{n}");
            } else {
                out.extend_from_slice(MISSING_LABEL_VALUE.as_bytes());
            }
        }
        out.push(KEY_SEPARATOR);
    }
}

fn labels_match(labels: &[String], key: &[u8]) -> bool {
    let mut rest = key;
    for l in labels {
        let n = l.len();
        if rest.len() <= n || &rest[..n] != l.as_bytes() || rest[n] != KEY_SEPARATOR {
            return false;
        }
        rest = &rest[n + 1..];
    }
    rest.is_empty()
}

fn ts(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn format_ns(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.2}s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.0}ms", ns / 1e6)
    } else {
        format!("{:.0}µs", ns / 1e3)
    }
}

fn format_secs(s: u64) -> String {
    if s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// Replaces `{{name}}` / `{{ name }}` placeholders; unknown names render empty.
fn render(template: &str, vars: &[(&str, String)], url_encode: bool) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            out.push_str(&rest[open..]);
            return out;
        };
        let name = after[..close].trim();
        if let Some((_, v)) = vars.iter().find(|(k, _)| *k == name) {
            if url_encode {
                percent_encode(v, &mut out);
            } else {
                out.push_str(v);
            }
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    out
}

fn percent_encode(s: &str, out: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_render_and_encode() {
        let vars = vec![
            ("service", "check out".to_owned()),
            ("value", "5.1%".to_owned()),
        ];
        assert_eq!(
            render("{{service}}: {{ value }} {{nope}}!", &vars, false),
            "check out: 5.1% !"
        );
        assert_eq!(
            render("q={{service}}&x={{", &vars, true),
            "q=check%20out&x={{"
        );
    }

    #[test]
    fn label_names_are_prometheus_safe() {
        assert_eq!(label_name("service.name"), "service");
        assert_eq!(
            label_name("kubernetes.labels.app.kubernetes.io/name"),
            "app_kubernetes_io_name"
        );
        assert_eq!(label_name("app.9lives"), "_9lives");
        assert_eq!(label_name("route"), "route");
    }

    #[test]
    fn key_label_check() {
        assert!(labels_match(&["a".into(), "bc".into()], b"a\xffbc\xff"));
        assert!(!labels_match(&["a".into(), "b".into()], b"a\xffbc\xff"));
        assert!(!labels_match(&["a".into()], b"a\xffb\xff"));
    }
}
