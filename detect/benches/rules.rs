//! All default rules over realistic events: `cargo bench -p detect --bench rules`.
//!
//! The events mimic a cluster of 20 services: nginx-style request lines with status, route and
//! latency (a few 5xx and slow requests), app lines (a few errors, DB and upstream failures),
//! ~1 000 events per second of event time. Reported as events/s on one core twice: `detect/…`
//! in wall-clock time, and `detect_cpu/…` in the bench thread's CPU time (Linux
//! `/proc/thread-self/schedstat`), which stays meaningful on a shared, loaded machine.

mod common;

use common::Rng;
use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use detect::{DetectConfig, Detector};
use schemas::{Level, LogEvent};

/// Events per iteration: enough to cross many bucket closes (100 s of event time).
const EVENTS: usize = 100_000;
/// Events per second of event time across the cluster.
const EVENTS_PER_SEC: usize = 1_000;
const SERVICES: usize = 20;

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

/// CPU time of the calling thread in nanoseconds (0 where schedstat is unavailable, which makes
/// the CPU-time group report nonsense rather than fail: use the wall-clock group there).
fn thread_cpu_ns() -> u64 {
    common::thread_cpu_ns().unwrap_or(0)
}

/// A criterion measurement of thread CPU time.
struct ThreadCpuTime;

impl Measurement for ThreadCpuTime {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns().saturating_sub(start)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}

struct CpuFormatter;

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, typical_ns: f64, values: &mut [f64]) -> &'static str {
        let (div, unit) = if typical_ns >= 1e9 {
            (1e9, "s cpu")
        } else if typical_ns >= 1e6 {
            (1e6, "ms cpu")
        } else {
            (1e3, "µs cpu")
        };
        for v in values {
            *v /= div;
        }
        unit
    }
    fn scale_throughputs(&self, _typical: f64, t: &Throughput, values: &mut [f64]) -> &'static str {
        let per_iter = match t {
            Throughput::Elements(n) | Throughput::Bytes(n) | Throughput::BytesDecimal(n) => *n,
            Throughput::Bits(n) => *n,
            _ => 1,
        } as f64;
        for v in values {
            *v = per_iter * 1e9 / v.max(1.0) / 1e6;
        }
        "M/s per core"
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

fn bench_rules(c: &mut Criterion) {
    run_group(c, "detect");
}

fn bench_rules_cpu(c: &mut Criterion<ThreadCpuTime>) {
    run_group(c, "detect_cpu");
}

fn run_group<M: Measurement>(c: &mut Criterion<M>, name: &str) {
    let evs = events();
    let rules_only = DetectConfig {
        patterns_enabled: false,
        security_enabled: false,
        ..DetectConfig::default()
    };
    let full = DetectConfig::default();
    let mut group = c.benchmark_group(name);
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
criterion_group! {
    name = cpu_benches;
    config = Criterion::default().with_measurement(ThreadCpuTime);
    targets = bench_rules_cpu
}
criterion_main!(benches, cpu_benches);
