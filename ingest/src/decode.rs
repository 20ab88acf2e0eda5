//! Decoding of one runtime-framed physical line: CRI (containerd, CRI-O), docker json-file, or
//! plain text.
//!
//! CRI: `<RFC3339Nano> <stdout|stderr> <P|F>[:tags] <message>`; `P` marks a partial segment
//! that continues in the next line of the same stream.
//! Docker json-file: `{"log":"...\n","stream":"stdout","time":"..."}`; a `log` without the
//! trailing newline is a 16 KiB split that continues in the next line of the same stream.

use std::borrow::Cow;
use std::cell::Cell;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use schemas::Stream;
use serde::Deserialize;

use crate::codes;

/// The framing of a log file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Kubernetes CRI logging format.
    Cri,
    /// Docker's json-file driver.
    Docker,
    /// Unframed text: the whole line is the message.
    Plain,
}

impl Format {
    /// Lowercase name, as shown by `sluice parse`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Cri => "cri",
            Format::Docker => "docker",
            Format::Plain => "plain",
        }
    }
}

/// One decoded physical line. `message` borrows from the input unless unescaping was needed.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedLine<'a> {
    /// The framing this line was decoded as.
    pub format: Format,
    /// The runtime's timestamp, when the framing has one and it parsed.
    pub time: Option<DateTime<Utc>>,
    /// The container stream, when the framing has one.
    pub stream: Option<Stream>,
    /// True when the message continues in the next line of the same stream.
    pub partial: bool,
    /// The application's bytes, without framing and without the line terminator.
    pub message: Cow<'a, [u8]>,
    /// A stable error code ([`codes`]) when the framing was malformed; the message is then
    /// the whole line.
    pub error: Option<&'static str>,
}

/// Guesses the framing from one line: docker JSON, CRI, else plain.
pub fn detect_format(line: &[u8]) -> Format {
    let line = trim_cr(line);
    if line.first() == Some(&b'{') && decode_docker(line).error.is_none() {
        return Format::Docker;
    }
    if decode_cri(line).error.is_none() {
        return Format::Cri;
    }
    Format::Plain
}

/// Decodes one physical line (without its `\n`), detecting its framing. For `sluice parse`.
pub fn decode_line(line: &[u8]) -> DecodedLine<'_> {
    decode_as(detect_format(line), line)
}

/// Decodes one physical line (without its `\n`) as `format`. A trailing `\r` is dropped.
/// Malformed framing yields the whole line as message with `error` set; never panics.
pub fn decode_as(format: Format, line: &[u8]) -> DecodedLine<'_> {
    let line = trim_cr(line);
    match format {
        Format::Cri => decode_cri(line),
        Format::Docker => decode_docker(line),
        Format::Plain => DecodedLine {
            format: Format::Plain,
            time: None,
            stream: None,
            partial: false,
            message: Cow::Borrowed(line),
            error: None,
        },
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    match line.last() {
        Some(b'\r') => &line[..line.len() - 1],
        _ => line,
    }
}

fn malformed<'a>(format: Format, line: &'a [u8], code: &'static str) -> DecodedLine<'a> {
    DecodedLine {
        format,
        time: None,
        stream: None,
        partial: false,
        message: Cow::Borrowed(line),
        error: Some(code),
    }
}

/// Length of the timestamp containerd and CRI-O write (`2026-12-04T16:30:00.123456789Z`),
/// checked before searching for the first space.
const CRI_TIME_BYTES: usize = 30;

fn decode_cri(line: &[u8]) -> DecodedLine<'_> {
    let bad = || malformed(Format::Cri, line, codes::MALFORMED_CRI);
    let sp1 = if line.get(CRI_TIME_BYTES) == Some(&b' ') {
        // No space can come earlier in a valid timestamp of this length; an invalid one
        // fails to parse either way.
        CRI_TIME_BYTES
    } else {
        match memchr::memchr(b' ', line) {
            Some(i) => i,
            None => return bad(),
        }
    };
    let Some(time) = parse_rfc3339(&line[..sp1]) else {
        return bad();
    };
    let rest = &line[sp1 + 1..];
    let (stream, rest) = if let Some(r) = rest.strip_prefix(b"stdout ") {
        (Stream::Stdout, r)
    } else if let Some(r) = rest.strip_prefix(b"stderr ") {
        (Stream::Stderr, r)
    } else {
        return bad();
    };
    // The tag field: `P` or `F`, optionally followed by `:`-separated extra tags.
    let tag_end = if rest.get(1) == Some(&b' ') {
        1
    } else {
        memchr::memchr(b' ', rest).unwrap_or(rest.len())
    };
    let tag = &rest[..tag_end];
    let flag = tag.split(|b| *b == b':').next().unwrap_or(b"");
    let partial = match flag {
        b"P" => true,
        b"F" => false,
        _ => return bad(),
    };
    let message = if tag_end < rest.len() {
        &rest[tag_end + 1..]
    } else {
        &rest[rest.len()..]
    };
    DecodedLine {
        format: Format::Cri,
        time: Some(time),
        stream: Some(stream),
        partial,
        message: Cow::Borrowed(message),
        error: None,
    }
}

