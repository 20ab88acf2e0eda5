//! HTTP access logs: nginx/Apache common and combined (with the ingress-nginx upstream tail)
//! and uvicorn's text access line. Hand-split with byte scans, no regex.

use schemas::LogEvent;
use serde_json::Value;

use crate::error::{Problem, Problems};
use crate::mapping::{client_ip, set_url, split_request_line};
use crate::{Format, level, time};

/// Length of an ingress-nginx `$req_id` (32 hex digits).
const REQ_ID_HEX: usize = 32;

fn token(s: &str) -> Option<(&str, &str)> {
    let end = s.find(' ')?;
    Some((&s[..end], &s[end + 1..]))
}

/// Reads a `"quoted"` field at the start of `s` (backslash escapes skipped); returns the
/// inside and the rest after the closing quote.
fn quoted(s: &str) -> Option<(&str, &str)> {
    let b = s.as_bytes();
    if b.first() != Some(&b'"') {
        return None;
    }
    let mut i = 1;
    while i < b.len() && b[i] != b'"' {
        i += if b[i] == b'\\' { 2 } else { 1 };
    }
    if i >= b.len() {
        return None;
    }
    Some((&s[1..i], &s[i + 1..]))
}

/// Parses `host ident user [date] "request" status bytes ["referer" "ua" [ingress tail]]`.
/// Returns `None` when the line is not an access log; a malformed request line still parses
/// (with [`Problem::AccessLogMalformed`]).
pub(crate) fn parse_clf(line: &str, ev: &mut LogEvent, problems: &mut Problems) -> Option<Format> {
    let first_line = line.lines().next().unwrap_or(line);
    let (host, rest) = token(first_line)?;
    let (_ident, rest) = token(rest)?;
    let (user, rest) = token(rest)?;
    let rest = rest.strip_prefix('[')?;
    let (ts, used) = time::parse_clf(rest.as_bytes())?;
    let rest = rest.get(used..)?.strip_prefix("] ")?;
    let (request, rest) = quoted(rest)?;
    let rest = rest.strip_prefix(' ')?;
    let (status, rest) = match rest.find(' ') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    let status: u16 = status.parse().ok().filter(|s| (100..=599).contains(s))?;
    let (bytes, rest) = match rest.find(' ') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    if bytes != "-" && !bytes.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }

    ev.timestamp = ts;
    ev.message = first_line.to_owned();
    ev.http.response.status_code = Some(status);
    ev.http.response.bytes = bytes.parse().ok();
    ev.log.level = Some(level::from_http_status(status));
    if let Some(ip) = client_ip(host) {
        ev.client.ip = Some(ip.to_owned());
    } else {
        ev.app
            .insert("remote_host".into(), Value::String(host.to_owned()));
    }
    if user != "-" {
        ev.user.name = Some(user.to_owned());
    }
    match split_request_line(request) {
        Some((method, target, version)) => {
            ev.http.request.method = Some(method.to_owned());
            set_url(ev, target);
            ev.http.version = version.map(str::to_owned);
        }
        None => {
            problems.add(Problem::AccessLogMalformed);
            if !request.is_empty() && request != "-" {
                ev.url.original = Some(request.to_owned());
            }
        }
    }
    let Some((referrer, rest)) = quoted(rest) else {
        ev.event.dataset = Some("apache.access".to_owned());
        return Some(Format::ApacheCommon);
    };
    if referrer != "-" && !referrer.is_empty() {
        ev.http.request.referrer = Some(referrer.to_owned());
    }
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    if let Some((ua, rest)) = quoted(rest) {
        if ua != "-" && !ua.is_empty() {
            ev.user_agent.original = Some(ua.to_owned());
        }
        ingress_tail(rest.trim(), ev);
    }
    ev.event.dataset = Some("nginx.access".to_owned());
    Some(Format::NginxCombined)
}

