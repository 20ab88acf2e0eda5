//! `sluice config check` and `sluice config default`.

use std::path::Path;
use std::process::ExitCode;

use crate::config::SluiceConfig;

/// Validates a configuration file: prints `ok` or every problem with its field path.
///
/// # Errors
/// Never for a bad config (that is exit code 2); only if printing fails.
pub fn check(file: &Path) -> anyhow::Result<ExitCode> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(err) => {
            eprintln!("{}: cannot read: {err}", file.display());
            return Ok(ExitCode::from(super::EXIT_BAD_CONFIG));
        }
    };
    let mut config = match SluiceConfig::from_toml_str(&text) {
        Ok(config) => config,
        Err(problem) => {
            eprintln!("{}: {problem}", file.display());
            return Ok(ExitCode::from(super::EXIT_BAD_CONFIG));
        }
    };
    config.resolve_paths();
    let problems = config.validate();
    if problems.is_empty() {
        println!("{}: ok", file.display());
        return Ok(ExitCode::SUCCESS);
    }
    for problem in &problems {
        eprintln!("{}: {problem}", file.display());
    }
    Ok(ExitCode::from(super::EXIT_BAD_CONFIG))
}

/// Prints the built-in defaults as a starting point for a config file.
///
/// # Errors
/// Serialization fails (a bug).
pub fn print_default() -> anyhow::Result<ExitCode> {
    let text = toml::to_string_pretty(&SluiceConfig::default())?;
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}
