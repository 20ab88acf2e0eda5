//! Sluice's parser: one container log record in, one ECS [`schemas::LogEvent`] out.
//! Synchronous and pure (no I/O, no threads), so it is easy to benchmark, fuzz and test.
//!
//! - [`Parser`] detects the record's [`Format`] (JSON from ~15 logging libraries, logfmt,
//!   nginx/Apache access logs, uvicorn, Python `logging`, klog, syslog, plain text), maps it
//!   to ECS fields, and redacts secrets before anything else reads the text.
//! - [`ParseConfig`] sets redaction and the limits on what lands under `app`.
//! - [`ParseStats`] counts records per format, problems per error code and secrets per kind.
//!
//! Parsing never fails: a record that does not parse as its detected format still becomes an
//! event, tagged, with its error code in `sluice.errors` and its text in `event.original`.
//!
//! ```
//! use parse::{ParseConfig, Parser};
//! let mut parser = Parser::try_new(&ParseConfig::default()).expect("default config is valid");
//! let ev = parser.parse_line(
//!     br#"{"time":"2026-12-04T10:00:00Z","level":"warn","msg":"slow","duration_ms":1500}"#,
//!     chrono::Utc::now(),
//! );
//! assert_eq!(ev.message, "slow");
//! assert_eq!(ev.log.level, Some(schemas::Level::Warn));
//! assert_eq!(ev.event.duration, Some(1_500_000_000));
//! assert_eq!(ev.sluice.format.as_deref(), Some("json"));
//! ```

mod access;
mod config;
mod duration;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod json;
mod level;
mod logfmt;
mod mapping;
mod redact;
mod stack;
mod stats;
mod text;
mod time;

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use schemas::{Level, LogEvent, RawRecord};

pub use config::{KeepOriginal, ParseConfig, RedactionConfig};
pub use error::{ParseError, Problem};
pub use redact::KIND_NAMES as REDACTION_KINDS;
pub use stats::ParseStats;

use error::Problems;
use mapping::{Collector, KeyCache, Limits};
use redact::{Kinds, Redactor};

/// Tag on events whose record did not parse as its detected format.
pub const TAG_PARSE_FAILURE: &str = "sluice_parse_failure";
/// Tag on events where a limit cut or left out part of the record.
pub const TAG_TRUNCATED: &str = "sluice_truncated";
/// Tag on events whose own timestamp was unreadable (the runtime's time was used).
pub const TAG_TIMESTAMP_FALLBACK: &str = "sluice_timestamp_fallback";
/// Tag on events whose text was not valid UTF-8.
pub const TAG_INVALID_UTF8: &str = "sluice_invalid_utf8";

/// The record formats the parser recognises; [`Format::as_str`] is written to `sluice.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Json,
    Logfmt,
    NginxCombined,
    ApacheCommon,
    UvicornAccess,
    PythonLogging,
    Klog,
    SyslogRfc3164,
    SyslogRfc5424,
    Plain,
}

impl Format {
    /// Every format, in a stable order.
    pub const ALL: [Format; 10] = [
        Format::Json,
        Format::Logfmt,
        Format::NginxCombined,
        Format::ApacheCommon,
        Format::UvicornAccess,
        Format::PythonLogging,
        Format::Klog,
        Format::SyslogRfc3164,
        Format::SyslogRfc5424,
        Format::Plain,
    ];

    /// The name written to `sluice.format` and used as the metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Logfmt => "logfmt",
            Format::NginxCombined => "nginx_combined",
            Format::ApacheCommon => "apache_common",
            Format::UvicornAccess => "uvicorn_access",
            Format::PythonLogging => "python_logging",
            Format::Klog => "klog",
            Format::SyslogRfc3164 => "syslog_rfc3164",
            Format::SyslogRfc5424 => "syslog_rfc5424",
            Format::Plain => "plain",
        }
    }
}

/// Turns records into events. One per thread: it keeps counters and is not `Sync`-shared.
#[derive(Debug)]
pub struct Parser {
    config: ParseConfig,
    redactor: Redactor,
    stats: ParseStats,
    /// Key meanings seen so far, lent to each record's collector.
    key_cache: KeyCache,
}