/// ingress-nginx appends `$request_length $request_time [$proxy_upstream_name]
/// [$proxy_alternative_upstream_name] $upstream_addr $upstream_response_length
/// $upstream_response_time $upstream_status $req_id`. The upstream fields can be lists
/// (`a, b`), so only the unambiguous ends are split; the middle is kept as one string.
fn ingress_tail(tail: &str, ev: &mut LogEvent) {
    if tail.is_empty() {
        return;
    }
    let mut rest = tail;
    if let Some((len, r)) = token(rest)
        && let Ok(n) = len.parse::<u64>()
    {
        ev.app.insert("request_length".into(), Value::from(n));
        rest = r;
        if let Some((t, r)) = token(rest)
            && let Some(ns) = crate::duration::from_str(t, crate::duration::DurUnit::Seconds)
        {
            ev.event.duration = Some(ns);
            rest = r;
        }
    }
    if let Some(r) = rest.strip_prefix('[')
        && let Some((name, r)) = r.split_once("] ")
    {
        if !name.is_empty() {
            ev.app
                .insert("upstream_name".into(), Value::String(name.to_owned()));
        }
        rest = r;
        if let Some(r2) = rest.strip_prefix('[')
            && let Some((_, r3)) = r2.split_once("] ")
        {
            rest = r3;
        }
    }
    let mut middle = rest.trim();
    if let Some((head, last)) = middle.rsplit_once(' ')
        && last.len() == REQ_ID_HEX
        && last.bytes().all(|c| c.is_ascii_hexdigit())
    {
        ev.app
            .insert("request_id".into(), Value::String(last.to_owned()));
        middle = head.trim();
    }
    if !middle.is_empty() {
        ev.app
            .insert("upstream".into(), Value::String(middle.to_owned()));
    }
}

/// uvicorn's access line after its level prefix: `10.0.0.1:5123 - "GET /api HTTP/1.1" 200 OK`.
/// Fills the HTTP fields; returns false when the text is not one.
pub(crate) fn uvicorn_body(body: &str, ev: &mut LogEvent) -> bool {
    let Some((client, rest)) = body.split_once(" - ") else {
        return false;
    };
    let Some((request, rest)) = quoted(rest) else {
        return false;
    };
    let status = rest.trim_start().split(' ').next().unwrap_or("");
    let Some(status) = status
        .parse::<u16>()
        .ok()
        .filter(|s| (100..=599).contains(s))
    else {
        return false;
    };
    let Some((method, target, version)) = split_request_line(request) else {
        return false;
    };
    ev.http.request.method = Some(method.to_owned());
    set_url(ev, target);
    if ev.http.version.is_none() {
        ev.http.version = version.map(str::to_owned);
    }
    ev.http.response.status_code = Some(status);
    if ev.client.ip.is_none()
        && let Some(ip) = client_ip(client.trim())
    {
        ev.client.ip = Some(ip.to_owned());
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    #[test]
    fn ingress_line() -> Result<(), String> {
        let line = r#"192.168.64.1 - - [07/Feb/2020:11:48:51 +0000] "POST /products?x=1 HTTP/1.1" 200 59 "-" "curl/7.54.0" 89 0.001 [default-web-8080] [] 172.17.0.5:8080 59 0.000 200 529a007902362a5f51385a5fa7049884"#;
        let mut ev = LogEvent::new(Utc::now(), "");
        let mut p = Problems::default();
        let f = parse_clf(line, &mut ev, &mut p).ok_or("not access")?;
        assert_eq!(f, Format::NginxCombined);
        assert_eq!(ev.http.request.method.as_deref(), Some("POST"));
        assert_eq!(ev.url.path.as_deref(), Some("/products"));
        assert_eq!(ev.url.query.as_deref(), Some("x=1"));
        assert_eq!(ev.http.response.status_code, Some(200));
        assert_eq!(ev.event.duration, Some(1_000_000));
        assert_eq!(ev.client.ip.as_deref(), Some("192.168.64.1"));
        assert_eq!(
            ev.app.get("request_id").and_then(Value::as_str),
            Some("529a007902362a5f51385a5fa7049884")
        );
        assert!(p.is_empty());
        Ok(())
    }

    #[test]
    fn common_and_malformed() -> Result<(), String> {
        let mut ev = LogEvent::new(Utc::now(), "");
        let mut p = Problems::default();
        let f = parse_clf(r#"206.5.78.142 - johndoe [15/Nov/2024:23:13:12 +0900] "DELETE /api/v1/orders HTTP/1.1" 403 1232"#, &mut ev, &mut p).ok_or("not access")?;
        assert_eq!(f, Format::ApacheCommon);
        assert_eq!(ev.user.name.as_deref(), Some("johndoe"));
        let mut ev = LogEvent::new(Utc::now(), "");
        let f = parse_clf(r#"1.2.3.4 - - [07/Feb/2020:11:49:50 +0000] "PATCHp /products/42 HTTP/1.1" 400 163 "-" "-""#, &mut ev, &mut p).ok_or("not access")?;
        assert_eq!(f, Format::NginxCombined);
        assert!(p.contains(Problem::AccessLogMalformed));
        assert_eq!(
            ev.url.original.as_deref(),
            Some("PATCHp /products/42 HTTP/1.1")
        );
        Ok(())
    }
}
