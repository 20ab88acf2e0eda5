//! Security detections over the public corpora in `../shared/corpora/security`:
//! fail2ban's labelled filter lines (per-line offender recall and false positives) and
//! CrowdSec's hub scenario tests (alert counts per offender).
//!
//! The raw lines (syslog, Apache/nginx access and error logs, Caddy/Traefik JSON, ALB, Zoraxy)
//! are turned into events by `raw_to_event`, a test-only stand-in for the `parse` crate that
//! extracts just the fields the detector reads.
//!
//! Run with `--nocapture` to see the per-filter and per-scenario tables.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use detect::security::{
    ALERT_BRUTE_FORCE, ALERT_CREDENTIAL_STUFFING, ALERT_DISTRIBUTED_BRUTE_FORCE,
    ALERT_HTTP_PROBING, ALERT_SCANNER, ALERT_SENSITIVE_FILE_PROBE, ALERT_WEB_ATTACK, LABEL_ATTACK,
    LABEL_CLIENT_IP, SecurityConfig, SecurityDetector, parse_ip_token,
};
use regex::Regex;
use schemas::{Alert, LogEvent};

/// Year given to syslog timestamps, which carry none.
const SYSLOG_YEAR: i32 = 2024;

fn corpora() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpora/security")
}

fn corpora_present() -> bool {
    let root = corpora();
    if root.is_dir() {
        return true;
    }
    println!("skipping: corpora not found at {}", root.display());
    false
}

