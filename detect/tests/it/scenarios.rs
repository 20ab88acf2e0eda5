//! Every runbook rule fires on its incident within its window + 60 s, and steady traffic with
//! normal background errors, a traffic spike at a constant error ratio, and one minute of slow
//! requests raise nothing.

use std::collections::BTreeSet;

use detect::{DetectConfig, Detector};
use schemas::{Alert, AlertStatus, LogEvent};

use crate::traffic::{self, Profile, Rng, T0};

/// Long enough for the anomaly baseline to warm up (30 min) before any incident.
const WARMUP_SECS: f64 = 2400.0;
const INCIDENT_SECS: f64 = 900.0;
const RECOVERY_SECS: f64 = 900.0;

/// An alert and the event time at which it was emitted (newest event fed so far).
pub struct Emitted {
    pub at_secs: i64,
    pub alert: Alert,
}

/// Runs the full detector (patterns, security, rules) over sorted events and returns the
/// runbook rules' alerts. Only those are under test here; the security and pattern detectors
/// have their own tests, and what they raise on this traffic is printed for the record.
pub fn run(cfg: &DetectConfig, events: &mut [LogEvent]) -> anyhow::Result<Vec<Emitted>> {
    let mut d = Detector::try_new(cfg)?;
    let rules: Vec<String> = d.rule_names().iter().map(|s| s.to_string()).collect();
    let mut out = Vec::new();
    let mut emitted = Vec::new();
    let mut others = Vec::new();
    let mut newest = i64::MIN;
    let mut collect = |out: &mut Vec<Alert>, newest: i64| {
        for alert in out.drain(..) {
            if rules.iter().any(|r| r == alert.name()) {
                emitted.push(Emitted {
                    at_secs: newest,
                    alert,
                });
            } else {
                others.push(alert.name().to_owned());
            }
        }
    };
    for ev in events.iter_mut() {
        newest = newest.max(ev.timestamp.timestamp());
        d.process(ev, &mut out);
        collect(&mut out, newest);
    }
    d.finish(&mut out);
    collect(&mut out, newest);
    assert_eq!(d.stats().late_events, 0, "sorted input has no late events");
    if !others.is_empty() {
        eprintln!("security/pattern alerts on this traffic: {others:?}");
    }
    Ok(emitted)
}

fn background(rng: &mut Rng, from: f64, to: f64, out: &mut Vec<LogEvent>) {
    for svc in ["frontend", "catalog"] {
        let mut p = Profile::healthy(svc);
        p.rps = 5.0;
        traffic::traffic(rng, &p, from, to, out);
    }
    // Normal background failures: a DB hiccup every 10 min, an upstream timeout every 5 min.
    let cat = Profile::healthy("catalog");
    let mut t = from + 17.0;
    while t < to {
        traffic::db_errors(rng, &cat, t, t + 1.0, 1.0, out);
        t += 600.0;
    }
    let mut t = from + 41.0;
    while t < to {
        traffic::upstream_errors(rng, &cat, "api.stripe.com", t, t + 1.0, 1.0, out);
        t += 300.0;
    }
}

/// Healthy checkout and background, then `incident` on checkout from `T0 + WARMUP_SECS` for
/// [`INCIDENT_SECS`], then recovery.
fn scenario(seed: u64, incident: impl Fn(&mut Rng, f64, f64, &mut Vec<LogEvent>)) -> Vec<LogEvent> {
    let mut rng = Rng::new(seed);
    let mut evs = Vec::new();
    let start = T0 as f64;
    let inc = start + WARMUP_SECS;
    let end = inc + INCIDENT_SECS + RECOVERY_SECS;
    background(&mut rng, start, end, &mut evs);
    let healthy = Profile::healthy("checkout");
    traffic::traffic(&mut rng, &healthy, start, inc, &mut evs);
    incident(&mut rng, inc, inc + INCIDENT_SECS, &mut evs);
    traffic::traffic(&mut rng, &healthy, inc + INCIDENT_SECS, end, &mut evs);
    traffic::sort(&mut evs);
    evs
}

