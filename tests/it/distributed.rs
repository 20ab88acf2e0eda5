//! Distributed mode end to end: agents → raw topic → processors → events topic → indexers →
//! partition stores, against librdkafka's mock cluster (a Kafka-protocol broker on 127.0.0.1
//! started by the test), or against the cluster named by `SLUICE_TEST_KAFKA_BROKERS`.
//!
//! Every test checks exactly-once in the store: the count equals the records the generator
//! reports and every `event.id` is unique.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use sluice::config::{Role, SluiceConfig};
use sluice::distributed::{
    Agent, DistributedSearcher, Indexer, KafkaConfig, KafkaGroups, KafkaTopics, Processor,
    ProcessorStats,
};

use super::support;

/// Partitions of the raw topic: more than processors, so each owns at least one.
const RAW_PARTITIONS: i32 = 6;
/// Partitions of the events topic: more than indexers, so partitions move between them.
const EVENTS_PARTITIONS: i32 = 4;
/// Partitions of the aggregates topic: fewer than processors, so one processor owns none.
const AGGREGATES_PARTITIONS: i32 = 2;
/// How long a run may take to index everything before the test fails.
const COMPLETE_TIMEOUT: Duration = Duration::from_secs(75);

/// A broker for one test: the mock cluster, or an external cluster from the environment.
struct Broker {
    mock: Option<MockCluster<'static, DefaultProducerContext>>,
    brokers: String,
    topics: KafkaTopics,
    groups: KafkaGroups,
}

impl Broker {
    /// Starts a one-broker mock cluster (or uses `SLUICE_TEST_KAFKA_BROKERS`) with this test's
    /// own topics and groups.
    fn start(test: &str) -> anyhow::Result<Broker> {
        let suffix = format!(
            "{test}-{}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_millis()
        );
        let topics = KafkaTopics {
            raw: format!("raw-{suffix}"),
            events: format!("events-{suffix}"),
            aggregates: format!("aggregates-{suffix}"),
            alerts: format!("alerts-{suffix}"),
            dead_letter: format!("deadletter-{suffix}"),
        };
        let groups = KafkaGroups {
            processor: format!("processor-{suffix}"),
            indexer: format!("indexer-{suffix}"),
            aggregator: format!("aggregator-{suffix}"),
            alerts: format!("alerts-{suffix}"),
        };
        let layout = [
            (topics.raw.as_str(), RAW_PARTITIONS),
            (topics.events.as_str(), EVENTS_PARTITIONS),
            (topics.aggregates.as_str(), AGGREGATES_PARTITIONS),
            (topics.alerts.as_str(), 1),
            (topics.dead_letter.as_str(), 1),
        ];
        if let Ok(brokers) = std::env::var("SLUICE_TEST_KAFKA_BROKERS")
            && !brokers.trim().is_empty()
        {
            create_topics(&brokers, &layout)?;
            return Ok(Broker {
                mock: None,
                brokers,
                topics,
                groups,
            });
        }
        let mock = MockCluster::new(1)?;
        for (name, partitions) in layout {
            mock.create_topic(name, partitions, 1)?;
        }
        let brokers = mock.bootstrap_servers();
        anyhow::ensure!(
            brokers.starts_with("127.0.0.1:") || brokers.starts_with("localhost:"),
            "mock cluster listens on {brokers}, not loopback"
        );
        Ok(Broker {
            mock: Some(mock),
            brokers,
            topics,
            groups,
        })
    }

    fn kafka(&self, max_in_flight_records: usize) -> KafkaConfig {
        let mut kafka = KafkaConfig::with_brokers(&self.brokers);
        kafka.topics = self.topics.clone();
        kafka.groups = self.groups.clone();
        kafka.producer.max_in_flight_records = max_in_flight_records;
        kafka.consumer.commit_interval_ms = 200;
        // Tests see a killed member's partitions move quickly, and members learn of a
        // rebalance soon (offset commits fail while one is in progress, which costs replays).
        kafka.consumer.session_timeout_ms = 6_000;
        kafka
            .properties
            .insert("heartbeat.interval.ms".into(), "500".into());
        kafka
    }
}

/// Creates topics on an external cluster with the admin API.
fn create_topics(brokers: &str, layout: &[(&str, i32)]) -> anyhow::Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    let topics: Vec<NewTopic<'_>> = layout
        .iter()
        .map(|(name, partitions)| NewTopic::new(name, *partitions, TopicReplication::Fixed(1)))
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    for result in rt.block_on(admin.create_topics(&topics, &AdminOptions::new()))? {
        result.map_err(|(topic, err)| anyhow::anyhow!("failed to create {topic}: {err}"))?;
    }
    Ok(())
}

