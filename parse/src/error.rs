//! Errors of the `parse` crate: [`ParseError`] for the caller (bad configuration) and
//! [`Problem`] for what went wrong inside one record (counted, never fatal).

/// Why a [`crate::Parser`] could not be built.
///
/// Parsing a record never fails; only configuration can, so this enum is small.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// A configuration value is out of its allowed range.
    #[error("invalid parse config: {field}: {reason}")]
    InvalidConfig {
        /// Dotted name of the offending field, e.g. `max_json_depth`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The redaction matcher could not be built (a bug: the patterns are fixed).
    #[error("failed to build the redaction matcher: {0}")]
    RedactionMatcher(String),
}

impl ParseError {
    /// Stable code for metrics labels and operator-facing messages.
    pub fn error_code(&self) -> &'static str {
        match self {
            ParseError::InvalidConfig { .. } => "invalid_config",
            ParseError::RedactionMatcher(_) => "redaction_matcher",
        }
    }
}

/// A problem met while parsing one record. Each one is written to `sluice.errors` as its
/// [`Problem::code`] and counted in [`crate::ParseStats`]; the record still becomes an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Problem {
    /// The record looked like JSON (starts with `{`) but is not a valid JSON object.
    JsonInvalid,
    /// Application fields nested deeper than `max_json_depth` were flattened to a JSON string.
    JsonDepthExceeded,
    /// More than `max_fields` application fields: the rest were left out of `app` (the
    /// record is kept in `event.original`).
    TooManyFields,
    /// A field value longer than `max_field_bytes` was cut.
    FieldTruncated,
    /// The application logged a timestamp we could not read; the runtime's time was used.
    TimestampInvalid,
    /// The line was not valid UTF-8 and was decoded lossily.
    InvalidUtf8,
    /// The line matched an access-log prefix but its request part was malformed.
    AccessLogMalformed,
}

impl Problem {
    /// Every problem, in a stable order (the index into the stats table).
    pub const ALL: [Problem; 7] = [
        Problem::JsonInvalid,
        Problem::JsonDepthExceeded,
        Problem::TooManyFields,
        Problem::FieldTruncated,
        Problem::TimestampInvalid,
        Problem::InvalidUtf8,
        Problem::AccessLogMalformed,
    ];

    /// Stable code written to `sluice.errors` and used as the metric label.
    pub fn code(self) -> &'static str {
        match self {
            Problem::JsonInvalid => "json_invalid",
            Problem::JsonDepthExceeded => "json_depth_exceeded",
            Problem::TooManyFields => "too_many_fields",
            Problem::FieldTruncated => "field_truncated",
            Problem::TimestampInvalid => "timestamp_invalid",
            Problem::InvalidUtf8 => "invalid_utf8",
            Problem::AccessLogMalformed => "access_log_malformed",
        }
    }

    /// The ECS tag this problem adds to the event.
    pub fn tag(self) -> &'static str {
        match self {
            Problem::JsonInvalid | Problem::AccessLogMalformed => crate::TAG_PARSE_FAILURE,
            Problem::JsonDepthExceeded | Problem::TooManyFields | Problem::FieldTruncated => {
                crate::TAG_TRUNCATED
            }
            Problem::TimestampInvalid => crate::TAG_TIMESTAMP_FALLBACK,
            Problem::InvalidUtf8 => crate::TAG_INVALID_UTF8,
        }
    }

    /// True when the problem may have lost part of the record, so `event.original` is kept
    /// under [`crate::KeepOriginal::OnFailure`].
    pub fn is_lossy(self) -> bool {
        !matches!(self, Problem::TimestampInvalid)
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// A small set of [`Problem`]s, one bit each: no allocation on the hot path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Problems(u16);

impl Problems {
    pub(crate) fn add(&mut self, p: Problem) {
        self.0 |= 1 << p.index();
    }

    pub(crate) fn contains(self, p: Problem) -> bool {
        self.0 & (1 << p.index()) != 0
    }

    #[cfg(test)]
    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub(crate) fn iter(self) -> impl Iterator<Item = Problem> {
        Problem::ALL.into_iter().filter(move |p| self.contains(*p))
    }
}
