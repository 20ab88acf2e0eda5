//! `LogEvent` JSON: writing with `serde_json::to_writer` against [`schemas::write_event_json`]
//! (the same bytes), reading with `serde_json::from_slice` against [`schemas::read_event_json`]
//! (the same events), on the index benches' realistic event mix (70% access lines with the raw
//! line in `event.original`, 25% app lines with `app.*` fields, 5% errors with a stack trace).
//! Reports MiB/s of JSON (Throughput::Bytes), in wall time and in this thread's CPU time;
//! never asserts timings.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use schemas::LogEvent;

// The generator of the index benches, shared rather than copied.
#[path = "../../index/benches/common/mod.rs"]
mod common;

/// The allocator the `sluice` binary ships with.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Events per iteration: a batch like the ones the pipeline serializes, small enough that
/// the events stay in cache.
const BATCH_EVENTS: usize = 1000;

fn bench(c: &mut Criterion) {
    let start = chrono::DateTime::parse_from_rfc3339("2026-12-04T10:00:00Z")
        .expect("a valid time")
        .to_utc();
    let mut generator = common::Generator::new(7, start, chrono::Duration::milliseconds(1));
    let events: Vec<LogEvent> = (0..BATCH_EVENTS).map(|_| generator.next_event()).collect();
    let jsons: Vec<Vec<u8>> = events
        .iter()
        .map(|e| serde_json::to_vec(e).expect("an event always serializes"))
        .collect();
    let bytes = jsons.iter().map(|j| j.len() as u64).sum();
    let mut group = c.benchmark_group("event_json");
    group.throughput(Throughput::Bytes(bytes));
    // Each event into one reused buffer, as the store and the processor write them.
    let mut out = Vec::with_capacity(64 * 1024);
    let mut write = |serde: bool| {
        for event in &events {
            out.clear();
            if serde {
                serde_json::to_writer(&mut out, black_box(event))
            } else {
                schemas::write_event_json(black_box(event), &mut out)
            }
            .expect("an event always serializes");
            black_box(out.as_slice());
        }
    };
    bench_both(&mut group, "write/serde_json", || write(true));
    bench_both(&mut group, "write/writer", || write(false));
    let read = |serde: bool| {
        for json in &jsons {
            let event = if serde {
                serde_json::from_slice::<LogEvent>(black_box(json))
            } else {
                schemas::read_event_json(black_box(json))
            };
            black_box(event.expect("what serde wrote reads back"));
        }
    };
    bench_both(&mut group, "read/serde_json", || read(true));
    bench_both(&mut group, "read/reader", || read(false));
    group.finish();
}

/// Benches `batch` in wall time and, as `<name>/cpu_time`, in this thread's CPU time: on a
/// shared machine wall time also counts the time the neighbours held the core. Falls back to
/// wall time without the clock.
fn bench_both(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    mut batch: impl FnMut(),
) {
    group.bench_function(name, |b| b.iter(&mut batch));
    group.bench_function(format!("{name}/cpu_time"), |b| {
        b.iter_custom(|iters| {
            let wall = Instant::now();
            let before = thread_cpu();
            for _ in 0..iters {
                batch();
            }
            match (before, thread_cpu()) {
                (Some(before), Some(after)) => after.saturating_sub(before),
                _ => wall.elapsed(),
            }
        })
    });
}

/// CPU time of this thread, from `CLOCK_THREAD_CPUTIME_ID` (`getrusage` and
/// `/proc/thread-self/schedstat` only advance at scheduler ticks, longer than one batch).
#[allow(unsafe_code)] // one libc call; std has no per-thread CPU clock
fn thread_cpu() -> Option<Duration> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec for the duration of the call.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) } != 0 {
        return None;
    }
    Some(Duration::new(
        u64::try_from(now.tv_sec).ok()?,
        u32::try_from(now.tv_nsec).ok()?,
    ))
}

criterion_group!(benches, bench);
criterion_main!(benches);
