//! The bulk writer: acknowledgements, replays, partial failures, 429 storms, an outage.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use index::elasticsearch::{EsBatcher, EsWriter, ItemStatus, setup};
use tokio::time::timeout;

use crate::mock::Faults;
use crate::{TEST_TIMEOUT, TestEs, dead_letters, event, events};

fn ids(events: &[schemas::LogEvent]) -> HashSet<String> {
    events.iter().map(|e| e.event.id.clone()).collect()
}

/// Checks that exactly `expected` ids are stored (mock), or that the count matches (real).
async fn assert_stored_exactly(es: &TestEs, expected: &HashSet<String>) -> anyhow::Result<()> {
    let data_stream = es.config().data_stream();
    if let Some(mock) = &es.mock {
        let stored: HashSet<String> = mock.stored_ids(&data_stream).into_iter().collect();
        let missing = expected.difference(&stored).count();
        let extra = stored.difference(expected).count();
        anyhow::ensure!(
            missing == 0 && extra == 0,
            "stored set differs: {missing} missing, {extra} unexpected"
        );
        // With `create`, ES answers 201 at most once per _id: more would mean a duplicate.
        assert_eq!(mock.created(), expected.len() as u64, "201s given");
        assert_eq!(mock.index_ops(), 0, "the writer must only send create ops");
    }
    assert_eq!(es.stored_count().await?, expected.len() as u64);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_is_stored_once_and_a_replay_is_a_duplicate() -> anyhow::Result<()> {
    let es = TestEs::start("replay").await?;
    let cfg = es.config();
    setup(&cfg).await?;
    let writer = EsWriter::try_new(&cfg)?;
    let batch = events(1, 2_000);

    let first = timeout(TEST_TIMEOUT, writer.write(&batch)).await??;
    assert_eq!(first.count(ItemStatus::Created), batch.len());
    assert_eq!(first.acked_prefix(), batch.len());

    let replay = timeout(TEST_TIMEOUT, writer.write(&batch)).await??;
    assert_eq!(
        replay.count(ItemStatus::Duplicate),
        batch.len(),
        "a replay is all 409s"
    );
    assert!(replay.all_acked(), "409 counts as success");

    let m = writer.metrics();
    assert_eq!(m.docs_created, batch.len() as u64);
    assert_eq!(m.docs_duplicate, batch.len() as u64);
    assert!(
        m.bulk_requests >= 2 * (batch.len() as u64).div_ceil(cfg.batch_max_docs as u64),
        "batches are cut at batch_max_docs/bytes: {} requests",
        m.bulk_requests
    );
    if let Some(mock) = &es.mock {
        assert!(mock.max_bulk_body_bytes() <= cfg.batch_max_bytes as u64);
        let id = &batch[7].event.id;
        let stored = mock
            .stored_doc(&cfg.data_stream(), id)
            .ok_or_else(|| anyhow::anyhow!("{id} not stored"))?;
        let back: schemas::LogEvent = serde_json::from_value(stored)?;
        assert_eq!(back, batch[7], "the stored source is the event");
    }
    assert_stored_exactly(&es, &ids(&batch)).await?;

    let mut text = String::new();
    writer.render_prometheus(&mut text);
    assert!(text.contains(&format!("sluice_es_docs_created_total {}", batch.len())));
    assert!(text.contains("# TYPE sluice_es_in_flight_bytes gauge"));
    es.cleanup().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_bulk_failures_dead_letter_the_bad_and_store_the_rest() -> anyhow::Result<()> {
    let es = TestEs::start("partial").await?;
    if let Some(mock) = &es.mock {
        mock.set_faults(Faults {
            item_429_every: 7,
            ..Faults::default()
        });
    }
    let cfg = es.config();
    setup(&cfg).await?;
    let writer = EsWriter::try_new(&cfg)?;
    let mut batch = events(2, 1_000);
    let mut bad = HashSet::new();
    for (i, ev) in batch.iter_mut().enumerate() {
        if i % 50 == 13 {
            // Not an IP: the `ip` mapping refuses it (400), on the mock and on a real cluster.
            ev.client.ip = Some(format!("not-an-ip-{i}"));
            bad.insert(i);
        }
    }
    let outcome = timeout(TEST_TIMEOUT, writer.write(&batch)).await??;
    for (i, status) in outcome.statuses.iter().enumerate() {
        let expected = if bad.contains(&i) {
            ItemStatus::DeadLettered
        } else {
            ItemStatus::Created
        };
        assert_eq!(*status, expected, "event {i}");
    }
    assert!(outcome.all_acked(), "dead-lettered events are acknowledged");

    let letters = dead_letters(es.dead_letter_dir.path())?;
    assert_eq!(letters.len(), bad.len());
    for letter in &letters {
        assert_eq!(letter["status"], 400);
        assert_eq!(letter["data_stream"], cfg.data_stream());
        let doc: schemas::LogEvent = serde_json::from_value(letter["document"].clone())?;
        assert_eq!(letter["_id"], doc.event.id.as_str());
        assert!(
            doc.client
                .ip
                .as_deref()
                .is_some_and(|ip| ip.starts_with("not-an-ip"))
        );
        assert!(letter["error"]["type"].is_string());
    }

    let m = writer.metrics();
    assert_eq!(m.docs_dead_lettered, bad.len() as u64);
    if es.mock.is_some() {
        assert!(m.docs_retried > 0, "the injected 429 items were retried");
    }
    let good: HashSet<String> = batch
        .iter()
        .enumerate()
        .filter(|(i, _)| !bad.contains(i))
        .map(|(_, e)| e.event.id.clone())
        .collect();
    assert_stored_exactly(&es, &good).await?;
    es.cleanup().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_429s_and_503s_loses_and_duplicates_nothing() -> anyhow::Result<()> {
    let es = TestEs::start("storm").await?;
    let Some(mock) = &es.mock else {
        eprintln!("skipping fault injection: it needs the mock, not a real cluster");
        return es.cleanup().await;
    };
    mock.set_faults(Faults {
        request_429_every: 3,
        request_503_every: 7,
        item_429_every: 4,
        ..Faults::default()
    });
    let cfg = es.config();
    setup(&cfg).await?;
    let writer = EsWriter::try_new(&cfg)?;
    // Four concurrent callers share the writer's two request slots.
    let mut all = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();
    for file in 10..14u64 {
        let batch = events(file, 1_000);
        all.extend(batch.iter().cloned());
        let writer = writer.clone();
        tasks.spawn(async move { writer.write(&batch).await });
    }
    let deadline = Instant::now() + TEST_TIMEOUT;
    while let Some(joined) = timeout(deadline - Instant::now(), tasks.join_next()).await? {
        let outcome = joined??;
        assert!(outcome.all_acked());
        assert_eq!(
            outcome.count(ItemStatus::Created) + outcome.count(ItemStatus::Duplicate),
            outcome.statuses.len()
        );
    }
    let m = writer.metrics();
    assert!(m.bulk_request_failures > 0 && m.docs_retried > 0, "{m:?}");
    assert_eq!(m.docs_unacked, 0);
    assert_eq!(m.docs_created, all.len() as u64);
    assert_eq!(m.in_flight_bytes, 0, "nothing left in flight");
    assert!(
        m.in_flight_bytes_max <= (cfg.max_concurrency * cfg.batch_max_bytes) as u64,
        "in-flight bytes {} exceed concurrency x batch",
        m.in_flight_bytes_max
    );
    assert_stored_exactly(&es, &ids(&all)).await
}

/// The one long test: the cluster vanishes for 30 s while four producers keep writing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_of_30s_loses_nothing_duplicates_nothing_and_bounds_memory() -> anyhow::Result<()>
{
    const OUTAGE: Duration = Duration::from_secs(30);
    let es = TestEs::start("outage").await?;
    let cfg = es.config();
    setup(&cfg).await?;
    let writer = EsWriter::try_new(&cfg)?;
    let started = Instant::now();
    let mut all = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();
    for file in 20..24u64 {
        // Each producer writes 10 calls of 250 events, one after another, as an indexer does.
        let batch = events(file, 2_500);
        all.extend(batch.iter().cloned());
        let writer = writer.clone();
        tasks.spawn(async move {
            for chunk in batch.chunks(250) {
                let outcome = writer.write(chunk).await?;
                anyhow::ensure!(
                    outcome.all_acked(),
                    "a write returned unacknowledged events"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stored_before = es.stored_count().await?;
    let back = es.proxy.vanish_for(OUTAGE);
    // Midway through the outage, nothing has been acknowledged that was not stored, and the
    // in-flight memory is bounded by concurrency x batch size, however long it lasts.
    tokio::time::sleep(OUTAGE / 2).await;
    let mid = writer.metrics();
    assert!(
        mid.bulk_request_failures > 0,
        "the outage was noticed: {mid:?}"
    );
    assert!(mid.in_flight_bytes <= (cfg.max_concurrency * cfg.batch_max_bytes) as u64);
    back.await??;
    let deadline = Instant::now() + TEST_TIMEOUT;
    while let Some(joined) = timeout(deadline - Instant::now(), tasks.join_next()).await? {
        joined??;
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= OUTAGE,
        "the writes waited out the outage ({elapsed:?})"
    );
    assert!(stored_before > 0, "writing had started before the outage");

    let m = writer.metrics();
    assert_eq!(m.docs_unacked, 0);
    assert_eq!(m.docs_dead_lettered, 0);
    assert!(
        m.in_flight_bytes_max <= (cfg.max_concurrency * cfg.batch_max_bytes) as u64,
        "in-flight bytes {} exceed concurrency x batch",
        m.in_flight_bytes_max
    );
    // A request cut after ES stored it but before its answer arrived is retried and answered
    // 409: those events count as duplicates. Each event ends settled exactly once, and the
    // store below holds each id once.
    assert_eq!(m.docs_created + m.docs_duplicate, all.len() as u64);
    eprintln!(
        "outage: {} created, {} duplicates after cut requests, {} failed requests, max in flight {} KiB",
        m.docs_created,
        m.docs_duplicate,
        m.bulk_request_failures,
        m.in_flight_bytes_max >> 10
    );
    assert_stored_exactly(&es, &ids(&all)).await?;
    es.cleanup().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_during_an_outage_reports_events_unacknowledged() -> anyhow::Result<()> {
    let es = TestEs::start("shutdown").await?;
    let cfg = es.config();
    setup(&cfg).await?;
    let writer = EsWriter::try_new(&cfg)?;
    let _back = es.proxy.vanish_for(Duration::from_secs(10));
    let batch = events(30, 300);
    let pending = {
        let (writer, batch) = (writer.clone(), batch.clone());
        tokio::spawn(async move { writer.write(&batch).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let asked = Instant::now();
    writer.shutdown();
    let outcome = timeout(Duration::from_secs(10), pending).await???;
    assert!(
        asked.elapsed() < Duration::from_secs(6),
        "shutdown is prompt"
    );
    assert_eq!(outcome.count(ItemStatus::Unacked), batch.len());
    assert_eq!(outcome.acked_prefix(), 0);
    assert_eq!(writer.metrics().docs_unacked, batch.len() as u64);
    es.cleanup().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_limit_gives_up_and_reports_unacknowledged() -> anyhow::Result<()> {
    let es = TestEs::start("limit").await?;
    let mut cfg = es.config();
    cfg.retry.max_attempts = 3;
    setup(&cfg).await?;
    let writer = EsWriter::try_new(&cfg)?;
    let _back = es.proxy.vanish_for(Duration::from_secs(5));
    let batch = events(31, 10);
    let outcome = timeout(TEST_TIMEOUT, writer.write(&batch)).await??;
    assert_eq!(outcome.count(ItemStatus::Unacked), batch.len());
    assert_eq!(writer.metrics().bulk_request_failures, 3);
    es.cleanup().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_too_large_is_split_until_it_fits() -> anyhow::Result<()> {
    let es = TestEs::start("split").await?;
    let Some(mock) = &es.mock else {
        eprintln!("skipping 413 injection: it needs the mock, not a real cluster");
        return es.cleanup().await;
    };
    mock.set_faults(Faults {
        max_content_length: 8 * 1024,
        ..Faults::default()
    });
    let cfg = es.config();
    setup(&cfg).await?;
    let writer = EsWriter::try_new(&cfg)?;
    let mut batch = events(32, 200);
    // One event alone is over the limit: it can never be stored and is dead-lettered.
    batch[50].message = "x".repeat(16 * 1024);
    let outcome = timeout(TEST_TIMEOUT, writer.write(&batch)).await??;
    assert_eq!(outcome.statuses[50], ItemStatus::DeadLettered);
    assert_eq!(outcome.count(ItemStatus::Created), batch.len() - 1);
    assert!(
        mock.max_bulk_body_bytes() > 8 * 1024,
        "the first request was too large"
    );
    let letters = dead_letters(es.dead_letter_dir.path())?;
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["status"], 413);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_key_from_a_file_is_sent() -> anyhow::Result<()> {
    let es = TestEs::start("auth").await?;
    let Some(mock) = &es.mock else {
        eprintln!(
            "skipping: the real cluster's auth comes from {}",
            crate::REAL_ES_API_KEY_ENV
        );
        return es.cleanup().await;
    };
    mock.set_faults(Faults {
        required_api_key: Some("c2x1aWNlOnNlY3JldA==".to_owned()),
        ..Faults::default()
    });
    let key_dir = tempfile::tempdir()?;
    let key_file = key_dir.path().join("api-key");
    std::fs::write(&key_file, "c2x1aWNlOnNlY3JldA==\n")?;
    let mut cfg = es.config();
    cfg.auth = index::elasticsearch::EsAuth::ApiKey {
        api_key: index::elasticsearch::SecretSource {
            env: None,
            file: Some(key_file),
        },
    };
    setup(&cfg).await?;
    let writer = EsWriter::try_new(&cfg)?;
    let outcome = timeout(TEST_TIMEOUT, writer.write(&events(33, 5))).await??;
    assert_eq!(outcome.count(ItemStatus::Created), 5);

    // Without the key the mock answers 401, which the writer keeps retrying (an operator can
    // fix credentials) until the limit.
    let mut anonymous = es.config();
    anonymous.auth = index::elasticsearch::EsAuth::None;
    anonymous.retry.max_attempts = 2;
    let writer = EsWriter::try_new(&anonymous)?;
    let outcome = timeout(TEST_TIMEOUT, writer.write(&events(34, 5))).await??;
    assert_eq!(outcome.count(ItemStatus::Unacked), 5);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batcher_flushes_by_time_and_hands_back_tokens() -> anyhow::Result<()> {
    let es = TestEs::start("batcher").await?;
    let mut cfg = es.config();
    // Large enough that only the document count fills a batch.
    cfg.batch_max_bytes = 16 * 1024 * 1024;
    setup(&cfg).await?;
    let writer = EsWriter::try_new(&cfg)?;
    let mut batcher = EsBatcher::new(writer);
    assert!(batcher.deadline().is_none());
    for offset in 0..3u64 {
        let full = batcher.push(&event(40, offset * 100), offset)?;
        assert!(!full, "3 small events do not fill a batch");
    }
    let deadline = batcher
        .deadline()
        .ok_or_else(|| anyhow::anyhow!("an open batch has a deadline"))?;
    let wait = deadline - tokio::time::Instant::now();
    assert!(wait <= Duration::from_millis(cfg.batch_interval_ms));
    tokio::time::sleep_until(deadline).await;
    let (outcome, tokens) = batcher.flush().await?;
    assert_eq!(tokens, vec![0, 1, 2]);
    assert!(outcome.all_acked());
    assert!(batcher.is_empty() && batcher.deadline().is_none());

    // Filling it by count says so.
    let mut fills = 0;
    for offset in 0..cfg.batch_max_docs as u64 {
        if batcher.push(&event(41, offset * 100), offset)? {
            fills += 1;
        }
    }
    assert_eq!(fills, 1, "the batch is full exactly at batch_max_docs");
    let (outcome, tokens) = batcher.flush().await?;
    assert_eq!(tokens.len(), cfg.batch_max_docs);
    assert_eq!(outcome.count(ItemStatus::Created), cfg.batch_max_docs);
    es.cleanup().await
}
