//! [`KafkaConfig`]: the `[kafka]` section used by the `agent`, `processor` and `indexer` roles.
//!
//! The defaults are the safe ones: `acks=all`, an idempotent producer, lz4, a bounded producer
//! queue, messages that never time out (so a broker outage pauses the pipeline instead of
//! reordering or losing records), no automatic offset commits.

use std::collections::BTreeMap;

use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};

/// Default raw topic: what agents ship ([`schemas::RawRecord`] as JSON).
pub const DEFAULT_RAW_TOPIC: &str = "sluice.raw";
/// Default events topic: what processors produce ([`schemas::LogEvent`] as JSON).
pub const DEFAULT_EVENTS_TOPIC: &str = "sluice.events";
/// Default aggregates topic: per-window detector partials keyed by service.
pub const DEFAULT_AGGREGATES_TOPIC: &str = "sluice.aggregates";
/// Default alerts topic ([`schemas::Alert`] as JSON).
pub const DEFAULT_ALERTS_TOPIC: &str = "sluice.alerts";
/// Default dead-letter topic: raw messages a processor could not decode, unchanged.
pub const DEFAULT_DEAD_LETTER_TOPIC: &str = "sluice.deadletter";
/// Records an agent or processor may have produced and not yet seen acknowledged. Bounds
/// memory during a broker outage: at ~1 KiB per record this is ~20 MiB.
pub const DEFAULT_MAX_IN_FLIGHT_RECORDS: usize = 20_000;
/// librdkafka's queue in KiB; above `max_in_flight_records` × a typical record so the count
/// bound, not this one, is what normally applies.
pub const DEFAULT_QUEUE_MAX_KBYTES: u64 = 64 * 1024;
/// How long the producer waits to fill a batch: a few ms buys large compressed batches.
pub const DEFAULT_LINGER_MS: u64 = 5;
/// Offsets (and, for the indexer, store commits) are committed at least this often.
pub const DEFAULT_COMMIT_INTERVAL_MS: u64 = 1_000;
/// Kafka's own default; a dead consumer's partitions move after this long.
pub const DEFAULT_SESSION_TIMEOUT_MS: u64 = 45_000;
/// How long a revoked partition's unacknowledged outputs may take to be delivered before the
/// processor gives up on them (the new owner then replays them; the store drops the repeats).
pub const DEFAULT_REVOKE_FLUSH_MS: u64 = 10_000;
/// A raw partition quiet for this long stops holding back the aggregate owners: long enough
/// that a briefly slow agent does not make its lines late, short next to a 5 min window.
pub const DEFAULT_IDLE_PARTITION_MS: u64 = 30_000;
/// Properties the roles set themselves because correctness depends on them.
const RESERVED_PROPERTIES: &[&str] = &[
    "bootstrap.servers",
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "enable.idempotence",
    "acks",
];

/// Producer compression codecs that librdkafka builds in here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    /// The default: on the agent, zstd's compression was the largest single cost (a third of
    /// the agent's CPU in `kafka_pipeline throughput`); lz4 compresses log lines several times
    /// faster, and the CPU an agent takes on every node matters more than the broker disk.
    #[default]
    Lz4,
    /// Smaller batches on the wire and on the brokers, at several times lz4's CPU.
    Zstd,
}

impl Compression {
    /// The `compression.type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// Where the `indexer` role writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IndexerSink {
    /// One embedded store per events partition under `<data_dir>/partitions/`.
    #[default]
    Store,
    /// The `[elasticsearch]` cluster, through the bulk writer; offsets are committed only for
    /// events Elasticsearch accepted (stored, already there, or dead-lettered).
    Elasticsearch,
}

/// Where consumers start in a partition that has no committed offset yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OffsetReset {
    /// From the oldest retained message: nothing is skipped on a first start.
    #[default]
    Earliest,
    /// Only new messages.
    Latest,
}

/// Topic names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaTopics {
    /// Agents → processors: raw records, key `<pod uid>/<container>`.
    pub raw: String,
    /// Processors → indexers: parsed events, same key as their raw record.
    pub events: String,
    /// Processors: per-window detector partials keyed by service.
    pub aggregates: String,
    /// Processors: alerts, key = alert fingerprint.
    pub alerts: String,
    /// Processors: raw messages that could not be decoded, as received.
    pub dead_letter: String,
}

