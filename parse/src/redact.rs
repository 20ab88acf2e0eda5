//! Secret redaction, run once over the whole record text before any parser reads it, so the
//! message, every JSON/logfmt field, URL queries and `event.original` are all covered by one
//! pass.
//!
//! One case-insensitive aho-corasick automaton finds every trigger (`eyJ`, `bearer`, `AKIA`,
//! `-----BEGIN`, `password`, `sk-`, `://`, ...) in a single scan; each hit is then checked by
//! a small hand-written verifier, so a line with no secret costs one scan and no allocation.
//! Card numbers are found by a separate digit scan (no keyword announces them).
//!
//! Replacement text is `[REDACTED:<kind>]`: no quote or backslash, so redacting inside a JSON
//! string keeps the document valid. The kinds found are reported in [`Kinds`].

use std::borrow::Cow;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};

use crate::{ParseError, RedactionConfig};

/// Kind names written to `sluice.redacted` (and used as the metric label), by bit index.
pub const KIND_NAMES: [&str; 9] = [
    "jwt",
    "bearer_token",
    "aws_access_key",
    "private_key",
    "password",
    "secret",
    "token",
    "api_key",
    "card_number",
];

/// A kind of secret, indexing [`KIND_NAMES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    Jwt = 0,
    BearerToken = 1,
    AwsAccessKey = 2,
    PrivateKey = 3,
    Password = 4,
    Secret = 5,
    Token = 6,
    ApiKey = 7,
    CardNumber = 8,
}

impl Kind {
    fn name(self) -> &'static str {
        KIND_NAMES[self as usize]
    }
}

/// The set of kinds redacted from one record (one bit each).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Kinds(u16);

impl Kinds {
    fn add(&mut self, k: Kind) {
        self.0 |= 1 << (k as u16);
    }

    /// True when nothing was redacted.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Kind names in a stable order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        KIND_NAMES
            .iter()
            .enumerate()
            .filter(move |(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, n)| *n)
    }

    /// Indexes into [`KIND_NAMES`] of the kinds present.
    pub(crate) fn indices(self) -> impl Iterator<Item = usize> {
        (0..KIND_NAMES.len()).filter(move |i| self.0 & (1 << i) != 0)
    }
}

/// What a trigger word asks the verifier to check.
#[derive(Debug, Clone, Copy)]
enum Trigger {
    Jwt,
    Bearer,
    Aws,
    PrivateKey,
    /// `keyword[quote] (=|:) value`; the value is replaced.
    KeyValue(Kind),
    /// A vendor API key prefix; `min_body` characters must follow.
    Prefix {
        min_body: usize,
    },
    /// `scheme://user:password@`.
    UrlUserinfo,
}

/// Keywords announcing a `key=value` secret, with the kind of the value. Matched in their
/// lower-case, UPPER-case and Capitalized spellings (plus the camelCase forms listed), which
/// keeps the automaton case-sensitive so the SIMD literal prefilter can run.
const KEYWORDS: &[(&str, Kind)] = &[
    ("password", Kind::Password),
    ("passwd", Kind::Password),
    ("pwd", Kind::Password),
    ("passphrase", Kind::Password),
    ("secret", Kind::Secret),
    ("private_key", Kind::PrivateKey),
    ("token", Kind::Token),
    ("api_key", Kind::ApiKey),
    ("apikey", Kind::ApiKey),
    ("api-key", Kind::ApiKey),
];

/// camelCase spellings the three case variants do not produce.
const CAMEL_KEYWORDS: &[(&str, Kind)] = &[
    ("apiKey", Kind::ApiKey),
    ("APIKey", Kind::ApiKey),
    ("Api-Key", Kind::ApiKey),
    ("privateKey", Kind::PrivateKey),
];

/// Suffixes a keyword may carry before its separator: `secret_key`, `secret_access_key`,
/// `secretKey`, `SECRET_KEY`, `token_value`... (checked case-insensitively, `_`/`-` kept).
const KEY_SUFFIXES: &[&str] = &["_access_key", "accesskey", "_key", "key", "-key", "_value"];

/// Most patterns for which aho-corasick's packed searcher uses SIMD (Teddy); past it, it
/// falls back to Rabin-Karp, several times slower. (Teddy needs SSSE3 or AVX2 on x86-64,
/// Neon on aarch64: every server CPU Sluice targets.)
const MAX_PREFILTER_PATTERNS: usize = 64;

