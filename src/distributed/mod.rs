//! Distributed mode: the `agent`, `processor` and `indexer` roles joined by Kafka topics.
//!
//! ```text
//!  agent (per node)            processor group                 indexer group
//!  Tailer ─▶ producer ─▶ raw ─▶ consumer ─▶ parse ─▶ detect ─▶ events ─▶ consumer ─▶ Store per
//!     ▲ ack on delivery   topic   │ commit after outputs acked  topic   │ commit after      events
//!     └───────────────────────────┘ (alerts, dead letters)              │ Store::commit     partition
//! ```
//!
//! - [`Agent::start`]: tail → raw topic (key `<pod uid>/<container>`, so per-container order
//!   holds); a record's checkpoint advances only on its delivery report.
//! - [`Processor::start`]: raw → parse → detect → events topic (same key) and alerts; a raw
//!   offset is committed only once every output for it and before it is acknowledged. Rules
//!   are evaluated on the merged view of all processors ([`aggregate`]); when `[alerting]`
//!   names a target, the processors also deliver the alerts topic through the durable outbox
//!   (`kafka.groups.alerts`).
//! - [`Indexer::start`]: events → one [`index::Store`] per events partition under
//!   `<data_dir>/partitions/<n>/`; offsets are committed only after `Store::commit`.
//! - [`DistributedSearcher`]: counts and searches across every partition store.
//! - [`run_role`]: what `sluice run` calls for the three roles.
//!
//! # Exactly once in the store
//! Every stage is at-least-once: a crash or rebalance replays from the last committed offset.
//! Replays keep their `sluice.source` (file id and offset), and all records of a file travel
//! under one key, hence through one raw partition, one processor at a time and one events
//! partition, in file order. The partition's store keeps per-file high-water marks in its
//! commit payload and drops every record at or below them, so each record is stored once
//! whichever indexer owns the partition.
//!
//! # Bounded memory
//! Agents and processors stop taking input at `kafka.producer.max_in_flight_records`
//! unacknowledged outputs; producers never time messages out by default, so a broker outage
//! pauses the pipeline and resumes it in order when the brokers return.

mod agent;
pub mod aggregate;
mod alerts;
mod config;
mod es_indexer;
mod indexer;
mod offsets;
mod owner;
mod processor;
mod search;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

pub use agent::{Agent, AgentStats};
pub use config::{
    Compression, ConsumerSettings, DEFAULT_AGGREGATES_TOPIC, DEFAULT_ALERTS_TOPIC,
    DEFAULT_DEAD_LETTER_TOPIC, DEFAULT_EVENTS_TOPIC, DEFAULT_IDLE_PARTITION_MS,
    DEFAULT_MAX_IN_FLIGHT_RECORDS, DEFAULT_RAW_TOPIC, IndexerSink, KafkaConfig, KafkaGroups,
    KafkaTopics, OffsetReset, ProducerSettings,
};
pub use indexer::{Indexer, IndexerStats, partition_dir, partitions_root};
pub use offsets::{InputRef, OffsetTracker};
pub use processor::{Processor, ProcessorStats};
pub use search::DistributedSearcher;

use crate::config::{Role, SluiceConfig};

/// Header carrying [`schemas::RAW_RECORD_VERSION`] on raw-topic messages.
pub const HEADER_RAW_VERSION: &str = "sluice-raw-version";
/// Header carrying [`schemas::LOG_EVENT_VERSION`] on events-topic messages.
pub const HEADER_EVENT_VERSION: &str = "sluice-event-version";
/// Header on dead-letter messages: why the message could not be processed.
pub const HEADER_ERROR: &str = "sluice-error";
/// How often [`run_role`] checks the role's health while waiting for a signal.
const HEALTH_POLL: Duration = Duration::from_millis(500);

/// The message key of a raw record: `<pod uid>/<container>`, so one container's records stay
/// in one partition and in order. Records without pod metadata fall back to their file's
/// directory, which is per container in the kubelet layout.
pub fn record_key(record: &schemas::RawRecord) -> String {
    let mut key = String::new();
    write_record_key(record, &mut key);
    key
}

/// [`record_key`] into a reused buffer (the agent's per-record path allocates nothing for it).
pub fn write_record_key(record: &schemas::RawRecord, out: &mut String) {
    use std::fmt::Write;
    out.clear();
    let k = &record.kubernetes;
    match (&k.pod.uid, &k.container.name) {
        (Some(uid), Some(container)) => {
            out.push_str(uid);
            out.push('/');
            out.push_str(container);
        }
        _ => match std::path::Path::new(&record.source.path).parent() {
            Some(dir) => out.push_str(&dir.to_string_lossy()),
            None => {
                let _ = write!(out, "{}", record.source.file_id);
            }
        },
    }
}

