//! Snapshot/restore across a restart neither re-fires nor loses an alert; reload keeps the
//! state of unchanged rules.

use detect::{DetectConfig, DetectError, Detector, DetectorState, Threshold};
use schemas::{Alert, AlertStatus, LogEvent};

use crate::order::{config, incident_stream};

fn feed(d: &mut Detector, events: &mut [LogEvent], out: &mut Vec<Alert>) {
    for ev in events.iter_mut() {
        d.process(ev, out);
    }
}

#[test]
fn restart_neither_refires_nor_loses_an_alert() -> anyhow::Result<()> {
    let cfg = config();
    let events = incident_stream(7);
    let mut want = Vec::new();
    let mut d = Detector::try_new(&cfg)?;
    feed(&mut d, &mut events.clone(), &mut want);
    d.finish(&mut want);
    assert!(want.iter().any(|a| a.status == AlertStatus::Firing));
    assert!(want.iter().any(|a| a.status == AlertStatus::Resolved));

    let dir = tempfile::tempdir()?;
    let mut restarted_while_firing = false;
    for split in [0.25, 0.45, 0.5, 0.8] {
        let at = (events.len() as f64 * split) as usize;
        let (head, tail) = events.split_at(at);
        let mut got = Vec::new();
        let mut first = Detector::try_new(&cfg)?;
        feed(&mut first, &mut head.to_vec(), &mut got);
        restarted_while_firing |= first.has_firing();
        // Persist through a real file, as the binary does in its data dir.
        let path = dir.path().join("detect-state.json");
        std::fs::write(&path, serde_json::to_vec(&first.snapshot())?)?;
        drop(first);
        let state: DetectorState = serde_json::from_slice(&std::fs::read(&path)?)?;
        let mut second = Detector::try_new(&cfg)?;
        second.restore(state)?;
        feed(&mut second, &mut tail.to_vec(), &mut got);
        second.finish(&mut got);
        assert_eq!(got, want, "restart at {split} changed the alerts");
    }
    assert!(
        restarted_while_firing,
        "no split point restarted during a firing alert"
    );
    Ok(())
}

#[test]
fn reload_keeps_the_state_of_unchanged_rules() -> anyhow::Result<()> {
    let cfg = config();
    let events = incident_stream(8);
    let mut baseline = Vec::new();
    let mut d = Detector::try_new(&cfg)?;
    feed(&mut d, &mut events.clone(), &mut baseline);
    d.finish(&mut baseline);

    // Restart at the middle of the incident with a changed SloLatency rule.
    let at = events.len() / 2;
    let (head, tail) = events.split_at(at);
    let mut got = Vec::new();
    let mut d = Detector::try_new(&cfg)?;
    feed(&mut d, &mut head.to_vec(), &mut got);
    let before = d.window_partials("HighErrorRate");
    assert!(!before.is_empty());
    assert!(!d.window_partials("SloLatency").is_empty());
    let mut changed = cfg.clone();
    let mut slo = changed
        .effective_rules()
        .into_iter()
        .find(|r| r.name == "SloLatency")
        .ok_or_else(|| anyhow::anyhow!("no SloLatency"))?;
    slo.threshold = Some(Threshold::Duration("750ms".into()));
    changed.rules.push(slo);
    d.reload(&changed)?;
    assert_eq!(
        d.window_partials("HighErrorRate"),
        before,
        "unchanged rule lost its window"
    );
    assert!(
        d.window_partials("SloLatency").is_empty(),
        "changed rule kept stale state"
    );
    assert_eq!(d.stats().rule_states_dropped, 1);
    feed(&mut d, &mut tail.to_vec(), &mut got);
    d.finish(&mut got);

    // Unchanged rules behave as if nothing happened: same notifications, no re-fire.
    let only = |v: &[Alert], name: &str| -> Vec<Alert> {
        v.iter().filter(|a| a.name() == name).cloned().collect()
    };
    for name in ["HighErrorRate", "HighLatency", "DatabaseConnectionError"] {
        assert_eq!(
            only(&got, name),
            only(&baseline, name),
            "{name} changed across reload"
        );
        assert!(
            !only(&got, name).is_empty(),
            "{name} should have fired in this stream"
        );
    }
    Ok(())
}

#[test]
fn invalid_reload_and_foreign_state_are_refused() -> anyhow::Result<()> {
    let cfg = DetectConfig::default();
    let mut d = Detector::try_new(&cfg)?;
    let mut bad = cfg.clone();
    bad.bucket_secs = 0;
    assert!(matches!(d.reload(&bad), Err(DetectError::Config { .. })));
    assert_eq!(d.rule_names().len(), cfg.effective_rules().len());

    let other = DetectConfig {
        bucket_secs: 5,
        ..DetectConfig::default()
    };
    let state = Detector::try_new(&other)?.snapshot();
    let err = d
        .restore(state)
        .err()
        .ok_or_else(|| anyhow::anyhow!("restored"))?;
    assert_eq!(err.error_code(), "detect_restore_failed");

    let mut state = d.snapshot();
    state.version += 1;
    assert!(d.restore(state).is_err());
    Ok(())
}
