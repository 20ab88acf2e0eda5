//! Realistic Kubernetes log events for the index benchmarks, generated deterministically.
//!
//! The mix follows a typical web workload: about 70% ingress/access lines (with the raw line in
//! `event.original`), 25% application lines with a trace id and `app.*` fields, and 5% errors
//! with a stack trace. Services, pods and files are spread so keyword columns have realistic
//! cardinality (20 services, 60 pods, 300 patterns, thousands of paths and client IPs).

#![allow(dead_code)]

use chrono::{DateTime, Duration, Utc};
use schemas::{Level, LogEvent, SourceRef, Stream};

pub const SERVICES: [&str; 20] = [
    "api",
    "checkout",
    "cart",
    "payments",
    "search",
    "auth",
    "catalog",
    "inventory",
    "shipping",
    "email",
    "recommend",
    "ads",
    "frontend",
    "gateway",
    "billing",
    "users",
    "reviews",
    "media",
    "notify",
    "reports",
];
const NAMESPACES: [&str; 4] = ["shop", "platform", "data", "edge"];
const METHODS: [&str; 5] = ["GET", "GET", "GET", "POST", "PUT"];
const AGENTS: [&str; 4] = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "kube-probe/1.30",
    "Go-http-client/1.1",
];
const APP_MESSAGES: [&str; 6] = [
    "user {u} logged in from {ip}",
    "order {o} created with {n} items total {n}.99 EUR",
    "cache miss for key product:{o} refreshing from db",
    "payment authorized for order {o} via provider stripe in {n}ms",
    "retrying request to inventory-svc attempt {n} of 5",
    "slow query on table orders took {n}ms rows={n}",
];

/// A small, fast, deterministic PRNG (xorshift64*): benchmarks must not depend on `rand`.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Generates events in time order from `start`, `step` apart, each pod's file in offset order.
#[derive(Debug)]
pub struct Generator {
    rng: Rng,
    start: DateTime<Utc>,
    step_ns: i64,
    i: i64,
    offsets: Vec<u64>,
}

impl Generator {
    pub fn new(seed: u64, start: DateTime<Utc>, step: Duration) -> Generator {
        Generator {
            rng: Rng::new(seed),
            start,
            step_ns: step.num_nanoseconds().unwrap_or(1_000_000),
            i: 0,
            offsets: vec![0; SERVICES.len() * 3],
        }
    }