fn role_config(role: Role, kafka: KafkaConfig, pods: Option<&Path>, data: &Path) -> SluiceConfig {
    let mut config = SluiceConfig::default();
    config.role = role;
    config.data_dir = Some(data.to_path_buf());
    config.ingest.pods_dir = pods.map(Path::to_path_buf);
    config.ingest.poll_interval_ms = 50;
    config.ingest.checkpoint_interval_ms = 100;
    config.api.enabled = false;
    config.index.writer_heap_bytes = 15_000_000;
    config.index.writer_threads = 1;
    config.index.commit_interval_ms = 300;
    config.kafka = kafka;
    config.resolve_paths();
    config
}

/// A whole distributed deployment in this process.
struct Deployment {
    agents: Vec<Agent>,
    agent_configs: Vec<SluiceConfig>,
    processors: Vec<Option<Processor>>,
    indexers: Vec<Indexer>,
    index_dir: std::path::PathBuf,
    expected: u64,
    _dirs: tempfile::TempDir,
}

impl Deployment {
    /// Generates one pod tree per agent and starts `processors` processors and `indexers`
    /// indexers, then the agents.
    fn start(
        broker: &Broker,
        lines_per_agent: u64,
        processors: usize,
        indexers: usize,
        max_in_flight_records: usize,
    ) -> anyhow::Result<Deployment> {
        let dirs = tempfile::tempdir()?;
        let index_dir = dirs.path().join("indexers");
        let mut expected = 0;
        let mut pods = Vec::new();
        for a in 0..2u64 {
            let dir = dirs.path().join(format!("pods-{a}"));
            expected += support::generate(&dir, lines_per_agent, 11 + a)?.records;
            pods.push(dir);
        }
        let kafka = broker.kafka(max_in_flight_records);
        let indexers = (0..indexers)
            .map(|_| Indexer::start(&role_config(Role::Indexer, kafka.clone(), None, &index_dir)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let processors = (0..processors)
            .map(|p| {
                let data = dirs.path().join(format!("processor-{p}"));
                Processor::start(&role_config(Role::Processor, kafka.clone(), None, &data))
                    .map(Some)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let agent_configs: Vec<SluiceConfig> = pods
            .iter()
            .enumerate()
            .map(|(a, pods)| {
                let data = dirs.path().join(format!("agent-{a}"));
                role_config(Role::Agent, kafka.clone(), Some(pods), &data)
            })
            .collect();
        let agents = agent_configs
            .iter()
            .map(Agent::start)
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Deployment {
            agents,
            agent_configs,
            processors,
            indexers,
            index_dir,
            expected,
            _dirs: dirs,
        })
    }

    fn check_health(&mut self) -> anyhow::Result<()> {
        for agent in &mut self.agents {
            agent.check_health()?;
        }
        for processor in self.processors.iter_mut().flatten() {
            processor.check_health()?;
        }
        for indexer in &mut self.indexers {
            indexer.check_health()?;
        }
        Ok(())
    }

    fn indexed(&self) -> anyhow::Result<u64> {
        DistributedSearcher::open(&self.index_dir, 90)?.count(&index::SearchRequest::default())
    }

    fn processed(&self) -> u64 {
        self.processors
            .iter()
            .flatten()
            .map(|p| p.stats().records_in.load(Relaxed))
            .sum()
    }

    fn delivered(&self) -> u64 {
        self.agents
            .iter()
            .map(|a| a.stats().records_delivered.load(Relaxed))
            .sum()
    }

    /// Waits until the agents are idle and the stores hold `expected` events.
    fn wait_complete(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + COMPLETE_TIMEOUT;
        loop {
            self.check_health()?;
            let indexed = self.indexed()?;
            if indexed >= self.expected && self.agents.iter().all(Agent::is_idle) {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "not complete after {COMPLETE_TIMEOUT:?}: {indexed} of {} indexed, {} delivered, {} processed; indexers: {:?}",
                self.expected,
                self.delivered(),
                self.processed(),
                self.indexers.iter().map(Indexer::stats).collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Asserts that every generated record is in the stores exactly once, then shuts down.
    fn assert_exactly_once_and_stop(mut self) -> anyhow::Result<()> {
        self.wait_complete()?;
        // Anything still in flight (a replay) would show up within a few commit intervals.
        std::thread::sleep(Duration::from_secs(1));
        let searcher = DistributedSearcher::open(&self.index_dir, 90)?;
        let count = searcher.count(&index::SearchRequest::default())?;
        let mut ids = HashSet::new();
        let mut seen = 0u64;
        searcher.for_each("", |event| {
            seen += 1;
            ids.insert(event.event.id.clone());
        })?;
        for p in self.processors.iter().flatten() {
            eprintln!("processor: {:?}", p.stats());
        }
        for i in &self.indexers {
            eprintln!("indexer: {:?}", i.stats());
        }
        let replays: u64 = self
            .indexers
            .iter()
            .map(|i| i.stats().replays_skipped.load(Relaxed))
            .sum();
        eprintln!(
            "{} records generated, {} processed (replays included), {replays} replays dropped by the stores, {count} indexed",
            self.expected,
            self.processed()
        );
        assert_eq!(count, self.expected, "store count vs generated records");
        assert_eq!(seen, count, "events walked vs count");
        assert_eq!(ids.len() as u64, count, "every event.id is unique");
        assert!(
            searcher.partitions().len() > 1,
            "events spread over partitions"
        );
        for agent in self.agents.drain(..) {
            agent.shutdown()?;
        }
        for processor in self.processors.drain(..).flatten() {
            processor.shutdown()?;
        }
        for indexer in self.indexers.drain(..) {
            indexer.shutdown()?;
        }
        Ok(())
    }
}

#[test]
fn two_agents_three_processors_two_indexers_index_every_record_exactly_once() -> anyhow::Result<()>
{
    let broker = Broker::start("all")?;
    // Two raw messages no processor can decode: they go to the dead-letter topic, counted,
    // and the offsets behind them are committed like any other.
    produce_bad_raw_messages(&broker)?;
    let deployment = Deployment::start(&broker, 3_000, 3, 2, 5_000)?;
    let processors: Vec<_> = deployment
        .processors
        .iter()
        .flatten()
        .map(Processor::stats)
        .collect();
    deployment.assert_exactly_once_and_stop()?;
    let dead: u64 = processors
        .iter()
        .map(|p| p.dead_letters.load(Relaxed))
        .sum();
    assert!(dead >= 2, "{dead} dead letters counted");
    let (_, high) = watermarks(&broker, &broker.topics.dead_letter, 0)?;
    assert!(high >= 2, "{high} messages on the dead-letter topic");
    Ok(())
}

/// Produces a non-JSON raw message and one with an unknown wire version.
fn produce_bad_raw_messages(broker: &Broker) -> anyhow::Result<()> {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &broker.brokers)
        .create()?;
    let valid = serde_json::to_vec(&schemas::RawRecord::new(
        "from the future",
        schemas::SourceRef::default(),
    ))?;
    let future = OwnedHeaders::new().insert(Header {
        key: sluice::distributed::HEADER_RAW_VERSION,
        value: Some("999"),
    });
    producer
        .send(
            BaseRecord::to(&broker.topics.raw)
                .key("bad")
                .payload("not json"),
        )
        .map_err(|(e, _)| e)?;
    producer
        .send(
            BaseRecord::to(&broker.topics.raw)
                .key("bad")
                .payload(&valid)
                .headers(future),
        )
        .map_err(|(e, _)| e)?;
    producer.flush(Duration::from_secs(10))?;
    Ok(())
}

fn watermarks(broker: &Broker, topic: &str, partition: i32) -> anyhow::Result<(i64, i64)> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &broker.brokers)
        .set("group.id", "sluice-test-watermarks")
        .create()?;
    Ok(consumer.fetch_watermarks(topic, partition, Duration::from_secs(10))?)
}

#[test]
fn killing_a_processor_mid_stream_loses_and_duplicates_nothing() -> anyhow::Result<()> {
    let broker = Broker::start("kill")?;
    let mut deployment = Deployment::start(&broker, 4_000, 3, 2, 5_000)?;
    let third = deployment.expected / 3;
    assert!(
        support::wait_for(Duration::from_secs(60), || deployment.processed() >= third),
        "processors never got a third of the way"
    );
    let victim = deployment.processors[0]
        .take()
        .ok_or_else(|| anyhow::anyhow!("processor 0 present"))?;
    let victim_processed = victim.stats().records_in.load(Relaxed);
    drop(victim); // a crash: no flush, no commit
    assert!(
        deployment.indexed()? < deployment.expected,
        "the kill must happen mid-stream"
    );
    eprintln!(
        "killed processor 0 after it processed {victim_processed} records; {} of {} processed overall",
        deployment.processed(),
        deployment.expected
    );
    deployment.assert_exactly_once_and_stop()
}

#[test]
fn an_agent_crash_and_restart_mid_stream_loses_and_duplicates_nothing() -> anyhow::Result<()> {
    let broker = Broker::start("agentcrash")?;
    let lines_per_agent = 4_000;
    let mut deployment = Deployment::start(&broker, lines_per_agent, 3, 2, 200)?;
    let stats = deployment.agents[0].stats();
    assert!(
        support::wait_for(Duration::from_secs(60), || {
            stats.records_delivered.load(Relaxed) >= 500
        }),
        "agent 0 never delivered 500 records"
    );
    let crashed = deployment.agents.remove(0);
    drop(crashed); // a crash: queued records purged, no further checkpoint
    let delivered = stats.records_delivered.load(Relaxed);
    assert!(
        delivered < lines_per_agent,
        "the crash must happen mid-stream ({delivered} delivered)"
    );
    let restarted = Agent::start(&deployment.agent_configs[0])?;
    deployment.agents.insert(0, restarted);
    eprintln!("crashed agent 0 after {delivered} deliveries and restarted it");
    deployment.assert_exactly_once_and_stop()
}

#[test]
fn a_30s_broker_outage_loses_nothing_and_agent_memory_stays_bounded() -> anyhow::Result<()> {
    /// Small enough that the outage reaches it: the agents must stop reading.
    const BOUND: usize = 500;
    let broker = Broker::start("outage")?;
    let deployment = Deployment::start(&broker, 6_000, 3, 2, BOUND)?;
    let Some(mock) = &broker.mock else {
        eprintln!("skipping the outage: an external cluster cannot be taken down by the test");
        return deployment.assert_exactly_once_and_stop();
    };
    let quarter = deployment.expected / 4;
    assert!(
        support::wait_for(Duration::from_secs(60), || deployment.delivered()
            >= quarter),
        "agents never delivered a quarter"
    );
    mock.broker_down(-1)?;
    let down_at = Instant::now();
    let delivered_at_down = deployment.delivered();
    // During the outage the agents fill their in-flight bound and stop reading.
    std::thread::sleep(Duration::from_secs(30));
    let read_during = deployment
        .agents
        .iter()
        .map(|a| a.stats().records_produced.load(Relaxed))
        .sum::<u64>();
    for agent in &deployment.agents {
        let stats = agent.stats();
        assert!(
            stats.in_flight.load(Relaxed) <= BOUND as u64,
            "in flight during the outage"
        );
    }
    mock.broker_up(-1)?;
    eprintln!(
        "broker down {:.1}s at {delivered_at_down} delivered; {read_during} produced by then, expected {}",
        down_at.elapsed().as_secs_f64(),
        deployment.expected
    );
    assert!(
        read_during < deployment.expected,
        "the agents must have been stopped by the outage, not finished before it"
    );
    let stats: Vec<_> = deployment.agents.iter().map(Agent::stats).collect();
    deployment.assert_exactly_once_and_stop()?;
    for s in stats {
        let max = s.in_flight_max.load(Relaxed);
        assert!(max <= BOUND as u64, "in-flight peaked at {max} > {BOUND}");
        assert!(
            s.backpressure_waits.load(Relaxed) > 0,
            "the bound was reached"
        );
        assert_eq!(s.delivery_failures.load(Relaxed), 0);
    }
    Ok(())
}

/// One service ("checkout") on 8 pods, one request every 10 s rotating over the pods (each
/// pod every 80 s): 30 requests per 5-minute window for the service, at most 4 per pod, so
/// even 5 pods sharing a raw partition stay under the rules' `min_samples` (20). From minute 3
/// every 4th request fails with 503 and every 4th (another) takes 3 s.
fn write_merged_view_workload(pods: &Path, start: i64) -> anyhow::Result<usize> {
    use std::io::Write;
    const PODS: usize = 8;
    const STEPS: i64 = 72;
    let mut files = Vec::new();
    for pod in 0..PODS {
        let dir = pods
            .join(format!("shop_checkout-{pod}_uid-checkout-{pod}"))
            .join("checkout");
        std::fs::create_dir_all(&dir)?;
        files.push(std::io::BufWriter::new(std::fs::File::create(
            dir.join("0.log"),
        )?));
    }
    let mut lines = 0;
    for step in 0..STEPS {
        let t = start + step * 10;
        let incident = step >= 18;
        let status = if incident && step % 4 == 0 { 503 } else { 200 };
        let duration_ms = if incident && step % 4 == 2 {
            3000.0
        } else {
            120.0
        };
        writeln!(
            files[step as usize % PODS],
            "{} stdout F {{\"level\": \"info\", \"msg\": \"GET /api/orders\", \"method\": \"GET\", \"path\": \"/api/orders\", \"status_code\": {status}, \"duration_ms\": {duration_ms:.1}}}",
            stamp(t)?
        )?;
        lines += 1;
    }
    for file in &mut files {
        file.flush()?;
    }
    Ok(lines)
}

/// CRI timestamp of Unix second `t`.
fn stamp(t: i64) -> anyhow::Result<String> {
    Ok(chrono::DateTime::from_timestamp(t, 0)
        .ok_or_else(|| anyhow::anyhow!("time {t} out of range"))?
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
}

/// Appends one info line stamped `t` to every pod's log of the merged-view workload: event
/// time moves past every window on every raw partition that has pods.
fn append_end_of_workload(pods: &Path, t: i64) -> anyhow::Result<usize> {
    use std::io::Write;
    let mut lines = 0;
    for entry in std::fs::read_dir(pods)? {
        let path = entry?.path().join("checkout").join("0.log");
        let mut file = std::fs::OpenOptions::new().append(true).open(&path)?;
        writeln!(
            file,
            "{} stdout F {{\"level\": \"info\", \"msg\": \"end of workload\"}}",
            stamp(t)?
        )?;
        lines += 1;
    }
    Ok(lines)
}

/// Every raw record on the raw topic, per partition, in offset order.
fn read_raw_topic(broker: &Broker) -> anyhow::Result<Vec<Vec<schemas::RawRecord>>> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{Message, Offset, TopicPartitionList};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &broker.brokers)
        .set("group.id", "sluice-test-raw-reader")
        .set("enable.auto.commit", "false")
        .create()?;
    let mut list = TopicPartitionList::new();
    let mut remaining = 0;
    let mut ends = Vec::new();
    for p in 0..RAW_PARTITIONS {
        let (low, high) =
            consumer.fetch_watermarks(&broker.topics.raw, p, Duration::from_secs(10))?;
        list.add_partition_offset(&broker.topics.raw, p, Offset::Offset(low))?;
        remaining += high - low;
        ends.push(high);
    }
    consumer.assign(&list)?;
    let mut out = vec![Vec::new(); RAW_PARTITIONS as usize];
    let deadline = Instant::now() + Duration::from_secs(30);
    while remaining > 0 {
        anyhow::ensure!(Instant::now() < deadline, "raw topic not read in time");
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) if m.offset() < ends[m.partition() as usize] => {
                remaining -= 1;
                let payload = m.payload().unwrap_or_default();
                out[m.partition() as usize].push(serde_json::from_slice(payload)?);
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => anyhow::bail!("raw topic read failed: {e}"),
            None => {}
        }
    }
    Ok(out)
}

/// Every alert on the alerts topic so far.
fn read_alerts(broker: &Broker) -> anyhow::Result<Vec<schemas::Alert>> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{Message, Offset, TopicPartitionList};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &broker.brokers)
        .set("group.id", "sluice-test-alert-reader")
        .set("enable.auto.commit", "false")
        .create()?;
    let (low, high) =
        consumer.fetch_watermarks(&broker.topics.alerts, 0, Duration::from_secs(10))?;
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(&broker.topics.alerts, 0, Offset::Offset(low))?;
    consumer.assign(&list)?;
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut next = low;
    while next < high {
        anyhow::ensure!(Instant::now() < deadline, "alerts topic not read in time");
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                next = m.offset() + 1;
                out.push(serde_json::from_slice(m.payload().unwrap_or_default())?);
            }
            Some(Err(e)) => anyhow::bail!("alerts topic read failed: {e}"),
            None => {}
        }
    }
    Ok(out)
}

