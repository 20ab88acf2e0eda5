//! Prints the event each stdin line becomes, as one JSON document per line — what
//! `sluice parse` will show — for eyeballing mappings: `cargo run -p parse --example show < app.log`.

use std::io::{BufRead, Write};

use parse::{ParseConfig, Parser};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut parser = Parser::try_new(&ParseConfig::default())?;
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    for line in stdin.lock().split(b'\n') {
        let ev = parser.parse_line(&line?, chrono::Utc::now());
        serde_json::to_writer(&mut out, &ev)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}
