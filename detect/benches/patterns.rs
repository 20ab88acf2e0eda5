//! Template mining throughput: `cargo bench -p detect --bench patterns`.
//!
//! Two inputs, reported as lines/s on one core:
//! - `app_logs`: 100 000 generated application messages from ~40 templates of the kind
//!   services print (HTTP handlers, DB pools, caches, queues, auth, upstream calls), each with
//!   realistic variables (ids, UUIDs, IPs, durations, user names, paths);
//! - `loghub2_2k`: the 14 000 `Content` lines of the seven Loghub-2.0 2k samples, when the
//!   shared corpora are present.
//!
//! The miner is warmed on the input first (templates learned), so the measured loop is the
//! steady state of a long-running pipeline; `cold` measures learning from scratch.

use std::path::Path;

mod common;

use common::{Rng, report_cpu_throughput};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use detect::patterns::{PatternConfig, PatternMiner};

const LINES: usize = 100_000;

fn app_lines() -> Vec<String> {
    let mut r = Rng(0xA11C_E5ED_0000_0001);
    let users = [
        "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
    ];
    let tables = ["orders", "users", "sessions", "carts", "payments"];
    let hosts = [
        "payments.internal",
        "api.stripe.com",
        "inventory-svc",
        "auth.example.com",
    ];
    let mut out = Vec::with_capacity(LINES);
    for _ in 0..LINES {
        let id = r.below(1_000_000);
        let ms = r.below(2000);
        let ip = format!("10.{}.{}.{}", r.below(256), r.below(256), r.below(256));
        let uuid = format!(
            "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
            r.next() as u32,
            r.below(65536),
            r.below(4096),
            r.below(4096),
            r.next() & 0xffff_ffff_ffff
        );
        let user = users[r.below(users.len() as u64) as usize];
        let table = tables[r.below(tables.len() as u64) as usize];
        let host = hosts[r.below(hosts.len() as u64) as usize];
        let line = match r.below(40) {
            0 => format!("GET /api/orders/{id} 200 {ms}ms"),
            1 => format!("POST /api/carts/{id}/items 201 {ms}ms"),
            2 => format!(
                "request_id={uuid} method=GET path=/api/users/{id} status=200 duration_ms={ms}"
            ),
            3 => format!("handled request {uuid} in {ms} ms"),
            4 => format!("user {user} logged in from {ip}"),
            5 => format!("user {user} logged out after {ms} seconds"),
            6 => format!("failed login for user {user} from {ip}: invalid password"),
            7 => format!(
                "acquired connection from pool in {ms}ms (active={}, idle={})",
                r.below(50),
                r.below(20)
            ),
            8 => format!("query on {table} took {ms}ms rows={}", r.below(500)),
            9 => format!("slow query detected: SELECT * FROM {table} WHERE id = {id} ({ms} ms)"),
            10 => format!("cache miss for key {table}:{id}"),
            11 => format!(
                "cache hit ratio {}.{}% over last 60s",
                r.below(100),
                r.below(10)
            ),
            12 => format!(
                "published message {uuid} to topic {table}-events partition {}",
                r.below(12)
            ),
            13 => format!(
                "consumed {} messages from {table}-events in {ms}ms",
                r.below(1000)
            ),
            14 => format!("upstream call to https://{host}/v1/charge failed: timeout after {ms}ms"),
            15 => format!(
                "upstream {host} responded 503 in {ms}ms, retrying (attempt {})",
                r.below(5)
            ),
            16 => format!(
                "psycopg2.OperationalError: could not connect to server: Connection refused (host {ip}, port 5432)"
            ),
            17 => format!(
                "scheduled job cleanup-{table} finished in {ms}ms, removed {} rows",
                r.below(10000)
            ),
            18 => format!("health check ok ({ms}ms)"),
            19 => format!("Starting worker {} of {}", r.below(16), 16),
            20 => format!("config reloaded from /etc/app/config-{}.yaml", r.below(3)),
            21 => format!("order {id} state changed from pending to paid by {user}"),
            22 => format!(
                "payment {uuid} authorized amount={}.{:02} currency=EUR",
                r.below(1000),
                r.below(100)
            ),
            23 => format!("rate limit exceeded for client {ip} on /api/search"),
            24 => format!(
                "TLS handshake with {ip}:{} completed in {ms}ms",
                1024 + r.below(60000)
            ),
            25 => format!("GC pause {ms}ms heap={}MB", r.below(4096)),
            26 => format!(
                "Exception in thread \"worker-{}\" java.lang.NullPointerException: order {id} has no customer",
                r.below(32)
            ),
            27 => format!(
                "retrying in {}s after error: connection reset by peer",
                r.below(30)
            ),
            28 => format!(
                "trace_id={:032x} span_id={:016x} msg=\"span finished\" duration={ms}ms",
                r.next(),
                r.next()
            ),
            29 => format!("websocket {uuid} closed with code {}", 1000 + r.below(12)),
            30 => format!(
                "uploaded file /data/uploads/{id}.png ({} bytes) for {user}",
                r.below(10_000_000)
            ),
            31 => format!("email sent to {user}@example.com template=welcome id={id}"),
            32 => format!(
                "feature flag new-checkout evaluated to {} for {user}",
                r.below(2) == 0
            ),
            33 => format!(
                "k8s lease renewed by pod api-{:x}-{:x} at revision {}",
                r.below(0xffff),
                r.below(0xfff),
                id
            ),
            34 => format!("DELETE /api/sessions/{uuid} 204 {ms}ms"),
            35 => format!("validation failed for field email: \"{user}@\" is not a valid address"),
            36 => format!("migrated {} rows of {table} in {ms}ms", r.below(1_000_000)),
            37 => format!(
                "metrics flushed: {} series, {} samples",
                r.below(5000),
                r.below(100_000)
            ),
            38 => format!("listening on 0.0.0.0:{}", 8000 + r.below(100)),
            _ => format!(
                "shutting down worker {} gracefully (in-flight={})",
                r.below(16),
                r.below(10)
            ),
        };
        out.push(line);
    }
    out
}