/// Runs the rules of one single-process detector over `events` (in time order) and returns
/// the alerts of the rules (not security or pattern alerts), sorted.
fn single_process_rule_alerts(events: &[schemas::LogEvent]) -> anyhow::Result<Vec<schemas::Alert>> {
    let config = detect::DetectConfig {
        security_enabled: false,
        patterns_enabled: false,
        allowed_lateness_secs: MERGED_VIEW_LATENESS_SECS,
        ..detect::DetectConfig::default()
    };
    let mut detector = detect::Detector::try_new(&config)?;
    let mut alerts = Vec::new();
    let mut sorted = events.to_vec();
    sorted.sort_by_key(|e| e.timestamp);
    for mut event in sorted {
        detector.process(&mut event, &mut alerts);
    }
    detector.finish(&mut alerts);
    Ok(sort_alerts(alerts))
}

fn sort_alerts(mut alerts: Vec<schemas::Alert>) -> Vec<schemas::Alert> {
    alerts.sort_by(|a, b| {
        (a.starts_at, &a.fingerprint, a.ends_at, &a.annotations).cmp(&(
            b.starts_at,
            &b.fingerprint,
            b.ends_at,
            &b.annotations,
        ))
    });
    alerts
}

fn rule_alerts(alerts: Vec<schemas::Alert>) -> Vec<schemas::Alert> {
    let rules: Vec<String> = detect::config::builtin_rules("")
        .into_iter()
        .map(|r| r.name)
        .collect();
    sort_alerts(
        alerts
            .into_iter()
            .filter(|a| {
                a.labels
                    .get(schemas::LABEL_ALERTNAME)
                    .is_some_and(|n| rules.contains(n))
            })
            .collect(),
    )
}

