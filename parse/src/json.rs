//! JSON records: one hand-written pass that hands each top-level key to the [`Collector`]
//! without building a map first. Keys and strings without escapes are borrowed from the
//! record; only nested objects and arrays are materialized (as `serde_json::Value`).
//!
//! It accepts exactly what `serde_json::from_str` accepts (RFC 8259: no trailing commas,
//! no control characters in strings, paired surrogate escapes, numbers that fit an `f64`,
//! 127 levels of nesting) and reads numbers the same way: integers as `u64`/`i64` when they
//! fit, everything else as the correctly rounded `f64`. A test checks it against serde_json
//! on generated documents. It exists because the serde visitor path cost a quarter of the
//! parser's time on typical records (per-value dispatch, a scratch buffer per record).

use std::borrow::Cow;

use serde_json::{Map, Number, Value};

use crate::mapping::{Collector, JVal};

/// Nesting serde_json allows (its default recursion limit is 128 and the limit is hit on
/// the 128th level), kept identical so the same records count as `json_invalid`. Bounds
/// this parser's recursion too.
const MAX_NESTING: usize = 127;

/// Where a record stopped being JSON (byte offset); the caller only needs to know that it
/// did, the offset helps tests and debugging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JsonError {
    pub(crate) offset: usize,
}

type Result<T> = std::result::Result<T, JsonError>;

/// Feeds the JSON object in `text` to `c`.
///
/// # Errors
/// When `text` is not exactly one JSON object (surrounding whitespace is fine). Keys seen
/// before the error have already been offered; callers discard the collector then.
pub(crate) fn parse<'a>(text: &'a str, c: &mut Collector<'a>) -> Result<()> {
    let mut r = Reader {
        s: text,
        b: text.as_bytes(),
        i: 0,
        depth: 0,
    };
    r.ws();
    r.expect(b'{')?;
    r.depth = 1;
    r.members(|r, key| {
        let val = r.top_value()?;
        c.offer(key, val);
        Ok(())
    })?;
    r.ws();
    if r.i == r.b.len() {
        Ok(())
    } else {
        Err(r.err())
    }
}

/// Parses one complete JSON value (any type) into a `serde_json::Value`; test oracle and
/// fuzz hook for the reader.
#[cfg(test)]
pub(crate) fn parse_value(text: &str) -> Result<Value> {
    let mut r = Reader {
        s: text,
        b: text.as_bytes(),
        i: 0,
        depth: 0,
    };
    r.ws();
    let v = r.owned_value()?;
    r.ws();
    if r.i == r.b.len() {
        Ok(v)
    } else {
        Err(r.err())
    }
}

struct Reader<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
    depth: usize,
}

/// A parsed number, before it becomes a `JVal` or a `Value`.
enum Num {
    U(u64),
    I(i64),
    F(f64),
}