struct Patterns {
    access: Regex,
    syslog: Regex,
    iso_syslog: Regex,
    apache_error: Regex,
    error_path: Regex,
    nginx_error: Regex,
    nginx_request: Regex,
    zoraxy: Regex,
    alb: Regex,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| {
        let re = |s: &str| Regex::new(s).expect("test regex compiles");
        Patterns {
            access: re(
                r#"^(?:\S+ )?([0-9a-fA-F:.]+) \S+ (\S+) \[([^\]]+)\] (?:\S+ )?"((?:[^"\\]|\\.)*)" (\d{3}) \S+(?: "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)")?"#,
            ),
            syslog: re(r"^(\w{3}) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2}) (.*)$"),
            iso_syslog: re(r"^(?:<\d+>\d? ?)?(\d{4}-\d{2}-\d{2}T[0-9:.]+(?:Z|[+-]\d{2}:\d{2})) (.*)$"),
            apache_error: re(r"^\[(\w{3} \w{3} \d{2} \d{2}:\d{2}:\d{2})(?:\.\d+)? (\d{4})\] (.*)$"),
            error_path: re(
                r"(?:File does not exist|script not found or unable to stat|script '([^']+)' not found or unable to stat|stderr from ([^:\s]+): script not found|Invalid URI in request)(?::? (\S+))?",
            ),
            nginx_error: re(r#"^(?:.*?: )?(\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}) \[\w+\] (.*)$"#),
            nginx_request: re(r#"client: ([^,]+), .*request: "([^"]*)""#),
            zoraxy: re(
                r"\[client: ([^\]]+)\] \[useragent: ([^\]]*)\] (\S+) (\S+) (\d{3})",
            ),
            alb: re(
                r#"^\S+ (\S+) \S+ (\S+) \S+ \S+ \S+ \S+ (\d{3}) \S+ \S+ \S+ "(\S+) (\S+) [^"]*" "([^"]*)""#,
            ),
        }
    })
}

fn set_target(ev: &mut LogEvent, target: &str) {
    let target = if let Some(rest) = target
        .strip_prefix("http://")
        .or(target.strip_prefix("https://"))
    {
        rest.find('/').map_or("/", |i| &rest[i..])
    } else {
        target
    };
    match target.split_once('?') {
        Some((p, q)) => {
            ev.url.path = Some(p.to_string());
            ev.url.query = Some(q.to_string());
        }
        None => ev.url.path = Some(target.to_string()),
    }
    ev.url.original = Some(target.to_string());
}

fn set_request(ev: &mut LogEvent, request: &str) {
    let mut parts = request.splitn(3, ' ');
    match (parts.next(), parts.next()) {
        (Some(method), Some(target)) if method.bytes().all(|b| b.is_ascii_uppercase()) => {
            ev.http.request.method = Some(method.to_string());
            set_target(ev, target);
        }
        // A malformed request line: what was sent is the only "path" there is.
        _ => ev.url.path = Some(request.to_string()),
    }
}

fn syslog_time(month: &str, day: &str, h: &str, m: &str, s: &str) -> DateTime<Utc> {
    let text = format!("{SYSLOG_YEAR} {month} {day} {h}:{m}:{s}");
    NaiveDateTime::parse_from_str(&text, "%Y %b %d %H:%M:%S")
        .map(|t| Utc.from_utc_datetime(&t))
        .unwrap_or_default()
}

/// The message part of a syslog line: after `program[pid]: ` or `program: `.
fn syslog_message(rest: &str) -> &str {
    for marker in ["]: ", "] ", ": "] {
        if let Some(i) = rest.find(marker) {
            return &rest[i + marker.len()..];
        }
    }
    rest
}

fn json_event(line: &str, fallback: DateTime<Utc>) -> Option<LogEvent> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let ts = v
        .get("ts")
        .and_then(|t| t.as_f64())
        .and_then(|t| DateTime::from_timestamp_millis((t * 1000.0) as i64))
        .or_else(|| {
            v.get("time")
                .and_then(|t| t.as_str())
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc))
        })
        .unwrap_or(fallback);
    let msg = v.get("msg").and_then(|m| m.as_str()).unwrap_or("");
    let mut ev = LogEvent::new(ts, msg);
    if let Some(req) = v.get("request") {
        // Caddy
        ev.client.ip = req
            .get("client_ip")
            .or(req.get("remote_ip"))
            .and_then(|x| x.as_str())
            .map(String::from);
        if let Some(uri) = req.get("uri").and_then(|x| x.as_str()) {
            set_target(&mut ev, uri);
        }
        ev.user_agent.original = req
            .pointer("/headers/User-Agent/0")
            .and_then(|x| x.as_str())
            .map(String::from);
        ev.http.response.status_code = v.get("status").and_then(|s| s.as_u64()).map(|s| s as u16);
    } else if let Some(host) = v.get("ClientHost").and_then(|x| x.as_str()) {
        // Traefik
        ev.client.ip = Some(host.to_string());
        if let Some(p) = v.get("RequestPath").and_then(|x| x.as_str()) {
            set_target(&mut ev, p);
        }
        ev.http.response.status_code = v
            .get("DownstreamStatus")
            .and_then(|s| s.as_u64())
            .map(|s| s as u16);
        ev.user_agent.original = v
            .get("request_User-Agent")
            .and_then(|x| x.as_str())
            .map(String::from);
    }
    Some(ev)
}