impl Default for KafkaTopics {
    fn default() -> Self {
        KafkaTopics {
            raw: DEFAULT_RAW_TOPIC.into(),
            events: DEFAULT_EVENTS_TOPIC.into(),
            aggregates: DEFAULT_AGGREGATES_TOPIC.into(),
            alerts: DEFAULT_ALERTS_TOPIC.into(),
            dead_letter: DEFAULT_DEAD_LETTER_TOPIC.into(),
        }
    }
}

/// Consumer group ids of the consuming roles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaGroups {
    /// Group of the `processor` role (consumes `topics.raw`).
    pub processor: String,
    /// Group of the `indexer` role (consumes `topics.events`).
    pub indexer: String,
    /// Group of the aggregate owners inside the `processor` role (consume
    /// `topics.aggregates`): the owner of a rule key's partition merges every processor's
    /// partials for it and emits its alerts.
    pub aggregator: String,
    /// Group of the alert deliverers inside the `processor` role (consume `topics.alerts` into
    /// the `[alerting]` outboxes).
    pub alerts: String,
}

impl Default for KafkaGroups {
    fn default() -> Self {
        KafkaGroups {
            processor: "sluice-processor".into(),
            indexer: "sluice-indexer".into(),
            aggregator: "sluice-aggregator".into(),
            alerts: "sluice-alerts".into(),
        }
    }
}

/// Producer settings of the `agent` and `processor` roles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProducerSettings {
    /// Compression of produced batches.
    pub compression: Compression,
    /// `linger.ms`: how long to wait to fill a batch.
    pub linger_ms: u64,
    /// `batch.size` in bytes.
    pub batch_bytes: u64,
    /// `queue.buffering.max.kbytes`: librdkafka's queue bound in KiB.
    pub queue_max_kbytes: u64,
    /// Records produced and not yet acknowledged; reading (agent) or consuming (processor)
    /// pauses at this many. Also sets `queue.buffering.max.messages`.
    pub max_in_flight_records: usize,
    /// `message.timeout.ms`; 0 (the default) never times out, so an outage pauses delivery and
    /// per-key order holds. A timed-out record is counted and never acknowledged.
    pub message_timeout_ms: u64,
}

impl Default for ProducerSettings {
    fn default() -> Self {
        ProducerSettings {
            compression: Compression::default(),
            linger_ms: DEFAULT_LINGER_MS,
            batch_bytes: 1_000_000,
            queue_max_kbytes: DEFAULT_QUEUE_MAX_KBYTES,
            max_in_flight_records: DEFAULT_MAX_IN_FLIGHT_RECORDS,
            message_timeout_ms: 0,
        }
    }
}

/// Consumer settings of the `processor` and `indexer` roles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsumerSettings {
    /// `auto.offset.reset` for partitions without a committed offset.
    pub offset_reset: OffsetReset,
    /// `session.timeout.ms`.
    pub session_timeout_ms: u64,
    /// Offsets (and the indexer's store) are committed at least this often.
    pub commit_interval_ms: u64,
    /// How long a processor waits, when partitions are revoked, for their outputs to be
    /// acknowledged before it commits what is acknowledged and lets them go.
    pub revoke_flush_ms: u64,
    /// `fetch.max.bytes`.
    pub fetch_max_bytes: u64,
    /// `max.partition.fetch.bytes`.
    pub max_partition_fetch_bytes: u64,
    /// Processors: event time of a raw partition also advances with the wall clock while no
    /// line arrives (live mode), so windows close and alerts resolve in quiet periods. Off,
    /// event time moves only with events (backfills of old logs, deterministic tests).
    pub wall_clock_watermark: bool,
    /// Processors: a raw partition without a message for this long is reported idle, and the
    /// aggregate owners stop waiting for it before evaluating a bucket (its later lines may
    /// then arrive late and are counted, not merged).
    pub idle_partition_ms: u64,
}

impl Default for ConsumerSettings {
    fn default() -> Self {
        ConsumerSettings {
            offset_reset: OffsetReset::Earliest,
            session_timeout_ms: DEFAULT_SESSION_TIMEOUT_MS,
            commit_interval_ms: DEFAULT_COMMIT_INTERVAL_MS,
            revoke_flush_ms: DEFAULT_REVOKE_FLUSH_MS,
            fetch_max_bytes: 16 * 1024 * 1024,
            max_partition_fetch_bytes: 1024 * 1024,
            wall_clock_watermark: true,
            idle_partition_ms: DEFAULT_IDLE_PARTITION_MS,
        }
    }
}

