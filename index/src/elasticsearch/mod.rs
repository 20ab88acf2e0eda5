//! The Elasticsearch writer: ECS documents into the data stream `logs-sluice-<namespace>`.
//!
//! - [`EsConfig`]: URLs, auth (basic or API key, secrets from env or file), TLS CA, namespace,
//!   retention, batch sizes, concurrency and retry policy.
//! - [`setup`]: what `sluice es setup` runs: the ILM policy, the component and index templates
//!   generated from [`schemas::fields::FIELDS`] (the same JSON is checked in under
//!   `deploy/elasticsearch/`, see [`setup_files`]), and the data stream.
//! - [`EsWriter`]: bulk `create` with `_id` = `event.id`, so a replay is a 409 and counted as
//!   success; bounded concurrency and in-flight bytes; retries of 429, 5xx and connection
//!   failures with exponential backoff and jitter; documents refused for good (400) go to a
//!   dead-letter file. [`BulkOutcome`] says, per event, whether it may be acknowledged.
//! - [`EsBatcher`]: collects events into batches by size and time, with acknowledgement tokens.
//!
//! ```no_run
//! # async fn demo(events: Vec<schemas::LogEvent>) -> Result<(), index::elasticsearch::EsError> {
//! use index::elasticsearch::{EsConfig, EsWriter, setup};
//! let cfg = EsConfig { namespace: "production".into(), ..EsConfig::default() };
//! setup(&cfg).await?;
//! let writer = EsWriter::try_new(&cfg)?;
//! let outcome = writer.write(&events).await?;
//! assert!(outcome.all_acked());
//! # Ok(()) }
//! ```
//!
//! Deduplication by `_id` holds within one backing index: a replay that lands after a rollover
//! (at most daily) is stored again. Keep replays short relative to a day.

mod client;
mod config;
mod dead_letter;
mod error;
mod metrics;
mod setup;
mod writer;

pub use config::{EsAuth, EsConfig, EsRetry, EsTls, SecretSource};
pub use error::EsError;
pub use metrics::EsMetricsSnapshot;
pub use setup::{
    COMPONENT_TEMPLATE_NAME, ILM_POLICY_NAME, INDEX_PATTERN, INDEX_TEMPLATE_NAME, SetupReport,
    component_template, ilm_policy, index_template, setup, setup_files,
};
pub use writer::{BulkOutcome, EsBatcher, EsWriter, ItemStatus};
