//! Small helpers shared by the commands.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;

/// Writes `bytes` to `path` atomically: temp file beside it, fsync, rename, fsync the dir.
///
/// # Errors
/// Any step fails; the previous content of `path` is then untouched.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .with_context(|| format!("{} has no parent directory", path.display()))?;
    std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let tmp = path.with_extension("tmp");
    {
        let mut file = std::fs::File::create(&tmp)
            .with_context(|| format!("failed to create {}", tmp.display()))?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)
        .with_context(|| format!("failed to rename {} into place", tmp.display()))?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// Parses a duration such as `90s`, `5m`, `2h`, `1d`, `250ms` or a bare number of seconds.
///
/// # Errors
/// The text is not a non-negative number with one of those units.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: expected e.g. 30s, 5m, 2h, 1d"))?;
    let secs = match unit.trim() {
        "" | "s" | "sec" | "secs" => value,
        "ms" => value / 1000.0,
        "m" | "min" | "mins" => value * 60.0,
        "h" | "hr" | "hours" => value * 3600.0,
        "d" | "days" => value * 86_400.0,
        other => return Err(format!("invalid duration unit {other:?} in {text:?}")),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("invalid duration {text:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses a point in time: RFC 3339 (`2026-12-04T10:00:00Z`), or a duration meaning "that
/// long ago" (`15m`, `2h`), or `now`.
///
/// # Errors
/// Neither form parses.
pub fn parse_time(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if text == "now" {
        return Ok(chrono::Utc::now());
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    let ago = parse_duration(text.trim_start_matches('-').trim_end_matches(" ago")).map_err(
        |_| format!("invalid time {text:?}: expected RFC 3339 (2026-12-04T10:00:00Z), `now`, or an age such as 15m or 2h"),
    )?;
    let ago = chrono::Duration::from_std(ago).map_err(|e| e.to_string())?;
    Ok(chrono::Utc::now() - ago)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn times_parse_absolute_and_relative() {
        let t = parse_time("2026-12-04T10:00:00Z").expect("rfc3339");
        assert_eq!(t.timestamp(), 1_796_378_400);
        let ago = parse_time("15m").expect("relative");
        let delta = chrono::Utc::now() - ago;
        assert!((delta.num_seconds() - 900).abs() <= 2);
        assert!(parse_time("yesterday-ish").is_err());
    }

    #[test]
    fn write_atomic_replaces_content() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("sub").join("state.json");
        write_atomic(&path, b"one")?;
        write_atomic(&path, b"two")?;
        assert_eq!(std::fs::read(&path)?, b"two");
        assert!(!path.with_extension("tmp").exists());
        Ok(())
    }
}
