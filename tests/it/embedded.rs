//! The embedded pipeline end to end: generated pod logs → tail → parse → detect → tantivy.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use sluice::pipeline::{EmbeddedPipeline, PipelineOptions};

use crate::support;

/// Records in the end-to-end workload: enough for several commits, rotations and a crash
/// mid-way, small enough for a debug build.
const LINES: u64 = 20_000;

fn drain_options() -> PipelineOptions {
    PipelineOptions {
        drain: true,
        alerts: None,
    }
}

fn all_event_ids(data: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let searcher = index::Searcher::open(&support::index_dir(data), 90)?;
    let mut ids = Vec::new();
    let mut request = index::SearchRequest {
        limit: 5_000,
        ..Default::default()
    };
    loop {
        let page = searcher.search(&request)?;
        if page.events.is_empty() {
            break;
        }
        ids.extend(page.events.iter().map(|e| e.event.id.clone()));
        match page.next_cursor {
            Some(cursor) => request.search_after = Some(cursor),
            None => break,
        }
    }
    Ok(ids)
}

fn count(data: &std::path::Path, query: &str) -> anyhow::Result<u64> {
    let searcher = index::Searcher::open(&support::index_dir(data), 90)?;
    Ok(searcher.count(&index::SearchRequest {
        query: query.to_string(),
        ..Default::default()
    })?)
}

#[test]
fn backfill_indexes_every_record_once_and_a_second_run_adds_nothing() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let pods = dir.path().join("pods");
    let data = dir.path().join("data");
    let report = support::generate(&pods, LINES, 7)?;
    assert!(report.records >= LINES);
    assert!(
        report.rotated_files > 0,
        "the workload should exercise rotation"
    );
    let config = support::config(&pods, &data);

    let mut pipeline = EmbeddedPipeline::start(&config, drain_options())?;
    pipeline.wait_idle(Duration::from_millis(50))?;
    let first = pipeline.metrics();
    pipeline.shutdown()?;
    assert_eq!(first.events_indexed.load(Ordering::Relaxed), report.records);
    assert_eq!(count(&data, "")?, report.records);

    let mut again = EmbeddedPipeline::start(&config, drain_options())?;
    again.wait_idle(Duration::from_millis(50))?;
    let second = again.metrics();
    again.shutdown()?;
    assert_eq!(second.events_indexed.load(Ordering::Relaxed), 0);
    assert_eq!(count(&data, "")?, report.records);
    Ok(())
}

#[test]
fn crash_mid_way_then_restart_loses_nothing_and_duplicates_nothing() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let pods = dir.path().join("pods");
    let data = dir.path().join("data");
    let report = support::generate(&pods, LINES, 11)?;
    let config = support::config(&pods, &data);

    for crash_at in [report.records / 4, report.records / 2] {
        let pipeline = EmbeddedPipeline::start(&config, drain_options())?;
        let metrics = pipeline.metrics();
        let reached = support::wait_for(Duration::from_secs(120), || {
            metrics.records_received.load(Ordering::Relaxed) >= crash_at
        });
        assert!(reached, "pipeline never reached {crash_at} records");
        // Drop without shutdown: stages stop without committing or acknowledging more.
        drop(pipeline);
    }
    let mut pipeline = EmbeddedPipeline::start(&config, drain_options())?;
    pipeline.wait_idle(Duration::from_millis(50))?;
    pipeline.shutdown()?;

    let ids = all_event_ids(&data)?;
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "an event was indexed twice");
    assert_eq!(ids.len() as u64, report.records, "events were lost");
    Ok(())
}

#[test]
fn level_query_returns_only_matching_events() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let pods = dir.path().join("pods");
    let data = dir.path().join("data");
    support::generate(&pods, 5_000, 3)?;
    let config = support::config(&pods, &data);
    let mut pipeline = EmbeddedPipeline::start(&config, drain_options())?;
    pipeline.wait_idle(Duration::from_millis(50))?;
    pipeline.shutdown()?;

    let searcher = index::Searcher::open(&support::index_dir(&data), 90)?;
    let errors = searcher.search(&index::SearchRequest {
        query: "log.level:error".into(),
        limit: 10_000,
        ..Default::default()
    })?;
    assert!(!errors.events.is_empty(), "the workload has error events");
    for event in &errors.events {
        assert_eq!(event.log.level, Some(schemas::Level::Error), "{event:?}");
    }
    let total = count(&data, "")?;
    assert!((errors.events.len() as u64) < total);
    Ok(())
}

#[test]
fn an_event_the_index_cannot_hold_is_dead_lettered_counted_and_not_replayed() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let pods = dir.path().join("pods");
    let data = dir.path().join("data");
    let container = pods.join("shop_api-0_uid-0/app");
    std::fs::create_dir_all(&container)?;
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.9fZ");
    // The middle line's own timestamp (year 9999) is beyond what tantivy can store.
    let lines = [
        r#"{"level":"info","msg":"before"}"#,
        r#"{"time":"9999-06-01T00:00:00Z","level":"info","msg":"from the far future"}"#,
        r#"{"level":"info","msg":"after"}"#,
    ];
    let body: String = lines
        .iter()
        .map(|l| format!("{now} stdout F {l}\n"))
        .collect();
    std::fs::write(container.join("0.log"), body)?;
    let config = support::config(&pods, &data);

    let mut pipeline = EmbeddedPipeline::start(&config, drain_options())?;
    pipeline.wait_idle(Duration::from_millis(50))?;
    let metrics = pipeline.metrics();
    pipeline.shutdown()?;
    assert_eq!(metrics.events_indexed.load(Ordering::Relaxed), 2);
    assert_eq!(metrics.invalid_events.load(Ordering::Relaxed), 1);
    assert_eq!(count(&data, "")?, 2);

    let dead = std::fs::read_to_string(config.dead_letter_path())?;
    let letters: Vec<serde_json::Value> = dead
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(letters.len(), 1, "{dead}");
    assert_eq!(letters[0]["event"]["message"], "from the far future");
    assert!(
        letters[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("1677..2262")),
        "{dead}"
    );

    // Acknowledged with its dead letter: a restart neither re-reads nor re-dead-letters it.
    let mut again = EmbeddedPipeline::start(&config, drain_options())?;
    again.wait_idle(Duration::from_millis(50))?;
    let second = again.metrics();
    again.shutdown()?;
    assert_eq!(second.invalid_events.load(Ordering::Relaxed), 0);
    assert_eq!(std::fs::read_to_string(config.dead_letter_path())?, dead);
    Ok(())
}