/// Checks that each of `expected` fired for checkout within its window + 60 s of the incident
/// start and later resolved, and that none of `forbidden` (or any alert on another service)
/// fired.
fn check(emitted: &[Emitted], expected: &[&str], forbidden: &[&str]) -> anyhow::Result<()> {
    let cfg = DetectConfig::default();
    let rules = cfg.effective_rules();
    let incident_start = T0 + WARMUP_SECS as i64;
    let lateness = cfg.allowed_lateness_secs as i64;
    for name in expected {
        let rule = rules
            .iter()
            .find(|r| r.name == *name)
            .ok_or_else(|| anyhow::anyhow!("no rule {name}"))?;
        let first = emitted
            .iter()
            .find(|e| e.alert.name() == *name && e.alert.status == AlertStatus::Firing)
            .ok_or_else(|| anyhow::anyhow!("{name} never fired"))?;
        assert_eq!(
            first.alert.labels.get("service").map(String::as_str),
            Some("checkout"),
            "{name} fired for the wrong service: {:?}",
            first.alert.labels
        );
        // The watermark trails the newest event by the allowed lateness: that is when the
        // detector could know, so detection time is emission time minus lateness.
        let detected = first.at_secs - lateness;
        let deadline = incident_start + rule.window_secs as i64 + 60;
        assert!(
            detected <= deadline,
            "{name} detected {} s after the incident start, deadline {} s",
            detected - incident_start,
            deadline - incident_start
        );
        assert!(
            detected >= incident_start,
            "{name} fired before the incident"
        );
        eprintln!(
            "{name}: detected {} s after the incident start (deadline {} s)",
            detected - incident_start,
            deadline - incident_start
        );
        assert!(
            first.alert.annotations.contains_key("summary")
                && first.alert.annotations.contains_key("runbook_url"),
            "{name} lacks annotations: {:?}",
            first.alert.annotations
        );
        let resolved = emitted.iter().any(|e| {
            e.alert.status == AlertStatus::Resolved
                && e.alert.fingerprint == first.alert.fingerprint
        });
        assert!(resolved, "{name} never resolved after recovery");
    }
    for e in emitted {
        let name = e.alert.name();
        assert!(!forbidden.contains(&name), "{name} fired: {:?}", e.alert);
        assert_eq!(
            e.alert.labels.get("service").map(String::as_str),
            Some("checkout"),
            "alert on a healthy service: {:?}",
            e.alert
        );
    }
    assert_no_duplicate_firing(emitted);
    Ok(())
}

/// Between a firing and its resolved, repeats carry the same startsAt; a fingerprint never
/// fires twice with different startsAt while active.
pub fn assert_no_duplicate_firing(emitted: &[Emitted]) {
    let mut active = std::collections::HashMap::new();
    for e in emitted {
        let a = &e.alert;
        match a.status {
            AlertStatus::Firing => {
                if let Some(prev) = active.insert(a.fingerprint.clone(), a.starts_at) {
                    assert_eq!(prev, a.starts_at, "re-fired while active: {a:?}");
                }
            }
            AlertStatus::Resolved => {
                assert!(
                    active.remove(&a.fingerprint).is_some(),
                    "resolved without firing: {a:?}"
                );
            }
        }
    }
}

#[test]
fn high_error_rate_incident() -> anyhow::Result<()> {
    let mut evs = scenario(1, |rng, from, to, out| {
        let mut p = Profile::healthy("checkout");
        p.error_ratio = 0.3;
        traffic::traffic(rng, &p, from, to, out);
    });
    let emitted = run(&DetectConfig::default(), &mut evs)?;
    // A 15-minute incident is re-sent every repeat interval (4 min) with the same startsAt.
    let firings: Vec<_> = emitted
        .iter()
        .filter(|e| e.alert.name() == "HighErrorRate" && e.alert.status == AlertStatus::Firing)
        .collect();
    assert!(firings.len() >= 3, "{} firing notifications", firings.len());
    assert!(
        firings
            .iter()
            .all(|e| e.alert.starts_at == firings[0].alert.starts_at)
    );
    check(
        &emitted,
        &["HighErrorRate", "SloErrorRate"],
        &["HighLatency", "DatabaseConnectionError"],
    )
}

#[test]
fn high_latency_incident() -> anyhow::Result<()> {
    let mut evs = scenario(2, |rng, from, to, out| {
        let mut p = Profile::healthy("checkout");
        p.median_ms = 2600.0;
        traffic::traffic(rng, &p, from, to, out);
    });
    let emitted = run(&DetectConfig::default(), &mut evs)?;
    check(
        &emitted,
        &["HighLatency", "HighEndpointLatency", "SloLatency"],
        &["HighErrorRate", "SloErrorRate", "ErrorRateAnomaly"],
    )?;
    let routes: BTreeSet<&str> = emitted
        .iter()
        .filter(|e| e.alert.name() == "HighEndpointLatency")
        .filter_map(|e| e.alert.labels.get("route").map(String::as_str))
        .collect();
    assert!(routes.contains("/api/sessions/<id>"), "routes: {routes:?}");
    Ok(())
}

#[test]
fn database_connection_incident() -> anyhow::Result<()> {
    let mut evs = scenario(3, |rng, from, to, out| {
        let p = Profile::healthy("checkout");
        traffic::traffic(rng, &p, from, to, out);
        traffic::db_errors(rng, &p, from, to, 0.5, out);
    });
    let emitted = run(&DetectConfig::default(), &mut evs)?;
    check(
        &emitted,
        &["DatabaseConnectionError"],
        &["HighErrorRate", "HighLatency"],
    )
}