fn render_counters(out: &mut String, rows: &[(&str, &AtomicU64, &str)]) {
    use std::fmt::Write;
    for (name, value, kind) in rows {
        let _ = writeln!(
            out,
            "# TYPE {name} {kind}\n{name} {}",
            value.load(Ordering::Relaxed)
        );
    }
}

/// Fails when a role thread has finished (it only finishes on error or shutdown).
fn check_thread(
    slot: &mut Option<JoinHandle<anyhow::Result<()>>>,
    name: &str,
) -> anyhow::Result<()> {
    if slot.as_ref().is_some_and(|h| h.is_finished())
        && let Some(handle) = slot.take()
    {
        match handle.join() {
            Ok(Ok(())) => anyhow::bail!("the {name} stopped unexpectedly"),
            Ok(Err(err)) => return Err(err),
            Err(_) => anyhow::bail!("the {name} thread panicked"),
        }
    }
    Ok(())
}

/// Joins a role's thread at shutdown: its own error, or a panic named after `name`.
fn join_thread(
    slot: &mut Option<JoinHandle<anyhow::Result<()>>>,
    name: &str,
) -> anyhow::Result<()> {
    match slot.take() {
        Some(t) => t
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the {name} thread panicked"))),
        None => Ok(()),
    }
}

/// The partitions of `topic` a rebalance revokes; empty for an assignment, and when the role
/// was dropped without shutdown (`crash`): the consumer's close then revokes everything, and a
/// crash must not flush or commit.
fn revoked_partitions(
    rebalance: &rdkafka::consumer::Rebalance<'_>,
    topic: &str,
    crash: &std::sync::atomic::AtomicBool,
) -> Vec<i32> {
    let rdkafka::consumer::Rebalance::Revoke(list) = rebalance else {
        return Vec::new();
    };
    if crash.load(Ordering::SeqCst) {
        return Vec::new();
    }
    list.elements_for_topic(topic)
        .iter()
        .map(|e| e.partition())
        .collect()
}

/// A running role of distributed mode.
#[derive(Debug)]
pub enum RoleHandle {
    Agent(Agent),
    Processor(Processor),
    Indexer(Indexer),
}

impl RoleHandle {
    /// Starts the role `config.role` names.
    ///
    /// # Errors
    /// The role is `all` (the embedded pipeline), or it fails to start.
    pub fn start(config: &SluiceConfig) -> anyhow::Result<RoleHandle> {
        Ok(match config.role {
            Role::Agent => RoleHandle::Agent(Agent::start(config)?),
            Role::Processor => RoleHandle::Processor(Processor::start(config)?),
            Role::Indexer => RoleHandle::Indexer(Indexer::start(config)?),
            Role::All => anyhow::bail!("role `all` runs the embedded pipeline, not a Kafka role"),
        })
    }

    /// Fails when the role stopped with an error.
    ///
    /// # Errors
    /// That error.
    pub fn check_health(&mut self) -> anyhow::Result<()> {
        match self {
            RoleHandle::Agent(r) => r.check_health(),
            RoleHandle::Processor(r) => r.check_health(),
            RoleHandle::Indexer(r) => r.check_health(),
        }
    }

    /// Prometheus text of the role's counters.
    pub fn render_prometheus(&self, out: &mut String) {
        match self {
            RoleHandle::Agent(r) => {
                r.ingest_stats().render_prometheus(out);
                r.stats().render_prometheus(out);
            }
            RoleHandle::Processor(r) => {
                r.stats().render_prometheus(out);
                if let Some(delivery) = r.delivery_stats() {
                    delivery.render_prometheus(out);
                }
            }
            RoleHandle::Indexer(r) => r.stats().render_prometheus(out),
        }
    }

    /// Stops the role cleanly (see each role's `shutdown`).
    ///
    /// # Errors
    /// The role failed.
    pub fn shutdown(self) -> anyhow::Result<()> {
        match self {
            RoleHandle::Agent(r) => r.shutdown(),
            RoleHandle::Processor(r) => r.shutdown(),
            RoleHandle::Indexer(r) => r.shutdown(),
        }
    }
}