/// Case-sensitive triggers: fixed vendor spellings.
const LITERAL_TRIGGERS: &[(&str, Trigger)] = &[
    ("eyJ", Trigger::Jwt),
    ("bearer", Trigger::Bearer),
    ("Bearer", Trigger::Bearer),
    ("BEARER", Trigger::Bearer),
    ("AKIA", Trigger::Aws),
    ("ASIA", Trigger::Aws),
    ("-----BEGIN", Trigger::PrivateKey),
    // Vendor prefixes: OpenAI/Anthropic, xAI, GitHub, GitLab, Slack, Stripe, Google.
    ("sk-", Trigger::Prefix { min_body: 20 }),
    ("xai-", Trigger::Prefix { min_body: 20 }),
    ("ghp_", Trigger::Prefix { min_body: 20 }),
    ("gho_", Trigger::Prefix { min_body: 20 }),
    ("ghu_", Trigger::Prefix { min_body: 20 }),
    ("ghs_", Trigger::Prefix { min_body: 20 }),
    ("ghr_", Trigger::Prefix { min_body: 20 }),
    ("github_pat_", Trigger::Prefix { min_body: 20 }),
    ("glpat-", Trigger::Prefix { min_body: 20 }),
    ("xoxb-", Trigger::Prefix { min_body: 20 }),
    ("xoxp-", Trigger::Prefix { min_body: 20 }),
    ("sk_live_", Trigger::Prefix { min_body: 20 }),
    ("rk_live_", Trigger::Prefix { min_body: 20 }),
    ("AIza", Trigger::Prefix { min_body: 30 }),
    ("://", Trigger::UrlUserinfo),
];

/// Every trigger spelling with what it asks the verifier to check.
fn triggers() -> Vec<(String, Trigger)> {
    let mut out: Vec<(String, Trigger)> = LITERAL_TRIGGERS
        .iter()
        .map(|(p, t)| ((*p).to_owned(), *t))
        .collect();
    for (kw, kind) in KEYWORDS {
        let mut capital = kw.to_string();
        capital[..1].make_ascii_uppercase();
        for spelling in [kw.to_string(), kw.to_ascii_uppercase(), capital] {
            if !out.iter().any(|(p, _)| *p == spelling) {
                out.push((spelling, Trigger::KeyValue(*kind)));
            }
        }
    }
    for (kw, kind) in CAMEL_KEYWORDS {
        out.push(((*kw).to_owned(), Trigger::KeyValue(*kind)));
    }
    out
}

/// Shortest JWT segment we accept: a real header is ≥ 20 base64 characters, so shorter
/// `eyJ...` runs are ordinary data.
const MIN_JWT_SEGMENT: usize = 10;
/// Longest `[...]` value treated as an application's own mask (`[FILTERED]`).
const MAX_PLACEHOLDER: usize = 24;
/// Shortest bearer token: anything shorter is a placeholder (`Bearer <token>`).
const MIN_BEARER_TOKEN: usize = 8;
/// How far after `-----BEGIN` the `PRIVATE KEY-----` header must end.
const MAX_PEM_HEADER: usize = 64;
/// Card numbers have 13 to 19 digits (ISO/IEC 7812).
const CARD_DIGITS: std::ops::RangeInclusive<usize> = 13..=19;
/// Fewest bytes a card number spans (13 digits, no separators): the card scan's skip distance.
const MIN_CARD_SPAN: usize = 13;
/// Byte classes for the card scan: 1 digit, 2 separator (space, dash), 0 anything else.
const CARD_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut d = b'0';
    while d <= b'9' {
        t[d as usize] = 1;
        d += 1;
    }
    t[b' ' as usize] = 2;
    t[b'-' as usize] = 2;
    t
};

/// Finds the triggers: leftmost-longest, non-overlapping, in order.
#[derive(Debug)]
enum Matcher {
    /// aho-corasick's packed (SIMD Teddy) searcher on its own. As the automaton's prefilter it
    /// reports each candidate to the automaton, which then searches again from there; on its
    /// own it confirms matches itself, saving that second pass (about 4% of the parser's time
    /// on JSON records).
    Packed(aho_corasick::packed::Searcher),
    /// Where no packed searcher can be built (too many patterns).
    Automaton(AhoCorasick),
}

impl Matcher {
    fn try_new(patterns: &[&str]) -> Result<Matcher, ParseError> {
        let packed = aho_corasick::packed::Config::new()
            .match_kind(aho_corasick::packed::MatchKind::LeftmostLongest)
            .builder()
            .extend(patterns)
            .build();
        if let Some(p) = packed {
            return Ok(Matcher::Packed(p));
        }
        AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostLongest)
            .kind(Some(AhoCorasickKind::DFA))
            .build(patterns)
            .map(Matcher::Automaton)
            .map_err(|e| ParseError::RedactionMatcher(e.to_string()))
    }

    /// The next trigger in `s` starting at or after `at`.
    #[inline]
    fn find_at(&self, s: &str, at: usize) -> Option<aho_corasick::Match> {
        let span = aho_corasick::Span::from(at..s.len());
        match self {
            Matcher::Packed(p) => p.find_in(s, span),
            Matcher::Automaton(ac) => ac.find(aho_corasick::Input::new(s).span(span)),
        }
    }
}