/// A raw line as the event `parse` would produce, as far as the security detector reads it.
fn raw_to_event(line: &str, fallback: DateTime<Utc>) -> LogEvent {
    let p = patterns();
    let line = line.trim_end_matches(['\r', '\n']);
    if line.starts_with('{')
        && let Some(ev) = json_event(line, fallback)
    {
        return ev;
    }
    if let Some(c) = p.access.captures(line)
        && parse_ip_token(&c[1]).is_some()
    {
        let ts = DateTime::parse_from_str(&c[3], "%d/%b/%Y:%H:%M:%S %z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(fallback);
        let mut ev = LogEvent::new(ts, line);
        ev.client.ip = Some(c[1].to_string());
        if &c[2] != "-" {
            ev.user.name = Some(c[2].to_string());
        }
        set_request(&mut ev, &c[4]);
        ev.http.response.status_code = c[5].parse().ok();
        if let Some(r) = c.get(6).filter(|r| r.as_str() != "-") {
            ev.http.request.referrer = Some(r.as_str().to_string());
        }
        if let Some(ua) = c.get(7).filter(|r| r.as_str() != "-") {
            ev.user_agent.original = Some(ua.as_str().to_string());
        }
        return ev;
    }
    if let Some(c) = p.alb.captures(line) {
        let ts = DateTime::parse_from_rfc3339(&c[1])
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(fallback);
        let mut ev = LogEvent::new(ts, line);
        ev.client.ip = parse_ip_token(&c[2]).map(String::from);
        ev.http.response.status_code = c[3].parse().ok();
        ev.http.request.method = Some(c[4].to_string());
        set_target(&mut ev, &c[5]);
        ev.user_agent.original = Some(c[6].to_string());
        return ev;
    }
    if let Some(c) = p.zoraxy.captures(line) {
        let ts = NaiveDateTime::parse_from_str(&line[..19.min(line.len())], "%Y/%m/%d %H:%M:%S")
            .map(|t| Utc.from_utc_datetime(&t))
            .unwrap_or(fallback);
        let mut ev = LogEvent::new(ts, line);
        ev.client.ip = Some(c[1].trim().to_string());
        ev.user_agent.original = Some(c[2].to_string());
        ev.http.request.method = Some(c[3].to_string());
        set_target(&mut ev, &c[4]);
        ev.http.response.status_code = c[5].parse().ok();
        return ev;
    }
    if let Some(c) = p.apache_error.captures(line) {
        let ts =
            NaiveDateTime::parse_from_str(&format!("{} {}", &c[1], &c[2]), "%a %b %d %H:%M:%S %Y")
                .map(|t| Utc.from_utc_datetime(&t))
                .unwrap_or(fallback);
        let body = &c[3];
        let mut ev = LogEvent::new(ts, body);
        if let Some(e) = p.error_path.captures(body) {
            // "File does not exist" is the error log's 404 for a path.
            if let Some(path) = e.get(1).or(e.get(2)).or(e.get(3)) {
                ev.url.path = Some(path.as_str().to_string());
                ev.http.response.status_code = Some(404);
                if let Some(i) = body.find("[client ") {
                    let rest = &body[i + 8..];
                    let tok = rest.split(']').next().unwrap_or("");
                    ev.client.ip = parse_ip_token(tok).map(String::from);
                }
            }
        }
        return ev;
    }
    if let Some(c) = p.nginx_error.captures(line) {
        let ts = NaiveDateTime::parse_from_str(&c[1], "%Y/%m/%d %H:%M:%S")
            .map(|t| Utc.from_utc_datetime(&t))
            .unwrap_or(fallback);
        let body = &c[2];
        let mut ev = LogEvent::new(ts, body);
        // nginx's error log names the request and client of a missing or forbidden file.
        let status = if body.contains("No such file or directory") || body.contains("is not found")
        {
            Some(404)
        } else if body.contains("access forbidden by rule") {
            Some(403)
        } else {
            None
        };
        if let (Some(status), Some(r)) = (status, p.nginx_request.captures(body)) {
            ev.client.ip = parse_ip_token(&r[1]).map(String::from);
            set_request(&mut ev, &r[2]);
            ev.http.response.status_code = Some(status);
        }
        return ev;
    }
    if let Some(c) = p.syslog.captures(line) {
        let ts = syslog_time(&c[1], &c[2], &c[3], &c[4], &c[5]);
        return LogEvent::new(ts, syslog_message(&c[6]));
    }
    if let Some(c) = p.iso_syslog.captures(line) {
        let ts = DateTime::parse_from_rfc3339(&c[1])
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(fallback);
        return LogEvent::new(ts, syslog_message(&c[2]));
    }
    LogEvent::new(fallback, line)
}

fn epoch() -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(SYSLOG_YEAR, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| Utc.from_utc_datetime(&t))
        .unwrap_or_default()
}