/// Runs `config.role` until Ctrl-C or SIGTERM, or until it fails; then shuts it down. With
/// `until_idle` (agents only) it also stops once every file is read and every record delivered
/// and checkpointed: a backfill.
///
/// # Errors
/// The role failed to start or stopped with an error, or `until_idle` was asked of a consumer
/// role (a consumer never knows that no more input is coming).
pub fn run_role(
    config: &SluiceConfig,
    rt: &tokio::runtime::Runtime,
    until_idle: bool,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        !until_idle || config.role == Role::Agent,
        "--until-idle applies to roles `all` and `agent` only"
    );
    let mut role = RoleHandle::start(config)?;
    tracing::info!(role = ?config.role, brokers = %config.kafka.brokers, "distributed role started");
    // `/health` and `/metrics` for probes and Prometheus. The role is driven mutably below,
    // so the metrics text is refreshed on each health tick and served from a snapshot.
    let metrics_text = Arc::new(std::sync::Mutex::new(String::new()));
    let (stop_api, api_stopped) = tokio::sync::oneshot::channel::<()>();
    let api = (config.api.enabled && !until_idle).then(|| {
        let text = metrics_text.clone();
        let router = axum::Router::new()
            .route(
                "/health",
                axum::routing::get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
            )
            .route(
                "/metrics",
                axum::routing::get(move || {
                    let body = text.lock().expect("metrics lock poisoned").clone();
                    async move { body }
                }),
            );
        rt.spawn(crate::api::serve(config.api.listen, router, async {
            let _ = api_stopped.await;
        }))
    });
    let waited = rt.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut health = tokio::time::interval(HEALTH_POLL);
        // Idle must hold twice in a row, a poll apart, as in the embedded pipeline.
        let mut seen_idle = false;
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return anyhow::Ok(()),
                _ = term.recv() => return anyhow::Ok(()),
                _ = health.tick() => {
                    role.check_health()?;
                    let mut text = String::new();
                    role.render_prometheus(&mut text);
                    *metrics_text.lock().expect("metrics lock poisoned") = text;
                    if until_idle && let RoleHandle::Agent(agent) = &role {
                        if agent.is_idle() && seen_idle {
                            return Ok(());
                        }
                        seen_idle = agent.is_idle();
                    }
                }
            }
        }
    });
    tracing::info!("shutting down");
    let shutdown = role.shutdown();
    let _ = stop_api.send(());
    if let Some(api) = api
        && let Ok(Err(err)) = rt.block_on(api)
    {
        tracing::error!(error = %format!("{err:#}"), "API server failed");
    }
    waited?;
    shutdown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_key_is_pod_uid_and_container_else_the_container_dir() {
        let mut record = schemas::RawRecord::new(
            "hello",
            schemas::SourceRef {
                path: "/var/log/pods/prod_api-1_u1/api/0.log".into(),
                file_id: 7,
                offset: 0,
                end_offset: 6,
            },
        );
        assert_eq!(record_key(&record), "/var/log/pods/prod_api-1_u1/api");
        let k = std::sync::Arc::make_mut(&mut record.kubernetes);
        k.pod.uid = Some("u1".into());
        k.container.name = Some("api".into());
        assert_eq!(record_key(&record), "u1/api");
        record.kubernetes = std::sync::Arc::default();
        record.source.path = String::new();
        assert_eq!(record_key(&record), "7");
    }

    #[test]
    fn roles_and_the_kafka_section_parse_and_validate() -> Result<(), String> {
        let config = SluiceConfig::from_toml_str(
            "role = \"processor\"\n[kafka]\nbrokers = \"k:9092\"\n[kafka.topics]\nraw = \"r\"\n",
        )
        .map_err(|p| p.to_string())?;
        assert_eq!(config.role, Role::Processor);
        assert_eq!(config.kafka.brokers, "k:9092");
        assert_eq!(config.kafka.topics.raw, "r");
        let bad = SluiceConfig::from_toml_str("role = \"indexer\"\n[kafka]\nbrokers = \"\"\n")
            .map_err(|p| p.to_string())?;
        let problems = bad.validate();
        assert!(
            problems
                .iter()
                .any(|p| p.path == "kafka" && p.message.contains("brokers")),
            "{problems:?}"
        );
        let embedded =
            SluiceConfig::from_toml_str("[kafka]\nbrokers = \"\"\n").map_err(|p| p.to_string())?;
        assert!(
            embedded.validate().iter().all(|p| p.path != "kafka"),
            "role all ignores [kafka]"
        );
        let unknown = SluiceConfig::from_toml_str("[kafka]\nbroker = \"x\"\n");
        assert!(unknown.is_err_and(|p| p.path.starts_with("kafka")));
        Ok(())
    }
}
