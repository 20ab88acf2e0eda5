//! Fuzzing support shared by the cargo-fuzz targets in `fuzz/` and the stable-toolchain
//! smoke test (`tests/it/fuzz_smoke.rs`): one [`Target`] per format, each wrapping the fuzz
//! bytes in that format's prefix so mutations reach deep into its parser instead of being
//! rejected by format detection.

use chrono::{DateTime, TimeZone, Utc};
use schemas::LogEvent;

use crate::Parser;

/// One fuzz target: a format-shaped prefix and seed bodies that follow it.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// Target name (the cargo-fuzz target is `parse_<name>`).
    pub name: &'static str,
    /// Bytes put before the fuzz input.
    pub prefix: &'static str,
    /// Valid bodies to start mutating from.
    pub seeds: &'static [&'static str],
}

/// Every target, one per format family.
pub const TARGETS: &[Target] = &[
    Target {
        name: "json",
        prefix: "{\"",
        seeds: &[
            r#"asctime": "2026-12-04 10:15:02,481", "levelname": "INFO", "name": "uvicorn.access", "message": "10.42.0.7:51234 - \"POST /api/chat HTTP/1.1\" 200", "client_addr": "10.42.0.7:51234", "method": "POST", "path": "/api/chat", "status_code": 200, "duration_ms": 153.2}"#,
            r#"level":50,"time":1733306400000,"msg":"boom","err":{"type":"TypeError","message":"m","stack":"TypeError: m\n    at f (a.js:1:1)"},"req":{"method":"GET","url":"/x?y=1","headers":{"user-agent":"curl"}},"res":{"statusCode":500}}"#,
            r#"@t":"2024-11-12T16:36:11.376149+09:00","@l":"ERR","@mt":"Failed {Id}","@x":{"Type":"E","Message":"m","StackTrace":"   at A.B()"},"Level":{"Name":"DEBUG"},"instant":{"epochSecond":1663977609,"nanoOfSecond":1}}"#,
            r#"password":"hunter2","token":12,"url":"https://u:p@h/p?access_token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig&card=4111111111111111"}"#,
        ],
    },
    Target {
        name: "logfmt",
        prefix: "time=2026-12-04T10:00:00Z ",
        seeds: &[
            r#"level=warning msg="disk \"almost\" full" mount=/data used_pct=91.5 duration=1.2s status=503"#,
            "lvl=error err=\"boom\" method=GET path=/a?b=c client_ip=10.0.0.1:80",
        ],
    },
    Target {
        name: "access",
        prefix: "10.42.0.1 - - [04/Dec/2026:10:15:02 +0000] \"",
        seeds: &[
            r#"GET /api/chat?x=1 HTTP/1.1" 502 150 "-" "python-httpx/0.27.0" 312 0.052 [default-chat-8000] [] 10.42.1.9:8000, 10.42.1.10:8000 0, 0 0.051, 0.001 502, 200 0be411044cb1cb67580e115413b2da60"#,
            r#"PATCHp /x HTTP/1.1" 400 0"#,
        ],
    },
    Target {
        name: "uvicorn",
        prefix: "INFO:     ",
        seeds: &[
            r#"10.42.0.7:51234 - "GET /healthz HTTP/1.1" 200 OK"#,
            "Started server process [1]",
        ],
    },
    Target {
        name: "python",
        prefix: "2026-12-04 10:15:02,481 - ",
        seeds: &[
            "app.db - ERROR - connection refused\nTraceback (most recent call last):\n  File \"a.py\", line 1, in <module>\nValueError: bad",
            "app - INFO - ok",
        ],
    },
    Target {
        name: "klog",
        prefix: "E1204 10:15:02.481019      10 ",
        seeds: &[
            r#"authentication.go:73] "Unable to authenticate the request" err="[invalid bearer token, unknown]" n=3"#,
            "controller.go:42] plain message",
        ],
    },
    Target {
        name: "syslog",
        prefix: "<",
        seeds: &[
            r#"165>1 2003-10-11T22:14:15.003Z host app 99 ID47 [ex@32473 iut="3" x="]"] msg"#,
            "13>Dec  4 10:15:02 node-1 sshd[812]: Failed password for root",
        ],
    },
    Target {
        name: "plain",
        prefix: "",
        seeds: &[
            "2026-12-04T10:15:02.481Z ERROR worker crashed\njava.lang.IllegalStateException: x\n\tat a.B.c(B.java:1)",
            "panic: runtime error\n\ngoroutine 1 [running]:\nmain.main()",
        ],
    },
];

/// The fixed fallback time fuzzing uses, so runs are reproducible.
pub fn fallback_time() -> DateTime<Utc> {
    Utc.timestamp_opt(1_764_844_800, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Runs one input through `target`'s format: prefix + data.
pub fn run(parser: &mut Parser, target: &Target, data: &[u8]) -> LogEvent {
    let mut line = Vec::with_capacity(target.prefix.len() + data.len());
    line.extend_from_slice(target.prefix.as_bytes());
    line.extend_from_slice(data);
    parser.parse_line(&line, fallback_time())
}

/// The invariants every event must hold, whatever the input: it serializes, reads back
/// equal, names a known format, and never carries a secret marker without its kind.
///
/// # Errors
/// A description of the first broken invariant.
pub fn check(ev: &LogEvent) -> Result<(), String> {
    let json = serde_json::to_string(ev).map_err(|e| format!("does not serialize: {e}"))?;
    let back: LogEvent =
        serde_json::from_str(&json).map_err(|e| format!("does not read back: {e}: {json}"))?;
    if &back != ev {
        return Err(format!("round trip changed the event: {json}"));
    }
    let known = ev
        .sluice
        .format
        .as_deref()
        .is_some_and(|f| crate::Format::ALL.iter().any(|k| k.as_str() == f));
    if !known {
        return Err(format!("unknown format {:?}", ev.sluice.format));
    }
    if json.contains("[REDACTED:") && ev.sluice.redacted.is_empty() {
        return Err(format!("redaction marker without a kind: {json}"));
    }
    Ok(())
}
