//! Out-of-order input within the lateness bound gives exactly the alerts of sorted input.

use detect::{DetectConfig, Detector, RuleConfig, RuleKind};
use proptest::prelude::*;
use schemas::{Alert, LogEvent};

use crate::traffic::{self, Profile, Rng, T0};

/// A 25-minute stream in which checkout fails (5xx, slow, DB and upstream errors) from minute 8
/// to 14, so several rules fire and resolve.
pub fn incident_stream(seed: u64) -> Vec<LogEvent> {
    let mut rng = Rng::new(seed);
    let mut evs = Vec::new();
    let t = T0 as f64;
    let mut fe = Profile::healthy("frontend");
    fe.rps = 5.0;
    traffic::traffic(&mut rng, &fe, t, t + 1500.0, &mut evs);
    let ok = Profile::healthy("checkout");
    let mut bad = ok.clone();
    bad.error_ratio = 0.3;
    bad.median_ms = 2600.0;
    traffic::traffic(&mut rng, &ok, t, t + 480.0, &mut evs);
    traffic::traffic(&mut rng, &bad, t + 480.0, t + 840.0, &mut evs);
    traffic::traffic(&mut rng, &ok, t + 840.0, t + 1500.0, &mut evs);
    traffic::db_errors(&mut rng, &ok, t + 600.0, t + 700.0, 0.5, &mut evs);
    traffic::upstream_errors(
        &mut rng,
        &ok,
        "api.stripe.com",
        t + 500.0,
        t + 650.0,
        0.5,
        &mut evs,
    );
    traffic::sort(&mut evs);
    evs
}

/// The default rules, with an anomaly rule that warms up within the stream.
pub fn config() -> DetectConfig {
    let mut anomaly = RuleConfig::new("ErrorRateAnomaly", RuleKind::Anomaly);
    anomaly.match_expr = "log.level >= error".into();
    anomaly.of = Some(String::new());
    anomaly.window_secs = 120;
    anomaly.warmup_secs = Some(300);
    anomaly.baseline_half_life_secs = Some(600);
    DetectConfig {
        rules: vec![anomaly],
        ..DetectConfig::default()
    }
}

fn run(cfg: &DetectConfig, events: &mut [LogEvent]) -> anyhow::Result<(Vec<Alert>, u64)> {
    let mut d = Detector::try_new(cfg)?;
    let mut out = Vec::new();
    for ev in events.iter_mut() {
        d.process(ev, &mut out);
    }
    d.finish(&mut out);
    // The rules engine's guarantee; the pattern and security detectors are event-driven and
    // document their own ordering behaviour.
    let rules = d.rule_names();
    out.retain(|a| rules.contains(&a.name()));
    Ok((out, d.stats().late_events))
}

/// Delays every event by a random 0..bound whole seconds of arrival time.
fn shuffle_within(events: &[LogEvent], bound_secs: i64, seed: u64) -> Vec<LogEvent> {
    let mut rng = Rng::new(seed);
    let mut keyed: Vec<(i64, LogEvent)> = events
        .iter()
        .map(|e| {
            let delay = rng.below(bound_secs as u64) as i64 * 1000;
            (e.timestamp.timestamp_millis() + delay, e.clone())
        })
        .collect();
    keyed.sort_by_key(|(k, _)| *k);
    keyed.into_iter().map(|(_, e)| e).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    #[test]
    fn shuffled_within_lateness_gives_the_same_alerts(seed in any::<u64>()) {
        let cfg = config();
        let sorted = incident_stream(42);
        let (want, late) = run(&cfg, &mut sorted.clone()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(late, 0);
        prop_assert!(want.len() >= 8, "the stream should raise several alerts, got {}", want.len());
        let mut shuffled = shuffle_within(&sorted, cfg.allowed_lateness_secs as i64, seed);
        prop_assert_ne!(&shuffled, &sorted);
        let (got, late) = run(&cfg, &mut shuffled).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(late, 0);
        prop_assert_eq!(got, want);
    }
}

#[test]
fn events_beyond_the_lateness_bound_are_counted_not_used() -> anyhow::Result<()> {
    let cfg = DetectConfig::default();
    let mut d = Detector::try_new(&cfg)?;
    let mut out = Vec::new();
    let p = Profile::healthy("checkout");
    let mut rng = Rng::new(9);
    let now = T0 as f64 + 100.0;
    d.process(&mut traffic::request(&mut rng, &p, now), &mut out);
    let lateness = cfg.allowed_lateness_secs as f64;
    d.process(
        &mut traffic::request(&mut rng, &p, now - lateness + 1.0),
        &mut out,
    );
    assert_eq!(d.stats().late_events, 0);
    d.process(
        &mut traffic::request(&mut rng, &p, now - lateness - 20.0),
        &mut out,
    );
    assert_eq!(d.stats().late_events, 1);
    assert_eq!(d.stats().events, 3);
    Ok(())
}

#[test]
fn a_bogus_future_timestamp_cannot_make_live_lines_late() -> anyhow::Result<()> {
    let cfg = DetectConfig::default();
    let mut d = Detector::try_new(&cfg)?;
    let mut out = Vec::new();
    let p = Profile::healthy("checkout");
    let mut rng = Rng::new(5);
    let now = T0 as f64;
    d.advance_watermark(traffic::at(now), &mut out);
    d.process(
        &mut traffic::request(&mut rng, &p, now + 86_400.0),
        &mut out,
    );
    assert_eq!(d.stats().future_events, 1);
    d.process(&mut traffic::request(&mut rng, &p, now + 1.0), &mut out);
    assert_eq!(
        d.stats().late_events,
        0,
        "the future line moved the watermark"
    );
    let counted = |d: &Detector| -> u64 {
        d.window_partials("HighErrorRate")
            .iter()
            .map(|(_, p)| p.total)
            .sum()
    };
    assert_eq!(counted(&d), 0, "the line's bucket is still open");
    d.advance_watermark(traffic::at(now + 60.0), &mut out);
    assert_eq!(counted(&d), 1, "the on-time line was counted");
    Ok(())
}
