//! The error type of the rules engine.

/// Everything that can go wrong configuring or restoring the detector.
///
/// Variants are sorted by who must act: a bad configuration (the operator fixes the rules file),
/// then state that cannot be restored (the caller starts fresh or keeps the old state).
/// Per-event problems are never errors: late or unkeyable events are counted in
/// [`crate::DetectStats`] instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DetectError {
    /// A configuration value is invalid; `path` names the field, e.g. `rules[2].threshold`.
    #[error("invalid detect config at {path}: {message}")]
    Config { path: String, message: String },
    /// The TOML text could not be parsed into a [`crate::DetectConfig`].
    #[error("failed to parse detect config: {message}")]
    ConfigSyntax { message: String },
    /// A rule's match expression does not parse; `offset` is the byte position in it.
    #[error("invalid match expression at {path} (byte {offset}): {message}")]
    Expression {
        path: String,
        offset: usize,
        message: String,
    },
    /// The security detections' settings (`security.*`) are invalid, or their saved state
    /// cannot be restored.
    #[error("security: {0}")]
    Security(#[from] crate::security::SecurityError),
    /// The pattern miner's settings (`patterns.*`) are invalid, or its saved state cannot be
    /// restored.
    #[error("patterns: {0}")]
    Patterns(#[from] crate::patterns::PatternError),
    /// A persisted [`crate::DetectorState`] cannot be applied to this detector.
    #[error("cannot restore detector state: {message}")]
    Restore { message: String },
}

impl DetectError {
    /// A stable code for logs and the `error` label of metrics.
    pub fn error_code(&self) -> &'static str {
        match self {
            DetectError::Config { .. } => "detect_config_invalid",
            DetectError::ConfigSyntax { .. } => "detect_config_syntax",
            DetectError::Expression { .. } => "detect_expression_invalid",
            DetectError::Security(e) => e.error_code(),
            DetectError::Patterns(e) => e.error_code(),
            DetectError::Restore { .. } => "detect_restore_failed",
        }
    }

    pub(crate) fn config(path: impl Into<String>, message: impl Into<String>) -> DetectError {
        DetectError::Config {
            path: path.into(),
            message: message.into(),
        }
    }
}
