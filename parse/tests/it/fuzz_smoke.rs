//! The stable-toolchain counterpart of the cargo-fuzz targets: deterministic mutations of
//! each target's seeds (byte flips, inserts of syntax bytes, deletions, duplications,
//! truncation, splicing) through the parser, a bounded number of times, checking the
//! invariants of `parse::fuzzing::check`. CI runs it in a few seconds; set
//! `SLUICE_FUZZ_ITERS` to run longer.

use parse::fuzzing::{TARGETS, check, run};

/// Mutations per seed by default: enough to cover every mutation kind many times while the
/// whole test stays under a few seconds in debug builds.
const DEFAULT_ITERS_PER_SEED: usize = 400;
/// Bytes that matter to the parsers, inserted more often than random ones.
const SYNTAX: &[u8] = b"{}[]\":=,\\ \n\r\t<>-/?&@.0123456789eE+";

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn mutate(rng: &mut Rng, data: &mut Vec<u8>, other: &[u8]) {
    for _ in 0..1 + rng.below(4) {
        let len = data.len();
        match rng.below(7) {
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            1 => {
                let b = if rng.below(2) == 0 {
                    SYNTAX[rng.below(SYNTAX.len())]
                } else {
                    rng.next() as u8
                };
                data.insert(rng.below(len + 1), b);
            }
            2 if len > 0 => {
                let i = rng.below(len);
                let n = rng.below((len - i).min(16) + 1);
                data.drain(i..i + n);
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let n = rng.below((len - i).min(32) + 1);
                let chunk: Vec<u8> = data[i..i + n].to_vec();
                let at = rng.below(data.len() + 1);
                data.splice(at..at, chunk);
            }
            4 => data.truncate(rng.below(len + 1)),
            5 if !other.is_empty() => {
                let i = rng.below(other.len());
                let at = rng.below(len + 1);
                data.splice(at..at, other[i..].iter().copied().take(24));
            }
            _ => {
                // Multi-byte UTF-8 and invalid bytes.
                let at = rng.below(len + 1);
                let ins: &[u8] = if rng.below(2) == 0 {
                    "é€😀".as_bytes()
                } else {
                    &[0xff, 0xc3]
                };
                data.splice(at..at, ins.iter().copied());
            }
        }
    }
}

#[test]
fn mutated_seeds_never_break_invariants() {
    let iters: usize = std::env::var("SLUICE_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_ITERS_PER_SEED);
    let mut parser = crate::parser();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut runs = 0usize;
    for target in TARGETS {
        for (si, seed) in target.seeds.iter().enumerate() {
            let other = target.seeds[(si + 1) % target.seeds.len()].as_bytes();
            // Each seed unmutated first, then mutations that build on each other.
            let mut data = seed.as_bytes().to_vec();
            let ev = run(&mut parser, target, &data);
            if let Err(e) = check(&ev) {
                panic!("{} seed {si}: {e}", target.name);
            }
            for i in 0..iters {
                if i % 50 == 0 {
                    data = seed.as_bytes().to_vec();
                }
                mutate(&mut rng, &mut data, other);
                let ev = run(&mut parser, target, &data);
                if let Err(e) = check(&ev) {
                    panic!(
                        "{} seed {si} iteration {i}: {e}\ninput: {:?}",
                        target.name,
                        String::from_utf8_lossy(&data)
                    );
                }
                runs += 1;
            }
        }
    }
    assert_eq!(
        parser.stats().records as usize,
        runs + TARGETS.iter().map(|t| t.seeds.len()).sum::<usize>()
    );
}

#[test]
fn seeds_reach_their_format() {
    let mut parser = crate::parser();
    let want = [
        ("json", "json"),
        ("logfmt", "logfmt"),
        ("access", "nginx_combined"),
        ("uvicorn", "uvicorn_access"),
        ("python", "python_logging"),
        ("klog", "klog"),
        ("syslog", "syslog_rfc5424"),
        ("plain", "plain"),
    ];
    for (name, format) in want {
        let target = TARGETS
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no target {name}"));
        let ev = run(&mut parser, target, target.seeds[0].as_bytes());
        assert_eq!(ev.sluice.format.as_deref(), Some(format), "{name}");
    }
}
