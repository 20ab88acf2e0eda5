//! [`Detector`]: runs every rule over events in event time and emits alert transitions.

use chrono::{DateTime, Utc};
use schemas::{Alert, LogEvent};
use serde::{Deserialize, Serialize};

use crate::expr::Facts;
use crate::patterns::{PatternConfig, PatternMiner, PatternSnapshot};
use crate::rule::{Ctx, KeySlot, Rule, RuleState};
use crate::security::{SecurityConfig, SecurityDetector, SecuritySnapshot};
use crate::{DetectConfig, DetectError, DetectStats, WindowPartial};

/// One closed bucket of one rule and key: what a detector in partial-export mode
/// ([`Detector::exporting_partials`]) hands over instead of evaluating, and what the owner of
/// the key merges with [`Detector::merge_partial`]. Partials of the same (rule, labels, bucket)
/// computed over disjoint events merge into exactly what one detector would have counted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketPartial {
    /// Rule name.
    pub rule: String,
    /// The rule's definition hash: partials of a differently configured rule are refused.
    pub definition: String,
    /// Group-by values, in the rule's `group_by` order.
    pub labels: Vec<String>,
    /// Bucket index (Unix seconds / `bucket_secs`).
    pub bucket: i64,
    pub partial: WindowPartial,
}

/// What [`Detector::merge_partial`] did with a partial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeOutcome {
    /// Counted into its bucket.
    Merged,
    /// Its bucket was already evaluated: not counted.
    Late,
    /// No active rule has that name and definition (a config mismatch between replicas).
    UnknownRule,
    /// The rule's key table is full of active keys, or two keys hashed alike: not counted.
    Rejected,
}

/// Version of the [`DetectorState`] layout; `restore` refuses other versions.
pub const DETECTOR_STATE_VERSION: u32 = 1;

/// The persistable state of a [`Detector`]: event-time progress, and per rule the window
/// buckets, baselines and alert lifecycle of every tracked key. Serialize it with serde (JSON
/// is fine: a few hundred bytes per key without latency sketches).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectorState {
    pub version: u32,
    bucket_secs: u64,
    /// Newest event time seen (Unix seconds).
    max_event_secs: Option<i64>,
    /// Last closed bucket index.
    closed_bucket: Option<i64>,
    rules: Vec<RuleState>,
    /// The security detections' state, when they were enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    security: Option<SecuritySnapshot>,
    /// The pattern miner's state, when it was enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    patterns: Option<PatternSnapshot>,
}

/// The rules engine. Synchronous and single-threaded: feed it events with
/// [`Detector::process`] and collect the [`Alert`]s it appends.
#[derive(Debug)]
pub struct Detector {
    bucket_secs: i64,
    lateness_secs: i64,
    max_future_secs: i64,
    /// The last `now` given to `advance_watermark` (live mode only).
    wall_clock_secs: Option<i64>,
    generator_url: String,
    rules: Vec<Rule>,
    max_event_secs: Option<i64>,
    closed_bucket: Option<i64>,
    stats: DetectStats,
    /// One per distinct group-by spec of the rules.
    key_slots: Vec<KeySlot>,
    /// Reused for derived strings (the normalized route) of each event.
    facts_buffer: String,
    /// Security detections with the config they were built from (reload compares it).
    security: Option<(SecurityConfig, SecurityDetector)>,
    /// Pattern miner with the config it was built from.
    patterns: Option<(PatternConfig, PatternMiner)>,
    /// Partial-export mode: closed buckets land here instead of being evaluated.
    export: Option<Vec<BucketPartial>>,
    /// The bucket the last processed event was counted in by the rules (None: late, future,
    /// or no event yet).
    last_event_bucket: Option<i64>,
}

fn build_security(
    config: &DetectConfig,
) -> Result<Option<(SecurityConfig, SecurityDetector)>, DetectError> {
    if !config.security_enabled {
        return Ok(None);
    }
    let d = SecurityDetector::try_new(&config.security)?;
    Ok(Some((config.security.clone(), d)))
}

fn build_patterns(
    config: &DetectConfig,
) -> Result<Option<(PatternConfig, PatternMiner)>, DetectError> {
    if !config.patterns_enabled {
        return Ok(None);
    }
    let m = PatternMiner::try_new(&config.patterns)?;
    Ok(Some((config.patterns.clone(), m)))
}