impl<'a> Reader<'a> {
    fn err(&self) -> JsonError {
        JsonError { offset: self.i }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn expect(&mut self, want: u8) -> Result<()> {
        if self.peek() == Some(want) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err())
        }
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    /// A top-level value: scalars borrow, containers are materialized.
    #[inline(always)]
    fn top_value(&mut self) -> Result<JVal<'a>> {
        match self.peek() {
            Some(b'"') => {
                self.i += 1;
                self.string().map(JVal::Str)
            }
            Some(b'{' | b'[') => self.owned_value().map(JVal::Json),
            Some(b't') => self.literal(b"true").map(|()| JVal::Bool(true)),
            Some(b'f') => self.literal(b"false").map(|()| JVal::Bool(false)),
            Some(b'n') => self.literal(b"null").map(|()| JVal::Null),
            Some(b'-' | b'0'..=b'9') => Ok(match self.number()? {
                Num::U(u) => JVal::U(u),
                Num::I(i) => JVal::I(i),
                Num::F(f) => JVal::F(f),
            }),
            _ => Err(self.err()),
        }
    }

    /// The members of an object whose `{` was just consumed, through its closing `}`: calls
    /// `member` with each key, the reader positioned at the key's value, which `member` reads.
    #[inline]
    fn members(
        &mut self,
        mut member: impl FnMut(&mut Self, Cow<'a, str>) -> Result<()>,
    ) -> Result<()> {
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.expect(b'"')?;
            let key = self.string()?;
            self.ws();
            self.expect(b':')?;
            self.ws();
            member(self, key)?;
            self.ws();
            match self.next() {
                Some(b',') => self.ws(),
                Some(b'}') => return Ok(()),
                _ => return Err(self.err()),
            }
        }
    }

    /// Any value as an owned `serde_json::Value`.
    fn owned_value(&mut self) -> Result<Value> {
        match self.peek() {
            Some(b'"') => {
                self.i += 1;
                self.string().map(|s| Value::String(s.into_owned()))
            }
            Some(b'{') => {
                self.enter()?;
                let mut m = Map::new();
                self.members(|r, key| {
                    let v = r.owned_value()?;
                    m.insert(key.into_owned(), v);
                    Ok(())
                })?;
                self.depth -= 1;
                Ok(Value::Object(m))
            }
            Some(b'[') => {
                self.enter()?;
                let mut items = Vec::new();
                self.ws();
                if self.peek() == Some(b']') {
                    self.i += 1;
                } else {
                    loop {
                        items.push(self.owned_value()?);
                        self.ws();
                        match self.next() {
                            Some(b',') => self.ws(),
                            Some(b']') => break,
                            _ => return Err(self.err()),
                        }
                    }
                }
                self.depth -= 1;
                Ok(Value::Array(items))
            }
            Some(b't') => self.literal(b"true").map(|()| Value::Bool(true)),
            Some(b'f') => self.literal(b"false").map(|()| Value::Bool(false)),
            Some(b'n') => self.literal(b"null").map(|()| Value::Null),
            Some(b'-' | b'0'..=b'9') => Ok(match self.number()? {
                Num::U(u) => Value::Number(u.into()),
                Num::I(i) => Value::Number(i.into()),
                // `number` only returns finite floats, which always make a Number.
                Num::F(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
            }),
            _ => Err(self.err()),
        }
    }

    /// Steps into an object or array at `self.i`, enforcing the nesting limit.
    fn enter(&mut self) -> Result<()> {
        if self.depth >= MAX_NESTING {
            return Err(self.err());
        }
        self.depth += 1;
        self.i += 1;
        Ok(())
    }

    fn literal(&mut self, word: &[u8]) -> Result<()> {
        if self.b.get(self.i..self.i + word.len()) == Some(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(self.err())
        }
    }

    /// A number at `self.i`, by the JSON grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)?
    /// ([eE] [+-]? [0-9]+)?`. Integers that fit are `u64` (or `i64` when negative, `-0`
    /// excepted, as serde_json does); the rest are floats, an error when out of range.
    fn number(&mut self) -> Result<Num> {
        let start = self.i;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.i += 1;
        }
        let int_start = self.i;
        match self.peek() {
            Some(b'0') => {
                self.i += 1;
                if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    return Err(self.err());
                }
            }
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.err()),
        }
        let int_end = self.i;
        let mut float = false;
        if self.peek() == Some(b'.') {
            self.i += 1;
            if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                return Err(self.err());
            }
            self.digits();
            float = true;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                return Err(self.err());
            }
            self.digits();
            float = true;
        }
        if !float {
            // At most 19 digits always fit a u64; longer runs may overflow.
            let mut v: Option<u64> = Some(0);
            for &c in &self.b[int_start..int_end] {
                v = v
                    .and_then(|v| v.checked_mul(10))
                    .and_then(|v| v.checked_add(u64::from(c - b'0')));
            }
            match (v, negative) {
                (Some(u), false) => return Ok(Num::U(u)),
                (Some(u), true) if u != 0 && u <= 1 << 63 => {
                    // -(2^63) is i64::MIN; everything smaller in magnitude negates exactly.
                    return Ok(Num::I(0i64.wrapping_sub_unsigned(u)));
                }
                _ => {}
            }
        }
        match self.s[start..self.i].parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Num::F(f)),
            _ => Err(JsonError { offset: start }),
        }
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
    }

    /// The rest of a string whose opening quote was consumed: borrowed when it holds no
    /// escape. Inlined: its result is returned in registers instead of through memory.
    #[inline(always)]
    fn string(&mut self) -> Result<Cow<'a, str>> {
        let start = self.i;
        let stop = self.i + find_special(&self.b[self.i..]);
        match self.b.get(stop) {
            Some(b'"') => {
                self.i = stop + 1;
                Ok(Cow::Borrowed(&self.s[start..stop]))
            }
            Some(b'\\') => {
                let mut out = String::with_capacity(stop - start + 16);
                out.push_str(&self.s[start..stop]);
                self.i = stop;
                self.escaped_rest(&mut out)?;
                Ok(Cow::Owned(out))
            }
            // A control character or the end of the text.
            _ => {
                self.i = stop;
                Err(self.err())
            }
        }
    }

    /// Continues a string at a backslash, unescaping into `out` up to the closing quote.
    fn escaped_rest(&mut self, out: &mut String) -> Result<()> {
        loop {
            match self.next() {
                Some(b'"') => return Ok(()),
                Some(b'\\') => {
                    let ch = match self.next() {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => self.unicode_escape()?,
                        _ => return Err(self.err()),
                    };
                    out.push(ch);
                }
                Some(_) => {
                    let from = self.i - 1;
                    let stop = from + find_special(&self.b[from..]);
                    if !matches!(self.b.get(stop), Some(b'"' | b'\\')) {
                        self.i = stop;
                        return Err(self.err());
                    }
                    out.push_str(&self.s[from..stop]);
                    self.i = stop;
                }
                None => return Err(self.err()),
            }
        }
    }

    /// `\uXXXX` after the `u`: a BMP character, or a surrogate pair written as two escapes.
    /// Lone surrogates are errors, as in serde_json.
    fn unicode_escape(&mut self) -> Result<char> {
        let hi = self.hex4()?;
        let code = match hi {
            0xD800..=0xDBFF => {
                if self.b.get(self.i..self.i + 2) != Some(b"\\u") {
                    return Err(self.err());
                }
                self.i += 2;
                let lo = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&lo) {
                    return Err(self.err());
                }
                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(self.err()),
            c => c,
        };
        char::from_u32(code).ok_or_else(|| self.err())
    }

    fn hex4(&mut self) -> Result<u32> {
        let mut v = 0u32;
        for _ in 0..4 {
            let d = match self.next() {
                Some(c @ b'0'..=b'9') => c - b'0',
                Some(c @ b'a'..=b'f') => c - b'a' + 10,
                Some(c @ b'A'..=b'F') => c - b'A' + 10,
                _ => return Err(self.err()),
            };
            v = v * 16 + u32::from(d);
        }
        Ok(v)
    }
}

