//! All default rules over realistic events: `cargo bench -p detect --bench rules`.
//!
//! The events mimic a cluster of 20 services: nginx-style request lines with status, route and
//! latency (a few 5xx and slow requests), app lines (a few errors, DB and upstream failures),
//! ~1 000 events per second of event time. Reported as events/s on one core.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use detect::{DetectConfig, Detector};
use schemas::{Level, LogEvent};

/// Events per iteration: enough to cross many bucket closes (100 s of event time).
const EVENTS: usize = 100_000;
/// Events per second of event time across the cluster.
const EVENTS_PER_SEC: usize = 1_000;
const SERVICES: usize = 20;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn events() -> Vec<LogEvent> {
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let services: Vec<String> = (0..SERVICES).map(|i| format!("svc-{i:02}")).collect();
    let routes = [
        "/api/sessions/",
        "/api/orders/",
        "/api/cart/",
        "/api/users/",
    ];
    let t0 = 1_796_378_400i64;
    let mut out = Vec::with_capacity(EVENTS);
    for i in 0..EVENTS {
        let ts = t0 * 1000 + (i * 1000 / EVENTS_PER_SEC) as i64;
        let ts = chrono::DateTime::from_timestamp_millis(ts).unwrap_or_default();
        let svc = &services[rng.below(SERVICES as u64) as usize];
        let kind = rng.below(100);
        let mut ev;
        if kind < 70 {
            let path = format!("{}{}", routes[rng.below(4) as usize], rng.below(100_000));
            let status: u16 = match rng.below(1000) {
                0..=4 => 503,
                5..=25 => 404,
                _ => 200,
            };
            let ms = 20 + rng.below(200) + if rng.below(100) == 0 { 2500 } else { 0 };
            ev = LogEvent::new(ts, format!("GET {path} HTTP/1.1\" {status} 512 0.{ms:03}"));
            ev.log.level = Some(if status >= 500 {
                Level::Error
            } else {
                Level::Info
            });
            ev.http.request.method = Some("GET".into());
            ev.http.response.status_code = Some(status);
            ev.url.path = Some(path);
            ev.event.duration = Some(ms as i64 * 1_000_000);
        } else if kind < 97 {
            ev = LogEvent::new(
                ts,
                format!("cache refreshed in {} ms for tenant 42", rng.below(50)),
            );
            ev.log.level = Some(Level::Info);
        } else if kind < 98 {
            ev = LogEvent::new(
                ts,
                "psycopg2.OperationalError: connection to server at \"postgres\" (10.96.4.2), port 5432 failed: Connection refused",
            );
            ev.log.level = Some(Level::Error);
        } else if kind < 99 {
            ev = LogEvent::new(
                ts,
                "HTTP Request: POST https://api.stripe.com/v1/charges \"HTTP/1.1 503 Service Unavailable\"",
            );
            ev.log.level = Some(Level::Info);
        } else {
            ev = LogEvent::new(
                ts,
                "failed to render recommendation widget: KeyError: 'sku'",
            );
            ev.log.level = Some(Level::Error);
        }
        ev.service.name = Some(svc.clone());
        ev.kubernetes.namespace = Some("shop".into());
        out.push(ev);
    }
    out
}

fn bench_rules(c: &mut Criterion) {
    let evs = events();
    let rules_only = DetectConfig {
        patterns_enabled: false,
        security_enabled: false,
        ..DetectConfig::default()
    };
    let full = DetectConfig::default();
    let mut group = c.benchmark_group("detect");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.sample_size(10);
    for (name, cfg) in [
        ("default_rules", &rules_only),
        ("rules_patterns_security", &full),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    (
                        Detector::try_new(cfg).expect("the default config is valid"),
                        evs.clone(),
                    )
                },
                |(mut d, mut evs)| {
                    let mut out = Vec::new();
                    for ev in &mut evs {
                        d.process(ev, &mut out);
                    }
                    d.finish(&mut out);
                    // Dropping 100k events is not detection work: return them.
                    (d, out, evs)
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench_rules);
criterion_main!(benches);