fn compile_rules(config: &DetectConfig) -> Result<Vec<Rule>, DetectError> {
    config.validate()?;
    let mut rules = Vec::new();
    for (i, rc) in config.effective_rules().iter().enumerate() {
        if !rc.enabled {
            continue;
        }
        // User rules are reported by their `rules[i]` path; built-ins by name.
        let at = match config.rules.iter().position(|u| u.name == rc.name) {
            Some(j) => format!("rules[{j}]"),
            None => format!("builtin[{i}]({})", rc.name),
        };
        rules.push(Rule::compile(
            rc,
            &at,
            config.bucket_secs,
            config.repeat_interval_secs,
            config.max_keys_per_rule,
        )?);
    }
    Ok(rules)
}

impl Detector {
    /// Builds a detector from a configuration.
    ///
    /// # Errors
    /// Any validation error of the config or its rules, naming the field path.
    pub fn try_new(config: &DetectConfig) -> Result<Detector, DetectError> {
        let rules = compile_rules(config)?;
        let security = build_security(config)?;
        let patterns = build_patterns(config)?;
        let mut d = Detector {
            bucket_secs: config.bucket_secs as i64,
            lateness_secs: config.allowed_lateness_secs as i64,
            max_future_secs: config.max_future_secs as i64,
            wall_clock_secs: None,
            generator_url: config.generator_url.clone(),
            rules,
            max_event_secs: None,
            closed_bucket: None,
            stats: DetectStats::default(),
            key_slots: Vec::new(),
            facts_buffer: String::with_capacity(128),
            security,
            patterns,
            export: None,
            last_event_bucket: None,
        };
        d.assign_key_slots();
        d.refresh_rule_stats();
        Ok(d)
    }

    /// Feeds one event. Events may arrive out of order by up to `allowed_lateness_secs`; older
    /// ones are counted in `late_events` and skipped. Alert transitions that become due as the
    /// watermark advances are appended to `out` (firing, repeats and resolved, sorted by rule
    /// then fingerprint within one evaluation).
    ///
    /// The pattern miner runs first (so rules and the index see `sluice.pattern.*`), then the
    /// security detections, then the rules.
    pub fn process(&mut self, event: &mut LogEvent, out: &mut Vec<Alert>) {
        if let Some((_, miner)) = &mut self.patterns {
            miner.process(event, out);
        }
        if let Some((_, security)) = &mut self.security {
            security.process(event, out);
        }
        self.stats.events += 1;
        let t = event.timestamp.timestamp();
        // A line stamped far ahead of the wall clock (a skewed node, a bogus parse) would drag
        // the watermark forward and make every later line late: keep it out of event time.
        if self
            .wall_clock_secs
            .is_some_and(|now| t > now + self.max_future_secs)
        {
            self.last_event_bucket = None;
            self.stats.future_events += 1;
            return;
        }
        let b = t.div_euclid(self.bucket_secs);
        if self.closed_bucket.is_none() {
            self.closed_bucket = Some(self.bucket_of_watermark(t - self.lateness_secs));
        }
        self.last_event_bucket = None;
        if self.closed_bucket.is_some_and(|c| b <= c) {
            self.stats.late_events += 1;
        } else {
            self.last_event_bucket = Some(b);
            let facts = Facts::with_buffer(event, std::mem::take(&mut self.facts_buffer));
            for slot in &mut self.key_slots {
                slot.reset();
            }
            for rule in &mut self.rules {
                rule.observe(&facts, b, &mut self.key_slots, &mut self.stats);
            }
            self.facts_buffer = facts.into_buffer();
        }
        if self.max_event_secs.is_none_or(|m| t > m) {
            self.max_event_secs = Some(t);
            self.advance_to(t - self.lateness_secs, out);
        }
    }

    /// Moves event time to `now` without an event (live idle ticks: pass the wall clock), so
    /// windows close and alerts resolve while no lines arrive. The watermark becomes
    /// `now - allowed_lateness_secs`. From the first call on, events stamped more than
    /// `max_future_secs` after the last `now` are counted in `future_events` and not evaluated.
    pub fn advance_watermark(&mut self, now: DateTime<Utc>, out: &mut Vec<Alert>) {
        self.wall_clock_secs = Some(now.timestamp());
        self.advance_components(now, out);
        let wm = now.timestamp() - self.lateness_secs;
        if self.closed_bucket.is_none() {
            self.closed_bucket = Some(self.bucket_of_watermark(wm));
            return;
        }
        self.advance_to(wm, out);
    }