#[test]
fn external_api_incident() -> anyhow::Result<()> {
    let mut evs = scenario(4, |rng, from, to, out| {
        let p = Profile::healthy("checkout");
        traffic::traffic(rng, &p, from, to, out);
        traffic::upstream_errors(rng, &p, "api.stripe.com", from, to, 0.5, out);
    });
    let emitted = run(&DetectConfig::default(), &mut evs)?;
    check(
        &emitted,
        &["ExternalApiFailures"],
        &["HighErrorRate", "DatabaseConnectionError"],
    )?;
    let first = emitted
        .iter()
        .find(|e| e.alert.name() == "ExternalApiFailures")
        .ok_or_else(|| anyhow::anyhow!("missing"))?;
    assert_eq!(
        first.alert.labels.get("upstream").map(String::as_str),
        Some("api.stripe.com")
    );
    Ok(())
}

#[test]
fn error_rate_anomaly_incident() -> anyhow::Result<()> {
    let mut evs = scenario(5, |rng, from, to, out| {
        let p = Profile::healthy("checkout");
        traffic::traffic(rng, &p, from, to, out);
        traffic::error_surge(rng, &p, from, to, 3.0, out);
    });
    let emitted = run(&DetectConfig::default(), &mut evs)?;
    check(
        &emitted,
        &["ErrorRateAnomaly"],
        &["HighErrorRate", "SloErrorRate", "HighLatency"],
    )
}

#[test]
fn slo_error_rate_incident() -> anyhow::Result<()> {
    let mut evs = scenario(6, |rng, from, to, out| {
        let mut p = Profile::healthy("checkout");
        p.error_ratio = 0.025;
        traffic::traffic(rng, &p, from, to, out);
    });
    let emitted = run(&DetectConfig::default(), &mut evs)?;
    check(
        &emitted,
        &["SloErrorRate"],
        &["HighErrorRate", "HighLatency"],
    )
}

#[test]
fn slo_latency_incident() -> anyhow::Result<()> {
    let mut evs = scenario(7, |rng, from, to, out| {
        let mut p = Profile::healthy("checkout");
        p.median_ms = 350.0;
        traffic::traffic(rng, &p, from, to, out);
    });
    let emitted = run(&DetectConfig::default(), &mut evs)?;
    check(&emitted, &["SloLatency"], &["HighLatency", "HighErrorRate"])
}

/// 70 min of healthy traffic with background errors; optionally a disturbance in the middle.
fn quiet(
    seed: u64,
    disturbance: impl Fn(&mut Rng, f64, f64, &mut Vec<LogEvent>),
) -> anyhow::Result<()> {
    let mut rng = Rng::new(seed);
    let mut evs = Vec::new();
    let start = T0 as f64;
    let mid = start + WARMUP_SECS;
    let end = start + 4200.0;
    background(&mut rng, start, end, &mut evs);
    let p = Profile::healthy("checkout");
    traffic::traffic(&mut rng, &p, start, mid, &mut evs);
    disturbance(&mut rng, mid, mid + 600.0, &mut evs);
    traffic::traffic(&mut rng, &p, mid + 600.0, end, &mut evs);
    traffic::sort(&mut evs);
    let emitted = run(&DetectConfig::default(), &mut evs)?;
    assert!(
        emitted.is_empty(),
        "alerts on quiet traffic: {:?}",
        emitted.iter().map(|e| &e.alert).collect::<Vec<_>>()
    );
    Ok(())
}

#[test]
fn steady_traffic_with_background_errors_is_quiet() -> anyhow::Result<()> {
    quiet(10, |rng, from, to, out| {
        traffic::traffic(rng, &Profile::healthy("checkout"), from, to, out);
    })
}

#[test]
fn traffic_spike_at_constant_error_ratio_is_quiet() -> anyhow::Result<()> {
    quiet(11, |rng, from, to, out| {
        let mut p = Profile::healthy("checkout");
        p.rps *= 5.0;
        traffic::traffic(rng, &p, from, to, out);
    })
}

#[test]
fn one_minute_of_slow_requests_is_quiet() -> anyhow::Result<()> {
    quiet(12, |rng, from, to, out| {
        let p = Profile::healthy("checkout");
        let mut slow = p.clone();
        // 15 % of one minute's requests take ~3 s: 3 % of the 5-minute window, so the
        // 5-minute p95 stays far below 2 s.
        slow.slow_ratio = 0.15;
        traffic::traffic(rng, &p, from, from + 120.0, out);
        traffic::traffic(rng, &slow, from + 120.0, from + 180.0, out);
        traffic::traffic(rng, &p, from + 180.0, to, out);
    })
}