#[derive(Deserialize)]
struct DockerLine<'a> {
    #[serde(borrow)]
    log: Cow<'a, str>,
    #[serde(default, borrow)]
    stream: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    time: Option<Cow<'a, str>>,
}

fn decode_docker(line: &[u8]) -> DecodedLine<'_> {
    let Ok(parsed) = serde_json::from_slice::<DockerLine<'_>>(line) else {
        return malformed(Format::Docker, line, codes::MALFORMED_DOCKER_JSON);
    };
    let stream = match parsed.stream.as_deref() {
        Some("stdout") => Some(Stream::Stdout),
        Some("stderr") => Some(Stream::Stderr),
        None => None,
        Some(_) => return malformed(Format::Docker, line, codes::MALFORMED_DOCKER_JSON),
    };
    let time = parsed
        .time
        .as_deref()
        .and_then(|t| parse_rfc3339(t.as_bytes()));
    let partial = !parsed.log.ends_with('\n');
    let message: Cow<'_, [u8]> = match parsed.log {
        Cow::Borrowed(s) => Cow::Borrowed(s.strip_suffix('\n').unwrap_or(s).as_bytes()),
        Cow::Owned(mut s) => {
            if s.ends_with('\n') {
                s.pop();
            }
            Cow::Owned(s.into_bytes())
        }
    };
    DecodedLine {
        format: Format::Docker,
        time,
        stream,
        partial,
        message,
        error: None,
    }
}

