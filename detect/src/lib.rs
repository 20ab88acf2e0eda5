//! Sluice's detectors: runbook rules, error-rate anomalies, security events and log patterns,
//! evaluated in event time over parsed [`schemas::LogEvent`]s. Synchronous and pure: events in,
//! [`schemas::Alert`] transitions out; delivery lives in the binary.
//!
//! - [`Detector`] runs, for each event: the log-pattern miner ([`patterns`], sets
//!   `sluice.pattern.*`), the security detections ([`security`]), then every rule of a
//!   [`DetectConfig`] (the runbook's built-in rules, see [`config::builtin_rules`], plus user
//!   rules from TOML) over per-key sliding windows of 10 s buckets, with a watermark that
//!   tolerates `allowed_lateness_secs` of disorder.
//! - Rule kinds: `count`, `ratio`, `quantile` (a [`DdSketch`]) and `anomaly` (EWMA baseline),
//!   each filtering events with a match expression ([`expr`]).
//! - Alerts go pending → firing → resolved with hysteresis; the fingerprint is
//!   [`schemas::alert_fingerprint`] of the labels; firing alerts repeat every
//!   `repeat_interval_secs` with the same `startsAt`.
//! - [`WindowPartial`] (counts + sketch) merges exactly, for a distributed mode: detectors in
//!   partial-export mode ([`Detector::exporting_partials`]) hand over each closed bucket as a
//!   [`BucketPartial`] instead of evaluating it, and the key's owner merges them
//!   ([`Detector::merge_partial`]) and evaluates ([`Detector::close_through`]) with the same
//!   rule code, so the merged result equals one detector over all events.
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
//! # Performance
//!
//! | what | events/s per core | command |
//! |---|---|---|
//! | the 8 default rules | 2.6 M | `cargo bench -p detect --bench rules -- detect_cpu/default_rules` |
//! | rules + pattern miner + security | 1.2 M | `cargo bench -p detect --bench rules -- detect_cpu/rules_patterns_security` |
//!
//! Measured in thread CPU time on 100 000 events of 20 services (70 % request lines, 27 % app
//! lines, 3 % errors), 1 000 events per second of event time. The wall-clock group (`detect/…`)
//! read 0.75 M and 0.39 M on the same shared 2-core machine under a load average of ~18.
//!
//! # Memory per tracked key
//!
//! A key is one (rule, group-by values) pair, e.g. (`HighErrorRate`, `checkout`). It holds a
//! map slot with its labels, one 32 B entry per bucket still in the window plus the open ones
//! (≤ window/bucket + lateness/bucket + 1: 34 for a 5 min window), and for anomaly rules a
//! baseline. Quantile keys add a boxed sketch per bucket: up to 32 sorted (bin, count) pairs,
//! then dense `u32` bins spanning the values seen in that bucket (~75 bins for 15 ms..300 ms at
//! 2 % accuracy). Measured by the
//! `memory_per_key_stays_small` integration test (30 services at 5 requests/s, 5 routes each):
//!
//! | rule kind | bytes per key |
//! |---|---|
//! | count / ratio (`HighErrorRate`, `SloErrorRate`) | 2.4 KB |
//! | anomaly (`ErrorRateAnomaly`, 2 min window) | 1.1 KB |
//! | quantile per service (`HighLatency`, `SloLatency`) | 13 KB |
//! | quantile per route (`HighEndpointLatency`, 1 request/s) | 8 KB |
//!
//! So the default cap of 10 000 keys per rule bounds a rule at ~25 MB (count/ratio) or
//! ~130 MB (busy latency keys; a cardinality burst of one-request routes costs far less, their
//! buckets stay sparse); [`Detector::state_bytes`] reports the live total. A JSON snapshot takes
//! about 5.7 KB per key.

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
pub use detector::{BucketPartial, DETECTOR_STATE_VERSION, Detector, DetectorState, MergeOutcome};
pub use error::DetectError;
pub use rule::MISSING_LABEL_VALUE;
pub use sketch::DdSketch;
pub use stats::{DetectStats, RuleStats};
pub use window::WindowPartial;
