//! The stable-toolchain counterpart of the cargo-fuzz targets `raw_record_json` and
//! `event_json`: deterministic mutations of each target's seeds through the same checks
//! (`schemas::fuzzing`), a bounded number of times. CI runs it in about a second; set
//! `SLUICE_FUZZ_ITERS` (mutations per seed) to run longer.

use std::path::PathBuf;

use schemas::fuzzing::{Mutator, TARGETS};

/// Mutations per seed by default: every mutation kind many times over on each seed, the
/// whole test a second or two in a debug build.
const DEFAULT_ITERS_PER_SEED: usize = 2000;
/// Mutations build on each other for this many steps, then start again from the seed: deep
/// enough to stack several changes, close enough to the layout to reach the fast paths.
const RESTART_EVERY: usize = 4;

#[test]
fn mutated_seeds_keep_readers_equal_to_serde() {
    let iters: usize = std::env::var("SLUICE_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_ITERS_PER_SEED);
    let mut mutator = Mutator::new(0x9e37_79b9_7f4a_7c15);
    let (mut runs, mut read) = (0usize, 0usize);
    for target in TARGETS {
        let seeds = (target.seeds)();
        for (si, (name, seed)) in seeds.iter().enumerate() {
            let other = &seeds[(si + 1) % seeds.len()].1;
            let mut data = seed.clone();
            for i in 0..iters {
                if i % RESTART_EVERY == 0 {
                    data.clone_from(seed);
                }
                mutator.mutate(&mut data, other);
                match (target.check)(&data) {
                    Ok(value) => read += usize::from(value),
                    Err(e) => panic!(
                        "{} seed {name} iteration {i}: {e}\ninput: {:?}",
                        target.name,
                        String::from_utf8_lossy(&data)
                    ),
                }
                runs += 1;
            }
        }
    }
    assert_eq!(
        runs,
        iters * TARGETS.iter().map(|t| (t.seeds)().len()).sum::<usize>()
    );
    // Both sides of the readers are reached: values (then written and read back) and errors.
    assert!(
        read * 10 > runs,
        "only {read} of {runs} mutations read as a value"
    );
    assert!(
        read * 10 < runs * 9,
        "{read} of {runs} mutations read as a value"
    );
    eprintln!("fuzz_smoke: {runs} mutations, {read} read as a value");
}

/// Every file of the checked-in seeds, and of `$SLUICE_FUZZ_CORPUS/<target>/` when set (a
/// libFuzzer corpus or crash files, replayed on the stable toolchain, e.g. under coverage).
#[test]
fn corpus_files_pass_the_checks() -> Result<(), Box<dyn std::error::Error>> {
    let corpus = std::env::var_os("SLUICE_FUZZ_CORPUS").map(PathBuf::from);
    let mut files = 0usize;
    for target in TARGETS {
        let mut dirs = vec![seed_dir(target.name)];
        dirs.extend(corpus.iter().map(|c| c.join(target.name)));
        for dir in dirs {
            for entry in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
                let path = entry?.path();
                if let Err(e) = (target.check)(&std::fs::read(&path)?) {
                    panic!("{} {}: {e}", target.name, path.display());
                }
                files += 1;
            }
        }
    }
    assert!(files >= TARGETS.len(), "no seed files found");
    Ok(())
}

fn seed_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/seeds")
        .join(target)
}

/// The seed corpora checked in under `fuzz/seeds/` are what the writers write today. Run
/// with `SLUICE_UPDATE_FUZZ_SEEDS=1` to rewrite them after a change of the seeds or layout.
#[test]
fn checked_in_fuzz_seeds_are_the_writers_output() -> Result<(), Box<dyn std::error::Error>> {
    let update = std::env::var_os("SLUICE_UPDATE_FUZZ_SEEDS").is_some();
    for target in TARGETS {
        let dir = seed_dir(target.name);
        for (name, seed) in (target.seeds)() {
            let path = dir.join(format!("{name}.json"));
            if update {
                std::fs::create_dir_all(&dir)?;
                std::fs::write(&path, &seed)?;
                continue;
            }
            let on_disk = std::fs::read(&path).map_err(|e| {
                format!(
                    "{}: {e} (run with SLUICE_UPDATE_FUZZ_SEEDS=1)",
                    path.display()
                )
            })?;
            assert!(
                on_disk == seed,
                "{} drifted from the writer; run `SLUICE_UPDATE_FUZZ_SEEDS=1 cargo test -p \
                 schemas --test schemas fuzz`",
                path.display()
            );
        }
    }
    Ok(())
}