#[test]
fn raw_to_event_extracts_fields() {
    let ev = raw_to_event(
        r#"127.0.0.1 - - [29/Sep/2021:14:11:34 +0200] "GET /a?b=1 HTTP/1.1" 404 10 "-" "Nikto""#,
        epoch(),
    );
    assert_eq!(ev.client.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(ev.url.path.as_deref(), Some("/a"));
    assert_eq!(ev.url.query.as_deref(), Some("b=1"));
    assert_eq!(ev.http.response.status_code, Some(404));
    assert_eq!(ev.user_agent.original.as_deref(), Some("Nikto"));
    let ev = raw_to_event(
        "Feb 12 14:10:21 sd-126005 sshd[16378]: Invalid user pascal from 35.188.49.176 port 53502",
        epoch(),
    );
    assert_eq!(
        ev.message,
        "Invalid user pascal from 35.188.49.176 port 53502"
    );
    assert_eq!(ev.timestamp.to_rfc3339(), "2024-02-12T14:10:21+00:00");
}

// ---------------------------------------------------------------------------------------------
// fail2ban

/// Filters whose lines mean something the detector looks for, and which signal family a
/// `match: true` line should raise.
const FAIL2BAN_FILTERS: &[(&str, Family)] = &[
    ("sshd", Family::Auth),
    ("apache-auth", Family::Auth),
    ("nginx-http-auth", Family::Auth),
    ("apache-botsearch", Family::Probe),
    ("nginx-botsearch", Family::Probe),
    ("apache-noscript", Family::Probe),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Auth,
    Probe,
}

#[derive(Debug, Default)]
struct Tally {
    positives: usize,
    hits: usize,
    wrong_offender: usize,
    negatives: usize,
    false_positives: usize,
}

#[test]
fn fail2ban_lines_name_the_offender() -> anyhow::Result<()> {
    if !corpora_present() {
        return Ok(());
    }
    let path = corpora().join("fail2ban_filter_tests/fail2ban_labeled_lines.jsonl");
    let text = std::fs::read_to_string(&path)?;
    let det = SecurityDetector::try_new(&SecurityConfig::default())?;
    let mut tallies: Vec<(&str, Tally)> = FAIL2BAN_FILTERS
        .iter()
        .map(|(f, _)| (*f, Tally::default()))
        .collect();
    let mut misses = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line)?;
        let filter = v["filter"].as_str().unwrap_or("");
        let Some(idx) = FAIL2BAN_FILTERS.iter().position(|(f, _)| *f == filter) else {
            continue;
        };
        let family = FAIL2BAN_FILTERS[idx].1;
        let raw = v["line"].as_str().unwrap_or("");
        let fail = &v["failJSON"];
        let ev = raw_to_event(raw, epoch());
        let ins = det.inspect(&ev);
        let flagged = match family {
            Family::Auth => ins.auth_failure,
            Family::Probe => ins.sensitive_probe || ins.not_found_probe || !ins.attacks.is_empty(),
        };
        let t = &mut tallies[idx].1;
        if fail["match"].as_bool() == Some(true) {
            t.positives += 1;
            let host = fail["host"].as_str();
            if flagged && ins.client_ip.is_some() && ins.client_ip == host {
                t.hits += 1;
            } else {
                if flagged && ins.client_ip.is_some() {
                    t.wrong_offender += 1;
                }
                misses.push(format!(
                    "{filter}: want {host:?} got {:?}: {raw}",
                    ins.client_ip
                ));
            }
        } else {
            t.negatives += 1;
            if ins.is_suspicious() {
                t.false_positives += 1;
                misses.push(format!("{filter}: FALSE POSITIVE: {raw}"));
            }
        }
    }
    println!(
        "{:<18} {:>5} {:>5} {:>7} {:>6} {:>5}",
        "filter", "pos", "hits", "recall", "neg", "FP"
    );
    let (mut pos, mut hits, mut neg, mut fp, mut wrong) = (0, 0, 0, 0, 0);
    for (f, t) in &tallies {
        println!(
            "{:<18} {:>5} {:>5} {:>7.3} {:>6} {:>5}",
            f,
            t.positives,
            t.hits,
            t.hits as f64 / t.positives.max(1) as f64,
            t.negatives,
            t.false_positives
        );
        pos += t.positives;
        hits += t.hits;
        neg += t.negatives;
        fp += t.false_positives;
        wrong += t.wrong_offender;
    }
    let recall = hits as f64 / pos.max(1) as f64;
    println!(
        "{:<18} {pos:>5} {hits:>5} {recall:>7.3} {neg:>6} {fp:>5}",
        "total"
    );
    println!("flagged with a wrong offender: {wrong}");
    for m in &misses {
        println!("  {m}");
    }
    // Floors set from the measured result (see the table): a regression shows up here.
    assert!(recall >= 0.75, "recall {recall:.3}");
    assert_eq!(wrong, 0, "a flagged line must name the right offender");
    assert!(
        fp as f64 <= 0.15 * neg as f64,
        "{fp} false positives of {neg}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// CrowdSec

/// A CrowdSec hub test, the alert it corresponds to here, and the expected count.
struct CrowdsecCase {
    test: &'static str,
    alerts: &'static [&'static str],
    attack: Option<&'static str>,
    expected: usize,
}