/// The agent reads one pod's file after another, so a raw partition shared by several pods
/// sees their (old) lines out of time order by up to the workload's 12 minutes: both sides
/// tolerate that much disorder. Lateness is not rule semantics; windows, thresholds and
/// `for` are the runbook's.
const MERGED_VIEW_LATENESS_SECS: u64 = 3_600;

/// A webhook receiver on 127.0.0.1 that keeps every alert it is sent.
struct WebhookReceiver {
    url: String,
    alerts: std::sync::Arc<std::sync::Mutex<Vec<schemas::Alert>>>,
    _rt: tokio::runtime::Runtime,
}

impl WebhookReceiver {
    fn start() -> anyhow::Result<WebhookReceiver> {
        type Seen = std::sync::Arc<std::sync::Mutex<Vec<schemas::Alert>>>;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let alerts: Seen = Default::default();
        let seen = alerts.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |body: axum::body::Bytes| {
                let seen = seen.clone();
                async move {
                    #[derive(serde::Deserialize)]
                    struct Body {
                        alerts: Vec<schemas::Alert>,
                    }
                    match serde_json::from_slice::<Body>(&body) {
                        Ok(b) => {
                            seen.lock().expect("receiver lock").extend(b.alerts);
                            axum::http::StatusCode::OK
                        }
                        Err(_) => axum::http::StatusCode::BAD_REQUEST,
                    }
                }
            }),
        );
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        rt.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(WebhookReceiver {
            url,
            alerts,
            _rt: rt,
        })
    }

    fn received(&self) -> Vec<schemas::Alert> {
        self.alerts.lock().expect("receiver lock").clone()
    }
}

