//! Sluice's detectors: runbook rules, error-rate anomalies, security events and log patterns,
//! evaluated in event time over parsed [`schemas::LogEvent`]s. Synchronous and pure: events in,
//! [`schemas::Alert`] transitions out; delivery lives in the binary.
//!
//! - [`Detector`] runs every rule of a [`DetectConfig`] (the runbook's built-in rules,
//!   see [`config::builtin_rules`], plus user rules from TOML) over per-key sliding windows of
//!   10 s buckets, with a watermark that tolerates `allowed_lateness_secs` of disorder.
//! - Rule kinds: `count`, `ratio`, `quantile` (a [`DdSketch`]) and `anomaly` (EWMA baseline),
//!   each filtering events with a match expression ([`expr`]).
//! - Alerts go pending → firing → resolved with hysteresis; the fingerprint is
//!   [`schemas::alert_fingerprint`] of the labels; firing alerts repeat every
//!   `repeat_interval_secs`.
//! - [`WindowPartial`] (counts + sketch) merges exactly, for a distributed mode.
//! - [`Detector::snapshot`] / [`Detector::restore`] persist state; [`Detector::reload`] keeps
//!   the state of unchanged rules.
//!
//! ```
//! use detect::{DetectConfig, Detector};
//! let mut detector = Detector::try_new(&DetectConfig::default())?;
//! let mut alerts = Vec::new();
//! let mut ev = schemas::LogEvent::new(chrono::Utc::now(), "GET /api/orders 200");
//! ev.service.name = Some("checkout".into());
//! ev.http.response.status_code = Some(200);
//! detector.process(&mut ev, &mut alerts);
//! detector.finish(&mut alerts);
//! assert!(alerts.is_empty());
//! # Ok::<(), detect::DetectError>(())
//! ```
//!
//! # Memory per tracked key
//!
//! A key is one (rule, group-by values) pair, e.g. (`HighErrorRate`, `checkout`). It holds a
//! map slot and labels (~150 B), one 40 B entry per non-empty bucket still in the window plus
//! the open ones (≤ window/bucket + lateness/bucket + 1: 34 for a 5 min window), so count and
//! ratio keys take ~1.5 KB at most. Quantile keys add a sketch per bucket: dense `u32` bins
//! spanning the latencies seen, ~430 bins (1.7 KB) for 1 ms..5 s, so a busy service's latency
//! key peaks near 60 KB and a sparse endpoint key stays under 5 KB. `Detector::state_bytes`
//! reports the live total and the `memory_per_key` integration test measures it.

mod baseline;
pub mod classify;
pub mod config;
mod detector;
mod error;
pub mod expr;
mod lifecycle;
pub mod patterns;
mod rule;
pub mod security;
pub mod sketch;
mod stats;
mod window;

pub use baseline::Baseline;
pub use config::{DetectConfig, RuleConfig, RuleKind, Severity, Threshold};
pub use detector::{DETECTOR_STATE_VERSION, Detector, DetectorState};
pub use error::DetectError;
pub use rule::MISSING_LABEL_VALUE;
pub use sketch::DdSketch;
pub use stats::{DetectStats, RuleStats};
pub use window::WindowPartial;