    /// Tells the detector the wall clock without moving event time (backfills, which replay old
    /// lines and must not close their windows early). Events stamped more than
    /// `max_future_secs` after `now` are then counted in `future_events` and kept out of event
    /// time, so one bogus far-future timestamp cannot drag the watermark across centuries of
    /// empty buckets.
    pub fn set_wall_clock(&mut self, now: DateTime<Utc>) {
        self.wall_clock_secs = Some(now.timestamp());
    }

    /// End of input (offline backtests): closes every bucket up to the newest event and emits
    /// what is due. Alerts still firing stay firing (no resolved is invented for them).
    pub fn finish(&mut self, out: &mut Vec<Alert>) {
        if let Some(m) = self.max_event_secs {
            let end = (m.div_euclid(self.bucket_secs) + 1) * self.bucket_secs;
            if let Some(t) = DateTime::from_timestamp(end, 0) {
                self.advance_components(t, out);
            }
            self.advance_to(end, out);
        }
    }

    fn advance_components(&mut self, now: DateTime<Utc>, out: &mut Vec<Alert>) {
        if let Some((_, miner)) = &mut self.patterns {
            miner.advance_watermark(now, out);
        }
        if let Some((_, security)) = &mut self.security {
            security.advance_watermark(now, out);
        }
    }

    /// The last bucket that is closed when the watermark is `wm`.
    fn bucket_of_watermark(&self, wm: i64) -> i64 {
        wm.div_euclid(self.bucket_secs) - 1
    }

    fn advance_to(&mut self, wm: i64, out: &mut Vec<Alert>) {
        let target = self.bucket_of_watermark(wm);
        let Some(mut c) = self.closed_bucket else {
            self.closed_bucket = Some(target);
            return;
        };
        if c >= target {
            return; // still inside the open bucket: nothing to close
        }
        let ctx_url = std::mem::take(&mut self.generator_url);
        while c < target {
            if self.rules.iter().all(|r| r.key_count() == 0) {
                c = target; // nothing to evaluate: jump over the gap
                break;
            }
            c += 1;
            let now = (c + 1) * self.bucket_secs;
            let ctx = Ctx {
                generator_url: &ctx_url,
            };
            match &mut self.export {
                Some(exported) => {
                    for rule in &mut self.rules {
                        rule.export(c, exported);
                    }
                }
                None => {
                    for rule in &mut self.rules {
                        rule.close(c, now, &ctx, out);
                    }
                }
            }
        }
        self.generator_url = ctx_url;
        self.closed_bucket = Some(c);
        self.refresh_rule_stats();
    }

    /// Gives rules with the same group-by fields the same key slot.
    fn assign_key_slots(&mut self) {
        let mut specs: Vec<Vec<String>> = Vec::new();
        for rule in &mut self.rules {
            rule.spec = match specs.iter().position(|s| *s == rule.cfg.group_by) {
                Some(i) => i,
                None => {
                    specs.push(rule.cfg.group_by.clone());
                    specs.len() - 1
                }
            };
        }
        self.key_slots = specs.iter().map(|_| KeySlot::default()).collect();
    }

    fn refresh_rule_stats(&mut self) {
        self.stats.rules = self.rules.iter().map(|r| r.stats.clone()).collect();
        self.stats.keys_tracked = self.rules.iter().map(|r| r.key_count() as u64).sum();
        self.stats.security = self.security.as_ref().map(|(_, s)| s.stats());
        self.stats.security_keys = self
            .security
            .as_ref()
            .map_or(0, |(_, s)| s.tracked_keys() as u64);
        self.stats.patterns = self.patterns.as_ref().map(|(_, m)| m.stats());
        self.stats.pattern_templates = self.patterns.as_ref().map_or(0, |(_, m)| m.len() as u64);
    }

    /// The current state, for persisting across restarts.
    pub fn snapshot(&self) -> DetectorState {
        DetectorState {
            version: DETECTOR_STATE_VERSION,
            bucket_secs: self.bucket_secs as u64,
            max_event_secs: self.max_event_secs,
            closed_bucket: self.closed_bucket,
            rules: self.rules.iter().map(Rule::snapshot).collect(),
            security: self.security.as_ref().map(|(_, s)| s.snapshot()),
            patterns: self.patterns.as_ref().map(|(_, m)| m.snapshot()),
        }
    }