#[test]
fn three_processors_alert_on_the_merged_view_exactly_like_one_detector() -> anyhow::Result<()> {
    let broker = Broker::start("merged")?;
    let receiver = WebhookReceiver::start()?;
    let dirs = tempfile::tempdir()?;
    let pods = dirs.path().join("pods");
    let start = support::recent_start().timestamp();
    let mut lines = write_merged_view_workload(&pods, start)?;
    let mut kafka = broker.kafka(5_000);
    // Old timestamps: event time must move with the events only. Partitions without pods stop
    // holding the owners back once idle; long enough that no partition with pods goes idle
    // before the agent reaches it.
    kafka.consumer.wall_clock_watermark = false;
    kafka.consumer.idle_partition_ms = 10_000;
    let mut processors = (0..3)
        .map(|p| {
            let data = dirs.path().join(format!("processor-{p}"));
            let mut config = role_config(Role::Processor, kafka.clone(), None, &data);
            config.detect.allowed_lateness_secs = MERGED_VIEW_LATENESS_SECS;
            // The alerts topic is delivered by whichever processor owns its partition.
            config
                .alerting
                .webhooks
                .push(sluice::delivery::WebhookConfig {
                    name: Some("test".into()),
                    url: receiver.url.clone(),
                    secret_env: None,
                    secret_file: None,
                });
            config.alerting.initial_backoff_ms = 100;
            Processor::start(&config)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    // Every processor owns raw partitions, and the aggregates partitions have owners, before
    // any line is shipped (rebalances later are survived, but cost replays).
    let assigned: Vec<_> = processors.iter().map(Processor::stats).collect();
    assert!(
        support::wait_for(Duration::from_secs(30), || {
            let sum = |f: fn(&ProcessorStats) -> u64| assigned.iter().map(|s| f(s)).sum::<u64>();
            assigned
                .iter()
                .all(|s| s.assigned_partitions.load(Relaxed) > 0)
                && sum(|s| s.assigned_partitions.load(Relaxed)) == RAW_PARTITIONS as u64
                && sum(|s| s.aggregate_partitions.load(Relaxed)) == AGGREGATES_PARTITIONS as u64
        }),
        "the processor groups never settled"
    );
    let agent = Agent::start(&role_config(
        Role::Agent,
        kafka.clone(),
        Some(&pods),
        &dirs.path().join("agent"),
    ))?;
    let delivered = agent.stats();
    assert!(
        support::wait_for(Duration::from_secs(60), || {
            delivered.records_delivered.load(Relaxed) >= lines as u64
        }),
        "the agent delivered {} of {lines} lines",
        delivered.records_delivered.load(Relaxed)
    );
    // Only now that every request is shipped: the end-of-workload lines close the windows.
    lines += append_end_of_workload(&pods, start + 720 + 2 * MERGED_VIEW_LATENESS_SECS as i64)?;
    assert!(
        support::wait_for(Duration::from_secs(60), || {
            delivered.records_delivered.load(Relaxed) >= lines as u64
        }),
        "the agent delivered {} of {lines} lines",
        delivered.records_delivered.load(Relaxed)
    );

    // The single-process truth, from exactly the records the processors consumed.
    let raw = read_raw_topic(&broker)?;
    let mut parser = parse::Parser::try_new(&SluiceConfig::default().parse)?;
    let per_partition: Vec<Vec<schemas::LogEvent>> = raw
        .iter()
        .map(|records| records.iter().map(|r| parser.parse_record(r)).collect())
        .collect();
    let all: Vec<schemas::LogEvent> = per_partition.iter().flatten().cloned().collect();
    assert_eq!(all.len(), lines);
    let busy = per_partition.iter().filter(|p| !p.is_empty()).count();
    assert!(busy >= 2, "the service's pods span {busy} raw partitions");
    let expected = single_process_rule_alerts(&all)?;
    let fired: HashSet<&str> = expected
        .iter()
        .filter(|a| a.status == schemas::AlertStatus::Firing)
        .map(|a| a.labels[schemas::LABEL_ALERTNAME].as_str())
        .collect();
    assert!(
        fired.contains("HighErrorRate") && fired.contains("HighLatency"),
        "the merged view fires: {fired:?}"
    );
    for (p, events) in per_partition.iter().enumerate() {
        let alone = single_process_rule_alerts(events)?;
        assert!(
            alone.is_empty(),
            "raw partition {p} alone must not fire: {alone:?}"
        );
    }

    // The distributed result: the owners' alerts on the alerts topic.
    let mut got = Vec::new();
    let complete = support::wait_for(Duration::from_secs(60), || {
        got = read_alerts(&broker).map(rule_alerts).unwrap_or_default();
        got.len() >= expected.len()
    });
    for p in &mut processors {
        p.check_health()?;
    }
    let stats: Vec<_> = processors.iter().map(Processor::stats).collect();
    for s in &stats {
        eprintln!("processor: {s:?}");
    }
    let brief = |alerts: &[schemas::Alert]| -> Vec<String> {
        alerts
            .iter()
            .map(|a| {
                format!(
                    "{} {:?} {} {:?} {}",
                    a.labels[schemas::LABEL_ALERTNAME],
                    a.status,
                    a.starts_at,
                    a.ends_at,
                    a.annotations.get("value").map_or("", String::as_str)
                )
            })
            .collect()
    };
    assert!(
        complete,
        "{} of {} alerts: {:#?} expected {:#?}",
        got.len(),
        expected.len(),
        brief(&got),
        brief(&expected)
    );
    // Anything duplicated would arrive within a few commit intervals.
    std::thread::sleep(Duration::from_secs(2));
    let got = rule_alerts(read_alerts(&broker)?);
    assert_eq!(
        brief(&got),
        brief(&expected),
        "distributed alerts vs one detector"
    );
    assert_eq!(got, expected, "distributed alerts vs one detector");
    // Delivery: every alert of the topic reached the webhook once, through an outbox.
    assert!(
        support::wait_for(Duration::from_secs(30), || rule_alerts(receiver.received())
            .len()
            >= expected.len()),
        "the webhook received {} of {} rule alerts",
        rule_alerts(receiver.received()).len(),
        expected.len()
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        rule_alerts(receiver.received()),
        expected,
        "alerts delivered to the webhook"
    );
    let delivered: u64 = processors
        .iter()
        .filter_map(Processor::delivery_stats)
        .map(|d| d.delivered.load(Relaxed))
        .sum();
    assert!(delivered >= expected.len() as u64, "{delivered} delivered");
    let merged: u64 = stats.iter().map(|s| s.aggregate_merged.load(Relaxed)).sum();
    let late: u64 = stats.iter().map(|s| s.aggregate_late.load(Relaxed)).sum();
    assert!(merged > 0);
    assert_eq!(late, 0, "no partial arrived after its bucket was evaluated");
    agent.shutdown()?;
    for p in processors {
        p.shutdown()?;
    }
    // Each processor saved its security and pattern state, restorable by a detector of the
    // same config.
    let mut templates = 0;
    for p in 0..3 {
        let path = dirs
            .path()
            .join(format!("processor-{p}"))
            .join("state")
            .join("detect.json");
        let state: detect::DetectorState = serde_json::from_slice(&std::fs::read(&path)?)?;
        let mut fresh = detect::Detector::try_new(&detect::DetectConfig {
            builtin_rules: false,
            ..detect::DetectConfig::default()
        })?;
        fresh.restore(state)?;
        templates += fresh.stats().pattern_templates;
    }
    assert!(
        templates > 0,
        "the saved states hold the learnt log patterns"
    );
    Ok(())
}

/// A minimal Elasticsearch `_bulk` endpoint on 127.0.0.1: stores `create`d `_id`s, answers 409
/// for an `_id` it has, and rejects the first `reject_first` items it sees with 429 (as a busy
/// cluster's write queue does).
struct MockEs {
    url: String,
    ids: std::sync::Arc<std::sync::Mutex<HashSet<String>>>,
    _rt: tokio::runtime::Runtime,
}

impl MockEs {
    fn start(reject_first: u64) -> anyhow::Result<MockEs> {
        use std::sync::atomic::{AtomicU64, Ordering};
        type Ids = std::sync::Arc<std::sync::Mutex<HashSet<String>>>;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let ids: Ids = Default::default();
        let seen = std::sync::Arc::new(AtomicU64::new(0));
        let store = ids.clone();
        let bulk = move |body: axum::body::Bytes| {
            let store = store.clone();
            let seen = seen.clone();
            async move {
                let text = String::from_utf8_lossy(&body).into_owned();
                let mut lines = text.lines().filter(|l| !l.trim().is_empty());
                let mut items = Vec::new();
                let mut errors = false;
                while let (Some(action), Some(_source)) = (lines.next(), lines.next()) {
                    let action: serde_json::Value =
                        serde_json::from_str(action).unwrap_or_default();
                    let id = action["create"]["_id"].as_str().unwrap_or("").to_owned();
                    let n = seen.fetch_add(1, Ordering::Relaxed);
                    let status = if n < reject_first {
                        429
                    } else if store.lock().expect("mock lock").insert(id) {
                        201
                    } else {
                        409
                    };
                    errors |= status != 201;
                    let mut item = serde_json::json!({"create": {"status": status}});
                    if status == 429 {
                        item["create"]["error"] =
                            serde_json::json!({"type": "es_rejected_execution_exception"});
                    } else if status == 409 {
                        item["create"]["error"] =
                            serde_json::json!({"type": "version_conflict_engine_exception"});
                    }
                    items.push(item);
                }
                let body = serde_json::json!({"errors": errors, "items": items}).to_string();
                (
                    [
                        ("content-type", "application/json"),
                        ("x-elastic-product", "Elasticsearch"),
                    ],
                    body,
                )
            }
        };
        let app = axum::Router::new()
            .route("/{index}/_bulk", axum::routing::post(bulk.clone()))
            .route("/_bulk", axum::routing::post(bulk));
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let url = format!("http://{}", listener.local_addr()?);
        rt.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(MockEs { url, ids, _rt: rt })
    }

    fn stored(&self) -> usize {
        self.ids.lock().expect("mock lock").len()
    }
}

#[test]
fn indexers_write_to_elasticsearch_and_commit_only_accepted_events() -> anyhow::Result<()> {
    let broker = Broker::start("es")?;
    // 29 items refused with 429 and not retried by the writer (one attempt): the indexer must
    // leave them uncommitted and send them again.
    let es = MockEs::start(29)?;
    let dirs = tempfile::tempdir()?;
    let pods = dirs.path().join("pods");
    let expected = support::generate(&pods, 2_000, 5)?.records;
    let mut kafka = broker.kafka(5_000);
    kafka.indexer_sink = sluice::distributed::IndexerSink::Elasticsearch;
    let mut indexers = (0..2)
        .map(|i| {
            let data = dirs.path().join(format!("indexer-{i}"));
            let mut config = role_config(Role::Indexer, kafka.clone(), None, &data);
            config.elasticsearch.urls = vec![es.url.clone()];
            config.elasticsearch.dead_letter_dir = data.join("es-dead-letter");
            config.elasticsearch.batch_interval_ms = 100;
            config.elasticsearch.retry.max_attempts = 1;
            Indexer::start(&config)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut processor = Processor::start(&role_config(
        Role::Processor,
        kafka.clone(),
        None,
        &dirs.path().join("processor"),
    ))?;
    let agent = Agent::start(&role_config(
        Role::Agent,
        kafka.clone(),
        Some(&pods),
        &dirs.path().join("agent"),
    ))?;
    let done = support::wait_for(Duration::from_secs(90), || es.stored() as u64 >= expected);
    processor.check_health()?;
    for i in &mut indexers {
        i.check_health()?;
    }
    let stats: Vec<_> = indexers.iter().map(Indexer::stats).collect();
    for s in &stats {
        eprintln!("indexer: {s:?}");
    }
    assert!(
        done,
        "{} of {expected} events in Elasticsearch",
        es.stored()
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(es.stored() as u64, expected, "every event stored once");
    let created: u64 = stats.iter().map(|s| s.events_added.load(Relaxed)).sum();
    let unacked: u64 = stats.iter().map(|s| s.es_unaccepted.load(Relaxed)).sum();
    assert_eq!(created, expected, "created answers");
    assert!(
        unacked >= 29,
        "{unacked} refused items were seen and replayed"
    );
    agent.shutdown()?;
    processor.shutdown()?;
    for i in indexers {
        i.shutdown()?;
    }
    Ok(())
}
