//! Table tests per format on fixtures written here, shaped like what our FastAPI workload and
//! common Kubernetes components print; plus the awkward inputs every parser must survive.

use parse::{KeepOriginal, ParseConfig, Parser, Problem};
use schemas::{Level, LogEvent};

use crate::{fallback, parser, utc};

fn parse(line: &str) -> LogEvent {
    parser().parse_line(line.as_bytes(), fallback())
}

fn format(ev: &LogEvent) -> &str {
    ev.sluice.format.as_deref().unwrap_or("")
}

#[test]
fn fastapi_uvicorn_json_access() {
    let ev = parse(
        r#"{"asctime": "2026-12-04 10:15:02,481", "levelname": "INFO", "name": "uvicorn.access", "message": "10.42.0.7:51234 - \"POST /api/chat?stream=true HTTP/1.1\" 200", "client_addr": "10.42.0.7:51234", "method": "POST", "path": "/api/chat", "status_code": 200, "duration_ms": 153.2}"#,
    );
    assert_eq!(format(&ev), "json");
    assert_eq!(ev.timestamp, utc("2026-12-04T10:15:02.481Z"));
    assert_eq!(ev.log.level, Some(Level::Info));
    assert_eq!(ev.log.logger.as_deref(), Some("uvicorn.access"));
    assert_eq!(ev.http.request.method.as_deref(), Some("POST"));
    assert_eq!(ev.url.path.as_deref(), Some("/api/chat"));
    assert_eq!(ev.http.response.status_code, Some(200));
    assert_eq!(ev.client.ip.as_deref(), Some("10.42.0.7"));
    assert_eq!(ev.event.duration, Some(153_200_000));
    assert!(ev.app.is_empty(), "{:?}", ev.app);
    assert!(ev.sluice.errors.is_empty());
}

#[test]
fn uvicorn_json_with_http_only_in_the_message() {
    let ev = parse(
        r#"{"asctime": "2026-12-04 10:15:02,481", "levelname": "INFO", "name": "uvicorn.access", "message": "10.42.0.7:51234 - \"GET /healthz HTTP/1.1\" 204"}"#,
    );
    assert_eq!(ev.http.request.method.as_deref(), Some("GET"));
    assert_eq!(ev.url.path.as_deref(), Some("/healthz"));
    assert_eq!(ev.http.response.status_code, Some(204));
    assert_eq!(ev.client.ip.as_deref(), Some("10.42.0.7"));
}