fn loghub_lines() -> Option<Vec<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpora/loghub2_2k");
    if !root.is_dir() {
        eprintln!(
            "skipping loghub2_2k bench: corpora not found at {}",
            root.display()
        );
        return None;
    }
    let mut out = Vec::new();
    for system in [
        "HDFS",
        "Spark",
        "BGL",
        "Linux",
        "HealthApp",
        "Proxifier",
        "OpenSSH",
    ] {
        let path = root.join(system).join(format!("{system}_2k.log"));
        let text = std::fs::read_to_string(&path).ok()?;
        // The raw files carry headers; the message is what follows the header fields, which
        // for a throughput figure can stay: the miner sees a realistic mix either way.
        out.extend(text.lines().map(|l| l.trim_end().to_string()));
    }
    Some(out)
}

fn bench_lines(c: &mut Criterion, name: &str, lines: &[String]) {
    let config = PatternConfig::default();
    let mut group = c.benchmark_group(format!("patterns/{name}"));
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.sample_size(20);
    let mut warm = PatternMiner::try_new(&config).expect("default config is valid");
    for l in lines {
        warm.assign(l);
    }
    eprintln!("{name}: {} lines, {} templates", lines.len(), warm.len());
    report_cpu_throughput(&format!("patterns/{name}/warm"), lines.len(), 10, || {
        for l in lines {
            std::hint::black_box(warm.assign(l).template.len());
        }
    });
    report_cpu_throughput(&format!("patterns/{name}/cold"), lines.len(), 5, || {
        let mut miner = PatternMiner::try_new(&config).expect("default config is valid");
        for l in lines {
            miner.assign(l);
        }
        std::hint::black_box(miner.len());
    });
    group.bench_function("warm", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for l in lines {
                n += warm.assign(l).template.len();
            }
            n
        })
    });
    group.bench_function("cold", |b| {
        b.iter_batched(
            || PatternMiner::try_new(&config).expect("default config is valid"),
            |mut miner| {
                for l in lines {
                    miner.assign(l);
                }
                miner.len()
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn bench(c: &mut Criterion) {
    let app = app_lines();
    bench_lines(c, "app_logs", &app);
    if let Some(loghub) = loghub_lines() {
        bench_lines(c, "loghub2_2k", &loghub);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