/// Finds and replaces secrets. Built once per [`crate::Parser`].
#[derive(Debug)]
pub(crate) struct Redactor {
    matcher: Matcher,
    triggers: Vec<(String, Trigger)>,
    config: RedactionConfig,
}

impl Redactor {
    pub(crate) fn try_new(config: &RedactionConfig) -> Result<Redactor, ParseError> {
        let triggers = triggers();
        debug_assert!(
            triggers.len() <= MAX_PREFILTER_PATTERNS,
            "{} triggers",
            triggers.len()
        );
        let patterns: Vec<&str> = triggers.iter().map(|(p, _)| p.as_str()).collect();
        Ok(Redactor {
            matcher: Matcher::try_new(&patterns)?,
            triggers,
            config: config.clone(),
        })
    }

    /// Returns `s` with every secret replaced, borrowing when nothing was found, and adds the
    /// kinds found to `kinds`.
    pub(crate) fn redact<'a>(&self, s: &'a str, kinds: &mut Kinds) -> Cow<'a, str> {
        if !self.config.enabled {
            return Cow::Borrowed(s);
        }
        let b = s.as_bytes();
        let mut out: Option<String> = None;
        let mut copied = 0;
        let mut at = 0;
        while let Some(m) = self.matcher.find_at(s, at) {
            at = m.end();
            if m.start() < copied {
                continue;
            }
            let (ref spelling, trigger) = self.triggers[m.pattern().as_usize()];
            let hit = match trigger {
                Trigger::Jwt => verify_jwt(b, m.start()),
                Trigger::Bearer => verify_bearer(b, m.start(), m.end()),
                Trigger::Aws => verify_aws(b, m.start()),
                Trigger::PrivateKey => verify_pem(s, m.start()),
                Trigger::KeyValue(kind) if self.config.key_values => {
                    verify_key_value(b, m.start(), m.end(), kind)
                }
                Trigger::KeyValue(_) => None,
                Trigger::Prefix { min_body } => {
                    verify_prefix(b, m.start(), m.end(), min_body, spelling)
                }
                Trigger::UrlUserinfo if self.config.key_values => verify_userinfo(b, m.end()),
                Trigger::UrlUserinfo => None,
            };
            if let Some((start, end, kind)) = hit {
                if start < copied || end <= start {
                    continue;
                }
                let o = out.get_or_insert_with(|| String::with_capacity(s.len()));
                o.push_str(&s[copied..start]);
                push_marker(o, kind);
                kinds.add(kind);
                copied = end;
            }
        }
        let after_keywords = match out {
            Some(mut o) => {
                o.push_str(&s[copied..]);
                Cow::Owned(o)
            }
            None => Cow::Borrowed(s),
        };
        if !self.config.card_numbers {
            return after_keywords;
        }
        match redact_cards(&after_keywords, kinds) {
            Some(o) => Cow::Owned(o),
            None => after_keywords,
        }
    }
}