impl Parser {
    /// Builds a parser.
    ///
    /// # Errors
    /// [`ParseError::InvalidConfig`] when the config does not validate.
    pub fn try_new(config: &ParseConfig) -> Result<Parser, ParseError> {
        config.validate()?;
        Ok(Parser {
            config: config.clone(),
            redactor: Redactor::try_new(&config.redaction)?,
            stats: ParseStats::default(),
            key_cache: KeyCache::default(),
        })
    }

    /// One shipped record → one event. Never fails and never panics: problems become tags,
    /// `sluice.errors` codes and counters.
    ///
    /// Sets `event.id` from the record's source, `sluice.source`, the Kubernetes metadata,
    /// `stream`, `service.name` (the application's own when it logged one, else the agent's),
    /// `@timestamp` (the application's own, else the runtime's, else now), and carries the
    /// agent's error codes into `sluice.errors` ahead of the parser's.
    pub fn parse_record(&mut self, record: &RawRecord) -> LogEvent {
        let fallback = record.time.unwrap_or_else(Utc::now);
        let mut ev = self.parse_text(&record.message, fallback, Problems::default());
        ev.event.id = record.event_id();
        ev.sluice.source = record.source.clone();
        ev.kubernetes = (*record.kubernetes).clone();
        ev.stream = record.stream;
        if ev.service.name.is_none() {
            ev.service.name = record.service.as_deref().map(str::to_owned);
        }
        if !record.errors.is_empty() {
            let mut errors = record.errors.clone();
            for e in ev.sluice.errors.drain(..) {
                if !errors.contains(&e) {
                    errors.push(e);
                }
            }
            ev.sluice.errors = errors;
        }
        ev
    }

    /// One application line with no runtime framing (no CRI/docker prefix). Invalid UTF-8 is
    /// decoded lossily and flagged `invalid_utf8`. `fallback_time` is used when the line
    /// carries no readable timestamp.
    pub fn parse_line(&mut self, line: &[u8], fallback_time: DateTime<Utc>) -> LogEvent {
        let mut problems = Problems::default();
        let text = match std::str::from_utf8(line) {
            Ok(s) => Cow::Borrowed(s),
            Err(_) => {
                problems.add(Problem::InvalidUtf8);
                String::from_utf8_lossy(line)
            }
        };
        self.parse_text(&text, fallback_time, problems)
    }

    /// Counters since the parser was built.
    pub fn stats(&self) -> &ParseStats {
        &self.stats
    }

    fn parse_text(&mut self, text: &str, fallback: DateTime<Utc>, problems: Problems) -> LogEvent {
        let text = text.trim_end_matches(['\n', '\r']);
        let mut kinds = Kinds::default();
        let redacted = self.redactor.redact(text, &mut kinds);
        let line: &str = &redacted;
        let mut ev = LogEvent::new(fallback, String::new());
        let mut problems = problems;
        let format = self.dispatch(line, &mut ev, fallback, &mut problems);

        if ev.error.stack_trace.is_none()
            && ev.message.contains('\n')
            && let Some(info) = stack::extract(&ev.message)
        {
            ev.error.kind = ev.error.kind.take().or(info.kind);
            ev.error.message = ev.error.message.take().or(info.message);
            ev.error.stack_trace = Some(info.trace.to_owned());
            let head = if info.head.is_empty() {
                info.trace.lines().last().unwrap_or("").trim().to_owned()
            } else {
                info.head.to_owned()
            };
            ev.message = head;
            if ev.log.level.is_none() {
                ev.log.level = Some(Level::Error);
            }
        }

        ev.sluice.format = Some(Cow::Borrowed(format.as_str()));
        for p in problems.iter() {
            ev.sluice.errors.push(p.code().to_owned());
            let tag = p.tag();
            if !ev.tags.iter().any(|t| t == tag) {
                ev.tags.push(tag.to_owned());
            }
            self.stats.count_problem(p);
        }
        if !kinds.is_empty() {
            ev.sluice.redacted = kinds.names().map(str::to_owned).collect();
            for i in kinds.indices() {
                self.stats.count_secret(i);
            }
            self.stats.redacted_records += 1;
        }
        let keep = match self.config.keep_original {
            KeepOriginal::Always => true,
            KeepOriginal::Never => false,
            KeepOriginal::OnFailure => problems.iter().any(Problem::is_lossy),
        };
        if keep {
            ev.event.original = Some(line.to_owned());
        }
        self.stats.records += 1;
        self.stats.bytes += text.len() as u64;
        self.stats.count_format(format);
        ev
    }