    /// Replaces this detector's state with a saved one. Rules whose definition changed since
    /// the snapshot start empty (counted in `rule_states_dropped`); alerts that were firing
    /// stay firing, so a restart neither re-fires nor loses them.
    ///
    /// The security and pattern states are restored when both the snapshot and this detector
    /// have them.
    ///
    /// # Errors
    /// [`DetectError::Restore`] for another state version or bucket width (the detector is
    /// unchanged then); [`DetectError::Patterns`] / [`DetectError::Security`] when their state
    /// has another version (the pattern miner is restored before the security detector, so a
    /// security error leaves the miner restored and the rules unchanged).
    pub fn restore(&mut self, state: DetectorState) -> Result<(), DetectError> {
        if state.version != DETECTOR_STATE_VERSION {
            return Err(DetectError::Restore {
                message: format!(
                    "state version {} is not {DETECTOR_STATE_VERSION}",
                    state.version
                ),
            });
        }
        if state.bucket_secs as i64 != self.bucket_secs {
            return Err(DetectError::Restore {
                message: format!(
                    "state has {} s buckets, config {} s",
                    state.bucket_secs, self.bucket_secs
                ),
            });
        }
        if let (Some((_, miner)), Some(snap)) = (&mut self.patterns, state.patterns) {
            miner.restore(snap)?;
        }
        if let (Some((_, security)), Some(snap)) = (&mut self.security, state.security) {
            security.restore(snap)?;
        }
        self.max_event_secs = state.max_event_secs;
        self.closed_bucket = state.closed_bucket;
        for rule in &mut self.rules {
            rule.load(Vec::new());
        }
        for saved in state.rules {
            match self
                .rules
                .iter_mut()
                .find(|r| r.cfg.name == saved.name && r.definition == saved.definition)
            {
                Some(rule) => rule.load(saved.keys),
                None => self.stats.rule_states_dropped += 1,
            }
        }
        self.refresh_rule_stats();
        Ok(())
    }

    /// Applies a new configuration. Rules whose definition (every setting, and the bucket
    /// width) is unchanged keep their windows, baselines and alert states; changed or new rules
    /// start empty; removed rules are dropped (an alert they had firing is not resolved:
    /// receivers expire it by `endsAt`/`resolve_timeout`). The security detections and the
    /// pattern miner keep their state unless their own settings changed.
    ///
    /// # Errors
    /// Any validation error of the new config; the detector is unchanged then.
    pub fn reload(&mut self, config: &DetectConfig) -> Result<(), DetectError> {
        let mut new_rules = compile_rules(config)?;
        // Build everything that can fail before touching the running state.
        let keep_security = config.security_enabled
            && matches!(&self.security, Some((old, _)) if *old == config.security);
        let new_security = if keep_security {
            None
        } else {
            Some(build_security(config)?)
        };
        let keep_patterns = config.patterns_enabled
            && matches!(&self.patterns, Some((old, _)) if *old == config.patterns);
        let new_patterns = if keep_patterns {
            None
        } else {
            Some(build_patterns(config)?)
        };
        if let Some(s) = new_security {
            self.security = s;
        }
        if let Some(p) = new_patterns {
            self.patterns = p;
        }
        for rule in &mut new_rules {
            if let Some(old) = self
                .rules
                .iter_mut()
                .find(|o| o.cfg.name == rule.cfg.name && o.definition == rule.definition)
            {
                rule.put_keys(old.take_keys());
                rule.stats.firing = old.stats.firing;
                rule.stats.resolved = old.stats.resolved;
            }
        }
        self.stats.rule_states_dropped +=
            self.rules.iter().filter(|o| o.key_count() > 0).count() as u64;
        if config.bucket_secs as i64 != self.bucket_secs {
            // Bucket indices change meaning; every definition changed too, so all state is
            // already dropped. Restart event time from the next event.
            self.closed_bucket = None;
            self.max_event_secs = None;
        }
        self.bucket_secs = config.bucket_secs as i64;
        self.lateness_secs = config.allowed_lateness_secs as i64;
        self.max_future_secs = config.max_future_secs as i64;
        self.generator_url = config.generator_url.clone();
        self.rules = new_rules;
        self.assign_key_slots();
        self.refresh_rule_stats();
        Ok(())
    }

    /// Counters and per-rule gauges.
    pub fn stats(&self) -> &DetectStats {
        &self.stats
    }

    /// Approximate heap bytes held by all rules' key state.
    pub fn state_bytes(&self) -> usize {
        self.rules.iter().map(Rule::state_bytes).sum()
    }

    /// Per rule: (name, tracked keys, approximate heap bytes of their state).
    pub fn state_bytes_by_rule(&self) -> Vec<(&str, usize, usize)> {
        self.rules
            .iter()
            .map(|r| (r.cfg.name.as_str(), r.key_count(), r.state_bytes()))
            .collect()
    }

