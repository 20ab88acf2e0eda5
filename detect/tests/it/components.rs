//! The full detector: user rules from TOML, the pattern miner and security detections wired
//! into `Detector::process`, generator URLs, and the Prometheus rendering.

use detect::{DetectConfig, DetectError, Detector};
use schemas::{AlertStatus, Level, LogEvent};

use crate::traffic::{T0, at};

fn login_failure(t: f64, ip: &str) -> LogEvent {
    let mut ev = LogEvent::new(
        at(t),
        format!("Failed password for invalid user admin from {ip} port 52144 ssh2"),
    );
    ev.service.name = Some("sshd".into());
    ev.log.level = Some(Level::Warn);
    ev
}

#[test]
fn user_rule_from_toml_fires_with_templated_annotations() -> anyhow::Result<()> {
    let cfg = DetectConfig::from_toml_str(
        r#"
        generator_url = "https://kibana.example/app/discover#/?q=service.name:{{service}}&from={{starts_at}}"
        builtin_rules = false
        security_enabled = false
        patterns_enabled = false

        [[rules]]
        name = "PaymentDeclines"
        kind = "count"
        severity = "critical"
        match = 'service.name == "checkout" && message contains "payment declined"'
        threshold = 20
        window_secs = 60
        for_secs = 0
        summary = "{{value}} declined payments in {{window}} on {{service}}"
        labels = { team = "payments" }
        "#,
    )?;
    let mut d = Detector::try_new(&cfg)?;
    let mut out = Vec::new();
    for i in 0..40 {
        let mut ev = LogEvent::new(
            at(T0 as f64 + f64::from(i)),
            format!("order {i}: payment declined by issuer"),
        );
        ev.service.name = Some(if i % 4 == 0 { "cart" } else { "checkout" }.into());
        d.process(&mut ev, &mut out);
    }
    d.finish(&mut out);
    let fired: Vec<_> = out
        .iter()
        .filter(|a| a.status == AlertStatus::Firing)
        .collect();
    assert_eq!(fired.len(), 1, "{out:?}");
    let a = fired[0];
    assert_eq!(a.name(), "PaymentDeclines");
    assert_eq!(a.labels.get("team").map(String::as_str), Some("payments"));
    assert_eq!(
        a.labels.get("service").map(String::as_str),
        Some("checkout")
    );
    assert_eq!(a.fingerprint, schemas::alert_fingerprint(&a.labels));
    let summary = a.annotations.get("summary").cloned().unwrap_or_default();
    assert!(
        summary.ends_with("declined payments in 1m on checkout"),
        "{summary}"
    );
    assert!(
        a.generator_url.starts_with(
            "https://kibana.example/app/discover#/?q=service.name:checkout&from=2026-12-04T10%3A"
        ),
        "{}",
        a.generator_url
    );
    let mut metrics = String::new();
    d.stats().render_prometheus(&mut metrics);
    assert!(metrics.contains(
        "sluice_detect_notifications_total{rule=\"PaymentDeclines\",status=\"firing\"} 1\n"
    ));
    Ok(())
}

#[test]
fn patterns_and_security_run_inside_the_detector() -> anyhow::Result<()> {
    let cfg = DetectConfig::default();
    let mut d = Detector::try_new(&cfg)?;
    let mut out = Vec::new();
    let mut ids = Vec::new();
    for i in 0..30 {
        let mut ev = login_failure(T0 as f64 + f64::from(i) * 0.5, "203.0.113.7");
        d.process(&mut ev, &mut out);
        ids.push(ev.sluice.pattern.id.clone());
    }
    // The miner ran before the rules: every event carries the same template id.
    assert!(ids[0].is_some());
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    let brute: Vec<_> = out.iter().filter(|a| a.name() == "BruteForce").collect();
    assert!(!brute.is_empty(), "no BruteForce alert: {out:?}");
    assert!(
        brute[0].labels.values().any(|v| v == "203.0.113.7"),
        "{:?}",
        brute[0].labels
    );
    let mut metrics = String::new();
    d.stats().render_prometheus(&mut metrics);
    assert!(
        metrics.contains("sluice_detect_security_events_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sluice_detect_patterns_messages_total"),
        "{metrics}"
    );

    // Their state travels in the detector's snapshot.
    let json = serde_json::to_string(&d.snapshot())?;
    assert!(json.contains("\"security\"") && json.contains("\"patterns\""));
    let mut restored = Detector::try_new(&cfg)?;
    restored.restore(serde_json::from_str(&json)?)?;
    let mut ev = login_failure(T0 as f64 + 20.0, "203.0.113.7");
    restored.process(&mut ev, &mut Vec::new());
    assert_eq!(
        ev.sluice.pattern.id, ids[0],
        "restored miner lost its templates"
    );
    Ok(())
}

#[test]
fn disabled_components_leave_events_alone() -> anyhow::Result<()> {
    let cfg = DetectConfig {
        patterns_enabled: false,
        security_enabled: false,
        ..DetectConfig::default()
    };
    let mut d = Detector::try_new(&cfg)?;
    let mut out = Vec::new();
    for i in 0..30 {
        let mut ev = login_failure(T0 as f64 + f64::from(i) * 0.5, "203.0.113.7");
        d.process(&mut ev, &mut out);
        assert!(ev.sluice.pattern.id.is_none());
    }
    assert!(out.is_empty(), "{out:?}");
    let mut metrics = String::new();
    d.stats().render_prometheus(&mut metrics);
    assert!(!metrics.contains("sluice_detect_security_"));
    Ok(())
}

