//! Counters of the detector, rendered in the Prometheus text format.

use std::fmt::Write as _;

/// Counters and gauges of one [`crate::Detector`]. Updated in place (no locks, no per-event
/// logging); the caller reads them through [`crate::Detector::stats`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DetectStats {
    /// Events passed to `process`.
    pub events: u64,
    /// Events older than the watermark (beyond `allowed_lateness_secs`): not counted in any
    /// window.
    pub late_events: u64,
    /// Events stamped more than `max_future_secs` ahead of the wall clock: not evaluated.
    pub future_events: u64,
    /// Idle keys evicted because a rule reached `max_keys_per_rule`.
    pub keys_evicted: u64,
    /// New keys refused because every tracked key of the rule had an active alert.
    pub keys_rejected: u64,
    /// Events skipped by a rule because two different keys hashed alike (expected never).
    pub key_hash_collisions: u64,
    /// Keys tracked over all rules, as of the last closed bucket.
    pub keys_tracked: u64,
    /// Rule states dropped by `restore`/`reload` because the rule changed or disappeared.
    pub rule_states_dropped: u64,
    /// Per rule, in evaluation order.
    pub rules: Vec<RuleStats>,
    /// The security detections' counters, when enabled (as of the last closed bucket).
    pub security: Option<crate::security::SecurityStats>,
    /// Keys (offenders) tracked by the security detections.
    pub security_keys: u64,
    /// The pattern miner's counters, when enabled (as of the last closed bucket).
    pub patterns: Option<crate::patterns::PatternStats>,
    /// Templates known to the pattern miner.
    pub pattern_templates: u64,
}

/// Counters of one rule.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleStats {
    pub name: String,
    /// Firing notifications emitted (first firing and repeats).
    pub firing: u64,
    /// Resolved notifications emitted.
    pub resolved: u64,
    /// Keys currently tracked.
    pub keys: u64,
    /// Keys currently pending or firing.
    pub active: u64,
}

impl DetectStats {
    /// Appends the counters in the Prometheus text exposition format, names prefixed
    /// `sluice_detect_`.
    pub fn render_prometheus(&self, out: &mut String) {
        let counters: [(&str, &str, u64); 7] = [
            (
                "events_total",
                "Events evaluated by the rules engine.",
                self.events,
            ),
            (
                "late_events_total",
                "Events dropped as older than the watermark.",
                self.late_events,
            ),
            (
                "future_events_total",
                "Events stamped too far ahead of the wall clock, not evaluated.",
                self.future_events,
            ),
            (
                "keys_evicted_total",
                "Idle keys evicted at the per-rule key cap.",
                self.keys_evicted,
            ),
            (
                "keys_rejected_total",
                "New keys refused at the cap because all keys were alerting.",
                self.keys_rejected,
            ),
            (
                "key_hash_collisions_total",
                "Events skipped on a key hash collision.",
                self.key_hash_collisions,
            ),
            (
                "rule_states_dropped_total",
                "Rule states dropped on restore or reload because the rule changed.",
                self.rule_states_dropped,
            ),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(out, "# HELP sluice_detect_{name} {help}");
            let _ = writeln!(out, "# TYPE sluice_detect_{name} counter");
            let _ = writeln!(out, "sluice_detect_{name} {v}");
        }
        if let Some(sec) = &self.security {
            render_counters(out, "security", sec);
            gauge(
                out,
                "security_keys",
                "Offender keys tracked by the security detections.",
                self.security_keys,
            );
        }
        if let Some(pat) = &self.patterns {
            render_counters(out, "patterns", pat);
            gauge(
                out,
                "pattern_templates",
                "Templates known to the pattern miner.",
                self.pattern_templates,
            );
        }
        let _ = writeln!(out, "# HELP sluice_detect_keys Keys tracked per rule.");
        let _ = writeln!(out, "# TYPE sluice_detect_keys gauge");
        for r in &self.rules {
            let _ = writeln!(out, "sluice_detect_keys{{rule=\"{}\"}} {}", r.name, r.keys);
        }
        let _ = writeln!(
            out,
            "# HELP sluice_detect_active_alerts Keys pending or firing per rule."
        );
        let _ = writeln!(out, "# TYPE sluice_detect_active_alerts gauge");
        for r in &self.rules {
            let _ = writeln!(
                out,
                "sluice_detect_active_alerts{{rule=\"{}\"}} {}",
                r.name, r.active
            );
        }
        let _ = writeln!(
            out,
            "# HELP sluice_detect_notifications_total Alert notifications emitted."
        );
        let _ = writeln!(out, "# TYPE sluice_detect_notifications_total counter");
        for r in &self.rules {
            let _ = writeln!(
                out,
                "sluice_detect_notifications_total{{rule=\"{}\",status=\"firing\"}} {}",
                r.name, r.firing
            );
            let _ = writeln!(
                out,
                "sluice_detect_notifications_total{{rule=\"{}\",status=\"resolved\"}} {}",
                r.name, r.resolved
            );
        }
    }
}

fn gauge(out: &mut String, name: &str, help: &str, v: u64) {
    let _ = writeln!(out, "# HELP sluice_detect_{name} {help}");
    let _ = writeln!(out, "# TYPE sluice_detect_{name} gauge");
    let _ = writeln!(out, "sluice_detect_{name} {v}");
}

/// Renders every integer field of a sub-detector's counter struct as
/// `sluice_detect_<prefix>_<field>_total`, so new counters show up without touching this file.
fn render_counters(out: &mut String, prefix: &str, stats: &impl serde::Serialize) {
    let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(stats) else {
        return;
    };
    for (field, value) in fields {
        if let Some(v) = value.as_u64() {
            let _ = writeln!(out, "# TYPE sluice_detect_{prefix}_{field}_total counter");
            let _ = writeln!(out, "sluice_detect_{prefix}_{field}_total {v}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_rules() {
        let s = DetectStats {
            events: 7,
            rules: vec![RuleStats {
                name: "HighErrorRate".into(),
                firing: 2,
                ..RuleStats::default()
            }],
            ..DetectStats::default()
        };
        let mut out = String::new();
        s.render_prometheus(&mut out);
        assert!(out.contains("sluice_detect_events_total 7\n"));
        assert!(out.contains(
            "sluice_detect_notifications_total{rule=\"HighErrorRate\",status=\"firing\"} 2\n"
        ));
        assert!(!out.contains("sluice_detect_patterns_"));
        let s = DetectStats {
            patterns: Some(crate::patterns::PatternStats {
                messages: 3,
                ..Default::default()
            }),
            ..s
        };
        out.clear();
        s.render_prometheus(&mut out);
        assert!(
            out.contains("sluice_detect_patterns_messages_total 3\n"),
            "{out}"
        );
    }
}