    /// The current window partial of every key of rule `name` (group-by values, partial),
    /// sorted by key: what a processor ships for a distributed merge.
    pub fn window_partials(&self, name: &str) -> Vec<(Vec<String>, WindowPartial)> {
        self.rules
            .iter()
            .find(|r| r.cfg.name == name)
            .map(Rule::partials)
            .unwrap_or_default()
    }

    /// Switches the rules to partial-export mode (a processor of distributed mode): events are
    /// counted into buckets as usual, but a closed bucket is not evaluated; each (rule, key)
    /// bucket that counted anything becomes a [`BucketPartial`] collected by
    /// [`Detector::take_partials`], and the rules emit no alerts. The security detections and
    /// the pattern miner are unaffected.
    #[must_use]
    pub fn exporting_partials(mut self) -> Detector {
        self.export = Some(Vec::new());
        self
    }

    /// The buckets closed since the last call (partial-export mode; empty otherwise), in
    /// closing order.
    pub fn take_partials(&mut self) -> Vec<BucketPartial> {
        self.export.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// The bucket the rules counted the last [`Detector::process`]ed event in; `None` when it
    /// was late or ahead of the wall clock (counted nowhere).
    pub fn last_event_bucket(&self) -> Option<i64> {
        self.last_event_bucket
    }

    /// The last closed (evaluated or exported) bucket index, once event time started.
    pub fn closed_bucket(&self) -> Option<i64> {
        self.closed_bucket
    }

    /// The bucket width in seconds.
    pub fn bucket_secs(&self) -> i64 {
        self.bucket_secs
    }

    /// The owner side of distributed detection: counts `p` into its rule's key and bucket as if
    /// the events behind it had been processed here. Buckets at or before
    /// [`Detector::closed_bucket`] are already evaluated, so their partials are refused as
    /// [`MergeOutcome::Late`]. Evaluate with [`Detector::close_through`].
    pub fn merge_partial(&mut self, p: &BucketPartial) -> MergeOutcome {
        if self.closed_bucket.is_some_and(|c| p.bucket <= c) {
            return MergeOutcome::Late;
        }
        let Some(rule) = self
            .rules
            .iter_mut()
            .find(|r| r.cfg.name == p.rule && r.definition == p.definition)
        else {
            return MergeOutcome::UnknownRule;
        };
        if rule.merge(&p.labels, p.bucket, &p.partial, &mut self.stats) {
            MergeOutcome::Merged
        } else {
            MergeOutcome::Rejected
        }
    }

    /// Evaluates every bucket after [`Detector::closed_bucket`] up to and including `bucket`,
    /// exactly as a single detector closes them when its watermark passes (alert transitions
    /// appended to `out`). The first call starts event time at the oldest merged bucket.
    pub fn close_through(&mut self, bucket: i64, out: &mut Vec<Alert>) {
        if self.closed_bucket.is_none() {
            let oldest = self
                .rules
                .iter()
                .filter_map(Rule::oldest_bucket)
                .min()
                .unwrap_or(bucket);
            self.closed_bucket = Some(oldest.min(bucket) - 1);
        }
        self.advance_to((bucket + 1) * self.bucket_secs, out);
    }

    /// Names of the active rules, in evaluation order.
    pub fn rule_names(&self) -> Vec<&str> {
        self.rules.iter().map(|r| r.cfg.name.as_str()).collect()
    }

    /// True when any rule has a firing alert.
    pub fn has_firing(&self) -> bool {
        self.rules.iter().any(Rule::has_firing)
    }

    /// The watermark: events at or before it are late (Unix seconds), if any event was seen.
    pub fn watermark_secs(&self) -> Option<i64> {
        self.closed_bucket.map(|c| (c + 1) * self.bucket_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const START_SECS: i64 = 1_700_000_000;

    fn rules_only() -> DetectConfig {
        DetectConfig {
            security_enabled: false,
            patterns_enabled: false,
            ..DetectConfig::default()
        }
    }

    /// One service on four pods, one request per pod every 20 s for 12 minutes: 15 requests
    /// per pod per 5-minute window, under `min_samples` (20), 60 for the service. From minute 4
    /// every 7th request fails with 503 and every 7th takes 3 s, spread over the pods.
    fn workload() -> Vec<(usize, LogEvent)> {
        let mut out = Vec::new();
        for n in 0..36u64 * 4 {
            let pod = (n % 4) as usize;
            let t = START_SECS + (n as i64) * 5;
            let mut ev = LogEvent::new(
                DateTime::from_timestamp(t, 0).unwrap_or_default(),
                "GET /api/orders",
            );
            ev.service.name = Some("checkout".into());
            ev.kubernetes.pod.name = Some(format!("checkout-{pod}"));
            let bad = t - START_SECS >= 240 && n.is_multiple_of(7);
            ev.http.response.status_code = Some(if bad { 503 } else { 200 });
            let slow = t - START_SECS >= 240 && n % 7 == 3;
            ev.event.duration = Some(if slow { 3_000_000_000 } else { 100_000_000 });
            out.push((pod, ev));
        }
        out
    }

    fn firing_names(alerts: &[Alert]) -> Vec<String> {
        let mut v: Vec<String> = alerts
            .iter()
            .filter(|a| a.status == schemas::AlertStatus::Firing)
            .map(|a| a.labels[schemas::LABEL_ALERTNAME].clone())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    #[test]
    fn exported_partials_merged_by_an_owner_equal_one_detector() -> Result<(), DetectError> {
        let events = workload();
        // One detector over everything.
        let mut single = Detector::try_new(&rules_only())?;
        let mut single_alerts = Vec::new();
        for (_, ev) in &events {
            single.process(&mut ev.clone(), &mut single_alerts);
        }
        single.finish(&mut single_alerts);
        let fired = firing_names(&single_alerts);
        assert!(
            fired.contains(&"HighErrorRate".to_string()) && fired.contains(&"HighLatency".into()),
            "the merged view fires: {fired:?}"
        );
        // One "partition" per pod, each exporting its closed buckets.
        let mut parts: Vec<Detector> = (0..4)
            .map(|_| Detector::try_new(&rules_only()).map(Detector::exporting_partials))
            .collect::<Result<_, _>>()?;
        let mut partials = Vec::new();
        let mut none = Vec::new();
        for (pod, ev) in &events {
            let d = &mut parts[*pod];
            d.process(&mut ev.clone(), &mut none);
            assert!(d.last_event_bucket().is_some());
            partials.extend(d.take_partials());
        }
        for d in &mut parts {
            d.finish(&mut none);
            partials.extend(d.take_partials());
        }
        assert!(none.is_empty(), "exporting detectors emit no rule alerts");
        // Each partition alone never fires: too few requests.
        for pod_set in [[0], [1], [2], [3]] {
            let mut d = Detector::try_new(&rules_only())?;
            let mut alerts = Vec::new();
            for (_, ev) in events.iter().filter(|(p, _)| pod_set.contains(p)) {
                d.process(&mut ev.clone(), &mut alerts);
            }
            d.finish(&mut alerts);
            assert!(alerts.is_empty(), "pods {pod_set:?} alone: {alerts:?}");
        }
        // The owner merges in bucket order, as progress allows, and evaluates.
        let mut owner = Detector::try_new(&rules_only())?;
        let mut owner_alerts = Vec::new();
        partials.sort_by_key(|p| p.bucket);
        let last = partials.last().map_or(0, |p| p.bucket);
        let mut i = 0;
        while i < partials.len() {
            let b = partials[i].bucket;
            while i < partials.len() && partials[i].bucket == b {
                assert_eq!(owner.merge_partial(&partials[i]), MergeOutcome::Merged);
                i += 1;
            }
            owner.close_through(b, &mut owner_alerts);
        }
        owner.close_through(last, &mut owner_alerts);
        assert_eq!(owner_alerts, single_alerts);
        for rule in ["HighErrorRate", "HighLatency", "SloLatency"] {
            assert_eq!(owner.window_partials(rule), single.window_partials(rule));
        }
        // Merging everything first and evaluating once gives the same result.
        let mut at_once = Detector::try_new(&rules_only())?;
        for p in &partials {
            assert_eq!(at_once.merge_partial(p), MergeOutcome::Merged);
        }
        let mut at_once_alerts = Vec::new();
        at_once.close_through(last, &mut at_once_alerts);
        assert_eq!(at_once_alerts, single_alerts);
        // A replayed partial of an evaluated bucket is refused, not double counted.
        assert_eq!(owner.merge_partial(&partials[0]), MergeOutcome::Late);
        let mut other = partials[partials.len() - 1].clone();
        other.bucket += 1;
        other.definition = "changed".into();
        assert_eq!(owner.merge_partial(&other), MergeOutcome::UnknownRule);
        Ok(())
    }
}
