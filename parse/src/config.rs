//! [`ParseConfig`]: what an operator can tune about parsing.

use serde::{Deserialize, Serialize};

use crate::ParseError;

/// Default nesting depth kept under `app`: deep enough for request/response objects with
/// headers (depth 3–4) and MDC maps, shallow enough that a pathological document cannot make
/// the index mapping explode. Deeper values are kept as a JSON string.
const DEFAULT_MAX_JSON_DEPTH: usize = 8;
/// Upper bound for `max_json_depth`: serde_json itself refuses documents nested past 128.
const MAX_JSON_DEPTH_LIMIT: usize = 100;
/// Default number of application fields kept under `app`. Real services log 5–40 fields; the
/// long tail (dumped request objects) is kept whole in `event.original` instead.
const DEFAULT_MAX_FIELDS: usize = 128;
/// Default cap on one field value: 8 KiB keeps a long SQL statement or header dump searchable
/// while bounding what one field can cost the index.
const DEFAULT_MAX_FIELD_BYTES: usize = 8 * 1024;
/// Smallest accepted `max_field_bytes`: a cap below this would cut ordinary ids and paths.
const MIN_FIELD_BYTES: usize = 64;

/// How [`crate::Parser`] turns records into events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ParseConfig {
    /// Secret redaction, applied to the whole record before anything else reads it.
    pub redaction: RedactionConfig,
    /// Deepest nesting kept as structure under `app`; deeper values become a JSON string and
    /// the event gets `json_depth_exceeded`. 1..=100.
    pub max_json_depth: usize,
    /// Most application fields (leaves, counted through nesting) kept under `app`; the rest
    /// are left out, the event gets `too_many_fields` and keeps `event.original`. >= 1.
    pub max_fields: usize,
    /// Longest value kept in one field (bytes, cut on a character boundary); longer ones
    /// get `field_truncated`. Does not apply to `message`, `error.stack_trace` or
    /// `event.original`. >= 64.
    pub max_field_bytes: usize,
    /// When to keep the (redacted) record text in `event.original`.
    pub keep_original: KeepOriginal,
}

impl Default for ParseConfig {
    fn default() -> Self {
        ParseConfig {
            redaction: RedactionConfig::default(),
            max_json_depth: DEFAULT_MAX_JSON_DEPTH,
            max_fields: DEFAULT_MAX_FIELDS,
            max_field_bytes: DEFAULT_MAX_FIELD_BYTES,
            keep_original: KeepOriginal::default(),
        }
    }
}

impl ParseConfig {
    /// Checks every value is in range. Call at start-up.
    ///
    /// # Errors
    /// [`ParseError::InvalidConfig`] naming the first field out of range.
    pub fn validate(&self) -> Result<(), ParseError> {
        if self.max_json_depth == 0 || self.max_json_depth > MAX_JSON_DEPTH_LIMIT {
            return Err(ParseError::InvalidConfig {
                field: "max_json_depth",
                reason: format!(
                    "must be between 1 and {MAX_JSON_DEPTH_LIMIT}, got {}",
                    self.max_json_depth
                ),
            });
        }
        if self.max_fields == 0 {
            return Err(ParseError::InvalidConfig {
                field: "max_fields",
                reason: "must be at least 1".to_string(),
            });
        }
        if self.max_field_bytes < MIN_FIELD_BYTES {
            return Err(ParseError::InvalidConfig {
                field: "max_field_bytes",
                reason: format!(
                    "must be at least {MIN_FIELD_BYTES}, got {}",
                    self.max_field_bytes
                ),
            });
        }
        Ok(())
    }
}

/// Which secrets to redact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedactionConfig {
    /// Master switch. On by default: secrets must never reach the index.
    pub enabled: bool,
    /// Redact digit runs that look like payment card numbers (IIN prefix + Luhn check).
    pub card_numbers: bool,
    /// Redact `password=`, `secret=`, `token=`, `api_key=` values (also as JSON keys and URL
    /// query parameters) and `user:password@` in URLs.
    pub key_values: bool,
}

impl Default for RedactionConfig {
    fn default() -> Self {
        RedactionConfig {
            enabled: true,
            card_numbers: true,
            key_values: true,
        }
    }
}

/// When to keep the record text in `event.original`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeepOriginal {
    /// Only when parsing failed or lost something (a parse error, a limit hit), so nothing
    /// is ever silently dropped while clean records are not stored twice.
    #[default]
    OnFailure,
    /// Always (doubles storage; useful while tuning formats).
    Always,
    /// Never, even on failure.
    Never,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid() -> Result<(), ParseError> {
        ParseConfig::default().validate()
    }

    #[test]
    fn out_of_range_values_name_the_field() {
        let bad = ParseConfig {
            max_json_depth: 0,
            ..ParseConfig::default()
        };
        let err = bad.validate().err();
        assert!(
            matches!(
                err,
                Some(ParseError::InvalidConfig {
                    field: "max_json_depth",
                    ..
                })
            ),
            "{err:?}"
        );
        let bad = ParseConfig {
            max_field_bytes: 3,
            ..ParseConfig::default()
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let r: Result<ParseConfig, _> = serde_json::from_str(r#"{"max_feilds": 3}"#);
        assert!(r.is_err());
        let r: Result<ParseConfig, _> =
            serde_json::from_str(r#"{"keep_original": "always", "redaction": {"enabled": false}}"#);
        assert!(
            matches!(r, Ok(c) if c.keep_original == KeepOriginal::Always && !c.redaction.enabled)
        );
    }
}
