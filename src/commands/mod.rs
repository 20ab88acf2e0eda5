//! One module per subcommand. Each returns the process exit code; errors are printed by
//! [`crate::cli::main`].

pub mod config;
pub mod demo;
pub mod detect;
pub mod es;
pub mod generate;
pub mod parse;
pub mod patterns;
pub mod run;
pub mod search;

use std::io::{BufRead, BufReader};
use std::path::Path;

use anyhow::Context;

/// Exit code for bad configuration or arguments, as `sysexits.h`'s EX_CONFIG would be too
/// obscure: 2 is what clap uses for usage errors.
pub const EXIT_BAD_CONFIG: u8 = 2;

/// Opens `path` for line reading, or standard input for `None` or `-`.
///
/// # Errors
/// The file cannot be opened.
pub fn open_input(path: Option<&Path>) -> anyhow::Result<Box<dyn BufRead>> {
    match path {
        None => Ok(Box::new(BufReader::new(std::io::stdin()))),
        Some(p) if p.as_os_str() == "-" => Ok(Box::new(BufReader::new(std::io::stdin()))),
        Some(p) => {
            let file = std::fs::File::open(p)
                .with_context(|| format!("failed to open input {}", p.display()))?;
            Ok(Box::new(BufReader::new(file)))
        }
    }
}

/// A multi-threaded tokio runtime sized for this machine's background work (API, alert
/// delivery); CPU-heavy stages run on their own threads.
///
/// # Errors
/// The runtime cannot start.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("sluice-rt")
        .enable_all()
        .build()
        .context("failed to start the async runtime")
}
