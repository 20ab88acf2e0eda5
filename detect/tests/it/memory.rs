//! Memory per tracked key, measured on realistic traffic (the figure in the crate docs).

use detect::{DetectConfig, Detector};

use crate::traffic::{self, Profile, Rng, T0};

#[test]
fn memory_per_key_stays_small() -> anyhow::Result<()> {
    let mut rng = Rng::new(77);
    let mut evs = Vec::new();
    let names: Vec<&'static str> = (0..30)
        .map(|i| &*Box::leak(format!("svc-{i:02}").into_boxed_str()))
        .collect();
    for name in &names {
        let mut p = Profile::healthy(name);
        p.rps = 5.0;
        traffic::traffic(&mut rng, &p, T0 as f64, T0 as f64 + 400.0, &mut evs);
    }
    traffic::sort(&mut evs);
    let mut d = Detector::try_new(&DetectConfig::default())?;
    let mut out = Vec::new();
    for ev in &mut evs {
        d.process(ev, &mut out);
    }
    let keys = d.stats().keys_tracked;
    let bytes = d.state_bytes();
    let per_key = bytes as u64 / keys.max(1);
    eprintln!("{keys} keys, {bytes} bytes of state, {per_key} bytes per key");
    let snapshot = serde_json::to_vec(&d.snapshot())?;
    eprintln!("snapshot: {} bytes of JSON", snapshot.len());
    for (rule, n, b) in d.state_bytes_by_rule() {
        eprintln!("  {rule}: {n} keys, {} bytes per key", b / n.max(1));
    }
    assert!(
        keys >= 30 * 4,
        "expected several keys per service, got {keys}"
    );
    // Latency keys hold a sketch per bucket; the documented bound is 64 KiB for a busy key.
    assert!(per_key < 64 * 1024, "{per_key} bytes per key");
    Ok(())
}