/// Index of the first `"`, `\` or control character (below 0x20) in `b`, or `b.len()`.
/// Eight bytes at a time (SWAR): strings in log records are mostly plain text.
#[inline(always)]
fn find_special(b: &[u8]) -> usize {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const QUOTES: u64 = 0x2222_2222_2222_2222;
    const BACKSLASHES: u64 = 0x5c5c_5c5c_5c5c_5c5c;
    // Adding 0x60 to the low 7 bits carries into bit 7 exactly when they are 0x20 or more.
    const TO_SPACE: u64 = 0x6060_6060_6060_6060;
    let below = |x: u64, add: u64| !(((x & LOW7) + add) | x) & HIGH;
    let mut i = 0;
    while let Some(chunk) = b.get(i..i + 8) {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        let w = u64::from_le_bytes(bytes);
        // A byte equals q exactly when `byte ^ q` is below 1: 0x7f + 1 carries into bit 7.
        let hits = below(w ^ QUOTES, LOW7) | below(w ^ BACKSLASHES, LOW7) | below(w, TO_SPACE);
        if hits != 0 {
            return i + (hits.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&c) = b.get(i) {
        if c == b'"' || c == b'\\' || c < 0x20 {
            return i;
        }
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_special_finds_the_first_stop() {
        assert_eq!(find_special(b"abcdefghij\"k"), 10);
        assert_eq!(find_special(b"abc\\\""), 3);
        assert_eq!(find_special(b"abcdefgh\x01"), 8);
        let plain = b"\x7f\xc3\xa9 plain text, long enough";
        assert_eq!(find_special(plain), plain.len());
        assert_eq!(find_special("ü\u{1f}".as_bytes()), 2);
        assert_eq!(find_special(b""), 0);
    }

    /// Documents serde_json accepts and rejects, at the edges of the grammar.
    #[test]
    fn agrees_with_serde_json_on_edge_cases() {
        let cases = [
            r#"{}"#,
            r#" { "a" : 1 } "#,
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            r#"{"a":01}"#,
            r#"{"a":-0}"#,
            r#"{"a":-}"#,
            r#"{"a":1.}"#,
            r#"{"a":.5}"#,
            r#"{"a":1e}"#,
            r#"{"a":1E+2}"#,
            r#"{"a":1e400}"#,
            r#"{"a":-1e-400}"#,
            r#"{"a":18446744073709551615}"#,
            r#"{"a":18446744073709551616}"#,
            r#"{"a":-9223372036854775808}"#,
            r#"{"a":-9223372036854775809}"#,
            r#"{"a":123456789012345678901234567890}"#,
            r#"{"a":"\ud83d\ude00 \u00e9 \/ \b\f\n\r\t"}"#,
            r#"{"a":"\ud83d"}"#,
            r#"{"a":"\ude00"}"#,
            r#"{"a":"\ud83d\u0041"}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":"\u12g4"}"#,
            "{\"a\":\"tab\there\"}",
            "{\"a\":\"del\u{7f}\"}",
            r#"{"a":"unterminated}"#,
            r#"{"a":[1,[2,{"b":null}],true,false]}"#,
            r#"{"a":[1,]}"#,
            r#"{"a":[}"#,
            r#"{"a":tru}"#,
            r#"{"a":nulll}"#,
            r#"{"a":{"b":{}}} x"#,
            r#"{"a":1}{"#,
            r#"{"dup":1,"dup":{"x":2,"x":3}}"#,
        ];
        for case in cases {
            let ours = parse_value(case).ok();
            let theirs = serde_json::from_str::<Value>(case).ok();
            assert_eq!(ours, theirs, "{case}");
        }
    }

    #[test]
    fn nesting_limit_matches_serde_json() {
        for depth in [126, 127, 128, 129] {
            let doc = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            assert_eq!(
                parse_value(&doc).is_ok(),
                serde_json::from_str::<Value>(&doc).is_ok(),
                "depth {depth}"
            );
        }
    }

    fn arb_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            any::<String>().prop_map(Value::String),
            "[a-z\"\\\\\u{0}-\u{1f}\u{e9}\u{1f600}]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map("[a-zA-Z_@.]{0,8}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// Whatever serde_json writes reads back identically.
        #[test]
        fn reads_what_serde_json_writes(v in arb_json()) {
            let text = serde_json::to_string(&v).map_err(|e| {
                proptest::test_runner::TestCaseError::fail(e.to_string())
            })?;
            proptest::prop_assert_eq!(parse_value(&text).ok(), Some(v));
        }

        /// On damaged documents (a byte cut, replaced or inserted) it accepts exactly what
        /// serde_json accepts, with the same value.
        #[test]
        fn agrees_with_serde_json_on_damaged_documents(
            v in arb_json(),
            at in 0usize..400,
            op in 0u8..3,
            byte in proptest::sample::select(&b"{}[]\",:\\0-.eE+ nul1tf"[..]),
        ) {
            let text = serde_json::to_string(&v).map_err(|e| {
                proptest::test_runner::TestCaseError::fail(e.to_string())
            })?;
            let mut bytes = text.into_bytes();
            let at = at.min(bytes.len());
            match op {
                0 if at < bytes.len() => { bytes.remove(at); }
                1 if at < bytes.len() => bytes[at] = byte,
                _ => bytes.insert(at, byte),
            }
            if let Ok(damaged) = String::from_utf8(bytes) {
                let ours = parse_value(&damaged).ok();
                let theirs = serde_json::from_str::<Value>(&damaged).ok();
                proptest::prop_assert_eq!(ours, theirs, "{}", damaged);
            }
        }
    }
}
