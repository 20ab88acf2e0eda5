//! Line-oriented text formats: Python `logging` defaults, uvicorn's level-prefixed lines,
//! klog, syslog (RFC 3164 and 5424) and plain text with an optional timestamp and level.

use chrono::{DateTime, Utc};
use schemas::{Level, LogEvent};
use serde_json::Value;

use crate::mapping::Collector;
use crate::{Format, access, level, logfmt, time};

/// Python's level names, as `logging` prints them.
fn python_level(word: &str) -> Option<Level> {
    Some(match word {
        "DEBUG" => Level::Debug,
        "INFO" => Level::Info,
        "WARNING" | "WARN" => Level::Warn,
        "ERROR" => Level::Error,
        "CRITICAL" | "FATAL" => Level::Fatal,
        _ => return None,
    })
}

/// `LEVEL:` prefixes: uvicorn (`INFO:     msg`, access or not) and `logging.basicConfig`'s
/// `%(levelname)s:%(name)s:%(message)s`.
pub(crate) fn level_prefixed(line: &str, ev: &mut LogEvent) -> Option<Format> {
    let (word, rest) = line.split_once(':')?;
    let lvl = python_level(word)?;
    ev.log.level = Some(lvl);
    if let Some(body) = rest.strip_prefix(' ') {
        // uvicorn pads the level to a fixed width: `INFO:     `.
        let body = body.trim_start();
        ev.message = body.to_owned();
        if access::uvicorn_body(body.lines().next().unwrap_or(body), ev) {
            ev.event.dataset = Some("uvicorn.access".to_owned());
            return Some(Format::UvicornAccess);
        }
        return Some(Format::PythonLogging);
    }
    let (name, message) = rest.split_once(':')?;
    if name.contains(char::is_whitespace) {
        return None;
    }
    if !name.is_empty() {
        ev.log.logger = Some(name.to_owned());
    }
    ev.message = message.to_owned();
    Some(Format::PythonLogging)
}

/// `%(asctime)s - %(name)s - %(levelname)s - %(message)s` (the logging cookbook format) and
/// gunicorn's `[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s`.
pub(crate) fn python_asctime(line: &str, ev: &mut LogEvent) -> Option<Format> {
    let b = line.as_bytes();
    if b.first() == Some(&b'[') {
        let (ts, used) = time::parse_iso(&b[1..])?;
        let rest = line.get(1 + used..)?.strip_prefix("] [")?;
        let (pid, rest) = rest.split_once("] [")?;
        let (word, message) = rest.split_once("] ")?;
        let lvl = python_level(word)?;
        if !pid.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        ev.timestamp = ts;
        ev.log.level = Some(lvl);
        ev.message = message.to_owned();
        ev.app.insert("pid".into(), Value::String(pid.to_owned()));
        return Some(Format::PythonLogging);
    }
    let (ts, used) = time::parse_iso(b)?;
    let rest = line.get(used..)?.strip_prefix(" - ")?;
    let (name, rest) = rest.split_once(" - ")?;
    let (word, message) = rest.split_once(" - ")?;
    let lvl = python_level(word)?;
    if name.contains(char::is_whitespace) {
        return None;
    }
    ev.timestamp = ts;
    ev.log.level = Some(lvl);
    ev.log.logger = Some(name.to_owned());
    ev.message = message.to_owned();
    Some(Format::PythonLogging)
}

/// klog: `I0211 10:00:00.123456    1 file.go:12] msg`, where a structured message is a quoted
/// string followed by `key=value` pairs. The year is the fallback time's.
pub(crate) fn klog<'a>(
    line: &'a str,
    ev: &mut LogEvent,
    fallback: DateTime<Utc>,
    c: &mut Collector<'a>,
) -> Option<Format> {
    let b = line.as_bytes();
    let lvl = match b.first()? {
        b'I' => Level::Info,
        b'W' => Level::Warn,
        b'E' => Level::Error,
        b'F' => Level::Fatal,
        _ => return None,
    };
    if b.len() < 22 || b[5] != b' ' || b[8] != b':' || b[11] != b':' || b[14] != b'.' {
        return None;
    }
    let num = |at: usize, n: usize| -> Option<u32> { line.get(at..at + n)?.parse().ok() };
    let (month, day) = (num(1, 2)?, num(3, 2)?);
    let (hour, min, sec) = (num(6, 2)?, num(9, 2)?, num(12, 2)?);
    let frac_end = 15 + b[15..].iter().take_while(|c| c.is_ascii_digit()).count();
    let frac = &line[15..frac_end];
    let nanos =
        frac.parse::<u32>().ok()? * 10u32.pow(9u32.saturating_sub(frac.len() as u32).min(9));
    let ts = time::with_guessed_year(fallback, month, day, hour, min, sec, nanos)?;
    let rest = line[frac_end..].trim_start();
    let (thread, rest) = rest.split_once(' ')?;
    if !thread.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (caller, msg) = rest
        .split_once("] ")
        .or_else(|| rest.strip_suffix(']').map(|r| (r, "")))?;
    ev.timestamp = ts;
    ev.log.level = Some(lvl);
    ev.app
        .insert("caller".into(), Value::String(caller.to_owned()));
    ev.app
        .insert("thread_id".into(), Value::String(thread.to_owned()));
    // Structured klog: `"quoted message" k1="v1" k2=v2`.
    if msg.starts_with('"')
        && let Some(end) = closing_quote(msg)
    {
        let message = &msg[1..end];
        if let Some(pairs) = logfmt::pairs(msg[end + 1..].trim()) {
            ev.message = if message.contains('\\') {
                serde_json::from_str::<String>(&msg[..=end]).unwrap_or_else(|_| message.to_owned())
            } else {
                message.to_owned()
            };
            logfmt::offer(pairs, c);
            return Some(Format::Klog);
        }
    }
    ev.message = msg.to_owned();
    Some(Format::Klog)
}