    pub fn next_event(&mut self) -> LogEvent {
        let r = &mut self.rng;
        let ts = self.start + Duration::nanoseconds(self.step_ns * self.i);
        self.i += 1;
        let svc_ix = r.below(SERVICES.len() as u64) as usize;
        let service = SERVICES[svc_ix];
        let pod_ix = svc_ix * 3 + r.below(3) as usize;
        let pod = format!(
            "{service}-5f7c9d{:02x}-{}",
            pod_ix,
            ["x2kqp", "m8zrt", "c4vwn"][pod_ix % 3]
        );
        let kind = r.below(100);
        let mut ev;
        if kind < 70 {
            let method = METHODS[r.below(METHODS.len() as u64) as usize];
            let path = format!("/api/v1/{service}/{}", r.below(5000));
            let status: u16 = match r.below(100) {
                0..=84 => 200,
                85..=89 => 304,
                90..=97 => [400, 401, 404, 404, 429][r.below(5) as usize],
                _ => [500, 502, 503][r.below(3) as usize],
            };
            let ms = 1 + r.below(40) + if r.below(20) == 0 { r.below(2000) } else { 0 };
            let ip = format!("10.{}.{}.{}", r.below(8), r.below(256), r.below(256));
            let bytes = 200 + r.below(20_000);
            let agent = AGENTS[r.below(AGENTS.len() as u64) as usize];
            let line = format!(
                "{ip} - - [{}] \"{method} {path}?page={} HTTP/1.1\" {status} {bytes} \"-\" \"{agent}\" {}.{:03}",
                ts.format("%d/%b/%Y:%H:%M:%S %z"),
                r.below(10),
                ms / 1000,
                ms % 1000
            );
            ev = LogEvent::new(ts, format!("{method} {path} {status} {ms}ms"));
            ev.http.request.method = Some(method.into());
            ev.http.response.status_code = Some(status);
            ev.http.response.bytes = Some(bytes);
            ev.http.version = Some("1.1".into());
            ev.url.path = Some(path.clone());
            ev.url.original = Some(format!("{path}?page=1"));
            ev.client.ip = Some(ip);
            ev.user_agent.original = Some(agent.into());
            ev.event.duration = Some(ms as i64 * 1_000_000);
            ev.event.original = Some(line);
            ev.event.dataset = Some("nginx.access".into());
            ev.sluice.format = Some("nginx_combined".into());
            ev.log.level = Some(if status >= 500 {
                Level::Error
            } else {
                Level::Info
            });
        } else {
            let template = APP_MESSAGES[r.below(APP_MESSAGES.len() as u64) as usize];
            let msg = template
                .replace("{u}", &format!("u{}", r.below(100_000)))
                .replace("{ip}", &format!("10.1.{}.{}", r.below(256), r.below(256)))
                .replace("{o}", &format!("ord-{:08x}", r.next() as u32))
                .replace("{n}", &r.below(1000).to_string());
            ev = LogEvent::new(ts, msg);
            ev.log.level =
                Some([Level::Info, Level::Info, Level::Debug, Level::Warn][r.below(4) as usize]);
            ev.log.logger = Some(format!("com.shop.{service}.Service"));
            ev.trace.id = Some(format!("{:016x}{:016x}", r.next(), r.next()));
            ev.span.id = Some(format!("{:016x}", r.next()));
            ev.app
                .insert("user_id".into(), serde_json::json!(r.below(100_000)));
            ev.app.insert(
                "region".into(),
                serde_json::json!(["eu-west-1", "us-east-1"][r.below(2) as usize]),
            );
            ev.event.dataset = Some("sluice.app".into());
            ev.sluice.format = Some("json".into());
            if kind >= 95 {
                ev.log.level = Some(Level::Error);
                ev.error.kind = Some("java.sql.SQLTransientConnectionException".into());
                ev.error.message = Some(
                    "HikariPool-1 - Connection is not available, request timed out after 30000ms"
                        .into(),
                );
                let mut trace = String::from(
                    "java.sql.SQLTransientConnectionException: HikariPool-1 - Connection is not available\n",
                );
                for k in 0..10 {
                    trace.push_str(&format!("\tat com.shop.{service}.repo.OrderRepository.find{k}(OrderRepository.java:{})\n", 40 + k * 7));
                }
                ev.error.stack_trace = Some(trace);
            }
        }
        ev.service.name = Some(service.into());
        ev.stream = Some(if ev.log.level == Some(Level::Error) {
            Stream::Stderr
        } else {
            Stream::Stdout
        });
        ev.kubernetes.namespace = Some(NAMESPACES[svc_ix % NAMESPACES.len()].into());
        ev.kubernetes.pod.name = Some(pod);
        ev.kubernetes.pod.uid = Some(format!("6c1f{pod_ix:04x}-8a2b-4f7e-9d3c-1b2a3c4d5e6f"));
        ev.kubernetes.container.name = Some(service.into());
        ev.kubernetes.node.name = Some(format!("node-{}", pod_ix % 6));
        ev.kubernetes
            .labels
            .insert("app.kubernetes.io/name".into(), service.into());
        ev.kubernetes
            .labels
            .insert("pod-template-hash".into(), "5f7c9d".into());
        ev.sluice.pattern.id = Some(format!(
            "{:08x}",
            r.below(300) * 2_654_435_761 % 0xffff_ffff
        ));
        let file_id = 1000 + pod_ix as u64;
        let offset = self.offsets[pod_ix];
        let len = ev
            .event
            .original
            .as_ref()
            .map_or(ev.message.len(), |o| o.len()) as u64
            + 40;
        self.offsets[pod_ix] += len;
        ev.sluice.source = SourceRef {
            path: format!(
                "/var/log/pods/{}_{}_x/{service}/0.log",
                ev.kubernetes.namespace.as_deref().unwrap_or(""),
                ev.kubernetes.pod.name.as_deref().unwrap_or("")
            ),
            file_id,
            offset,
            end_offset: offset + len,
        };
        ev.event.id = schemas::event_id(file_id, offset);
        ev.event.ingested = Some(ts + Duration::milliseconds(300));
        ev
    }
}
