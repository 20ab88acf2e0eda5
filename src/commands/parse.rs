//! `sluice parse`: what Sluice makes of your log lines, one NDJSON event per record.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use crate::cli::ParseArgs;
use crate::config::SluiceConfig;

/// Reads lines (raw application output, or CRI / docker json-file runtime lines, detected per
/// line), joins runtime partial lines per stream, and prints one event per record.
///
/// # Errors
/// The input cannot be read or stdout cannot be written.
pub fn run(args: &ParseArgs) -> anyhow::Result<ExitCode> {
    let parse_config = match &args.config {
        Some(path) => SluiceConfig::load(path)?.parse,
        None => parse::ParseConfig::default(),
    };
    let mut parser = parse::Parser::try_new(&parse_config)?;
    let mut input = super::open_input(args.input.as_deref())?;
    let source_name = args
        .input
        .as_ref()
        .map_or_else(|| "<stdin>".to_string(), |p| p.display().to_string());
    let file_id = xxhash_rust::xxh3::xxh3_64(source_name.as_bytes());
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut joiner = PartialJoiner::default();
    let mut line = Vec::new();
    let mut offset = 0u64;
    loop {
        line.clear();
        let n = input.read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        let start = offset;
        offset += n as u64;
        let trimmed = trim_eol(&line);
        let decoded = ingest::decode_line(trimmed);
        let record = joiner.push(decoded, &source_name, file_id, start, offset);
        if let Some(record) = record {
            let event = parser.parse_record(&record);
            serde_json::to_writer(&mut out, &event)?;
            out.write_all(b"\n")?;
        }
    }
    for record in joiner.finish() {
        let event = parser.parse_record(&record);
        serde_json::to_writer(&mut out, &event)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Joins runtime partial lines (CRI `P`, docker splits) per stream until the final segment.
#[derive(Default)]
struct PartialJoiner {
    open: Vec<(Option<schemas::Stream>, schemas::RawRecord)>,
}

impl PartialJoiner {
    fn push(
        &mut self,
        decoded: ingest::DecodedLine,
        path: &str,
        file_id: u64,
        start: u64,
        end: u64,
    ) -> Option<schemas::RawRecord> {
        let stream = decoded.stream;
        let message = String::from_utf8_lossy(&decoded.message).into_owned();
        let slot = self.open.iter().position(|(s, _)| *s == stream);
        let mut record = match slot {
            Some(i) => {
                let (_, mut record) = self.open.swap_remove(i);
                record.message.push_str(&message);
                record.source.end_offset = end;
                record.lines += 1;
                record
            }
            None => {
                let source = schemas::SourceRef {
                    path: path.to_string(),
                    file_id,
                    offset: start,
                    end_offset: end,
                };
                let mut record = schemas::RawRecord::new(message, source);
                record.time = decoded.time;
                record.stream = stream;
                record
            }
        };
        if let Some(code) = decoded.error {
            record.errors.push(code.to_string());
        }
        if decoded.partial {
            self.open.push((stream, record));
            None
        } else {
            Some(record)
        }
    }

    fn finish(self) -> Vec<schemas::RawRecord> {
        self.open
            .into_iter()
            .map(|(_, mut record)| {
                record.errors.push("partial_unterminated".into());
                record
            })
            .collect()
    }
}
