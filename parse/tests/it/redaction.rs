//! Redaction through the public API: each secret kind in the message, in a JSON field and in
//! a URL query is replaced and reported; look-alikes are left alone.

use schemas::LogEvent;

use crate::{fallback, parser};

fn parse(line: &str) -> LogEvent {
    parser().parse_line(line.as_bytes(), fallback())
}

/// (kind, secret as it appears, context word before it in a message).
fn secrets() -> Vec<(&'static str, &'static str, &'static str)> {
    vec![
        (
            "jwt",
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1LTE3IiwiZXhwIjoxNzY0ODQ0ODAwfQ.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg",
            "session",
        ),
        ("aws_access_key", "AKIAIOSFODNN7EXAMPLE", "key"),
        ("api_key", "xai-Zk3Qp9Lm2Xv8Rt4Wn6Yb1Hc5Jd7Fg0Ks", "key"),
        ("api_key", "sk-proj-4f8Kq2LmZx9Rt7Wv3Yn1Bc6Hd0Jg5Fs", "key"),
        ("api_key", "ghp_16C7e42F292c6912E7710c838347Ae178B4a", "key"),
        ("card_number", "4111111111111111", "card"),
        ("card_number", "5500 0000 0000 0004", "card"),
    ]
}

fn assert_clean(ev: &LogEvent, secret: &str, kind: &str, what: &str) -> anyhow::Result<()> {
    let json = serde_json::to_string(ev)?;
    assert!(!json.contains(secret), "{what}: secret survived: {json}");
    assert!(
        json.contains(&format!("[REDACTED:{kind}]")),
        "{what}: no marker: {json}"
    );
    assert!(
        ev.sluice.redacted.iter().any(|k| k == kind),
        "{what}: {:?}",
        ev.sluice.redacted
    );
    Ok(())
}

#[test]
fn each_kind_in_message_json_field_and_url_query() -> anyhow::Result<()> {
    for (kind, secret, word) in secrets() {
        let ev = parse(&format!(
            "2026-12-04 10:00:00,000 - app - INFO - using {word} {secret} now"
        ));
        assert_clean(&ev, secret, kind, "message")?;
        assert!(
            ev.message.ends_with(&format!("[REDACTED:{kind}] now")),
            "{}",
            ev.message
        );

        let ev = parse(&format!(
            r#"{{"msg":"login","{word}":"{secret}","user":"bob"}}"#
        ));
        assert_clean(&ev, secret, kind, "json field")?;
        assert_eq!(ev.user.name.as_deref(), Some("bob"));

        let ev = parse(&format!(
            r#"{{"msg":"req","method":"GET","path":"/cb?{word}={secret}&x=1","status":200}}"#
        ));
        assert_clean(&ev, secret, kind, "url query")?;
        assert_eq!(ev.url.path.as_deref(), Some("/cb"));
    }
    Ok(())
}

#[test]
fn key_value_secrets() -> anyhow::Result<()> {
    let cases = [
        (
            "password",
            r#"{"msg":"db connect","db_password":"hunter2!"}"#,
            "hunter2!",
        ),
        (
            "password",
            "level=info msg=connect password=hunter2",
            "hunter2",
        ),
        (
            "token",
            r#"{"msg":"cb","url":"https://api.example.com/cb?access_token=abc123def&state=1"}"#,
            "abc123def",
        ),
        (
            "secret",
            "client_secret=Zx81kq0 grant=client_credentials",
            "Zx81kq0",
        ),
        (
            "api_key",
            r#"{"msg":"call","headers":{"X-Api-Key":"k-77a1b2"}}"#,
            "k-77a1b2",
        ),
        (
            "bearer_token",
            r#"{"msg":"auth","authorization":"Bearer abcDEF123456789xyz"}"#,
            "abcDEF123456789xyz",
        ),
        (
            "password",
            "connecting to postgres://app:s3cretPass@db:5432/chat",
            "s3cretPass",
        ),
        (
            "private_key",
            r#"{"msg":"key","pem":"-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIB\n-----END EC PRIVATE KEY-----"}"#,
            "MHcCAQEEIB",
        ),
    ];
    let mut p = parser();
    for (kind, line, secret) in cases {
        let ev = p.parse_line(line.as_bytes(), fallback());
        assert_clean(&ev, secret, kind, line)?;
    }
    // The original, when kept, is the redacted text.
    let mut p = parse::Parser::try_new(&parse::ParseConfig {
        keep_original: parse::KeepOriginal::Always,
        ..parse::ParseConfig::default()
    })?;
    let ev = p.parse_line(b"password=hunter2 ok", fallback());
    assert_eq!(
        ev.event.original.as_deref(),
        Some("password=[REDACTED:password] ok")
    );
    Ok(())
}

#[test]
fn look_alikes_are_not_redacted() {
    let lines = [
        r#"{"msg":"order placed","order_id":"ORD-2026-000123","request_id":"550e8400-e29b-41d4-a716-446655440000"}"#,
        r#"{"msg":"deployed","git_sha":"9fceb02d0ae598e95dc970b74767f19372d61af8","build":"4111"}"#,
        r#"{"msg":"usage","prompt_tokens":812,"completion_tokens":95,"total_tokens":907}"#,
        "order 12345678901234 shipped to 10.42.0.7 at 1733306400123",
        "user reset their password successfully",
        r#"{"msg":"tokenizer loaded","tokenizer":"cl100k_base","vocab":100256}"#,
        "task-scheduler-worker-3 picked job disk-cleanup-20261204",
        "2026-12-04 10:15:02,481 - app - INFO - trace 4bf92f3577b34da6a3ce929d0e0e4736 span 00f067aa0ba902b7",
    ];
    let mut p = parser();
    for line in lines {
        let ev = p.parse_line(line.as_bytes(), fallback());
        assert!(
            ev.sluice.redacted.is_empty(),
            "{line} -> {:?}",
            ev.sluice.redacted
        );
        let json = serde_json::to_string(&ev).unwrap_or_default();
        assert!(!json.contains("REDACTED"), "{json}");
    }
}

#[test]
fn redaction_can_be_turned_off() -> anyhow::Result<()> {
    let config = parse::ParseConfig {
        redaction: parse::RedactionConfig {
            enabled: false,
            ..parse::RedactionConfig::default()
        },
        ..parse::ParseConfig::default()
    };
    let mut p = parse::Parser::try_new(&config)?;
    let ev = p.parse_line(b"level=info password=hunter2", fallback());
    assert!(ev.sluice.redacted.is_empty());
    assert_eq!(ev.app.get("password"), Some(&serde_json::json!("hunter2")));
    Ok(())
}