/// The `[kafka]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// `bootstrap.servers`: comma-separated `host:port` list.
    pub brokers: String,
    /// `client.id` prefix; the role name is appended.
    pub client_id: String,
    /// Topic names.
    pub topics: KafkaTopics,
    /// Consumer group ids.
    pub groups: KafkaGroups,
    /// Producer settings (agent, processor).
    pub producer: ProducerSettings,
    /// Consumer settings (processor, indexer).
    pub consumer: ConsumerSettings,
    /// Where the indexer role writes: `store` (default) or `elasticsearch` (`[elasticsearch]`).
    pub indexer_sink: IndexerSink,
    /// Raw librdkafka properties applied to every client after the settings above, e.g.
    /// `"security.protocol" = "SASL_SSL"`. The properties correctness depends on
    /// (`enable.auto.commit`, `enable.idempotence`, `acks`, ...) cannot be set here.
    pub properties: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "localhost:9092".into(),
            client_id: "sluice".into(),
            topics: KafkaTopics::default(),
            groups: KafkaGroups::default(),
            producer: ProducerSettings::default(),
            consumer: ConsumerSettings::default(),
            indexer_sink: IndexerSink::Store,
            properties: BTreeMap::new(),
        }
    }
}

impl KafkaConfig {
    /// A default config pointed at `brokers`.
    pub fn with_brokers(brokers: impl Into<String>) -> KafkaConfig {
        KafkaConfig {
            brokers: brokers.into(),
            ..KafkaConfig::default()
        }
    }

    /// Checks every value; call at start-up.
    ///
    /// # Errors
    /// A message naming the first bad field (`kafka.<field>: reason`).
    pub fn validate(&self) -> Result<(), String> {
        if self.brokers.split(',').all(|b| b.trim().is_empty()) {
            return Err("kafka.brokers: must name at least one host:port".into());
        }
        let topics = [
            ("raw", &self.topics.raw),
            ("events", &self.topics.events),
            ("aggregates", &self.topics.aggregates),
            ("alerts", &self.topics.alerts),
            ("dead_letter", &self.topics.dead_letter),
        ];
        for (name, topic) in topics {
            if topic.is_empty()
                || topic.len() > 249
                || !topic
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            {
                return Err(format!(
                    "kafka.topics.{name}: {topic:?} is not a valid topic name (1-249 of [a-zA-Z0-9._-])"
                ));
            }
        }
        if self.topics.raw == self.topics.events {
            return Err("kafka.topics.events: must differ from topics.raw".into());
        }
        if self.groups.processor.is_empty() || self.groups.indexer.is_empty() {
            return Err("kafka.groups: group ids must not be empty".into());
        }
        if self.groups.processor == self.groups.indexer {
            return Err("kafka.groups.indexer: must differ from groups.processor".into());
        }
        let groups = [
            &self.groups.processor,
            &self.groups.indexer,
            &self.groups.aggregator,
            &self.groups.alerts,
        ];
        for (i, g) in groups.iter().enumerate() {
            if groups[..i].contains(g) {
                return Err(format!(
                    "kafka.groups: {g:?} is used twice; every group must differ"
                ));
            }
        }
        if self.groups.aggregator.is_empty() || self.groups.alerts.is_empty() {
            return Err("kafka.groups: group ids must not be empty".into());
        }
        if self.topics.aggregates == self.topics.raw || self.topics.aggregates == self.topics.events
        {
            return Err(
                "kafka.topics.aggregates: must differ from topics.raw and topics.events".into(),
            );
        }
        if self.producer.max_in_flight_records == 0 {
            return Err("kafka.producer.max_in_flight_records: must be at least 1".into());
        }
        if self.producer.max_in_flight_records > 10_000_000 {
            return Err(
                "kafka.producer.max_in_flight_records: librdkafka queues at most 10000000".into(),
            );
        }
        if self.producer.queue_max_kbytes == 0 {
            return Err("kafka.producer.queue_max_kbytes: must be at least 1".into());
        }
        if self.consumer.commit_interval_ms == 0 {
            return Err("kafka.consumer.commit_interval_ms: must be at least 1".into());
        }
        for key in self.properties.keys() {
            if RESERVED_PROPERTIES.contains(&key.as_str()) {
                return Err(format!(
                    "kafka.properties.{key}: set by Sluice itself (correctness depends on it)"
                ));
            }
        }
        Ok(())
    }

