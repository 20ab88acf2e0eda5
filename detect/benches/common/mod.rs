//! Helpers shared by the detect benches: a fixed-seed generator for synthetic workloads and
//! thread CPU time, because the bench machine is shared and wall clock understates one core.

#![allow(dead_code)] // each bench uses a different subset

/// xorshift64: fixed seeds give the same workload on every run and platform.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// CPU time this thread has used, from `/proc/thread-self/schedstat` (Linux only).
pub fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Run `f` (which handles `items` items) `rounds` times and print items per CPU second.
pub fn report_cpu_throughput(label: &str, items: usize, rounds: usize, mut f: impl FnMut()) {
    let Some(start) = thread_cpu_ns() else {
        eprintln!("{label}: no /proc/thread-self/schedstat, CPU-time throughput not measured");
        return;
    };
    for _ in 0..rounds {
        f();
    }
    let Some(end) = thread_cpu_ns() else { return };
    let secs = (end - start) as f64 / 1e9;
    eprintln!(
        "{label}: {:.2} M items per CPU-second ({} items x {rounds} rounds in {secs:.3} s CPU)",
        (items * rounds) as f64 / secs / 1e6,
        items
    );
}
