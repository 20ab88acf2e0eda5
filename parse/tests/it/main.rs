//! Integration tests of the `parse` crate: one binary, one module per area.

mod corpus;
mod formats;
mod fuzz_smoke;
mod props;
mod record;
mod redaction;

use chrono::{DateTime, Utc};
use parse::{ParseConfig, Parser};

/// A parser with the default configuration.
pub fn parser() -> Parser {
    Parser::try_new(&ParseConfig::default()).expect("the default config is valid")
}

/// A fixed fallback time, so tests do not depend on the clock.
pub fn fallback() -> DateTime<Utc> {
    utc("2026-12-04T12:00:00Z")
}

pub fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("test literal is RFC 3339")
        .with_timezone(&Utc)
}
