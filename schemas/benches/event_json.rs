//! Writing `LogEvent` JSON: `serde_json::to_writer` against [`schemas::write_event_json`] (the
//! same bytes) on the index benches' realistic event mix (70% access lines with the raw line in
//! `event.original`, 25% app lines with `app.*` fields, 5% errors with a stack trace). Reports
//! MiB/s of JSON written (Throughput::Bytes), in wall time and in this thread's CPU time;
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

type Write = fn(&LogEvent, &mut Vec<u8>);

fn with_serde(event: &LogEvent, out: &mut Vec<u8>) {
    serde_json::to_writer(out, event).expect("an event always serializes");
}

fn with_writer(event: &LogEvent, out: &mut Vec<u8>) {
    schemas::write_event_json(event, out).expect("an event always serializes");
}

/// Writes every event into one reused buffer, as the store and the processor do.
fn write_all(events: &[LogEvent], out: &mut Vec<u8>, write: Write) {
    for event in events {
        out.clear();
        write(black_box(event), out);
        black_box(out.as_slice());
    }
}

fn bench(c: &mut Criterion) {
    let start = chrono::DateTime::parse_from_rfc3339("2026-12-04T10:00:00Z")
        .expect("a valid time")
        .to_utc();
    let mut generator = common::Generator::new(7, start, chrono::Duration::milliseconds(1));
    let events: Vec<LogEvent> = (0..BATCH_EVENTS).map(|_| generator.next_event()).collect();
    let bytes: usize = events
        .iter()
        .map(|e| serde_json::to_vec(e).map_or(0, |v| v.len()))
        .sum();
    let mut group = c.benchmark_group("event_json");
    group.throughput(Throughput::Bytes(bytes as u64));
    let cases: [(&str, Write); 2] = [("serde_json", with_serde), ("writer", with_writer)];
    for (name, write) in cases {
        let mut out = Vec::with_capacity(64 * 1024);
        group.bench_function(name, |b| b.iter(|| write_all(&events, &mut out, write)));
        // The same work in this thread's CPU time: on a shared machine wall time also counts
        // the time the neighbours held the core. Falls back to wall time without the clock.
        group.bench_function(format!("{name}/cpu_time"), |b| {
            b.iter_custom(|iters| {
                let wall = Instant::now();
                let before = thread_cpu();
                for _ in 0..iters {
                    write_all(&events, &mut out, write);
                }
                match (before, thread_cpu()) {
                    (Some(before), Some(after)) => after.saturating_sub(before),
                    _ => wall.elapsed(),
                }
            })
        });
    }
    group.finish();
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
