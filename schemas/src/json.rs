//! JSON primitives shared by the hand-written writers and readers of the wire types
//! ([`crate::RawRecordWriter`], [`crate::write_event_json`] and their readers): strings escaped
//! and numbers and timestamps written byte for byte as `serde_json` (and chrono's `Serialize`)
//! write them, and a cursor that reads exactly those spellings back.

use chrono::{DateTime, Datelike, Timelike, Utc};

/// A position in a JSON document for the hand-written readers ([`crate::RawRecordReader`]).
pub(crate) struct Cursor<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) pos: usize,
}

impl Cursor<'_> {
    /// Steps over `literal` when it comes next.
    pub(crate) fn eat(&mut self, literal: &[u8]) -> Option<()> {
        if self.bytes[self.pos..].starts_with(literal) {
            self.pos += literal.len();
            Some(())
        } else {
            None
        }
    }

    /// A non-negative JSON integer without a sign, fraction or exponent.
    pub(crate) fn number(&mut self) -> Option<u64> {
        let digits = self.bytes[self.pos..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let text = &self.bytes[self.pos..self.pos + digits];
        // JSON has no leading zeros; serde reports them.
        if digits == 0 || (digits > 1 && text[0] == b'0') {
            return None;
        }
        let mut n = 0u64;
        for &d in text {
            n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        }
        self.pos += digits;
        Some(n)
    }

    /// A JSON integer that fits an `i64`, as serde reads one into an `i64`; `-0`, which serde
    /// reads as a float (and refuses), is left to serde.
    pub(crate) fn signed(&mut self) -> Option<i64> {
        if self.eat(b"-").is_none() {
            return i64::try_from(self.number()?).ok();
        }
        match self.number()? {
            0 => None,
            magnitude => 0i64.checked_sub_unsigned(magnitude),
        }
    }

    /// A JSON string, unescaped. Surrogate escapes, raw control characters and invalid
    /// UTF-8 are left to serde.
    pub(crate) fn string(&mut self) -> Option<String> {
        self.eat(b"\"")?;
        let start = self.pos;
        let mut unescaped: Option<Vec<u8>> = None;
        let mut copied = start;
        loop {
            let i = next_escape(self.bytes, self.pos)?;
            match self.bytes[i] {
                b'"' => {
                    self.pos = i + 1;
                    let bytes = match unescaped {
                        None => self.bytes[start..i].to_vec(),
                        Some(mut out) => {
                            out.extend_from_slice(&self.bytes[copied..i]);
                            out
                        }
                    };
                    return String::from_utf8(bytes).ok();
                }
                b'\\' => {
                    let out =
                        unescaped.get_or_insert_with(|| Vec::with_capacity(2 * (i - start) + 16));
                    out.extend_from_slice(&self.bytes[copied..i]);
                    let (byte, len) = match *self.bytes.get(i + 1)? {
                        b'"' => (b'"', 2),
                        b'\\' => (b'\\', 2),
                        b'/' => (b'/', 2),
                        b'b' => (0x08, 2),
                        b'f' => (0x0c, 2),
                        b'n' => (b'\n', 2),
                        b'r' => (b'\r', 2),
                        b't' => (b'\t', 2),
                        b'u' => {
                            let hex = self.bytes.get(i + 2..i + 6)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                            let hex = std::str::from_utf8(hex).ok()?;
                            // `from_u32` is `None` for surrogates: serde pairs them.
                            let ch = char::from_u32(u32::from_str_radix(hex, 16).ok()?)?;
                            let mut utf8 = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut utf8).as_bytes());
                            copied = i + 6;
                            self.pos = i + 6;
                            continue;
                        }
                        _ => return None,
                    };
                    out.push(byte);
                    copied = i + len;
                    self.pos = i + len;
                }
                _ => return None,
            }
        }
    }

    /// A timestamp as [`write_time`] writes it (`YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z`); other
    /// spellings chrono accepts, and leap seconds, are left to serde.
    pub(crate) fn time(&mut self) -> Option<DateTime<Utc>> {
        self.eat(b"\"")?;
        let b = &self.bytes[self.pos..];
        let digits = |range: std::ops::Range<usize>| -> Option<u32> {
            let text = b.get(range)?;
            let mut n = 0;
            for &d in text {
                if !d.is_ascii_digit() {
                    return None;
                }
                n = n * 10 + u32::from(d - b'0');
            }
            Some(n)
        };
        let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
        if !separators.iter().all(|&(i, s)| b.get(i) == Some(&s)) {
            return None;
        }
        let date = chrono::NaiveDate::from_ymd_opt(
            i32::try_from(digits(0..4)?).ok()?,
            digits(5..7)?,
            digits(8..10)?,
        )?;
        let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
        let mut end = 19;
        let mut nano = 0;
        if b.get(end) == Some(&b'.') {
            let count = b[end + 1..]
                .iter()
                .take_while(|d| d.is_ascii_digit())
                .count();
            if !(1..=9).contains(&count) {
                return None;
            }
            nano = digits(end + 1..end + 1 + count)? * 10u32.pow(9 - count as u32);
            end += 1 + count;
        }
        if b.get(end..end + 2) != Some(b"Z\"") || second > 59 {
            return None;
        }
        let time = chrono::NaiveTime::from_hms_nano_opt(hour, minute, second, nano)?;
        self.pos += end + 2;
        Some(date.and_time(time).and_utc())
    }
}