fn push_marker(out: &mut String, kind: Kind) {
    out.push_str("[REDACTED:");
    out.push_str(kind.name());
    out.push(']');
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn is_b64url(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

/// True when the byte before `at` does not continue a word.
fn boundary_before(b: &[u8], at: usize) -> bool {
    at == 0 || !is_word(b[at - 1])
}

fn run(b: &[u8], from: usize, pred: impl Fn(u8) -> bool) -> usize {
    let mut i = from;
    while i < b.len() && pred(b[i]) {
        i += 1;
    }
    i
}

type Hit = Option<(usize, usize, Kind)>;

fn verify_jwt(b: &[u8], start: usize) -> Hit {
    if b.get(start..start + 3) != Some(b"eyJ") || (start > 0 && is_b64url(b[start - 1])) {
        return None;
    }
    let e1 = run(b, start, is_b64url);
    if e1 - start < MIN_JWT_SEGMENT || b.get(e1) != Some(&b'.') {
        return None;
    }
    let e2 = run(b, e1 + 1, is_b64url);
    if e2 - (e1 + 1) < MIN_JWT_SEGMENT || b.get(e2) != Some(&b'.') {
        return None;
    }
    let e3 = run(b, e2 + 1, is_b64url);
    Some((start, e3, Kind::Jwt))
}

fn verify_bearer(b: &[u8], start: usize, end: usize) -> Hit {
    if !boundary_before(b, start) {
        return None;
    }
    let tok_start = run(b, end, |c| c == b' ' || c == b'\t');
    if tok_start == end {
        return None;
    }
    let tok_end = run(b, tok_start, |c| {
        c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'~' | b'+' | b'/' | b'=' | b'-')
    });
    if tok_end - tok_start < MIN_BEARER_TOKEN {
        return None;
    }
    Some((tok_start, tok_end, Kind::BearerToken))
}

fn verify_aws(b: &[u8], start: usize) -> Hit {
    let prefix = b.get(start..start + 4)?;
    if (prefix != b"AKIA" && prefix != b"ASIA") || !boundary_before(b, start) {
        return None;
    }
    let end = run(b, start + 4, |c| {
        c.is_ascii_uppercase() || c.is_ascii_digit()
    });
    if end - start != 20 || b.get(end).is_some_and(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    Some((start, end, Kind::AwsAccessKey))
}

fn verify_pem(s: &str, start: usize) -> Hit {
    let b = s.as_bytes();
    if b.get(start..start + 10) != Some(b"-----BEGIN") {
        return None;
    }
    let window_end = crate::level::floor_char_boundary(s, (start + MAX_PEM_HEADER).min(s.len()));
    let header = &s[start..window_end];
    let header_end = header.find("KEY-----")?;
    if !header[..header_end].contains("PRIVATE") {
        return None;
    }
    let body_from = start + header_end + 8;
    let end = match memchr::memmem::find(&b[body_from..], b"-----END") {
        Some(rel) => {
            let end_from = body_from + rel + 8;
            match memchr::memmem::find(&b[end_from..], b"-----") {
                Some(r) => end_from + r + 5,
                None => b.len(),
            }
        }
        // No footer (a cut line): redact up to the end of the enclosing JSON string or line.
        None => {
            let mut i = body_from;
            while i < b.len() && b[i] != b'"' && b[i] != b'\n' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i.min(b.len())
        }
    };
    Some((start, end, Kind::PrivateKey))
}

/// Bytes that end an unquoted value.
fn ends_value(c: u8) -> bool {
    c.is_ascii_whitespace()
        || matches!(
            c,
            b'&' | b',' | b';' | b'"' | b'\'' | b'}' | b']' | b')' | b'<' | b'>' | b'\\'
        )
}

fn verify_key_value(b: &[u8], start: usize, end: usize, kind: Kind) -> Hit {
    // `db_password`, `x-api-key`, `"password"`, camelCase `accessToken` are keys;
    // `mypassword` is not.
    let camel = b[start].is_ascii_uppercase() && start > 0 && b[start - 1].is_ascii_lowercase();
    if start > 0 && b[start - 1].is_ascii_alphanumeric() && !camel {
        return None;
    }
    let mut i = end;
    for suffix in KEY_SUFFIXES {
        if b.get(i..i + suffix.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(suffix.as_bytes()))
        {
            i += suffix.len();
            break;
        }
    }
    // Closing quote of a quoted key: `"`, `'` or an escaped `\"` inside a JSON string.
    let mut key_quoted = false;
    if b.get(i) == Some(&b'\\') && b.get(i + 1) == Some(&b'"') {
        i += 2;
        key_quoted = true;
    } else if matches!(b.get(i), Some(b'"' | b'\'')) {
        i += 1;
        key_quoted = true;
    }
    i = run(b, i, |c| c == b' ' || c == b'\t');
    let sep = *b.get(i)?;
    if sep != b'=' && sep != b':' {
        return None;
    }
    i = run(b, i + 1, |c| c == b' ' || c == b'\t');
    let (vstart, vend) = if b.get(i) == Some(&b'\\') && b.get(i + 1) == Some(&b'"') {
        // Escaped JSON inside a JSON string: value runs to the next `\"`.
        let vs = i + 2;
        let rel = memchr::memmem::find(&b[vs..], b"\\\"")?;
        (vs, vs + rel)
    } else if let Some(&q @ (b'"' | b'\'')) = b.get(i) {
        let vs = i + 1;
        let mut j = vs;
        while j < b.len() && b[j] != q {
            j += if b[j] == b'\\' { 2 } else { 1 };
        }
        (vs, j.min(b.len()))
    } else {
        // `"token": 123` in JSON is a number (a count, an id): not a secret, and replacing
        // it unquoted would break the document.
        if key_quoted
            && sep == b':'
            && b.get(i)
                .is_some_and(|c| matches!(c, b'-' | b'0'..=b'9' | b't' | b'f' | b'n' | b'{' | b'['))
        {
            return None;
        }
        (i, run(b, i, |c| !ends_value(c)))
    };
    let value = b.get(vstart..vend)?;
    // Already masked by the application: `****`, `[FILTERED]` (Rails), `[REDACTED]`.
    let placeholder =
        value.starts_with(b"[") && value.ends_with(b"]") && value.len() <= MAX_PLACEHOLDER;
    if value.is_empty() || placeholder || value.iter().all(|c| *c == b'*') {
        return None;
    }
    // `password: //` or a URL scheme: not a value we understand.
    if value.starts_with(b"//") {
        return None;
    }
    Some((vstart, vend, kind))
}

fn verify_prefix(b: &[u8], start: usize, end: usize, min_body: usize, prefix: &str) -> Hit {
    if b.get(start..end) != Some(prefix.as_bytes()) || (start > 0 && is_b64url(b[start - 1])) {
        return None;
    }
    let body_end = run(b, end, is_b64url);
    let body = &b[end..body_end];
    if body.len() < min_body
        || !body.iter().any(u8::is_ascii_digit)
        || !body.iter().any(u8::is_ascii_alphabetic)
    {
        return None;
    }
    Some((start, body_end, Kind::ApiKey))
}

fn verify_userinfo(b: &[u8], end: usize) -> Hit {
    let stop =
        |c: u8| c.is_ascii_whitespace() || matches!(c, b'/' | b'@' | b'"' | b'\'' | b'?' | b'#');
    let user_end = run(b, end, |c| !stop(c) && c != b':');
    if user_end == end || b.get(user_end) != Some(&b':') {
        return None;
    }
    let pass_start = user_end + 1;
    let pass_end = run(b, pass_start, |c| !stop(c));
    if pass_end == pass_start || b.get(pass_end) != Some(&b'@') {
        return None;
    }
    if b[pass_start..pass_end].starts_with(b"[REDACTED") {
        return None;
    }
    Some((pass_start, pass_end, Kind::Password))
}

/// Replaces digit runs that look like card numbers: 13–19 digits, contiguous or in groups of
/// four (or Amex 4-6-5) separated by one consistent space or dash, starting with an issuer
/// digit (2–6) and passing the Luhn check. The run must not continue a word or an id
/// (`ORD-…`, `#…`, `_…`, `/…` before it are ids or paths, not cards).
fn redact_cards(s: &str, kinds: &mut Kinds) -> Option<String> {
    redact_cards_with(s, kinds, next_card_window)
}

/// [`redact_cards`], moving from a byte that is not a digit to `skip(b, i)`: the next place
/// worth looking at, `None` when there is none. Any skip that never passes a position where
/// 13 card bytes start gives the same result as visiting every byte (a card, and any digit
/// run with 13 digits, starts such a window; the `card_scan_skip_changes_nothing` test
/// compares the two).
fn redact_cards_with(
    s: &str,
    kinds: &mut Kinds,
    skip: fn(&[u8], usize) -> Option<usize>,
) -> Option<String> {
    let b = s.as_bytes();
    let json_like = s.trim_start().starts_with('{');
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        if CARD_CLASS[usize::from(b[i])] != 1 {
            match skip(b, i) {
                Some(p) if p > i => i = p,
                Some(_) => i += 1,
                None => break,
            }
            continue;
        }
        // Cheap check before the exact one: the run of card bytes from here must hold at
        // least 13 digits (most digit runs are times, ports and ids, far shorter).
        let mut j = i;
        let mut run_digits = 0usize;
        while j < b.len() && CARD_CLASS[usize::from(b[j])] != 0 {
            run_digits += usize::from(CARD_CLASS[usize::from(b[j])] & 1);
            j += 1;
        }
        if run_digits < *CARD_DIGITS.start() {
            i = j;
            continue;
        }
        let start = i;
        let prev_ok = start == 0
            || !(b[start - 1].is_ascii_alphanumeric()
                || matches!(b[start - 1], b'_' | b'-' | b'#' | b'/' | b'.' | b'+'));
        let mut digits = 0usize;
        let mut sep: Option<u8> = None;
        let mut groups = [0usize; 8];
        let mut ngroups = 1;
        let mut ok = true;
        while i < b.len() {
            let c = b[i];
            if c.is_ascii_digit() {
                digits += 1;
                groups[ngroups - 1] += 1;
                i += 1;
            } else if (c == b' ' || c == b'-') && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
                if sep.is_some_and(|s| s != c) || ngroups == groups.len() {
                    ok = false;
                    break;
                }
                sep = Some(c);
                ngroups += 1;
                i += 1;
            } else {
                break;
            }
        }
        let end = i;
        // Skip the rest of a token that continued past the digits (`4111…abc`).
        // A decimal number's integer part (`2633165881125.5596`, an epoch in ms) is not a
        // card; redacting it would also break the JSON it sits in.
        let decimal = b.get(end) == Some(&b'.') && b.get(end + 1).is_some_and(u8::is_ascii_digit);
        let next_ok = !decimal
            && b.get(end)
                .is_none_or(|c| !(c.is_ascii_alphanumeric() || *c == b'_'));
        if !ok || !prev_ok || !next_ok || !CARD_DIGITS.contains(&digits) {
            while i < b.len() && TOKEN_BYTE[usize::from(b[i])] {
                i += 1;
            }
            continue;
        }
        let g = &groups[..ngroups];
        let grouped_ok = ngroups == 1
            || g == [4, 6, 5]
            || (g[..ngroups - 1].iter().all(|n| *n == 4) && (1..=4).contains(&g[ngroups - 1]));
        if !grouped_ok || !matches!(b[start], b'2'..=b'6') || !luhn(&b[start..end]) {
            continue;
        }
        let o = out.get_or_insert_with(|| String::with_capacity(s.len()));
        o.push_str(&s[copied..start]);
        // A bare JSON number (`"card": 4111…`) must become a string, or the document breaks.
        let bare_json_number = json_like
            && start > 0
            && b[start - 1] != b'"'
            && b[..start]
                .iter()
                .rev()
                .find(|c| **c != b' ')
                .is_some_and(|c| matches!(c, b':' | b'[' | b','));
        if bare_json_number {
            o.push('"');
            push_marker(o, Kind::CardNumber);
            o.push('"');
        } else {
            push_marker(o, Kind::CardNumber);
        }
        kinds.add(Kind::CardNumber);
        copied = end;
    }
    let mut o = out?;
    o.push_str(&s[copied..]);
    Some(o)
}