const fn case(
    test: &'static str,
    alerts: &'static [&'static str],
    attack: Option<&'static str>,
    expected: usize,
) -> CrowdsecCase {
    CrowdsecCase {
        test,
        alerts,
        attack,
        expected,
    }
}

const BRUTE: &[&str] = &[
    ALERT_BRUTE_FORCE,
    ALERT_CREDENTIAL_STUFFING,
    ALERT_DISTRIBUTED_BRUTE_FORCE,
];

/// The scenario tests with a counterpart here; `expected` is `len(results)` of the test's
/// `scenario.assert` (0 for the parser-only tests, which must stay quiet).
const CROWDSEC_CASES: &[CrowdsecCase] = &[
    // brute force: ssh-bf expects the bruteforce and the user-enumeration overflow
    case("ssh-bf", BRUTE, None, 2),
    case("ssh-slow-bf", BRUTE, None, 1),
    case("sshd-invalid-bf", BRUTE, None, 1),
    case("caddy-basic-auth-bf", BRUTE, None, 1),
    // probing
    case(
        "http-admin-interface-probing",
        &[ALERT_SENSITIVE_FILE_PROBE],
        None,
        1,
    ),
    case(
        "apache2-http-sensitive-files",
        &[ALERT_SENSITIVE_FILE_PROBE],
        None,
        1,
    ),
    case(
        "http-wordpress-scan",
        &[ALERT_SENSITIVE_FILE_PROBE],
        None,
        2,
    ),
    case(
        "nginx-http-path-traversal",
        &[ALERT_WEB_ATTACK],
        Some("path_traversal"),
        1,
    ),
    case(
        "bunkerweb-http-path-traversal",
        &[ALERT_WEB_ATTACK],
        Some("path_traversal"),
        1,
    ),
    case(
        "nginx-http-sqli-probing",
        &[ALERT_WEB_ATTACK],
        Some("sqli"),
        1,
    ),
    case(
        "nginx-http-xss-probing",
        &[ALERT_WEB_ATTACK],
        Some("xss"),
        1,
    ),
    case("nginx-http-malformed", &[ALERT_HTTP_PROBING], None, 1),
    case("apache2-malformed", &[ALERT_HTTP_PROBING], None, 1),
    case(
        "nginx-proxy-manager-malformed",
        &[ALERT_HTTP_PROBING],
        None,
        1,
    ),
    // bad user agents
    case("nginx-bad-user-agent", &[ALERT_SCANNER], None, 1),
    case("zoraxy-http-bad-user-agent", &[ALERT_SCANNER], None, 1),
    case("aws-alb-http-bad-user-agent", &[ALERT_SCANNER], None, 1),
];

