//! Durations to ECS `event.duration` nanoseconds, honouring the units applications use.
//!
//! Heuristics, in order:
//! 1. A unit in the key wins: `*_ms`/`*Ms`/`*_millis` → ms, `*_us`/`*_micros` → µs,
//!    `*_ns`/`*_nanos` → ns, `*_s`/`*_sec`/`*_seconds` → s. ECS `event.duration` is ns.
//! 2. A string with a unit is a Go-style duration: `"12.3ms"`, `"1.2s"`, `"250µs"`,
//!    `"1m30s"`, `"850ns"`. A bare numeric string is treated like a number (rule 4).
//! 3. Keys with a known convention: nginx `request_time` / `upstream_response_time` are
//!    seconds; Traefik's capitalised `Duration` / `OriginDuration` are nanoseconds.
//! 4. Otherwise (`duration`, `latency`, `elapsed`, `took`, `response_time`, ...): a number
//!    with a fraction is seconds (uvicorn/structlog/gunicorn print `0.0123`), an integer is
//!    milliseconds (pino `responseTime`, bunyan, most JS/Java loggers).

/// Which unit the key says the value is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DurUnit {
    Nanos,
    Micros,
    Millis,
    Seconds,
    /// No unit in the key: decide from the value (module docs, rule 4).
    Guess,
}

impl DurUnit {
    fn nanos_per(self) -> f64 {
        match self {
            DurUnit::Nanos => 1.0,
            DurUnit::Micros => 1e3,
            DurUnit::Millis => 1e6,
            DurUnit::Seconds | DurUnit::Guess => 1e9,
        }
    }
}

fn to_nanos(v: f64, per: f64) -> Option<i64> {
    let ns = v * per;
    if !ns.is_finite() || ns < 0.0 || ns >= i64::MAX as f64 {
        return None;
    }
    Some(ns.round() as i64)
}

/// A numeric duration under a key with the given unit hint; `is_float` says whether the
/// source had a fraction (rule 4).
pub(crate) fn from_number(v: f64, unit: DurUnit, is_float: bool) -> Option<i64> {
    match unit {
        DurUnit::Guess if is_float => to_nanos(v, 1e9),
        DurUnit::Guess => to_nanos(v, 1e6),
        u => to_nanos(v, u.nanos_per()),
    }
}

/// A string duration: Go-style with units, else a bare number handled like [`from_number`].
pub(crate) fn from_str(s: &str, unit: DurUnit) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
        let v: f64 = s.parse().ok()?;
        return from_number(v, unit, s.contains('.'));
    }
    parse_go_duration(s)
}

/// `1h2m3.5s`, `12.3ms`, `250µs`, `250us`, `850ns`; one or more number+unit parts.
pub(crate) fn parse_go_duration(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut total = 0f64;
    let mut parts = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
            i += 1;
        }
        if i == start {
            return None;
        }
        let v: f64 = s[start..i].parse().ok()?;
        let unit_start = i;
        while i < b.len() && !(b[i].is_ascii_digit() || b[i] == b'.') {
            i += 1;
        }
        let per = match s[unit_start..i].trim() {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" | "sec" | "secs" => 1e9,
            "m" | "min" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += v * per;
        parts += 1;
    }
    if parts == 0 {
        return None;
    }
    to_nanos(total, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(from_number(12.0, DurUnit::Millis, false), Some(12_000_000));
        assert_eq!(from_number(0.0123, DurUnit::Guess, true), Some(12_300_000));
        assert_eq!(from_number(263.0, DurUnit::Guess, false), Some(263_000_000));
        assert_eq!(from_number(1234.0, DurUnit::Nanos, false), Some(1234));
        assert_eq!(from_str("12.3ms", DurUnit::Guess), Some(12_300_000));
        assert_eq!(from_str("1.2s", DurUnit::Guess), Some(1_200_000_000));
        assert_eq!(from_str("1m30s", DurUnit::Guess), Some(90_000_000_000));
        assert_eq!(from_str("250µs", DurUnit::Guess), Some(250_000));
        assert_eq!(from_str("0.005", DurUnit::Seconds), Some(5_000_000));
        assert_eq!(from_str("15d", DurUnit::Guess), None);
        assert_eq!(from_str("fast", DurUnit::Guess), None);
        assert_eq!(from_number(-1.0, DurUnit::Millis, false), None);
    }
}
