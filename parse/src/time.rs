//! Timestamp reading: RFC 3339 and its common relatives, access-log and syslog dates, and
//! epoch numbers in s/ms/µs/ns. Hand-written for the common shapes (this runs once per
//! record), with chrono doing the calendar arithmetic.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeZone, Utc};

/// Epoch values below this are seconds: 1e11 s is the year 5138, so no real seconds value
/// reaches it, while every millisecond value after 1973 does.
const EPOCH_SECONDS_BELOW: f64 = 1e11;
/// Epoch values below this (and at least [`EPOCH_SECONDS_BELOW`]) are milliseconds.
const EPOCH_MILLIS_BELOW: f64 = 1e14;
/// Epoch values below this are microseconds; anything larger is nanoseconds.
const EPOCH_MICROS_BELOW: f64 = 1e17;

/// Reads an epoch number whose unit is guessed from its magnitude (s, ms, µs or ns).
pub(crate) fn from_epoch_f64(v: f64) -> Option<DateTime<Utc>> {
    if !v.is_finite() || v <= 0.0 {
        return None;
    }
    let nanos = if v < EPOCH_SECONDS_BELOW {
        v * 1e9
    } else if v < EPOCH_MILLIS_BELOW {
        v * 1e6
    } else if v < EPOCH_MICROS_BELOW {
        v * 1e3
    } else {
        v
    };
    if nanos >= i64::MAX as f64 {
        return None;
    }
    Some(Utc.timestamp_nanos(nanos as i64))
}

/// Like [`from_epoch_f64`] but exact for integers.
pub(crate) fn from_epoch_i64(v: i64) -> Option<DateTime<Utc>> {
    if v <= 0 {
        return None;
    }
    let vf = v as f64;
    let nanos = if vf < EPOCH_SECONDS_BELOW {
        v.checked_mul(1_000_000_000)?
    } else if vf < EPOCH_MILLIS_BELOW {
        v.checked_mul(1_000_000)?
    } else if vf < EPOCH_MICROS_BELOW {
        v.checked_mul(1_000)?
    } else {
        v
    };
    Some(Utc.timestamp_nanos(nanos))
}

