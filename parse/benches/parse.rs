//! Throughput of `Parser::parse_line` on realistic FastAPI JSON lines (~350 B): format
//! detection + JSON parse + ECS mapping + redaction, the agent's hot path. Also text formats
//! for comparison. Reports MiB/s (Throughput::Bytes); never asserts timings.

use std::hint::black_box;

use chrono::Utc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use parse::{ParseConfig, Parser};

/// The allocator the `sluice` binary ships with: the parser allocates per record, so the
/// figure should count the allocator the pipeline really runs on.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Lines per batch: large enough that per-iteration overhead vanishes, small enough to stay in
/// cache like a real batch of a few hundred KB.
const BATCH_LINES: usize = 1000;

const PATHS: [&str; 5] = [
    "/api/chat",
    "/api/users/42",
    "/api/orders",
    "/healthz",
    "/api/search",
];
const METHODS: [&str; 4] = ["GET", "POST", "GET", "DELETE"];

/// 64 well-mixed bits from `x` (splitmix64's finalizer): request and trace ids are 128
/// random bits, as tracers and our workload generator write them. (Ids built from a small
/// counter started with sixteen zeros, a digit run no real id has, which sent every line
/// through the card-number check.)
fn mix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// uvicorn access logs through python-json-logger, as our workload generator writes them.
fn access_line(i: usize) -> String {
    let path = PATHS[i % PATHS.len()];
    let method = METHODS[i % METHODS.len()];
    let status = [200, 201, 404, 500, 200][i % 5];
    format!(
        r#"{{"asctime": "2026-12-04 10:{:02}:{:02},{:03}", "levelname": "INFO", "name": "uvicorn.access", "message": "10.42.{}.{}:{} - \"{method} {path} HTTP/1.1\" {status}", "client_addr": "10.42.{}.{}:{}", "method": "{method}", "path": "{path}", "status_code": {status}, "duration_ms": {}.{}, "request_id": "{:016x}{:016x}"}}"#,
        i % 60,
        (i * 7) % 60,
        i % 1000,
        i % 256,
        (i * 3) % 256,
        40000 + i % 20000,
        i % 256,
        (i * 3) % 256,
        40000 + i % 20000,
        i % 900,
        i % 10,
        mix64(2 * i as u64),
        mix64(2 * i as u64 + 1),
    )
}

/// structlog application events with extra keys.
fn app_line(i: usize) -> String {
    let level = ["info", "info", "warning", "error", "debug"][i % 5];
    format!(
        r#"{{"event": "chat completion finished", "level": "{level}", "timestamp": "2026-12-04T10:{:02}:{:02}.{:06}Z", "logger": "app.chat", "user_id": "user-{}", "model": "grok-4", "prompt_tokens": {}, "completion_tokens": {}, "duration": 0.{:04}, "trace_id": "{:016x}{:016x}", "cache_hit": {}}}"#,
        i % 60,
        (i * 7) % 60,
        i % 1_000_000,
        i % 5000,
        100 + i % 900,
        20 + i % 400,
        i % 10000,
        mix64(!(2 * i as u64)),
        mix64(!(2 * i as u64 + 1)),
        i.is_multiple_of(2),
    )
}

/// Builds the i-th line of a synthetic batch.
type LineMaker = fn(usize) -> String;

fn batch(make: LineMaker) -> (Vec<String>, u64) {
    let lines: Vec<String> = (0..BATCH_LINES).map(make).collect();
    let bytes = lines.iter().map(|l| l.len() as u64).sum();
    (lines, bytes)
}

fn bench(c: &mut Criterion) {
    let now = Utc::now();
    let mut group = c.benchmark_group("parse_line");
    let ingress = |i: usize| {
        format!(
            r#"10.42.{}.{} - - [04/Dec/2026:10:00:{:02} +0000] "GET /api/chat?session={} HTTP/1.1" 200 {} "-" "python-httpx/0.27.0" 312 0.{:03} [default-chat-8000] [] 10.42.1.{}:8000 {} 0.{:03} 200 {:032x}"#,
            i % 256,
            (i * 3) % 256,
            i % 60,
            i,
            500 + i % 3000,
            i % 1000,
            i % 256,
            500 + i % 3000,
            i % 1000,
            i as u128 * 7919
        )
    };
    let python = |i: usize| {
        format!(
            "2026-12-04 10:00:{:02},{:03} - app.chat - WARNING - upstream slow: model=grok-4 latency={}ms attempt={}",
            i % 60,
            i % 1000,
            100 + i % 5000,
            i % 3
        )
    };
    let cases: [(&str, LineMaker); 4] = [
        ("fastapi_uvicorn_json", access_line),
        ("fastapi_structlog_json", app_line),
        ("ingress_nginx", ingress),
        ("python_logging_text", python),
    ];
    for (name, make) in cases {
        let (lines, bytes) = batch(make);
        group.throughput(Throughput::Bytes(bytes));
        let mut parser = match Parser::try_new(&ParseConfig::default()) {
            Ok(p) => p,
            Err(e) => panic!("default config must build: {e}"),
        };
        group.bench_function(name, |b| {
            b.iter(|| {
                for l in &lines {
                    black_box(parser.parse_line(black_box(l.as_bytes()), now));
                }
            })
        });
        // The same work timed in this thread's CPU time rather than wall time: on a shared
        // machine wall time also counts the time other processes held the core, while the
        // target is per-core throughput. Falls back to wall time where the clock is unavailable.
        group.bench_function(format!("{name}/cpu_time"), |b| {
            b.iter_custom(|iters| {
                let wall = std::time::Instant::now();
                let start = thread_cpu_ns();
                for _ in 0..iters {
                    for l in &lines {
                        black_box(parser.parse_line(black_box(l.as_bytes()), now));
                    }
                }
                match (start, thread_cpu_ns()) {
                    (Some(s), Some(e)) => Duration::from_nanos(e.saturating_sub(s)),
                    _ => wall.elapsed(),
                }
            })
        });
    }
    group.finish();
}

/// Nanoseconds this thread has spent on a CPU, from `CLOCK_THREAD_CPUTIME_ID`. Not
/// `/proc/thread-self/schedstat`: for a running thread it only advances at scheduler ticks
/// (4 ms), longer than one 1 000-line batch, so short samples read as zero.
#[allow(unsafe_code)] // one libc call; std has no per-thread CPU clock
fn thread_cpu_ns() -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return None;
    }
    let secs = u64::try_from(ts.tv_sec).ok()?;
    let nanos = u64::try_from(ts.tv_nsec).ok()?;
    Some(secs * 1_000_000_000 + nanos)
}

criterion_group!(benches, bench);
criterion_main!(benches);
