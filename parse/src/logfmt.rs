//! logfmt (`time=... level=info msg="hello world" k=v`), as logrus, Go kit, Heroku and
//! Prometheus print it, plus the key/value tail of structured klog lines.

use std::borrow::Cow;

use crate::mapping::{Collector, JVal};

/// Fewest `key=value` pairs for a line without a well-known key to count as logfmt; prose
/// with one `a=b` in it stays plain text.
const MIN_PAIRS_WITHOUT_KNOWN_KEY: usize = 3;

/// One `key=value` pair, borrowing unless the value had escapes.
pub(crate) type Pair<'a> = (&'a str, Cow<'a, str>, bool);

/// Splits `text` into pairs; returns `None` when a token is not `key=value` (then the line
/// is not logfmt). The flag says the value was quoted (so it stays a string).
pub(crate) fn pairs(text: &str) -> Option<Vec<Pair<'_>>> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(8);
    let mut i = 0;
    loop {
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let ks = i;
        while i < b.len() && b[i] != b'=' && b[i] != b' ' && b[i] != b'"' {
            i += 1;
        }
        if i == ks || b.get(i) != Some(&b'=') {
            return None;
        }
        let key = &text[ks..i];
        i += 1;
        if b.get(i) == Some(&b'"') {
            i += 1;
            let vs = i;
            let mut escaped = false;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    escaped = true;
                    i += 1;
                }
                i += 1;
            }
            if i > b.len() {
                return None;
            }
            let raw = &text[vs..i.min(b.len())];
            let val = if escaped {
                Cow::Owned(unescape(raw))
            } else {
                Cow::Borrowed(raw)
            };
            out.push((key, val, true));
            i += 1;
            if i < b.len() && b[i] != b' ' {
                return None;
            }
        } else {
            let vs = i;
            while i < b.len() && b[i] != b' ' {
                i += 1;
            }
            out.push((key, Cow::Borrowed(&text[vs..i]), false));
        }
    }
    Some(out)
}

fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// True when the pairs look like a logfmt record rather than prose.
pub(crate) fn is_logfmt(pairs: &[Pair<'_>]) -> bool {
    let known = pairs.iter().any(|(k, _, _)| {
        matches!(
            k.to_ascii_lowercase().as_str(),
            "level" | "lvl" | "msg" | "message" | "time" | "ts" | "t" | "timestamp" | "severity"
        )
    });
    (known && pairs.len() >= 2) || pairs.len() >= MIN_PAIRS_WITHOUT_KNOWN_KEY
}

/// Offers the pairs to the collector; unquoted numbers and booleans become JSON numbers and
/// booleans so `app` stays typed.
pub(crate) fn offer<'a>(pairs: Vec<Pair<'a>>, c: &mut Collector<'a>) {
    for (k, v, quoted) in pairs {
        c.offer(Cow::Borrowed(k), typed(v, quoted));
    }
}

fn typed(v: Cow<'_, str>, quoted: bool) -> JVal<'_> {
    if !quoted {
        if let Ok(i) = v.parse::<i64>() {
            return JVal::I(i);
        }
        if v.contains('.')
            && v.bytes()
                .all(|c| c.is_ascii_digit() || c == b'.' || c == b'-')
            && let Ok(f) = v.parse::<f64>()
        {
            return JVal::F(f);
        }
        match v.as_ref() {
            "true" => return JVal::Bool(true),
            "false" => return JVal::Bool(false),
            _ => {}
        }
    }
    JVal::Str(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_pairs() -> Result<(), String> {
        let p = pairs(r#"time="2021-09-15T21:17:10Z" level=error msg="a \"b\"" reason= n=3"#)
            .ok_or("not logfmt")?;
        assert_eq!(p.len(), 5);
        assert_eq!(p[2].1, "a \"b\"");
        assert_eq!(p[3].1, "");
        assert!(is_logfmt(&p));
        assert!(pairs("hello world x=1").is_none());
        // An unterminated quote takes the rest of the line rather than failing.
        let p = pairs(r#"k="unterminated x=1"#).ok_or("not logfmt")?;
        assert_eq!(p[0].1, "unterminated x=1");
        Ok(())
    }
}