/// The first position at or after `from` where [`MIN_CARD_SPAN`] card bytes (digits,
/// spaces, dashes) follow in a row, or `None`. Horspool-style: when a window's last byte is
/// no card byte, no window starts inside it; else the window's other bytes are classified
/// eight at a time (SWAR) and the search resumes after the last one that is no card byte,
/// instead of searching backwards byte by byte. The probe of the window's last byte is most
/// of what is left: its branch is data-dependent (classifying every window without it was
/// slower).
fn next_card_window(b: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    loop {
        let last = *b.get(i + MIN_CARD_SPAN - 1)?;
        if CARD_CLASS[usize::from(last)] == 0 {
            i += MIN_CARD_SPAN;
            continue;
        }
        // Bytes i+4 .. i+12, then i .. i+4.
        let high = other_than_card(word_at(b, i + 4));
        if high != 0 {
            i += 4 + last_flagged(high) + 1;
            continue;
        }
        let low = other_than_card(word_at(b, i)) & 0x8080_8080;
        if low != 0 {
            i += last_flagged(low) + 1;
            continue;
        }
        return Some(i);
    }
}

/// The eight bytes at `at` as a little-endian word (the caller checked they exist).
fn word_at(b: &[u8], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    if let Some(chunk) = b.get(at..at + 8) {
        bytes.copy_from_slice(chunk);
    }
    u64::from_le_bytes(bytes)
}

