//! `sluice search`: query an embedded index from the command line.

use std::io::Write;
use std::process::ExitCode;

use crate::cli::SearchArgs;

/// Prints matching events as NDJSON, newest first, or their count.
///
/// # Errors
/// The index cannot be opened or the query does not parse.
pub fn run(args: &SearchArgs) -> anyhow::Result<ExitCode> {
    if !args.data_dir.join("index").exists() {
        eprintln!(
            "error: no index under {} (is --data-dir the directory given to `sluice run`?)",
            args.data_dir.display()
        );
        return Ok(ExitCode::from(super::EXIT_BAD_CONFIG));
    }
    let searcher = index::Searcher::open(&args.data_dir, args.retention_days)?;
    let request = index::SearchRequest {
        query: args.query.clone().unwrap_or_default(),
        from: args.from,
        to: args.to,
        limit: args.limit,
        ..Default::default()
    };
    if args.count {
        println!("{}", searcher.count(&request)?);
        return Ok(ExitCode::SUCCESS);
    }
    let response = searcher.search(&request)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for event in &response.events {
        serde_json::to_writer(&mut out, event)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
