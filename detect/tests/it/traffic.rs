//! Synthetic Kubernetes service traffic for the rule tests: request logs with realistic
//! latency and status mixes, app error lines, driver and HTTP-client failures.

use chrono::{DateTime, Utc};
use schemas::{Level, LogEvent};

/// Start of every scenario: 2026-12-04T10:00:00Z.
pub const T0: i64 = 1_796_378_400;

/// A small deterministic PRNG (xorshift64*), so scenarios are reproducible without a dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.f64().max(1e-12);
        let u2 = self.f64();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

pub fn at(secs: f64) -> DateTime<Utc> {
    let whole = secs.floor();
    let nanos = ((secs - whole) * 1e9) as u32;
    DateTime::from_timestamp(whole as i64, nanos).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

const ROUTES: &[&str] = &[
    "/api/sessions/{id}",
    "/api/orders",
    "/api/orders/{id}",
    "/api/cart/{id}/items",
    "/healthz",
];

/// How one service behaves over a span of time.
#[derive(Debug, Clone)]
pub struct Profile {
    pub service: &'static str,
    /// Requests per second.
    pub rps: f64,
    /// Share of requests answered 5xx.
    pub error_ratio: f64,
    /// Median request latency (ms); latencies are log-normal with sigma 0.5.
    pub median_ms: f64,
    /// Share of requests that take `slow_ms` instead.
    pub slow_ratio: f64,
    pub slow_ms: f64,
    /// App log lines (non-request) per request.
    pub app_lines_per_request: f64,
    /// Share of app lines at error level (background errors).
    pub app_error_ratio: f64,
}

impl Profile {
    /// A healthy service: 10 rps, 0.3 % 5xx, 60 ms median, 0.5 % app error lines.
    pub fn healthy(service: &'static str) -> Profile {
        Profile {
            service,
            rps: 10.0,
            error_ratio: 0.003,
            median_ms: 60.0,
            slow_ratio: 0.0,
            slow_ms: 3000.0,
            app_lines_per_request: 0.5,
            app_error_ratio: 0.005,
        }
    }
}

/// Appends the traffic of `p` from `from` to `to` (Unix seconds) to `out`.
pub fn traffic(rng: &mut Rng, p: &Profile, from: f64, to: f64, out: &mut Vec<LogEvent>) {
    let n = ((to - from) * p.rps).round() as u64;
    for i in 0..n {
        let t = from + (i as f64 + rng.f64()) / p.rps;
        out.push(request(rng, p, t));
        if rng.f64() < p.app_lines_per_request {
            out.push(app_line(rng, p, t + 0.001));
        }
    }
}

fn base(p: &Profile, t: f64, message: String) -> LogEvent {
    let mut ev = LogEvent::new(at(t), message);
    ev.service.name = Some(p.service.to_owned());
    ev.kubernetes.namespace = Some("shop".to_owned());
    ev.kubernetes.pod.name = Some(format!("{}-7d9f8b6c5-x2k4q", p.service));
    ev
}

pub fn request(rng: &mut Rng, p: &Profile, t: f64) -> LogEvent {
    let route = ROUTES[rng.below(ROUTES.len() as u64) as usize];
    let path = route.replace("{id}", &rng.below(1_000_000).to_string());
    let status: u16 = if rng.f64() < p.error_ratio {
        [500, 502, 503][rng.below(3) as usize]
    } else if rng.f64() < 0.02 {
        404
    } else {
        200
    };
    let ms = if rng.f64() < p.slow_ratio {
        p.slow_ms * (1.0 + 0.1 * rng.f64())
    } else {
        p.median_ms * (0.5 * rng.normal()).exp()
    };
    let mut ev = base(
        p,
        t,
        format!("GET {path} HTTP/1.1\" {status} 512 {:.3}", ms / 1000.0),
    );
    ev.log.level = Some(if status >= 500 {
        Level::Error
    } else {
        Level::Info
    });
    ev.http.request.method = Some("GET".to_owned());
    ev.http.response.status_code = Some(status);
    ev.url.path = Some(path);
    ev.event.duration = Some((ms * 1e6) as i64);
    ev.event.dataset = Some("nginx.access".to_owned());
    ev
}

pub fn app_line(rng: &mut Rng, p: &Profile, t: f64) -> LogEvent {
    let error = rng.f64() < p.app_error_ratio;
    let msg = if error {
        "failed to render recommendation widget: KeyError: 'sku'".to_owned()
    } else {
        format!("cache refreshed in {} ms", rng.below(50))
    };
    let mut ev = base(p, t, msg);
    ev.log.level = Some(if error { Level::Error } else { Level::Info });
    ev
}

/// `per_sec` app error lines per second (an error surge that is not HTTP 5xx).
pub fn error_surge(
    rng: &mut Rng,
    p: &Profile,
    from: f64,
    to: f64,
    per_sec: f64,
    out: &mut Vec<LogEvent>,
) {
    let n = ((to - from) * per_sec).round() as u64;
    for i in 0..n {
        let t = from + (i as f64 + rng.f64()) / per_sec;
        let mut ev = base(
            p,
            t,
            "order pipeline failed: ValueError: invalid currency".into(),
        );
        ev.log.level = Some(Level::Error);
        out.push(ev);
    }
}

/// Real driver messages for database connection failures.
pub const DB_ERRORS: &[&str] = &[
    "psycopg2.OperationalError: connection to server at \"postgres\" (10.96.4.2), port 5432 failed: Connection refused",
    "sqlalchemy.exc.TimeoutError: QueuePool limit of size 5 overflow 10 reached, connection timed out, timeout 30.00",
    "asyncpg.exceptions.TooManyConnectionsError: sorry, too many clients already",
];

pub fn db_errors(
    rng: &mut Rng,
    p: &Profile,
    from: f64,
    to: f64,
    per_sec: f64,
    out: &mut Vec<LogEvent>,
) {
    let n = ((to - from) * per_sec).round() as u64;
    for i in 0..n {
        let t = from + (i as f64 + rng.f64()) / per_sec;
        let msg = DB_ERRORS[rng.below(DB_ERRORS.len() as u64) as usize];
        let mut ev = base(p, t, msg.to_owned());
        ev.log.level = Some(Level::Error);
        out.push(ev);
    }
}

/// httpx / requests failures against `host`.
pub fn upstream_errors(
    rng: &mut Rng,
    p: &Profile,
    host: &str,
    from: f64,
    to: f64,
    per_sec: f64,
    out: &mut Vec<LogEvent>,
) {
    let n = ((to - from) * per_sec).round() as u64;
    for i in 0..n {
        let t = from + (i as f64 + rng.f64()) / per_sec;
        let (msg, level) = if rng.f64() < 0.5 {
            (
                format!(
                    "HTTP Request: POST https://{host}/v1/charges \"HTTP/1.1 503 Service Unavailable\""
                ),
                Level::Info,
            )
        } else {
            (
                format!(
                    "requests.exceptions.ReadTimeout: HTTPSConnectionPool(host='{host}', port=443): Read timed out. (read timeout=5)"
                ),
                Level::Error,
            )
        };
        let mut ev = base(p, t, msg);
        ev.log.level = Some(level);
        out.push(ev);
    }
}

/// Sorts events by timestamp (what a perfectly ordered stream looks like).
pub fn sort(events: &mut [LogEvent]) {
    events.sort_by_key(|e| e.timestamp);
}