/// The high bit of each byte of `w` that is no card byte (digit, space, dash).
fn other_than_card(w: u64) -> u64 {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const ONES: u64 = 0x0101_0101_0101_0101;
    // High bit set where the byte is below `n` (bytes of 0x80 and up never are).
    let below = |x: u64, n: u64| !(((x & LOW7) + (0x80 - n) * ONES) | x) & HIGH;
    // `c ^ b'0'` is below 10 exactly for digits; `c ^ q` is below 1 exactly for `q`.
    let card =
        below(w ^ (ONES * 0x30), 10) | below(w ^ (ONES * 0x20), 1) | below(w ^ (ONES * 0x2d), 1);
    !card & HIGH
}

/// Index of the last byte whose high bit is set in `flags` (not zero).
fn last_flagged(flags: u64) -> usize {
    7 - (flags.leading_zeros() / 8) as usize
}

/// Bytes the card scan skips as the rest of a token that is not a card: ASCII letters,
/// digits and `-`. A table: this loop runs over every hex id with a long digit prefix, and
/// the table lookup took a tenth of the parser's time off such records.
const TOKEN_BYTE: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = (c as u8).is_ascii_alphanumeric() || c as u8 == b'-';
        c += 1;
    }
    t
};

fn luhn(digits_and_seps: &[u8]) -> bool {
    let mut sum = 0u32;
    let mut double = false;
    for c in digits_and_seps.iter().rev().filter(|c| c.is_ascii_digit()) {
        let mut d = u32::from(c - b'0');
        if double {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
        double = !double;
    }
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redact(s: &str) -> (String, Vec<&'static str>) {
        let r = Redactor::try_new(&RedactionConfig::default()).expect("fixed patterns build");
        let mut k = Kinds::default();
        let out = r.redact(s, &mut k).into_owned();
        (out, k.names().collect())
    }

    fn arb_trigger_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let spelled: Vec<String> = triggers().into_iter().map(|(s, _)| s).collect();
        let fragment = prop_oneof![
            proptest::sample::select(spelled.clone()),
            // Cut or wrongly-cased spellings: mostly not triggers.
            (proptest::sample::select(spelled), any::<u16>()).prop_map(|(s, flips)| {
                s.bytes()
                    .enumerate()
                    .filter(|(i, _)| flips & (1 << (i % 16)) == 0 || i % 3 != 0)
                    .map(|(i, c)| {
                        if flips & (1 << (i % 16)) != 0 && c.is_ascii_alphabetic() {
                            (c ^ 0x20) as char
                        } else {
                            c as char
                        }
                    })
                    .collect::<String>()
            }),
            "[a-zA-Z0-9_:/ =-]{0,3}",
        ];
        proptest::collection::vec(fragment, 0..12).prop_map(|v| v.concat())
    }

    proptest::proptest! {
        /// The packed searcher finds the same triggers, at the same places, as the automaton
        /// it replaces.
        #[test]
        fn packed_matcher_finds_what_the_automaton_finds(text in arb_trigger_text()) {
            let patterns: Vec<String> = triggers().into_iter().map(|(p, _)| p).collect();
            let patterns: Vec<&str> = patterns.iter().map(String::as_str).collect();
            let matcher = Matcher::try_new(&patterns)
                .map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            proptest::prop_assert!(matches!(matcher, Matcher::Packed(_)));
            let automaton = AhoCorasickBuilder::new()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&patterns)
                .map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            let want: Vec<_> = automaton.find_iter(&text).collect();
            let mut got = Vec::new();
            let mut at = 0;
            while let Some(m) = matcher.find_at(&text, at) {
                at = m.end();
                got.push(m);
            }
            proptest::prop_assert_eq!(got, want, "{}", text);
        }
    }

    #[test]
    fn secrets_are_replaced() {
        let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        let cases: Vec<(String, &str, &str)> = vec![
            (
                format!("token is {jwt} ok"),
                "token is [REDACTED:jwt] ok",
                "jwt",
            ),
            (
                "Authorization: Bearer abcdef123456789".into(),
                "Authorization: Bearer [REDACTED:bearer_token]",
                "bearer_token",
            ),
            (
                "key AKIAIOSFODNN7EXAMPLE used".into(),
                "key [REDACTED:aws_access_key] used",
                "aws_access_key",
            ),
            (
                "login password=hunter2 user=bob".into(),
                "login password=[REDACTED:password] user=bob",
                "password",
            ),
            (
                r#"{"db_password":"s3cr\"et","x":1}"#.into(),
                r#"{"db_password":"[REDACTED:password]","x":1}"#,
                "password",
            ),
            (
                "GET /cb?access_token=abc123&x=1".into(),
                "GET /cb?access_token=[REDACTED:token]&x=1",
                "token",
            ),
            (
                "key sk-proj-abcdefghij0123456789xyz end".into(),
                "key [REDACTED:api_key] end",
                "api_key",
            ),
            (
                "XAI key xai-AbCdEfGhIjKlMnOpQrStUv0123456789".into(),
                "XAI key [REDACTED:api_key]",
                "api_key",
            ),
            (
                "ghp_ABCDEFGHIJ0123456789abcdefghij".into(),
                "[REDACTED:api_key]",
                "api_key",
            ),
            (
                "paid with 4111 1111 1111 1111 today".into(),
                "paid with [REDACTED:card_number] today",
                "card_number",
            ),
            (
                r#"{"card": 4111111111111111, "n": [4111111111111111]}"#.into(),
                r#"{"card": "[REDACTED:card_number]", "n": ["[REDACTED:card_number]"]}"#,
                "card_number",
            ),
            (
                "postgres://app:pa55w0rd@db:5432/x".into(),
                "postgres://app:[REDACTED:password]@db:5432/x",
                "password",
            ),
            (
                "k=-----BEGIN RSA PRIVATE KEY-----\\nMIIEow\\n-----END RSA PRIVATE KEY----- done"
                    .into(),
                "k=[REDACTED:private_key] done",
                "private_key",
            ),
            (
                r#"{"msg":"{\"secret\":\"abc\"}"}"#.into(),
                r#"{"msg":"{\"secret\":\"[REDACTED:secret]\"}"}"#,
                "secret",
            ),
            (
                r#"{"accessToken":"abc.def","Password":"x"}"#.into(),
                r#"{"accessToken":"[REDACTED:token]","Password":"[REDACTED:password]"}"#,
                "token",
            ),
            (
                "API_KEY=abcdef0123 next".into(),
                "API_KEY=[REDACTED:api_key] next",
                "api_key",
            ),
            (
                "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG next".into(),
                "aws_secret_access_key=[REDACTED:secret] next",
                "secret",
            ),
            (
                r#"{"clientSecretKey": "abc"}"#.into(),
                r#"{"clientSecretKey": "[REDACTED:secret]"}"#,
                "secret",
            ),
        ];
        for (input, want, kind) in cases {
            let (got, kinds) = redact(&input);
            assert_eq!(got, want, "{input}");
            assert!(kinds.contains(&kind), "{input}: {kinds:?}");
        }
    }

    #[test]
    fn look_alikes_are_kept() {
        let cases = [
            "request 550e8400-e29b-41d4-a716-446655440000 done",
            "commit 4f3a2b1c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a",
            "order ORD-4111111111111111 shipped",
            "order_id=20241115-000123 total=59.90",
            "epoch 1731391316698 ns 1700000000000000000",
            "prompt_tokens=812 max_tokens=1024 tokenizer=cl100k",
            r#"{"usage":{"total_tokens":900,"token":12}}"#,
            "the password was rejected",
            "task-queue-worker-0123456789-abcdefghij",
            "phone +1 555 0100 2000",
            "2024-11-15 20:12:10,123 - app - INFO - ok",
            "a password: ****",
        ];
        for input in cases {
            let (got, kinds) = redact(input);
            assert_eq!(got, input, "{input} -> {kinds:?}");
        }
    }

    /// Regression (found by the structured round-trip proptest): a float epoch whose integer
    /// part passes Luhn was redacted, turning valid JSON into plain text.
    #[test]
    fn decimal_number_is_not_a_card() {
        let line = r#"{"time": 2633165881125.5596}"#;
        assert!(luhn(b"2633165881125"));
        let (got, kinds) = redact(line);
        assert_eq!(got, line, "{kinds:?}");
    }

    /// The SWAR skip finds exactly the first window of 13 card bytes.
    #[test]
    fn next_card_window_finds_the_first_window() {
        let naive = |b: &[u8], from: usize| {
            (from..b.len().saturating_sub(MIN_CARD_SPAN - 1)).find(|&p| {
                b[p..p + MIN_CARD_SPAN]
                    .iter()
                    .all(|c| CARD_CLASS[usize::from(*c)] != 0)
            })
        };
        let texts = [
            "",
            "4111111111111",
            "411111111111",
            "ab 4111 1111 1111 1111 cd",
            "x1234567-89012-3456789012y",
            "0123456789abcdef 0123456789012 - -",
            "\u{e9}1234567890123\u{e9}",
            "{\"request_id\": \"00000000000001e03660740359129bbd\"}",
        ];
        for t in texts {
            let b = t.as_bytes();
            for from in 0..=b.len() {
                assert_eq!(next_card_window(b, from), naive(b, from), "{t} from {from}");
            }
        }
    }

    proptest::proptest! {
        /// Same as above on generated text, non-ASCII bytes included.
        #[test]
        fn next_card_window_agrees_with_a_byte_scan(
            t in "[0-9 \\-]{0,20}([a-z.:\u{e9}\u{80}\u{ff}]{0,3}[0-9 \\-]{0,20}){0,6}",
            from in 0usize..140,
        ) {
            let b = t.as_bytes();
            let from = from.min(b.len());
            let naive = (from..b.len().saturating_sub(MIN_CARD_SPAN - 1)).find(|&p| {
                b[p..p + MIN_CARD_SPAN].iter().all(|c| CARD_CLASS[usize::from(*c)] != 0)
            });
            proptest::prop_assert_eq!(next_card_window(b, from), naive);
        }

        /// Skipping to the next window redacts exactly what looking at every byte does.
        #[test]
        fn card_scan_skip_changes_nothing(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Strategy::prop_map(
                        proptest::sample::select(vec![
                            "4111111111111111", "4111 1111 1111 1111", "4111-1111-1111-1111",
                            "378282246310005", "3782-822463-10005", "5555555555554444",
                            "2633165881125.5596", "ORD-4111111111111111", "0000000000000001e0",
                        ]),
                        str::to_owned,
                    ),
                    "[0-9 a-f.:,\"{}_#-]{0,12}",
                ],
                0..8,
            ),
        ) {
            let s = parts.concat();
            let every_byte = |_: &[u8], i: usize| Some(i + 1);
            let (mut k1, mut k2) = (Kinds::default(), Kinds::default());
            let skipped = redact_cards_with(&s, &mut k1, next_card_window);
            let visited = redact_cards_with(&s, &mut k2, every_byte);
            proptest::prop_assert_eq!(skipped, visited, "{}", s);
            proptest::prop_assert_eq!(k1, k2);
        }
    }

    #[test]
    fn luhn_check() {
        assert!(luhn(b"4111111111111111"));
        assert!(luhn(b"4111-1111-1111-1111"));
        assert!(!luhn(b"4111111111111112"));
    }

    #[test]
    fn disabled_is_identity() -> Result<(), ParseError> {
        let r = Redactor::try_new(&RedactionConfig {
            enabled: false,
            ..RedactionConfig::default()
        })?;
        let mut k = Kinds::default();
        assert_eq!(r.redact("password=x", &mut k), "password=x");
        assert!(k.is_empty());
        Ok(())
    }
}
