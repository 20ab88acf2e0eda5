//! The security pass over realistic events: `cargo bench -p detect --bench security`.
//!
//! 100 000 events from a web tier and its hosts: 85% access-log events (varied routes, query
//! strings with encoded values, browser and bot user agents, 2% 404s), 10% app and sshd lines
//! without a failure, 3% failed logins from a few hundred addresses, 2% attack or scanner
//! requests. Reported as events/s on one core; alerts fire as they would in production.

mod common;

use common::{Rng, report_cpu_throughput};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use detect::security::{SecurityConfig, SecurityDetector};
use schemas::LogEvent;

const EVENTS: usize = 100_000;

fn events() -> Vec<LogEvent> {
    let mut r = Rng(0x5EC0_0000_0000_0001);
    let agents = [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "okhttp/4.12.0",
        "python-requests/2.31.0",
    ];
    let routes = [
        "/api/orders/",
        "/api/users/",
        "/products/",
        "/api/search",
        "/static/app.",
    ];
    let attacks = [
        "/item?id=1%27%20OR%20%271%27%3D%271",
        "/../../etc/passwd",
        "/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "/.env",
        "/wp-login.php",
    ];
    let t0 = 1_796_378_400_000i64;
    let mut out = Vec::with_capacity(EVENTS);
    for i in 0..EVENTS {
        let ts = chrono::DateTime::from_timestamp_millis(t0 + i as i64 * 10).unwrap_or_default();
        let ip = format!("203.0.{}.{}", r.below(4), r.below(250));
        let kind = r.below(100);
        let ev = if kind < 85 {
            let route = routes[r.below(routes.len() as u64) as usize];
            let (path, query) = match route {
                "/api/search" => (
                    route.to_string(),
                    Some(format!(
                        "q=red+shoes+size+{}&page={}&sort=price%20asc",
                        r.below(50),
                        r.below(9)
                    )),
                ),
                "/static/app." => (format!("/static/app.{:x}.js", r.next() & 0xffffff), None),
                _ => (
                    format!("{route}{}", r.below(100_000)),
                    Some(format!("ref=home&utm_source=news{}", r.below(9))),
                ),
            };
            let status = if r.below(50) == 0 { 404 } else { 200 };
            let mut ev = LogEvent::new(ts, format!("GET {path} {status}"));
            ev.client.ip = Some(ip);
            ev.url.path = Some(path);
            ev.url.query = query;
            ev.http.request.method = Some("GET".into());
            ev.http.response.status_code = Some(status);
            ev.http.request.referrer = Some("https://shop.example.com/".into());
            ev.user_agent.original = Some(agents[r.below(agents.len() as u64) as usize].into());
            ev
        } else if kind < 95 {
            match r.below(3) {
                0 => LogEvent::new(
                    ts,
                    format!(
                        "Accepted publickey for deploy from {ip} port {} ssh2: RSA SHA256:abc",
                        1024 + r.below(60000)
                    ),
                ),
                1 => LogEvent::new(
                    ts,
                    format!("order {} paid in {} ms", r.below(1_000_000), r.below(900)),
                ),
                _ => LogEvent::new(
                    ts,
                    "pam_unix(sshd:session): session opened for user deploy by (uid=0)",
                ),
            }
        } else if kind < 98 {
            let ip = format!("198.51.100.{}", r.below(200));
            LogEvent::new(
                ts,
                format!(
                    "Failed password for invalid user admin{} from {ip} port {} ssh2",
                    r.below(50),
                    1024 + r.below(60000)
                ),
            )
        } else {
            let target = attacks[r.below(attacks.len() as u64) as usize];
            let (path, query) = match target.split_once('?') {
                Some((p, q)) => (p.to_string(), Some(q.to_string())),
                None => (target.to_string(), None),
            };
            let mut ev = LogEvent::new(ts, format!("GET {target} 404"));
            ev.client.ip = Some(format!("192.0.2.{}", r.below(20)));
            ev.url.path = Some(path);
            ev.url.query = query;
            ev.http.response.status_code = Some(404);
            ev.user_agent.original = Some(if r.below(2) == 0 {
                "sqlmap/1.7.2#stable".into()
            } else {
                agents[0].into()
            });
            ev
        };
        out.push(ev);
    }
    out
}

fn bench(c: &mut Criterion) {
    let events = events();
    let config = SecurityConfig::default();
    report_cpu_throughput("security/process", events.len(), 10, || {
        let mut det = SecurityDetector::try_new(&config).expect("default config is valid");
        let mut alerts = Vec::new();
        for ev in &events {
            det.process(ev, &mut alerts);
        }
        std::hint::black_box(alerts.len());
    });
    let mut group = c.benchmark_group("security");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.sample_size(20);
    group.bench_function("process", |b| {
        b.iter_batched(
            || SecurityDetector::try_new(&config).expect("default config is valid"),
            |mut det| {
                let mut alerts = Vec::new();
                for ev in &events {
                    det.process(ev, &mut alerts);
                }
                alerts.len()
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