/// Parses a timestamp string in any of the shapes applications print:
/// RFC 3339 / ISO 8601 (`T` or space, `.` or `,` fractions, `Z`, `+09:00`, `+0900`, or no
/// zone = UTC), `2024/11/12 15:19:06`, access-log `07/Feb/2020:11:48:51 +0000`, RFC 2822,
/// and epoch numbers as strings.
pub(crate) fn parse_str(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.is_empty() {
        return None;
    }
    if b[0].is_ascii_digit() {
        if b.len() >= 10 && (b[4] == b'-' || b[4] == b'/') {
            return parse_iso(b).map(|(t, _)| t);
        }
        if b.len() >= 20 && b[2] == b'/' {
            return parse_clf(b).map(|(t, _)| t);
        }
        if b.iter().all(|c| c.is_ascii_digit()) && b.len() <= 19 {
            return s.parse::<i64>().ok().and_then(from_epoch_i64);
        }
        if b.iter().all(|c| c.is_ascii_digit() || *c == b'.') {
            return s.parse::<f64>().ok().and_then(from_epoch_f64);
        }
        return None;
    }
    DateTime::parse_from_rfc2822(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let part = b.get(at..at + n)?;
    let mut v = 0u32;
    for c in part {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

/// Parses an ISO-like timestamp at the start of `b`; returns it and how many bytes it used.
/// Date `YYYY-MM-DD` (or `/`), then `T`/space and `HH:MM[:SS][.frac|,frac]`, then an optional
/// zone (`Z`, `±HH:MM`, `±HHMM`, `±HH`, ` UTC`). A date alone is midnight UTC.
pub(crate) fn parse_iso(b: &[u8]) -> Option<(DateTime<Utc>, usize)> {
    let year = digits(b, 0, 4)?;
    let sep = *b.get(4)?;
    if (sep != b'-' && sep != b'/') || *b.get(7)? != sep {
        return None;
    }
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    let mut i = 10;
    let (mut hour, mut min, mut sec, mut nanos) = (0, 0, 0, 0u32);
    if matches!(b.get(i), Some(b'T' | b't' | b' ' | b'_'))
        && b.get(i + 1).is_some_and(u8::is_ascii_digit)
    {
        hour = digits(b, i + 1, 2)?;
        if *b.get(i + 3)? != b':' {
            return None;
        }
        min = digits(b, i + 4, 2)?;
        i += 6;
        if b.get(i) == Some(&b':') {
            sec = digits(b, i + 1, 2)?;
            i += 3;
            if matches!(b.get(i), Some(b'.' | b',')) && b.get(i + 1).is_some_and(u8::is_ascii_digit)
            {
                i += 1;
                let mut scale = 100_000_000u32;
                while let Some(c) = b.get(i).filter(|c| c.is_ascii_digit()) {
                    nanos += u32::from(c - b'0') * scale;
                    scale /= 10;
                    i += 1;
                }
            }
        }
    }
    // A leap second (60) is clamped: chrono represents it only inside nanos.
    let naive = date.and_hms_nano_opt(hour, min, sec.min(59), nanos)?;
    // gunicorn and some Java layouts put a space before the offset: `10:00:00 +0000`.
    let spaced_offset = b.get(i) == Some(&b' ')
        && matches!(b.get(i + 1), Some(b'+' | b'-'))
        && digits(b, i + 2, 2).is_some();
    let (offset_secs, used) = if spaced_offset {
        let (o, u) = parse_zone(&b[i + 1..]);
        (o, u + 1)
    } else {
        parse_zone(&b[i..])
    };
    let utc = Utc.from_utc_datetime(&naive);
    // Most records are in UTC already; the checked subtraction of a zero offset showed in
    // profiles (~1% of the parser's time on JSON records).
    let t = if offset_secs == 0 {
        utc
    } else {
        utc - chrono::Duration::seconds(i64::from(offset_secs))
    };
    Some((t, i + used))
}

/// Reads a zone suffix; returns (offset east of UTC in seconds, bytes used).
fn parse_zone(b: &[u8]) -> (i32, usize) {
    match b.first() {
        Some(b'Z' | b'z') => (0, 1),
        Some(c @ (b'+' | b'-')) => {
            let sign = if *c == b'-' { -1 } else { 1 };
            let Some(hh) = digits(b, 1, 2) else {
                return (0, 0);
            };
            let (mm, used) = if b.get(3) == Some(&b':') {
                (digits(b, 4, 2).unwrap_or(0), 6)
            } else if let Some(mm) = digits(b, 3, 2) {
                (mm, 5)
            } else {
                (0, 3)
            };
            if hh > 23 || mm > 59 {
                return (0, 0);
            }
            (sign * (hh as i32 * 3600 + mm as i32 * 60), used)
        }
        Some(b' ') if b.get(1..4) == Some(b"UTC") => (0, 4),
        _ => (0, 0),
    }
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

fn month_abbrev(b: &[u8]) -> Option<u32> {
    let m = b.get(..3)?;
    MONTHS
        .iter()
        .position(|x| x.eq_ignore_ascii_case(m))
        .map(|i| i as u32 + 1)
}

/// Parses the access-log date `07/Feb/2020:11:48:51 +0000` at the start of `b`.
pub(crate) fn parse_clf(b: &[u8]) -> Option<(DateTime<Utc>, usize)> {
    let day = digits(b, 0, 2)?;
    if *b.get(2)? != b'/' || *b.get(6)? != b'/' || *b.get(11)? != b':' {
        return None;
    }
    let month = month_abbrev(&b[3..])?;
    let year = digits(b, 7, 4)?;
    let hour = digits(b, 12, 2)?;
    let min = digits(b, 15, 2)?;
    let sec = digits(b, 18, 2)?;
    let naive = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?.and_hms_opt(
        hour,
        min,
        sec.min(59),
    )?;
    let mut used = 20;
    let mut offset = 0;
    if b.get(20) == Some(&b' ') {
        let (o, u) = parse_zone(&b[21..]);
        if u > 0 {
            offset = o;
            used = 21 + u;
        }
    }
    Some((
        Utc.from_utc_datetime(&naive) - chrono::Duration::seconds(i64::from(offset)),
        used,
    ))
}

/// Parses a year-less `Mmm dd HH:MM:SS[.frac]` (syslog RFC 3164) at the start of `b`. The year
/// is the reference time's; a date more than a day in its future belongs to the year before
/// (a December line read in January).
pub(crate) fn parse_syslog_date(
    b: &[u8],
    reference: DateTime<Utc>,
) -> Option<(DateTime<Utc>, usize)> {
    let month = month_abbrev(b)?;
    if *b.get(3)? != b' ' {
        return None;
    }
    // Day is space-padded ("Feb  7") or two digits.
    let day = if b.get(4) == Some(&b' ') {
        digits(b, 5, 1)?
    } else {
        digits(b, 4, 2)?
    };
    if *b.get(6)? != b' ' || *b.get(9)? != b':' || *b.get(12)? != b':' {
        return None;
    }
    let hour = digits(b, 7, 2)?;
    let min = digits(b, 10, 2)?;
    let sec = digits(b, 13, 2)?;
    let mut used = 15;
    let mut nanos = 0u32;
    if b.get(15) == Some(&b'.') {
        used = 16;
        let mut scale = 100_000_000u32;
        while let Some(c) = b.get(used).filter(|c| c.is_ascii_digit()) {
            nanos += u32::from(c - b'0') * scale;
            scale /= 10;
            used += 1;
        }
    }
    let t = with_guessed_year(reference, month, day, hour, min, sec, nanos)?;
    Some((t, used))
}

/// Builds a date whose log line carried no year (syslog, klog) from the reference time.
pub(crate) fn with_guessed_year(
    reference: DateTime<Utc>,
    month: u32,
    day: u32,
    hour: u32,
    min: u32,
    sec: u32,
    nanos: u32,
) -> Option<DateTime<Utc>> {
    let build =
        |year: i32| -> Option<DateTime<Utc>> {
            let naive: NaiveDateTime = NaiveDate::from_ymd_opt(year, month, day)?
                .and_hms_nano_opt(hour, min, sec.min(59), nanos)?;
            Some(Utc.from_utc_datetime(&naive))
        };
    let year = reference.year();
    match build(year) {
        Some(t) if t > reference + chrono::Duration::days(1) => build(year - 1),
        Some(t) => Some(t),
        // Feb 29 in a non-leap reference year: try the year before.
        None => build(year - 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("test literal is RFC 3339")
            .with_timezone(&Utc)
    }

    #[test]
    fn string_shapes() {
        let cases = [
            ("2024-11-12T14:13:36.574+0900", "2024-11-12T05:13:36.574Z"),
            (
                "2024-11-28T18:34:01.225731+09:00",
                "2024-11-28T09:34:01.225731Z",
            ),
            ("2025-01-13T09:58:13.631Z", "2025-01-13T09:58:13.631Z"),
            ("2024-11-15 20:12:10,123", "2024-11-15T20:12:10.123Z"),
            ("2024-11-15 20:12:10", "2024-11-15T20:12:10Z"),
            ("2024/11/12 15:19:06", "2024-11-12T15:19:06Z"),
            ("07/Feb/2020:11:48:51 +0100", "2020-02-07T10:48:51Z"),
            ("1731391316698", "2024-11-12T06:01:56.698Z"),
            ("1761019822.3152757", "2025-10-21T04:10:22.315275669Z"),
            ("1534860261221373", "2018-08-21T14:04:21.221373Z"),
            ("1700000000000000000", "2023-11-14T22:13:20Z"),
            ("Tue, 1 Jul 2003 10:52:37 +0200", "2003-07-01T08:52:37Z"),
        ];
        for (input, want) in cases {
            let got = parse_str(input);
            // Float epochs lose sub-microsecond precision; compare to the microsecond.
            let got_us = got.map(|t| t.timestamp_micros());
            assert_eq!(got_us, Some(utc(want).timestamp_micros()), "{input}");
        }
    }

    #[test]
    fn rejects_garbage() {
        for input in [
            "",
            "yesterday",
            "2024-13-01",
            "2024-02-30T00:00:00Z",
            "-5",
            "12:00",
        ] {
            assert_eq!(parse_str(input), None, "{input}");
        }
    }

    #[test]
    fn syslog_year_is_guessed_from_reference() {
        let reference = utc("2026-01-02T00:00:00Z");
        let got = parse_syslog_date(b"Dec 31 23:59:59 host", reference).map(|(t, _)| t);
        assert_eq!(got, Some(utc("2025-12-31T23:59:59Z")));
        let got = parse_syslog_date(b"Jan  1 10:00:00 host", reference);
        assert_eq!(got, Some((utc("2026-01-01T10:00:00Z"), 15)));
    }
}
