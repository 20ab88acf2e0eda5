//! `sluice generate`: the built-in workload, written to disk.

use std::process::ExitCode;

use crate::cli::GenerateArgs;
use crate::generate::{GenerateConfig, IncidentSelection, generate};

/// Writes the workload and prints its report (JSON) on stdout.
///
/// # Errors
/// The output directory cannot be written.
pub fn run(args: &GenerateArgs) -> anyhow::Result<ExitCode> {
    let incidents: IncidentSelection = match args.incidents.parse() {
        Ok(selection) => selection,
        Err(err) => {
            eprintln!("error: invalid --incidents: {err}");
            return Ok(ExitCode::from(super::EXIT_BAD_CONFIG));
        }
    };
    if !(args.rate.is_finite() && args.rate > 0.0) {
        eprintln!("error: --rate must be a positive number of records per second");
        return Ok(ExitCode::from(super::EXIT_BAD_CONFIG));
    }
    let config = GenerateConfig {
        out: args.out.clone(),
        seed: args.seed,
        lines: args.lines,
        rate_per_s: args.rate,
        duration: args.duration,
        incidents,
        start: args.start,
        rotate_bytes: args.rotate_bytes,
    };
    let report = generate(&config)?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::SUCCESS)
}