fn closing_quote(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// Syslog: `<PRI>1 TS HOST APP PROCID MSGID [SD] MSG` (RFC 5424) or
/// `[<PRI>]Mmm dd HH:MM:SS HOST TAG[PID]: MSG` (RFC 3164, as sshd writes to auth.log).
pub(crate) fn syslog(line: &str, ev: &mut LogEvent, fallback: DateTime<Utc>) -> Option<Format> {
    let mut rest = line;
    let mut pri: Option<u8> = None;
    if let Some(r) = rest.strip_prefix('<') {
        let (p, r) = r.split_once('>')?;
        let p: u16 = p.parse().ok().filter(|p| *p <= 191)?;
        pri = Some(p as u8);
        rest = r;
    }
    if let Some(r) = rest.strip_prefix("1 ")
        && pri.is_some()
    {
        return syslog_5424(r, pri, ev);
    }
    let (ts, used) = time::parse_syslog_date(rest.as_bytes(), fallback)?;
    let rest = rest.get(used..)?.strip_prefix(' ')?;
    let (host, rest) = rest.split_once(' ')?;
    let (tag, msg) = match rest.split_once(": ") {
        Some((t, m)) if !t.contains(' ') => (Some(t), m),
        _ => (None, rest),
    };
    ev.timestamp = ts;
    ev.message = msg.to_owned();
    ev.app
        .insert("hostname".into(), Value::String(host.to_owned()));
    if let Some(tag) = tag {
        let (name, pid) = match tag.split_once('[') {
            Some((n, p)) => (n, p.strip_suffix(']')),
            None => (tag, None),
        };
        ev.app
            .insert("process".into(), Value::String(name.to_owned()));
        if let Some(pid) = pid {
            ev.app.insert("pid".into(), Value::String(pid.to_owned()));
        }
    }
    set_syslog_level(ev, pri);
    Some(Format::SyslogRfc3164)
}

fn set_syslog_level(ev: &mut LogEvent, pri: Option<u8>) {
    ev.log.level = match pri {
        Some(p) => Some(level::from_syslog_severity(p & 7)),
        None => level::find_in_prefix(&ev.message).map(|(l, _)| l),
    };
    if let Some(p) = pri {
        ev.app.insert("syslog_facility".into(), Value::from(p >> 3));
    }
}

fn syslog_5424(rest: &str, pri: Option<u8>, ev: &mut LogEvent) -> Option<Format> {
    let mut it = rest.splitn(6, ' ');
    let ts = it.next()?;
    let host = it.next()?;
    let app = it.next()?;
    let procid = it.next()?;
    let msgid = it.next()?;
    let tail = it.next().unwrap_or("");
    if ts != "-" {
        ev.timestamp = time::parse_str(ts)?;
    }
    // Structured data: `-` or one or more `[id k="v"]` blocks.
    let msg = if let Some(m) = tail.strip_prefix('-') {
        m.strip_prefix(' ').unwrap_or(m)
    } else if tail.starts_with('[') {
        let b = tail.as_bytes();
        let mut i = 0;
        let mut in_quotes = false;
        while i < b.len() {
            match b[i] {
                b'\\' => i += 1,
                b'"' => in_quotes = !in_quotes,
                b']' if !in_quotes && b.get(i + 1) != Some(&b'[') => {
                    i += 1;
                    break;
                }
                _ => {}
            }
            i += 1;
        }
        let sd = &tail[..i.min(tail.len())];
        ev.app
            .insert("structured_data".into(), Value::String(sd.to_owned()));
        tail.get(i..).unwrap_or("").trim_start()
    } else {
        tail
    };
    // A UTF-8 BOM may start the message.
    ev.message = msg.trim_start_matches('\u{feff}').to_owned();
    for (k, v) in [
        ("hostname", host),
        ("process", app),
        ("pid", procid),
        ("msgid", msgid),
    ] {
        if v != "-" {
            ev.app.insert(k.into(), Value::String(v.to_owned()));
        }
    }
    set_syslog_level(ev, pri);
    Some(Format::SyslogRfc5424)
}

/// Plain text: the whole record is the message; a leading timestamp (ISO, optionally in
/// brackets) and a level word in the prefix are picked up when present.
pub(crate) fn plain(line: &str, ev: &mut LogEvent) -> Format {
    let b = line.as_bytes();
    let skip = usize::from(b.first() == Some(&b'['));
    if b.get(skip).is_some_and(u8::is_ascii_digit)
        && let Some((ts, _)) = time::parse_iso(&b[skip..])
    {
        ev.timestamp = ts;
    }
    ev.log.level = level::find_in_prefix(line).map(|(l, _)| l);
    ev.message = line.to_owned();
    Format::Plain
}

/// Cheap test for a logfmt record before splitting it.
pub(crate) fn maybe_logfmt(line: &str) -> Option<Vec<logfmt::Pair<'_>>> {
    let first = line.split(' ').next()?;
    let eq = first.find('=')?;
    if eq == 0 || first[..eq].contains(['"', '[', '{']) {
        return None;
    }
    let pairs = logfmt::pairs(line)?;
    logfmt::is_logfmt(&pairs).then_some(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Problems;
    use crate::mapping::Limits;

    fn ev() -> LogEvent {
        LogEvent::new(Utc::now(), "")
    }

    #[test]
    fn python_forms() -> Result<(), String> {
        let mut e = ev();
        assert_eq!(
            level_prefixed("ERROR:app.db:connection lost", &mut e),
            Some(Format::PythonLogging)
        );
        assert_eq!(e.log.logger.as_deref(), Some("app.db"));
        assert_eq!(e.message, "connection lost");
        let mut e = ev();
        let f = level_prefixed(
            r#"INFO:     10.0.0.1:5123 - "GET /api/chat?q=1 HTTP/1.1" 200 OK"#,
            &mut e,
        );
        assert_eq!(f, Some(Format::UvicornAccess));
        assert_eq!(e.url.path.as_deref(), Some("/api/chat"));
        assert_eq!(e.client.ip.as_deref(), Some("10.0.0.1"));
        let mut e = ev();
        assert_eq!(
            level_prefixed("INFO:     Started server process [1]", &mut e),
            Some(Format::PythonLogging)
        );
        assert_eq!(e.message, "Started server process [1]");
        let mut e = ev();
        let f = python_asctime(
            "2024-11-15 20:12:10,123 - app.chat - WARNING - slow upstream",
            &mut e,
        );
        assert_eq!(f, Some(Format::PythonLogging));
        assert_eq!(e.log.level, Some(Level::Warn));
        assert_eq!(e.timestamp.to_rfc3339(), "2024-11-15T20:12:10.123+00:00");
        let mut e = ev();
        let f = python_asctime(
            "[2024-11-15 20:12:10 +0000] [7] [INFO] Booting worker with pid: 7",
            &mut e,
        );
        assert_eq!(f, Some(Format::PythonLogging));
        Ok(())
    }

    #[test]
    fn klog_structured() -> Result<(), String> {
        let line = r#"E0807 11:44:13.481019      10 authentication.go:73] "Unable to authenticate the request" err="[invalid bearer token, unknown]""#;
        let mut e = ev();
        let limits = Limits {
            max_depth: 8,
            max_fields: 100,
            max_field_bytes: 1000,
        };
        let mut c = Collector::new(limits, Problems::default(), Default::default());
        let fallback = DateTime::parse_from_rfc3339("2026-12-04T00:00:00Z")
            .map_err(|e| e.to_string())?
            .with_timezone(&Utc);
        assert_eq!(klog(line, &mut e, fallback, &mut c), Some(Format::Klog));
        assert_eq!(e.message, "Unable to authenticate the request");
        assert_eq!(e.log.level, Some(Level::Error));
        assert_eq!(e.timestamp.to_rfc3339(), "2026-08-07T11:44:13.481019+00:00");
        let ts = e.timestamp;
        c.finish(&mut e, ts);
        assert_eq!(
            e.error.message.as_deref(),
            Some("[invalid bearer token, unknown]")
        );
        Ok(())
    }

    #[test]
    fn syslog_forms() {
        let now = Utc::now();
        let mut e = ev();
        let f = syslog(
            "Feb  7 11:48:51 web1 sshd[1234]: Failed password for root from 1.2.3.4 port 22 ssh2",
            &mut e,
            now,
        );
        assert_eq!(f, Some(Format::SyslogRfc3164));
        assert_eq!(e.app.get("process").and_then(Value::as_str), Some("sshd"));
        assert!(e.message.starts_with("Failed password"));
        let mut e = ev();
        let f = syslog(
            r#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3"] An application event"#,
            &mut e,
            now,
        );
        assert_eq!(f, Some(Format::SyslogRfc5424));
        assert_eq!(e.message, "An application event");
        assert_eq!(e.log.level, Some(Level::Info));
    }
}
