//! Parses every line of a file `passes` times and prints throughput, for profiling with
//! `perf stat` / `perf record` on real logs:
//!
//! ```sh
//! cargo run --release -p parse --example parse_file -- app.log 20 [no-redaction|no-cards]
//! ```

use std::time::Instant;

use parse::{ParseConfig, Parser};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: parse_file FILE [PASSES]")?;
    let passes: usize = args.next().map_or(Ok(1), |p| p.parse())?;
    let data = std::fs::read(&path)?;
    let lines: Vec<&[u8]> = data
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let bytes: usize = lines.iter().map(|l| l.len()).sum();
    // Optional third argument to see what redaction costs: `no-redaction` or `no-cards`.
    let mut config = ParseConfig::default();
    match args.next().as_deref() {
        Some("no-redaction") => config.redaction.enabled = false,
        Some("no-cards") => config.redaction.card_numbers = false,
        _ => {}
    }
    let mut parser = Parser::try_new(&config)?;
    let now = chrono::Utc::now();
    let start = Instant::now();
    let mut checksum = 0usize;
    for _ in 0..passes {
        for l in &lines {
            checksum += parser.parse_line(l, now).message.len();
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let total = (bytes * passes) as f64;
    println!(
        "{} lines x {passes} passes, {:.1} MiB in {secs:.3}s wall = {:.1} MiB/s, {:.0} ns/line (checksum {checksum})",
        lines.len(),
        total / 1048576.0,
        total / 1048576.0 / secs,
        secs * 1e9 / (lines.len() * passes) as f64
    );
    let mut metrics = String::new();
    parser.stats().render_prometheus(&mut metrics);
    for line in metrics
        .lines()
        .filter(|l| !l.starts_with('#') && !l.ends_with(" 0"))
    {
        println!("{line}");
    }
    Ok(())
}