/// Appends `s` as a JSON string, quotes included, escaped as `serde_json` escapes it: `\"`,
/// `\\`, `\b \f \n \r \t`, every other byte below 0x20 as `\u00xx` (lowercase hex), everything
/// else (DEL and non-ASCII UTF-8 included) as is.
pub(crate) fn write_json_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut copied = 0;
    while let Some(i) = next_escape(bytes, copied) {
        out.extend_from_slice(&bytes[copied..i]);
        push_escape(out, bytes[i]);
        copied = i + 1;
    }
    out.extend_from_slice(&bytes[copied..]);
    out.push(b'"');
}

/// True for the bytes JSON strings must escape.
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Index of the first byte at or after `from` that needs escaping. Eight bytes at a time: the
/// classic "has a zero byte" bit trick for `"`, `\` and bytes below 0x20. Its false positives
/// only ever sit above a true one (a borrow runs upwards), so the lowest flagged byte is exact.
fn next_escape(bytes: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut i = from;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let w = u64::from_le_bytes(chunk.try_into().expect("an 8-byte slice"));
        let quote = w ^ (ONES * u64::from(b'"'));
        let backslash = w ^ (ONES * u64::from(b'\\'));
        let flagged = (w.wrapping_sub(ONES * 0x20) & !w
            | quote.wrapping_sub(ONES) & !quote
            | backslash.wrapping_sub(ONES) & !backslash)
            & HIGHS;
        if flagged != 0 {
            return Some(i + (flagged.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    bytes[i.min(bytes.len())..]
        .iter()
        .position(|&b| needs_escape(b))
        .map(|p| i + p)
}

fn push_escape(out: &mut Vec<u8>, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match b {
        b'"' => out.extend_from_slice(b"\\\""),
        b'\\' => out.extend_from_slice(b"\\\\"),
        0x08 => out.extend_from_slice(b"\\b"),
        0x0c => out.extend_from_slice(b"\\f"),
        b'\n' => out.extend_from_slice(b"\\n"),
        b'\r' => out.extend_from_slice(b"\\r"),
        b'\t' => out.extend_from_slice(b"\\t"),
        _ => out.extend_from_slice(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX[usize::from(b >> 4)],
            HEX[usize::from(b & 0xf)],
        ]),
    }
}

pub(crate) fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

/// Two decimal digits of `n` (below 100) into `at`.
fn put_2_digits(at: &mut [u8], n: u32) {
    at[0] = b'0' + (n / 10 % 10) as u8;
    at[1] = b'0' + (n % 10) as u8;
}

/// A UTC timestamp as chrono's `Serialize` writes it: RFC 3339 with `Z` and 0, 3, 6 or 9
/// fraction digits (the fewest that are exact), a leap second as `:60`. Years outside
/// 0..=9999 (a sign and more digits) go through chrono itself.
///
/// Built in a stack buffer from one `naive_utc()`: the `DateTime` accessors each convert to
/// local time again, which was a third of this function's cost.
pub(crate) fn write_time(out: &mut Vec<u8>, t: &DateTime<Utc>) -> serde_json::Result<()> {
    let naive = t.naive_utc();
    let Ok(year) = u32::try_from(naive.year()) else {
        return serde_json::to_writer(out, t);
    };
    if year > 9999 {
        return serde_json::to_writer(out, t);
    }
    let (mut second, mut nano) = (naive.second(), naive.nanosecond());
    if nano >= 1_000_000_000 {
        second += 1;
        nano -= 1_000_000_000;
    }
    // `"YYYY-MM-DDTHH:MM:SS` then up to `.fffffffff` and `Z"`.
    let mut buf = *b"\"0000-00-00T00:00:00.000000000Z\"";
    put_2_digits(&mut buf[1..], year / 100);
    put_2_digits(&mut buf[3..], year % 100);
    put_2_digits(&mut buf[6..], naive.month());
    put_2_digits(&mut buf[9..], naive.day());
    put_2_digits(&mut buf[12..], naive.hour());
    put_2_digits(&mut buf[15..], naive.minute());
    put_2_digits(&mut buf[18..], second);
    let (mut fraction, digits) = if nano == 0 {
        (0, 0)
    } else if nano % 1_000_000 == 0 {
        (nano / 1_000_000, 3)
    } else if nano % 1_000 == 0 {
        (nano / 1_000, 6)
    } else {
        (nano, 9)
    };
    let mut end = 20;
    if digits > 0 {
        end += 1 + digits;
        for d in buf[21..end].iter_mut().rev() {
            *d = b'0' + (fraction % 10) as u8;
            fraction /= 10;
        }
    }
    buf[end] = b'Z';
    buf[end + 1] = b'"';
    out.extend_from_slice(&buf[..end + 2]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Every ASCII byte at every position of a word, and leap seconds (a nanosecond field
        /// of 1e9 and more): the string and time writers alone.
        #[test]
        fn escapes_at_every_offset_and_leap_seconds(
            prefix in 0usize..17,
            escaped in proptest::char::range('\u{0}', '\u{7f}'),
            leap_nanos in 1_000_000_000u32..2_000_000_000,
            day in 0i32..20_000,
        ) {
            let text: String = std::iter::repeat_n('a', prefix).chain([escaped, 'b']).collect();
            let mut out = Vec::new();
            write_json_str(&mut out, &text);
            prop_assert_eq!(out, serde_json::to_vec(&text).expect("serialize"));
            let leap = chrono::NaiveDate::from_num_days_from_ce_opt(719_163 + day)
                .and_then(|d| d.and_hms_nano_opt(23, 59, 59, leap_nanos))
                .map(|t| t.and_utc());
            prop_assert!(leap.is_some());
            if let Some(t) = leap {
                let mut out = Vec::new();
                write_time(&mut out, &t).expect("write");
                prop_assert_eq!(out, serde_json::to_vec(&t).expect("serialize"));
            }
        }
    }
}
