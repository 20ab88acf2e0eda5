//! Severity normalization: the words, abbreviations and numbers logging libraries use, mapped
//! to ECS `log.level` (trace|debug|info|warn|error|fatal).

use schemas::Level;

/// Longest level word we recognise (`informational`, `emergency`); longer tokens are not levels.
const MAX_LEVEL_WORD_BYTES: usize = 13;

/// Maps a level word, case-insensitively: `WARNING`, `wrn`, `Information`, `CRITICAL`,
/// `DEBUG5`, `err`, `fine`, ... Returns `None` for anything else.
pub(crate) fn from_word(word: &str) -> Option<Level> {
    let w = word.trim().as_bytes();
    if w.is_empty() || w.len() > MAX_LEVEL_WORD_BYTES {
        return None;
    }
    let mut buf = [0u8; MAX_LEVEL_WORD_BYTES];
    for (d, s) in buf.iter_mut().zip(w) {
        *d = s.to_ascii_lowercase();
    }
    let mut lower = &buf[..w.len()];
    // lnav-style `debug2`..`debug5` and syslog-ish `info1`: drop a trailing digit.
    if lower.len() > 3 && lower[lower.len() - 1].is_ascii_digit() {
        lower = &lower[..lower.len() - 1];
    }
    Some(match lower {
        b"trace" | b"trc" | b"finest" | b"finer" | b"verbose" | b"vrb" | b"all" => Level::Trace,
        b"debug" | b"dbg" | b"fine" | b"config" | b"dbug" => Level::Debug,
        b"info" | b"inf" | b"information" | b"informational" | b"notice" | b"ntc" => Level::Info,
        b"warn" | b"warning" | b"wrn" | b"wrng" => Level::Warn,
        b"error" | b"err" | b"eror" | b"erro" | b"severe" => Level::Error,
        b"fatal" | b"ftl" | b"critical" | b"crit" | b"crt" | b"panic" | b"pnc" | b"emerg"
        | b"emergency" | b"alert" | b"dpanic" => Level::Fatal,
        _ => return None,
    })
}

/// pino/bunyan numeric levels: 10 trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal.
/// Values below 10 are not on this scale and are left unmapped.
pub(crate) fn from_pino_number(n: f64) -> Option<Level> {
    if !n.is_finite() || n < 10.0 {
        return None;
    }
    Some(match n as u64 {
        10..=19 => Level::Trace,
        20..=29 => Level::Debug,
        30..=39 => Level::Info,
        40..=49 => Level::Warn,
        50..=59 => Level::Error,
        _ => Level::Fatal,
    })
}

/// OpenTelemetry `severityNumber` (1–24, four per level).
pub(crate) fn from_otel_number(n: f64) -> Option<Level> {
    if !n.is_finite() || !(1.0..=24.0).contains(&n) {
        return None;
    }
    Some(match n as u64 {
        1..=4 => Level::Trace,
        5..=8 => Level::Debug,
        9..=12 => Level::Info,
        13..=16 => Level::Warn,
        17..=20 => Level::Error,
        _ => Level::Fatal,
    })
}

/// Syslog severity (0 emergency .. 7 debug), from `<PRI>` or journald `PRIORITY`.
pub(crate) fn from_syslog_severity(sev: u8) -> Level {
    match sev {
        0..=2 => Level::Fatal,
        3 => Level::Error,
        4 => Level::Warn,
        5 | 6 => Level::Info,
        _ => Level::Debug,
    }
}

/// From an HTTP status: 5xx error, 4xx warn, else info (access logs print no level).
pub(crate) fn from_http_status(status: u16) -> Level {
    match status {
        500.. => Level::Error,
        400..=499 => Level::Warn,
        _ => Level::Info,
    }
}

/// How far into a plain line to look for a level word: levels sit in the prefix
/// (`2024-... [ERROR] ...`); a word deep in the message ("... no error found") is not one.
const PLAIN_LEVEL_SCAN_BYTES: usize = 80;

/// Finds a level word in the prefix of a plain-text line: an upper-case token such as `ERROR`,
/// `WARN`, `[info]`, `<E>`, `level=warn` bounded by non-letters. Lower-case words count only
/// inside brackets or after `level=`, so prose ("an error occurred") does not.
/// Returns the level and the byte range of the word.
pub(crate) fn find_in_prefix(line: &str) -> Option<(Level, std::ops::Range<usize>)> {
    let b = line.as_bytes();
    let end = floor_char_boundary(line, b.len().min(PLAIN_LEVEL_SCAN_BYTES));
    let b = &b[..end];
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_alphabetic() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_alphanumeric() {
            i += 1;
        }
        let word = &line[start..i];
        let before = start.checked_sub(1).map(|j| b[j]);
        let after = b.get(i).copied();
        let bracketed = matches!(before, Some(b'[' | b'<' | b'(' | b'|'))
            || matches!(after, Some(b']' | b'>' | b')' | b'|'));
        let after_key = start >= 6 && line[..start].to_ascii_lowercase().ends_with("level=");
        let upper = word
            .bytes()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        // Letter glued to the word on either side means it is part of a bigger token.
        let glued = before.is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.')
            || after.is_some_and(|c| {
                c == b'_' || c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_alphanumeric)
            });
        if !glued
            && (upper || bracketed || after_key)
            && word.len() >= 3
            && let Some(level) = from_word(word)
        {
            return Some((level, start..i));
        }
    }
    None
}

/// The largest char boundary at or below `i`.
pub(crate) fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        let cases = [
            ("WARNING", Some(Level::Warn)),
            ("Warn", Some(Level::Warn)),
            ("wrn", Some(Level::Warn)),
            ("Information", Some(Level::Info)),
            ("CRITICAL", Some(Level::Fatal)),
            ("DEBUG5", Some(Level::Debug)),
            ("ERR", Some(Level::Error)),
            ("severe", Some(Level::Error)),
            ("excellent", None),
            ("", None),
        ];
        for (w, want) in cases {
            assert_eq!(from_word(w), want, "{w}");
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(from_pino_number(30.0), Some(Level::Info));
        assert_eq!(from_pino_number(60.0), Some(Level::Fatal));
        assert_eq!(from_pino_number(3.0), None);
        assert_eq!(from_otel_number(9.0), Some(Level::Info));
        assert_eq!(from_otel_number(17.0), Some(Level::Error));
    }

    #[test]
    fn prefix_scan() {
        let cases = [
            (
                "2024-11-15 19:01:52,286 [main] WARN  o.e.r.Repo - High",
                Some(Level::Warn),
            ),
            (
                "[2024-11-15 20:30:14.077] [db_logger] [info] Request ok",
                Some(Level::Info),
            ),
            ("[15:47:42 WRN] High resource usage", Some(Level::Warn)),
            (
                "2:28PM ERR loggers/go/zerolog/main.go:72 > Operation failed",
                Some(Level::Error),
            ),
            ("an error occurred while reading", None),
            ("connected to errors.example.com", None),
            ("level=warn msg=x", Some(Level::Warn)),
        ];
        for (line, want) in cases {
            assert_eq!(find_in_prefix(line).map(|(l, _)| l), want, "{line}");
        }
    }
}