#[test]
fn fastapi_structlog_json() {
    let ev = parse(
        r#"{"event": "chat completion finished", "level": "warning", "timestamp": "2026-12-04T10:15:03.123456Z", "logger": "app.chat", "user_id": "u-17", "model": "grok-4", "prompt_tokens": 812, "duration": 2.5, "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "service": "chat-api"}"#,
    );
    assert_eq!(format(&ev), "json");
    assert_eq!(ev.message, "chat completion finished");
    assert_eq!(ev.log.level, Some(Level::Warn));
    assert_eq!(ev.timestamp, utc("2026-12-04T10:15:03.123456Z"));
    assert_eq!(ev.event.duration, Some(2_500_000_000));
    assert_eq!(
        ev.trace.id.as_deref(),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    assert_eq!(ev.service.name.as_deref(), Some("chat-api"));
    assert_eq!(ev.app.get("prompt_tokens"), Some(&serde_json::json!(812)));
    assert_eq!(ev.app.get("model"), Some(&serde_json::json!("grok-4")));
    assert!(
        ev.sluice.redacted.is_empty(),
        "token counts are not secrets"
    );
}

#[test]
fn json_exception_fields() {
    let ev = parse(
        r#"{"asctime": "2026-12-04 10:15:04,000", "levelname": "ERROR", "name": "app", "message": "upstream failed", "exc_info": "Traceback (most recent call last):\n  File \"/app/main.py\", line 10, in chat\n    raise ValueError(\"bad model\")\nValueError: bad model"}"#,
    );
    assert_eq!(ev.message, "upstream failed");
    assert_eq!(ev.error.kind.as_deref(), Some("ValueError"));
    assert_eq!(ev.error.message.as_deref(), Some("bad model"));
    assert!(
        ev.error
            .stack_trace
            .as_deref()
            .is_some_and(|s| s.starts_with("Traceback"))
    );
    let ev = parse(
        r#"{"level":50,"msg":"boom","err":{"type":"TypeError","message":"x is undefined","stack":"TypeError: x is undefined\n    at f (/app/a.js:1:1)"},"time":1733306400000}"#,
    );
    assert_eq!(ev.log.level, Some(Level::Error));
    assert_eq!(ev.error.kind.as_deref(), Some("TypeError"));
    assert_eq!(ev.timestamp, utc("2024-12-04T10:00:00Z"));
}

#[test]
fn mongodb_and_rails_shapes() {
    let ev = parse(
        r#"{"t":{"$date":"2022-07-28T18:00:00.903+02:00"},"s":"I","c":"ACCESS","msg":"Authentication failed","attr":{"remote":"127.0.0.1:4071"}}"#,
    );
    assert_eq!(ev.timestamp, utc("2022-07-28T16:00:00.903Z"));
    assert!(ev.sluice.errors.is_empty(), "{:?}", ev.sluice.errors);
    let ev = parse(
        r#"{"method":"POST","path":"/users/sign_in","status":0,"params":[{"key":"user","value":{"password":"[FILTERED]"}}]}"#,
    );
    assert!(
        ev.sluice.redacted.is_empty(),
        "an app's own mask is not a secret"
    );
    assert_eq!(ev.url.path.as_deref(), Some("/users/sign_in"));
}

#[test]
fn text_formats_table() {
    struct Case {
        line: &'static str,
        format: &'static str,
        level: Option<Level>,
        message: &'static str,
    }
    let cases = [
        Case {
            line: r#"10.42.0.1 - - [04/Dec/2026:10:15:02 +0000] "GET /api/chat HTTP/1.1" 502 150 "-" "python-httpx/0.27.0" 312 0.052 [default-chat-8000] [] 10.42.1.9:8000 0 0.051 502 0be411044cb1cb67580e115413b2da60"#,
            format: "nginx_combined",
            level: Some(Level::Error),
            message: r#"10.42.0.1 - - [04/Dec/2026:10:15:02 +0000] "GET /api/chat HTTP/1.1" 502 150 "-" "python-httpx/0.27.0" 312 0.052 [default-chat-8000] [] 10.42.1.9:8000 0 0.051 502 0be411044cb1cb67580e115413b2da60"#,
        },
        Case {
            line: r#"INFO:     10.42.0.7:51234 - "GET /healthz HTTP/1.1" 200 OK"#,
            format: "uvicorn_access",
            level: Some(Level::Info),
            message: r#"10.42.0.7:51234 - "GET /healthz HTTP/1.1" 200 OK"#,
        },
        Case {
            line: "INFO:     Application startup complete.",
            format: "python_logging",
            level: Some(Level::Info),
            message: "Application startup complete.",
        },
        Case {
            line: "WARNING:app.chat:model overloaded, retrying",
            format: "python_logging",
            level: Some(Level::Warn),
            message: "model overloaded, retrying",
        },
        Case {
            line: "2026-12-04 10:15:02,481 - app.db - ERROR - connection refused",
            format: "python_logging",
            level: Some(Level::Error),
            message: "connection refused",
        },
        Case {
            line: "I1204 10:15:02.481000       1 controller.go:42] Reconciled deployment",
            format: "klog",
            level: Some(Level::Info),
            message: "Reconciled deployment",
        },
        Case {
            line: "Dec  4 10:15:02 node-1 sshd[812]: Failed password for invalid user admin from 203.0.113.9 port 52211 ssh2",
            format: "syslog_rfc3164",
            level: None,
            message: "Failed password for invalid user admin from 203.0.113.9 port 52211 ssh2",
        },
        Case {
            line: "<34>1 2026-12-04T10:15:02Z node-1 kubelet 99 - - Pod sandbox changed",
            format: "syslog_rfc5424",
            level: Some(Level::Fatal),
            message: "Pod sandbox changed",
        },
        Case {
            line: r#"time="2026-12-04T10:15:02Z" level=warning msg="disk almost full" mount=/data used_pct=91.5"#,
            format: "logfmt",
            level: Some(Level::Warn),
            message: "disk almost full",
        },
        Case {
            line: "2026-12-04T10:15:02.481Z ERROR  worker crashed",
            format: "plain",
            level: Some(Level::Error),
            message: "2026-12-04T10:15:02.481Z ERROR  worker crashed",
        },
        Case {
            line: "just some words",
            format: "plain",
            level: None,
            message: "just some words",
        },
    ];
    let mut p = parser();
    for c in cases {
        let ev = p.parse_line(c.line.as_bytes(), fallback());
        assert_eq!(format(&ev), c.format, "{}", c.line);
        assert_eq!(ev.log.level, c.level, "{}", c.line);
        assert_eq!(ev.message, c.message, "{}", c.line);
    }
}

#[test]
fn multi_line_traces_map_to_error_fields() {
    let py = "Traceback (most recent call last):\n  File \"/app/main.py\", line 3, in <module>\n    main()\nKeyError: 'user'";
    let ev = parse(py);
    assert_eq!(ev.log.level, Some(Level::Error));
    assert_eq!(ev.error.kind.as_deref(), Some("KeyError"));
    assert_eq!(ev.error.message.as_deref(), Some("'user'"));
    assert_eq!(ev.error.stack_trace.as_deref(), Some(py));
    let java = "2026-12-04 10:15:02.481 [main] ERROR c.e.Api - request failed\njava.lang.NullPointerException: user is null\n\tat com.example.Api.handle(Api.java:42)\n\tat com.example.Main.main(Main.java:7)";
    let ev = parse(java);
    assert_eq!(
        ev.error.kind.as_deref(),
        Some("java.lang.NullPointerException")
    );
    assert_eq!(ev.error.message.as_deref(), Some("user is null"));
    assert_eq!(
        ev.message,
        "2026-12-04 10:15:02.481 [main] ERROR c.e.Api - request failed"
    );
    assert_eq!(ev.log.level, Some(Level::Error));
    assert_eq!(ev.timestamp, utc("2026-12-04T10:15:02.481Z"));
}

#[test]
fn awkward_inputs_never_drop_the_record() {
    let mut p = parser();
    // Invalid JSON keeps the text and says why.
    let ev = p.parse_line(br#"{"level":"info","msg":"cut here"#, fallback());
    assert_eq!(format(&ev), "plain");
    assert_eq!(ev.sluice.errors, vec!["json_invalid"]);
    assert_eq!(ev.tags, vec![parse::TAG_PARSE_FAILURE]);
    assert_eq!(
        ev.event.original.as_deref(),
        Some(r#"{"level":"info","msg":"cut here"#)
    );
    // CRLF and empty lines.
    let ev = p.parse_line(b"{\"msg\":\"crlf\"}\r\n", fallback());
    assert_eq!(ev.message, "crlf");
    let ev = p.parse_line(b"", fallback());
    assert_eq!(ev.message, "");
    assert_eq!(ev.timestamp, fallback());
    // Invalid UTF-8 is decoded lossily and flagged.
    let ev = p.parse_line(b"bad \xff\xfe bytes", fallback());
    assert_eq!(ev.message, "bad \u{fffd}\u{fffd} bytes");
    assert!(ev.sluice.errors.contains(&"invalid_utf8".to_string()));
    // A 20 KiB line survives whole.
    let long = format!(r#"{{"msg":"{}"}}"#, "x".repeat(20 * 1024));
    let ev = p.parse_line(long.as_bytes(), fallback());
    assert_eq!(ev.message.len(), 20 * 1024);
    // An unreadable timestamp falls back to the runtime's time and is kept under app.
    let ev = p.parse_line(br#"{"time":"yesterday","msg":"m"}"#, fallback());
    assert_eq!(ev.timestamp, fallback());
    assert_eq!(ev.app.get("time"), Some(&serde_json::json!("yesterday")));
    assert!(ev.sluice.errors.contains(&"timestamp_invalid".to_string()));
    assert_eq!(p.stats().problem_count(Problem::JsonInvalid), 1);
    assert_eq!(p.stats().problem_count(Problem::InvalidUtf8), 1);
}

#[test]
fn limits_cut_app_and_keep_the_original() -> anyhow::Result<()> {
    let config = ParseConfig {
        max_json_depth: 2,
        max_fields: 3,
        max_field_bytes: 64,
        ..ParseConfig::default()
    };
    let mut p = Parser::try_new(&config)?;
    let ev = p.parse_line(br#"{"msg":"deep","a":{"b":{"c":{"d":1}}}}"#, fallback());
    assert_eq!(
        ev.app.get("a"),
        Some(&serde_json::json!({"b": "{\"c\":{\"d\":1}}"}))
    );
    assert!(
        ev.sluice
            .errors
            .contains(&"json_depth_exceeded".to_string())
    );
    assert!(ev.event.original.is_some());
    let ev = p.parse_line(
        br#"{"msg":"wide","a":1,"b":2,"c":3,"d":4,"e":5}"#,
        fallback(),
    );
    assert_eq!(ev.app.len(), 3);
    assert!(ev.sluice.errors.contains(&"too_many_fields".to_string()));
    assert!(ev.tags.contains(&parse::TAG_TRUNCATED.to_string()));
    let long = format!(r#"{{"msg":"big","blob":"{}"}}"#, "é".repeat(100));
    let ev = p.parse_line(long.as_bytes(), fallback());
    let blob = ev.app.get("blob").and_then(|v| v.as_str()).unwrap_or("");
    assert!(blob.len() <= 64 && blob.chars().all(|c| c == 'é'), "{blob}");
    assert!(ev.sluice.errors.contains(&"field_truncated".to_string()));
    Ok(())
}

#[test]
fn keep_original_modes() -> anyhow::Result<()> {
    let line = br#"{"msg":"fine"}"#;
    let mut p = parser();
    assert_eq!(p.parse_line(line, fallback()).event.original, None);
    let mut p = Parser::try_new(&ParseConfig {
        keep_original: KeepOriginal::Always,
        ..ParseConfig::default()
    })?;
    assert_eq!(
        p.parse_line(line, fallback()).event.original.as_deref(),
        Some(r#"{"msg":"fine"}"#)
    );
    let mut p = Parser::try_new(&ParseConfig {
        keep_original: KeepOriginal::Never,
        ..ParseConfig::default()
    })?;
    assert_eq!(p.parse_line(b"{broken", fallback()).event.original, None);
    Ok(())
}

#[test]
fn stats_render_as_prometheus_text() {
    let mut p = parser();
    p.parse_line(br#"{"msg":"a","password":"x"}"#, fallback());
    p.parse_line(b"plain words", fallback());
    let mut out = String::new();
    p.stats().render_prometheus(&mut out);
    assert!(
        out.contains("sluice_parse_records_total{format=\"json\"} 1"),
        "{out}"
    );
    assert!(
        out.contains("sluice_parse_records_total{format=\"plain\"} 1"),
        "{out}"
    );
    assert!(
        out.contains("sluice_parse_redactions_total{kind=\"password\"} 1"),
        "{out}"
    );
    assert_eq!(p.stats().records, 2);
}
