//! `sluice patterns`: mine log templates from lines.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use crate::cli::PatternsArgs;

/// With `--assign`, prints `{"pattern_id":..,"template":..}` per input line in order;
/// otherwise the templates with their counts, most frequent first. A line that is a JSON
/// object with a `message` string contributes that message.
///
/// # Errors
/// The input is unreadable.
pub fn run(args: &PatternsArgs) -> anyhow::Result<ExitCode> {
    let mut miner = detect::patterns::PatternMiner::try_new(&Default::default())?;
    let input = super::open_input(args.input.as_deref())?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for line in input.lines() {
        let line = line?;
        let text = message_of(&line);
        let m = miner.assign(&text);
        if args.assign {
            serde_json::to_writer(
                &mut out,
                &serde_json::json!({"pattern_id": m.id, "template": m.template}),
            )?;
            out.write_all(b"\n")?;
        }
    }
    if !args.assign {
        let mut templates: Vec<(&str, &str, u64)> = miner.templates().collect();
        templates.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(b.0)));
        for (id, template, count) in templates {
            serde_json::to_writer(
                &mut out,
                &serde_json::json!({"pattern_id": id, "template": template, "count": count}),
            )?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn message_of(line: &str) -> std::borrow::Cow<'_, str> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.starts_with('{')
        && let Ok(serde_json::Value::Object(map)) = serde_json::from_str(line)
        && let Some(serde_json::Value::String(msg)) = map.get("message")
    {
        return std::borrow::Cow::Owned(msg.clone());
    }
    std::borrow::Cow::Borrowed(line)
}