fn digits(b: &[u8]) -> Option<u32> {
    let mut v: u32 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

thread_local! {
    /// The last UTC minute built on this thread, keyed by its `YYYY-MM-DDTHH:MM:` bytes, with
    /// its date and its first second of the day. The lines of one log share their minute for
    /// many lines, and building the date (day count, leap years, validation) and reading the
    /// fields was most of a timestamp's cost in the tail profile.
    static LAST_MINUTE: Cell<Option<CachedMinute>> = const { Cell::new(None) };
}

/// `(YYYY-MM-DDTHH:MM: bytes, date, seconds from midnight to the minute)`.
type CachedMinute = ([u8; MINUTE_KEY_BYTES], NaiveDate, u32);

/// The value of eight ASCII digits, most significant first, or `None` when one is not a
/// digit. Works on all eight at once (SWAR): the fraction of every CRI timestamp has nine
/// digits, and the byte-at-a-time loop was half of a cached-minute timestamp's cost.
fn eight_digits(b: [u8; 8]) -> Option<u32> {
    let word = u64::from_le_bytes(b);
    let v = word.wrapping_sub(0x3030_3030_3030_3030);
    // Each byte must be 0x30..=0x39: high nibble 3, and adding 6 must not carry out of the
    // low nibble.
    if word & 0xF0F0_F0F0_F0F0_F0F0 != 0x3030_3030_3030_3030
        || v.wrapping_add(0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0 != 0
    {
        return None;
    }
    // Pairs of digits, then groups of four, then all eight (multiply-and-shift).
    let v = v.wrapping_mul(10).wrapping_add(v >> 8);
    let mask = 0x0000_00FF_0000_00FF;
    let v = (v & mask)
        .wrapping_mul(100 + (1_000_000 << 32))
        .wrapping_add(((v >> 16) & mask).wrapping_mul(1 + (10_000 << 32)))
        >> 32;
    u32::try_from(v).ok()
}

/// Seconds and nanoseconds of the common `SS.nnnnnnnnnZ` tail at `s[17..]` (exactly nine
/// fraction digits, UTC); `None` for any other shape, which the general parser handles.
fn parse_nano_utc_seconds(s: &[u8]) -> Option<(u32, u32)> {
    let tail: &[u8; 13] = s.get(17..)?.try_into().ok()?;
    if tail[2] != b'.' || tail[12] != b'Z' {
        return None;
    }
    let second = digits(&tail[..2])?;
    let high = eight_digits(tail[3..11].try_into().ok()?)?;
    let last = digits(&tail[11..12])?;
    Some((second, high * 10 + last))
}

/// Length of `YYYY-MM-DDTHH:MM:`, the prefix [`LAST_MINUTE`] is keyed by.
const MINUTE_KEY_BYTES: usize = 17;

/// Seconds, nanoseconds and UTC offset in seconds from `SS[.fraction](Z|±HH:MM)` at
/// `s[17..]` (the part after the minute).
fn parse_seconds_and_zone(s: &[u8]) -> Option<(u32, u32, i64)> {
    let second = digits(s.get(17..19)?)?;
    if second > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos: u32 = 0;
    if s.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < s.len() && s[i].is_ascii_digit() {
            if i - start < 9 {
                nanos = nanos * 10 + u32::from(s[i] - b'0');
            }
            i += 1;
        }
        let n = i - start;
        if n == 0 {
            return None;
        }
        for _ in n..9 {
            nanos *= 10;
        }
    }
    let offset_secs: i64 = match s.get(i..) {
        Some(b"Z") | Some(b"z") => 0,
        Some(tz) if tz.len() == 6 && (tz[0] == b'+' || tz[0] == b'-') && tz[3] == b':' => {
            let h = i64::from(digits(&tz[1..3])?);
            let m = i64::from(digits(&tz[4..6])?);
            let v = h * 3600 + m * 60;
            if tz[0] == b'-' { -v } else { v }
        }
        _ => return None,
    };
    Some((second, nanos, offset_secs))
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` without allocating. `None` when it is not
/// exactly that shape or a field is out of range.
pub fn parse_rfc3339(s: &[u8]) -> Option<DateTime<Utc>> {
    if s.len() < 20 {
        return None;
    }
    let key: [u8; MINUTE_KEY_BYTES] = s.get(..MINUTE_KEY_BYTES)?.try_into().ok()?;
    if let Some((k, date, minute_secs)) = LAST_MINUTE.with(Cell::get)
        && k == key
    {
        let (second, nanos) = match parse_nano_utc_seconds(s) {
            Some(sn) => sn,
            None => match parse_seconds_and_zone(s)? {
                (second, nanos, 0) => (second, nanos),
                _ => (60, 0), // another zone: the general path below
            },
        };
        if second < 60 {
            let time = NaiveTime::from_num_seconds_from_midnight_opt(minute_secs + second, nanos)?;
            return Some(NaiveDateTime::new(date, time).and_utc());
        }
    }
    if s[4] != b'-' || s[7] != b'-' || !matches!(s[10], b'T' | b't' | b' ') {
        return None;
    }
    if s[13] != b':' || s[16] != b':' {
        return None;
    }
    let year = digits(&s[0..4])?;
    let month = digits(&s[5..7])?;
    let day = digits(&s[8..10])?;
    let hour = digits(&s[11..13])?;
    let minute = digits(&s[14..16])?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    let (second, nanos, offset_secs) = parse_seconds_and_zone(s)?;
    if offset_secs == 0 && second < 60 {
        // Rejects impossible dates such as 02-31.
        let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
        LAST_MINUTE.with(|c| c.set(Some((key, date, hour * 3600 + minute * 60))));
        let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)?;
        return Some(NaiveDateTime::new(date, time).and_utc());
    }
    let days = days_from_civil(i64::from(year), month, day);
    let secs =
        days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second.min(59))
            - offset_secs;
    // Reject impossible dates such as 02-31 by round-tripping the day.
    let ts = DateTime::from_timestamp(secs, nanos)?;
    if second < 60 && offset_secs == 0 {
        use chrono::Datelike;
        if ts.day() != day {
            return None;
        }
    }
    Some(ts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    #[test]
    fn rfc3339_matches_chrono() {
        for s in [
            "2026-12-04T16:30:00Z",
            "2026-12-04T16:30:00.123456789Z",
            "2022-01-28T16:04:05.413656027Z",
            "2020-08-19T21:06:24.33754077Z",
            "2021-08-24T09:52:13.3302288Z",
            "2024-02-29T23:59:59.1+02:00",
            "1970-01-01T00:00:00-05:30",
            "2000-03-01T00:00:00.000000001Z",
        ] {
            assert_eq!(parse_rfc3339(s.as_bytes()), ts(s), "{s}");
            assert!(parse_rfc3339(s.as_bytes()).is_some(), "{s}");
        }
        for s in [
            "",
            "2026-12-04",
            "2026-13-04T16:30:00Z",
            "2026-02-31T16:30:00Z",
            "2026-12-04T16:30:00",
            "2026-12-04T16:30:00.Z",
            "2026-12-04T16:30:00Zjunk",
            "2026-12-04X16:30:00Z",
            "abcd-12-04T16:30:00Z",
        ] {
            assert_eq!(parse_rfc3339(s.as_bytes()), None, "{s}");
        }
    }

    #[test]
    fn eight_digits_matches_the_byte_loop() {
        for b in [
            *b"00000000",
            *b"99999999",
            *b"12345678",
            *b"00000007",
            *b"70000000",
            *b"41365602",
        ] {
            assert_eq!(eight_digits(b), digits(&b), "{b:?}");
        }
        // Every byte position holding every non-digit neighbour of the digit range, and
        // every digit, in a pseudo-random background.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for pos in 0..8 {
            for c in 0u8..=255 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let mut b = *b"00000000";
                for (i, d) in b.iter_mut().enumerate() {
                    *d = b'0' + ((x >> (i * 4)) % 10) as u8;
                }
                b[pos] = c;
                assert_eq!(eight_digits(b), digits(&b), "{b:?}");
            }
        }
    }

    /// The cached-date fast path agrees with chrono on every day of several years (leap
    /// years, month ends, the century rule) and on alternating dates that defeat the cache.
    #[test]
    fn rfc3339_fast_path_matches_chrono_across_dates() -> Result<(), Box<dyn std::error::Error>> {
        let mut day = chrono::NaiveDate::from_ymd_opt(1999, 12, 25).ok_or("start date")?;
        let end = chrono::NaiveDate::from_ymd_opt(2004, 3, 2).ok_or("end date")?;
        let mut n = 0u32;
        while day <= end {
            for t in ["00:00:00Z", "23:59:59.999999999Z", "12:34:56.5Z"] {
                let s = format!("{day}T{t}");
                assert_eq!(parse_rfc3339(s.as_bytes()), ts(&s), "{s}");
                // Another date in between, so the next parse misses the cache.
                let other = format!("2100-02-28T0{}:00:00Z", n % 10);
                assert_eq!(parse_rfc3339(other.as_bytes()), ts(&other), "{other}");
            }
            day = day.succ_opt().ok_or("next day")?;
            n += 1;
        }
        // Cache hits: the same minute with other seconds, fractions and zones.
        for s in [
            "2026-12-04T16:30:00Z",
            "2026-12-04T16:30:59.999999999Z",
            "2026-12-04T16:30:07.1z",
            "2026-12-04T16:30:07+02:00",
            "2026-12-04T16:30:07.25-05:30",
            "2026-12-04T16:30:07.123456789+01:00",
            "2026-12-04T16:30:07.000000001Z",
            "2026-12-04T16:30:07.1234567890Z",
            "2026-12-04T16:30:08Z",
            "2026-12-04t16:30:08Z",
            "2026-12-04T16:31:08Z",
        ] {
            assert_eq!(parse_rfc3339(s.as_bytes()), ts(s), "{s}");
            assert!(parse_rfc3339(s.as_bytes()).is_some(), "{s}");
        }
        // A leap second in a cached minute takes the general path and is accepted.
        assert!(parse_rfc3339(b"2026-12-04T16:30:00Z").is_some());
        assert!(parse_rfc3339(b"2026-12-04T16:30:60Z").is_some());
        for s in [
            "2026-12-04T16:30:61Z",
            "2026-12-04T16:30:0xZ",
            "2026-12-04T16:30:08.Z",
            "2026-12-04T16:30:08Zjunk",
            "2026-12-04T16:30:08",
            "2026-12-04T16:30:08.12345a789Z",
            "2026-12-04T16:30:08.123456789z ",
            "2026-12-04T16:30:8a.123456789Z",
            "2026-12-04T16:30:08.12345678:Z",
        ] {
            assert!(parse_rfc3339(b"2026-12-04T16:30:00Z").is_some());
            assert_eq!(parse_rfc3339(s.as_bytes()), None, "{s}");
        }
        for s in [
            "2100-02-29T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-12-04T24:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(s.as_bytes()), None, "{s}");
        }
        Ok(())
    }
}
