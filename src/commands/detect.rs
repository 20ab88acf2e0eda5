//! `sluice detect`: backtest rules over NDJSON events in event time.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use anyhow::Context;

use crate::cli::DetectArgs;

/// Runs every detector over the events and prints alert transitions (firing and resolved) as
/// NDJSON. Lines that are not events are reported on stderr with their line number and
/// counted; they do not stop the run.
///
/// # Errors
/// The rules file is invalid or the input unreadable.
pub fn run(args: &DetectArgs) -> anyhow::Result<ExitCode> {
    let config = match &args.rules {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("failed to read rules {}", path.display()))?;
            match detect::DetectConfig::from_toml_str(&text) {
                Ok(config) => config,
                Err(err) => {
                    eprintln!("error: invalid rules {}: {err}", path.display());
                    return Ok(ExitCode::from(super::EXIT_BAD_CONFIG));
                }
            }
        }
        None => detect::DetectConfig::default(),
    };
    let mut detector = detect::Detector::try_new(&config)?;
    let input = super::open_input(args.input.as_deref())?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut alerts = Vec::new();
    let mut bad_lines = 0u64;
    for (i, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let mut event: schemas::LogEvent = match serde_json::from_str(&line) {
            Ok(event) => event,
            Err(err) => {
                bad_lines += 1;
                if bad_lines <= 10 {
                    eprintln!("warning: line {}: not a LogEvent: {err}", i + 1);
                }
                continue;
            }
        };
        detector.process(&mut event, &mut alerts);
        for alert in alerts.drain(..) {
            serde_json::to_writer(&mut out, &alert)?;
            out.write_all(b"\n")?;
        }
    }
    detector.finish(&mut alerts);
    for alert in alerts.drain(..) {
        serde_json::to_writer(&mut out, &alert)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    if bad_lines > 0 {
        eprintln!("warning: {bad_lines} input lines were not events and were skipped");
    }
    Ok(ExitCode::SUCCESS)
}