/// Parser-only tests of ordinary traffic: no security alert of any kind may fire.
const CROWDSEC_QUIET: &[&str] = &[
    "sshd-logs-fp",
    "sshd-success-logs",
    "nginx_http-logs",
    "syslog-logs",
    "pam-logs",
    "nginx-mail-logs",
    // Not `traefik_json`: two of its six requests carry the Nikto user agent, and `Scanner`
    // rightly fires on them (the CrowdSec test only checks parsing).
    "cri-logs",
];

fn run_crowdsec_test(name: &str) -> anyhow::Result<Option<Vec<Alert>>> {
    let dir = corpora().join("crowdsec_hub_tests/tests").join(name);
    if !dir.is_dir() {
        return Ok(None);
    }
    let mut logs: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    let mut det = SecurityDetector::try_new(&SecurityConfig::default())?;
    let mut out = Vec::new();
    for log in logs {
        let bytes = std::fs::read(&log)?;
        let text = String::from_utf8_lossy(&bytes);
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let ev = raw_to_event(line, epoch() + chrono::Duration::seconds(i as i64));
            det.process(&ev, &mut out);
        }
    }
    Ok(Some(out))
}

#[test]
fn crowdsec_scenarios_fire_expected_counts() -> anyhow::Result<()> {
    if !corpora_present() {
        return Ok(());
    }
    let mut failures = Vec::new();
    let (mut expected_total, mut matched_total, mut extra_total) = (0usize, 0usize, 0usize);
    println!(
        "{:<32} {:>8} {:>6} {:>6}  offenders",
        "test", "expected", "got", "other"
    );
    for c in CROWDSEC_CASES {
        let Some(alerts) = run_crowdsec_test(c.test)? else {
            failures.push(format!("{}: test folder missing", c.test));
            continue;
        };
        let (relevant, other): (Vec<&Alert>, Vec<&Alert>) = alerts.iter().partition(|a| {
            c.alerts.contains(&a.name())
                && c.attack
                    .is_none_or(|k| a.labels.get(LABEL_ATTACK).is_some_and(|v| v == k))
        });
        let offenders: Vec<&str> = relevant
            .iter()
            .filter_map(|a| a.labels.get(LABEL_CLIENT_IP).map(String::as_str))
            .collect();
        println!(
            "{:<32} {:>8} {:>6} {:>6}  {:?}",
            c.test,
            c.expected,
            relevant.len(),
            other.len(),
            offenders
        );
        expected_total += c.expected;
        matched_total += relevant.len().min(c.expected);
        extra_total += relevant.len().saturating_sub(c.expected);
        if relevant.len() != c.expected {
            failures.push(format!(
                "{}: expected {} got {}: {:?}",
                c.test,
                c.expected,
                relevant.len(),
                relevant.iter().map(|a| &a.labels).collect::<Vec<_>>()
            ));
        }
    }
    let mut quiet_alerts = 0usize;
    for name in CROWDSEC_QUIET {
        let Some(alerts) = run_crowdsec_test(name)? else {
            continue;
        };
        println!("{:<32} {:>8} {:>6}", name, 0, alerts.len());
        quiet_alerts += alerts.len();
        if !alerts.is_empty() {
            failures.push(format!(
                "{name}: expected no alert, got {:?}",
                alerts.iter().map(|a| &a.labels).collect::<Vec<_>>()
            ));
        }
    }
    println!(
        "expected alerts {expected_total}, fired {matched_total} (recall {:.3}), extra {extra_total}, alerts on quiet traffic {quiet_alerts}",
        matched_total as f64 / expected_total.max(1) as f64
    );
    assert!(failures.is_empty(), "{failures:#?}");
    Ok(())
}
