//! Partials from several processors merge into exactly the single-process aggregates.

use std::collections::BTreeMap;

use detect::{DdSketch, DetectConfig, Detector, WindowPartial};
use proptest::prelude::*;
use schemas::{Level, LogEvent};

use crate::traffic::{T0, at};

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn sketch_merge_equals_one_sketch(
        values in prop::collection::vec((0.0f64..1e11, 0usize..4), 0..400),
    ) {
        let mut single = DdSketch::new();
        let mut parts = vec![DdSketch::new(); 4];
        for (v, part) in &values {
            single.add(*v);
            parts[*part].add(*v);
        }
        let mut merged = DdSketch::new();
        for p in &parts {
            merged.merge(p);
        }
        prop_assert_eq!(merged.count(), single.count());
        for q in [0.0, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0] {
            prop_assert_eq!(merged.quantile(q), single.quantile(q));
        }
        prop_assert_eq!(&merged, &single);
    }
}

/// (status, duration ms, level is error, offset s, service, processor)
type Spec = (u16, u64, bool, u32, u8, u8);

fn event(spec: &Spec) -> LogEvent {
    let (status, ms, err, offset, svc, _) = *spec;
    let mut ev = LogEvent::new(at(T0 as f64 + f64::from(offset) + 0.5), "GET /api/orders");
    ev.service.name = Some(format!("svc-{svc}"));
    ev.http.response.status_code = Some(status);
    ev.url.path = Some(format!("/api/orders/{}", ms * 7919));
    ev.event.duration = Some(ms as i64 * 1_000_000);
    ev.log.level = Some(if err { Level::Error } else { Level::Info });
    ev
}

type Partials = BTreeMap<(String, Vec<String>), WindowPartial>;

fn partials(d: &Detector) -> Partials {
    let mut m = Partials::new();
    for rule in d.rule_names() {
        for (key, p) in d.window_partials(rule) {
            if !p.is_empty() {
                m.insert((rule.to_owned(), key), p);
            }
        }
    }
    m
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn detector_partials_merge_exactly(
        mut specs in prop::collection::vec(
            (
                prop::sample::select(vec![200u16, 200, 200, 404, 500, 503]),
                1u64..5000,
                any::<bool>(),
                0u32..600,
                0u8..3,
                0u8..3,
            ),
            1..600,
        ),
    ) {
        specs.sort_by_key(|s| s.3);
        let cfg = DetectConfig::default();
        // Watermark 610 s: the 5-minute windows hold the events from 310 s on.
        let end = at(T0 as f64 + 640.0);
        let fail = |e: detect::DetectError| TestCaseError::fail(e.to_string());
        let mut single = Detector::try_new(&cfg).map_err(fail)?;
        let mut procs = Vec::new();
        for _ in 0..3 {
            procs.push(Detector::try_new(&cfg).map_err(fail)?);
        }
        let mut sink = Vec::new();
        for s in &specs {
            single.process(&mut event(s), &mut sink);
            procs[usize::from(s.5)].process(&mut event(s), &mut sink);
        }
        single.advance_watermark(end, &mut sink);
        let mut merged = Partials::new();
        for p in &mut procs {
            p.advance_watermark(end, &mut sink);
            for (k, part) in partials(p) {
                merged.entry(k).or_default().merge(&part);
            }
        }
        let want = partials(&single);
        if specs.iter().any(|s| s.3 >= 320) {
            prop_assert!(!want.is_empty());
        }
        prop_assert_eq!(merged, want);
    }
}