    /// Client settings shared by every role.
    fn base(&self, role: &str) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("client.id", format!("{}-{role}", self.client_id));
        c
    }

    fn apply_properties(&self, c: &mut ClientConfig) {
        for (key, value) in &self.properties {
            c.set(key, value);
        }
    }

    /// librdkafka settings of a role's producer.
    pub fn producer_config(&self, role: &str) -> ClientConfig {
        let p = &self.producer;
        let mut c = self.base(role);
        c.set("acks", "all")
            .set("enable.idempotence", "true")
            .set("compression.type", p.compression.as_str())
            .set("linger.ms", p.linger_ms.to_string())
            .set("batch.size", p.batch_bytes.to_string())
            .set("queue.buffering.max.kbytes", p.queue_max_kbytes.to_string())
            // One more than our own bound, so librdkafka's never refuses what ours admits.
            .set(
                "queue.buffering.max.messages",
                (p.max_in_flight_records + 1).to_string(),
            )
            .set("message.timeout.ms", p.message_timeout_ms.to_string());
        self.apply_properties(&mut c);
        c
    }

    /// librdkafka settings of a role's consumer in `group`.
    pub fn consumer_config(&self, role: &str, group: &str) -> ClientConfig {
        let k = &self.consumer;
        let mut c = self.base(role);
        c.set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set(
                "auto.offset.reset",
                match k.offset_reset {
                    OffsetReset::Earliest => "earliest",
                    OffsetReset::Latest => "latest",
                },
            )
            .set("session.timeout.ms", k.session_timeout_ms.to_string())
            .set("fetch.max.bytes", k.fetch_max_bytes.to_string())
            .set(
                "max.partition.fetch.bytes",
                k.max_partition_fetch_bytes.to_string(),
            )
            // Eager rebalancing: a partition is revoked everywhere before it is assigned, so a
            // partition's store is never open in two indexers at once.
            .set("partition.assignment.strategy", "range,roundrobin");
        self.apply_properties(&mut c);
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_safe() -> Result<(), String> {
        let config = KafkaConfig::default();
        config.validate()?;
        let p = config.producer_config("agent");
        assert_eq!(p.get("acks"), Some("all"));
        assert_eq!(p.get("enable.idempotence"), Some("true"));
        assert_eq!(p.get("compression.type"), Some("lz4"));
        assert_eq!(p.get("message.timeout.ms"), Some("0"));
        let c = config.consumer_config("processor", "g");
        assert_eq!(c.get("enable.auto.commit"), Some("false"));
        assert_eq!(c.get("group.id"), Some("g"));
        Ok(())
    }

    #[test]
    fn toml_round_trip_and_unknown_fields() -> Result<(), Box<dyn std::error::Error>> {
        let config: KafkaConfig = toml::from_str(
            r#"
            brokers = "k1:9092,k2:9092"
            [topics]
            raw = "r"
            [producer]
            compression = "zstd"
            max_in_flight_records = 100
            [properties]
            "security.protocol" = "SSL"
            "#,
        )?;
        config.validate()?;
        assert_eq!(config.topics.raw, "r");
        assert_eq!(config.topics.events, DEFAULT_EVENTS_TOPIC);
        let p = config.producer_config("agent");
        assert_eq!(p.get("compression.type"), Some("zstd"));
        assert_eq!(p.get("queue.buffering.max.messages"), Some("101"));
        assert_eq!(p.get("security.protocol"), Some("SSL"));
        assert!(toml::from_str::<KafkaConfig>("brokrs = \"x\"").is_err());
        Ok(())
    }

    #[test]
    fn validate_rejects_bad_values() {
        let bad = [
            KafkaConfig::with_brokers(" , "),
            KafkaConfig {
                topics: KafkaTopics {
                    raw: "a b".into(),
                    ..KafkaTopics::default()
                },
                ..KafkaConfig::default()
            },
            KafkaConfig {
                producer: ProducerSettings {
                    max_in_flight_records: 0,
                    ..ProducerSettings::default()
                },
                ..KafkaConfig::default()
            },
            KafkaConfig {
                properties: [("enable.auto.commit".to_string(), "true".to_string())].into(),
                ..KafkaConfig::default()
            },
        ];
        for config in bad {
            assert!(config.validate().is_err(), "{config:?} should be invalid");
        }
    }
}