    fn limits(&self) -> Limits {
        Limits {
            max_depth: self.config.max_json_depth,
            max_fields: self.config.max_fields,
            max_field_bytes: self.config.max_field_bytes,
        }
    }

    /// Detects the format of `line` and fills `ev`. Cheap first-byte checks pick the
    /// candidates, so a line is only fully parsed by the formats it could be.
    fn dispatch(
        &mut self,
        line: &str,
        ev: &mut LogEvent,
        fallback: DateTime<Utc>,
        problems: &mut Problems,
    ) -> Format {
        let trimmed = line.trim_start();
        let first = trimmed.as_bytes().first().copied().unwrap_or(b' ');
        let limits = self.limits();
        if first == b'{' {
            let mut c = Collector::new(limits, *problems, std::mem::take(&mut self.key_cache));
            let parsed = json::parse(trimmed, &mut c).is_ok();
            let finished = parsed.then(|| c.finish(ev, fallback));
            self.key_cache = c.take_cache();
            if let Some((has_message, p)) = finished {
                *problems = p;
                if !has_message {
                    ev.message = trimmed.to_owned();
                } else if ev.http.request.method.is_none() && ev.message.contains(" - \"") {
                    // uvicorn's access logger through a JSON formatter: the HTTP fields are
                    // only in the message.
                    access::uvicorn_body(&ev.message.clone(), ev);
                }
                return Format::Json;
            }
            problems.add(Problem::JsonInvalid);
            return text::plain(line, ev);
        }
        if first == b'<' {
            if let Some(f) = text::syslog(trimmed, ev, fallback) {
                return f;
            }
            *ev = LogEvent::new(fallback, String::new());
        }
        if matches!(first, b'I' | b'W' | b'E' | b'F') {
            let mut c = Collector::new(limits, *problems, std::mem::take(&mut self.key_cache));
            let klog = text::klog(trimmed, ev, fallback, &mut c);
            // klog carries its own time; only its key/values are left to map.
            let ts = ev.timestamp;
            let finished = klog.map(|f| (f, c.finish(ev, ts).1));
            self.key_cache = c.take_cache();
            if let Some((f, p)) = finished {
                *problems = p;
                return f;
            }
            *ev = LogEvent::new(fallback, String::new());
        }
        // Remote host: an IPv4/IPv6 address or, with `HostnameLookups On`, a name.
        if first.is_ascii_alphanumeric() || first == b':' {
            if let Some(f) = access::parse_clf(trimmed, ev, problems) {
                return f;
            }
            *ev = LogEvent::new(fallback, String::new());
        }
        if first.is_ascii_uppercase() {
            if let Some(f) = text::level_prefixed(trimmed, ev) {
                return f;
            }
            *ev = LogEvent::new(fallback, String::new());
            if let Some(f) = text::syslog(trimmed, ev, fallback) {
                return f;
            }
            *ev = LogEvent::new(fallback, String::new());
        }
        if first.is_ascii_digit() || first == b'[' {
            if let Some(f) = text::python_asctime(trimmed, ev) {
                return f;
            }
            *ev = LogEvent::new(fallback, String::new());
        }
        if let Some(pairs) = text::maybe_logfmt(trimmed) {
            let mut c = Collector::new(limits, *problems, std::mem::take(&mut self.key_cache));
            logfmt::offer(pairs, &mut c);
            let (has_message, p) = c.finish(ev, fallback);
            self.key_cache = c.take_cache();
            *problems = p;
            if !has_message {
                ev.message = trimmed.to_owned();
            }
            if ev.log.level.is_none() && ev.error.message.is_some() {
                ev.log.level = Some(Level::Error);
            }
            return Format::Logfmt;
        }
        text::plain(line, ev)
    }
}