#[test]
fn component_settings_are_validated_through_the_detect_config() {
    let err = DetectConfig::from_toml_str("[patterns]\nsimilarity_threshold = 7.0\n")
        .err()
        .map(|e| e.error_code());
    assert_eq!(err, Some("pattern_invalid_config"));
    match DetectConfig::from_toml_str("[security]\nno_such_field = 1\n") {
        Err(DetectError::ConfigSyntax { message }) => {
            assert!(message.contains("no_such_field"), "{message}")
        }
        other => panic!("unknown security field accepted: {other:?}"),
    }
}

#[test]
fn key_cap_evicts_idle_keys_and_keeps_alerting_ones() -> anyhow::Result<()> {
    let cfg = DetectConfig::from_toml_str(
        r#"
        builtin_rules = false
        security_enabled = false
        patterns_enabled = false
        max_keys_per_rule = 10

        [[rules]]
        name = "ServiceErrors"
        kind = "count"
        match = "log.level >= error"
        threshold = 5
        window_secs = 60
        for_secs = 0
        "#,
    )?;
    let mut d = Detector::try_new(&cfg)?;
    let mut out = Vec::new();
    let mut t = T0 as f64;
    // "hot" errors hard and fires; then 200 other services log one error each.
    for _ in 0..20 {
        t += 0.1;
        let mut ev = LogEvent::new(at(t), "boom");
        ev.service.name = Some("hot".into());
        ev.log.level = Some(Level::Error);
        d.process(&mut ev, &mut out);
    }
    for i in 0..200 {
        t += 0.1;
        let mut ev = LogEvent::new(at(t), "boom");
        ev.service.name = Some(format!("svc-{i}"));
        ev.log.level = Some(Level::Error);
        d.process(&mut ev, &mut out);
        let keys = d.window_partials("ServiceErrors").len();
        assert!(keys <= 10, "{keys} keys tracked with a cap of 10");
    }
    d.advance_watermark(at(t + 60.0), &mut out);
    let stats = d.stats();
    assert!(stats.keys_evicted >= 190, "evicted {}", stats.keys_evicted);
    let fired: Vec<_> = out
        .iter()
        .filter(|a| a.status == AlertStatus::Firing)
        .collect();
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(
        fired[0].labels.get("service").map(String::as_str),
        Some("hot")
    );
    let fingerprint = fired[0].fingerprint.clone();
    // The firing key survived eviction and resolves once its errors leave the window.
    d.advance_watermark(at(t + 300.0), &mut out);
    assert!(
        out.iter()
            .any(|a| a.status == AlertStatus::Resolved && a.fingerprint == fingerprint),
        "the firing key was evicted: {out:?}"
    );
    Ok(())
}

#[test]
fn count_anomaly_catches_a_surge_no_threshold_names() -> anyhow::Result<()> {
    let cfg = DetectConfig::from_toml_str(
        r#"
        builtin_rules = false
        security_enabled = false
        patterns_enabled = false

        [[rules]]
        name = "TimeoutSurge"
        kind = "anomaly"
        match = 'message contains "timeout"'
        window_secs = 60
        for_secs = 0
        warmup_secs = 600
        baseline_half_life_secs = 600
        min_count = 5
        "#,
    )?;
    let mut d = Detector::try_new(&cfg)?;
    let mut out = Vec::new();
    let emit = |d: &mut Detector, t: f64, out: &mut Vec<schemas::Alert>| {
        let mut ev = LogEvent::new(at(t), "upstream timeout after 5s");
        ev.service.name = Some("api".into());
        d.process(&mut ev, out);
    };
    // 40 minutes at about one timeout per 10 s (5..7 per minute).
    let start = T0 as f64;
    let mut t = start;
    let mut i = 0u32;
    while t < start + 2400.0 {
        t += 8.0 + f64::from(i % 5);
        i += 1;
        emit(&mut d, t, &mut out);
    }
    assert!(out.is_empty(), "steady timeouts raised {out:?}");
    // Then 2 per second for two minutes.
    let surge = t;
    while t < surge + 120.0 {
        t += 0.5;
        emit(&mut d, t, &mut out);
    }
    let fired = out
        .iter()
        .find(|a| a.name() == "TimeoutSurge" && a.status == AlertStatus::Firing)
        .ok_or_else(|| anyhow::anyhow!("no anomaly alert"))?;
    assert!(fired.starts_at.timestamp() <= surge as i64 + 60);
    assert!(fired.annotations.contains_key("value"));
    Ok(())
}

#[test]
fn example_rules_file_parses_and_compiles() -> anyhow::Result<()> {
    let text = include_str!("../../rules.example.toml");
    let cfg = DetectConfig::from_toml_str(text)?;
    let d = Detector::try_new(&cfg)?;
    let names = d.rule_names();
    for want in [
        "PaymentDeclines",
        "LoginFailures",
        "SlowSearch",
        "TimeoutSurge",
        "HighErrorRate",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    // The user's DatabaseConnectionError replaced the built-in one instead of duplicating it.
    assert_eq!(
        names
            .iter()
            .filter(|n| **n == "DatabaseConnectionError")
            .count(),
        1
    );
    Ok(())
}

#[test]
fn default_config_round_trips_through_toml() -> anyhow::Result<()> {
    let cfg = DetectConfig {
        rules: DetectConfig::default().effective_rules(),
        builtin_rules: false,
        ..DetectConfig::default()
    };
    let text = toml::to_string(&cfg)?;
    assert_eq!(DetectConfig::from_toml_str(&text)?, cfg);
    Ok(())
}

#[test]
fn detector_can_move_to_a_worker_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<Detector>();
    assert_send::<detect::DetectorState>();
}
