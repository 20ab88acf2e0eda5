//! Shared body of the fuzz targets: run the input through one format's target (see
//! `parse::fuzzing`) or one wire reader's (see `schemas::fuzzing`) and panic, which libFuzzer
//! reports as a crash, when an invariant breaks.

use std::cell::RefCell;

use parse::fuzzing::{TARGETS, check, run};
use parse::{ParseConfig, Parser};

thread_local! {
    // One parser per fuzzing thread: building the redaction automaton per input would
    // dominate the run time.
    static PARSER: RefCell<Parser> = RefCell::new(
        Parser::try_new(&ParseConfig::default()).expect("the default config is valid"),
    );
}

/// Fuzzes the target named `name` with `data`.
///
/// # Panics
/// When the target does not exist or the event breaks an invariant (that is the finding).
pub fn fuzz(name: &str, data: &[u8]) {
    let target = TARGETS
        .iter()
        .find(|t| t.name == name)
        .expect("fuzz target names match parse::fuzzing::TARGETS");
    PARSER.with(|p| {
        let ev = run(&mut p.borrow_mut(), target, data);
        if let Err(e) = check(&ev) {
            panic!("{name}: {e}");
        }
    });
}

/// Fuzzes the wire reader target named `name` (`schemas::fuzzing::TARGETS`) with `data`.
///
/// # Panics
/// When the target does not exist or an invariant breaks (that is the finding).
pub fn fuzz_schemas(name: &str, data: &[u8]) {
    let target = schemas::fuzzing::TARGETS
        .iter()
        .find(|t| t.name == name)
        .expect("fuzz target names match schemas::fuzzing::TARGETS");
    if let Err(e) = (target.check)(data) {
        panic!("{name}: {e}");
    }
}
