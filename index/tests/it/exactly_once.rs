//! Replays never index a record twice: after a commit, after a crash between commit and
//! checkpoint, and after a multi-day batch that was committed only in part.

use std::collections::HashSet;

use chrono::{Duration, Utc};
use index::{IndexError, SearchRequest, Store};
use schemas::LogEvent;

use crate::fixtures::{self, N, TestResult, add_all, config, count, dataset, midnight_days_ago};

/// Every event id the store returns, checking none appears twice.
fn all_ids(store: &Store) -> TestResult<Vec<String>> {
    let mut ids = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.searcher().search(&SearchRequest {
            limit: 1000,
            search_after: cursor,
            ..SearchRequest::default()
        })?;
        ids.extend(page.events.into_iter().map(|e| e.event.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "duplicate events in the index");
    Ok(ids)
}

#[test]
fn replay_after_commit_leaves_count_unchanged() -> TestResult {
    let (_dir, mut store, start) = fixtures::loaded_store()?;
    let events = dataset(start);
    for ev in &events {
        assert!(!store.add(ev)?, "replayed {} was staged again", ev.event.id);
    }
    let stats = store.commit()?;
    assert_eq!(stats.docs, 0);
    assert_eq!(count(&store.searcher(), "*")?, N as u64);
    assert_eq!(store.stats().replays_skipped, N as u64);
    assert_eq!(all_ids(&store)?.len(), N);
    Ok(())
}

#[test]
fn crash_between_commit_and_checkpoint_gives_no_duplicate() -> TestResult {
    let dir = tempfile::tempdir()?;
    let events = dataset(midnight_days_ago(3));
    {
        let mut store = Store::open(&config(dir.path()))?;
        add_all(&mut store, &events)?;
        store.commit()?;
        // The process dies here, before the ingest layer saves its checkpoint.
    }
    let mut store = Store::open(&config(dir.path()))?;
    // The ingest layer replays from its older checkpoint: the whole batch.
    for ev in &events {
        assert!(!store.add(ev)?);
    }
    store.commit()?;
    assert_eq!(count(&store.searcher(), "*")?, N as u64);
    let id = &events[7].event.id;
    assert_eq!(count(&store.searcher(), &format!("event.id:{id}"))?, 1);
    Ok(())
}

#[test]
fn crash_before_commit_replays_only_the_uncommitted_tail() -> TestResult {
    let dir = tempfile::tempdir()?;
    let events = dataset(midnight_days_ago(3));
    let (head, tail) = events.split_at(40);
    {
        let mut store = Store::open(&config(dir.path()))?;
        add_all(&mut store, head)?;
        store.commit()?;
        add_all(&mut store, tail)?;
        // Dies with the tail staged but not committed.
    }
    let mut store = Store::open(&config(dir.path()))?;
    assert_eq!(count(&store.searcher(), "*")?, head.len() as u64);
    // Replay from a checkpoint even older than the commit.
    let mut staged = 0;
    for ev in &events {
        if store.add(ev)? {
            staged += 1;
        }
    }
    assert_eq!(staged, tail.len());
    store.commit()?;
    assert_eq!(all_ids(&store)?.len(), N);
    Ok(())
}

#[test]
fn partially_committed_multi_day_batch_replays_correctly() -> TestResult {
    let dir = tempfile::tempdir()?;
    // One writer at a time: staging the second day commits the first one early, so a crash
    // afterwards leaves the batch committed for day one only.
    let cfg = index::IndexConfig {
        max_open_writers: 1,
        ..config(dir.path())
    };
    let events = dataset(midnight_days_ago(3));
    let first_day = events[0].timestamp.date_naive();
    let (day1, day2): (Vec<LogEvent>, Vec<LogEvent>) = events
        .iter()
        .cloned()
        .partition(|e| e.timestamp.date_naive() == first_day);
    assert_eq!(day1.len(), 48);
    {
        let mut store = Store::open(&cfg)?;
        add_all(&mut store, &events)?;
        assert_eq!(store.stats().committed, day1.len() as u64);
        // Crash: day two never committed.
    }
    let mut store = Store::open(&cfg)?;
    assert_eq!(count(&store.searcher(), "*")?, day1.len() as u64);
    let mut staged = Vec::new();
    for ev in &events {
        if store.add(ev)? {
            staged.push(ev.event.id.clone());
        }
    }
    let expected: Vec<String> = day2.iter().map(|e| e.event.id.clone()).collect();
    assert_eq!(staged, expected);
    store.commit()?;
    assert_eq!(all_ids(&store)?.len(), N);
    Ok(())
}

#[test]
fn interleaved_files_keep_separate_high_water_marks() -> TestResult {
    let dir = tempfile::tempdir()?;
    let events = dataset(midnight_days_ago(3));
    // Commit only the records of file 1 (service api), then replay everything.
    {
        let mut store = Store::open(&config(dir.path()))?;
        let file1: Vec<LogEvent> = events
            .iter()
            .filter(|e| e.sluice.source.file_id == 1)
            .cloned()
            .collect();
        add_all(&mut store, &file1)?;
        store.commit()?;
    }
    let mut store = Store::open(&config(dir.path()))?;
    let mut staged = 0;
    for ev in &events {
        if store.add(ev)? {
            staged += 1;
            assert_ne!(ev.sluice.source.file_id, 1);
        }
    }
    assert_eq!(staged, N - N / 3);
    store.commit()?;
    assert_eq!(all_ids(&store)?.len(), N);
    Ok(())
}

#[test]
fn records_without_a_file_are_deduplicated_by_event_id() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut store = Store::open(&config(dir.path()))?;
    let now = Utc::now() - Duration::minutes(5);
    let events: Vec<LogEvent> = (0..10)
        .map(|i| {
            let mut e = LogEvent::new(now, format!("synthetic {i}"));
            e.event.id = format!("no-file-{i}");
            e
        })
        .collect();
    add_all(&mut store, &events)?;
    store.commit()?;
    // Replayed twice, once in the same batch.
    add_all(&mut store, &events)?;
    add_all(&mut store, &events[..3])?;
    store.commit()?;
    assert_eq!(count(&store.searcher(), "*")?, 10);
    assert_eq!(count(&store.searcher(), "message:synthetic")?, 10);
    Ok(())
}

#[test]
fn duplicate_within_one_batch_is_skipped() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut store = Store::open(&config(dir.path()))?;
    let events = dataset(midnight_days_ago(1));
    add_all(&mut store, &events[..10])?;
    assert!(!store.add(&events[3])?);
    store.commit()?;
    assert_eq!(count(&store.searcher(), "*")?, 10);
    Ok(())
}

#[test]
fn out_of_range_timestamp_is_a_counted_error() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut store = Store::open(&config(dir.path()))?;
    let far = "2400-01-01T00:00:00Z".parse()?;
    let result = store.add(&LogEvent::new(far, "from the future"));
    assert!(
        matches!(result, Err(IndexError::InvalidEvent { .. })),
        "{result:?}"
    );
    assert_eq!(store.stats().invalid, 1);
    assert_eq!(store.staged_docs(), 0);
    Ok(())
}

#[test]
fn commit_policy_by_size_and_time() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut store = Store::open(&index::IndexConfig {
        commit_max_docs: 10,
        commit_interval_ms: 200,
        ..config(dir.path())
    })?;
    let events = dataset(midnight_days_ago(1));
    assert!(!store.should_commit());
    add_all(&mut store, &events[..9])?;
    assert!(!store.should_commit());
    add_all(&mut store, &events[9..10])?;
    assert!(store.should_commit());
    store.commit()?;
    assert!(!store.should_commit());
    add_all(&mut store, &events[10..11])?;
    assert!(!store.should_commit());
    std::thread::sleep(std::time::Duration::from_millis(250));
    assert!(store.should_commit());
    Ok(())
}

/// Set in the child process of [`hard_crash_after_commit_loses_nothing_and_duplicates_nothing`].
const CRASH_CHILD_ENV: &str = "SLUICE_INDEX_TEST_CRASH_DIR";

#[test]
fn hard_crash_after_commit_loses_nothing_and_duplicates_nothing() -> TestResult {
    let events = dataset(midnight_days_ago(2));
    if let Some(dir) = std::env::var_os(CRASH_CHILD_ENV) {
        // Child: commit the first 60 events, stage the rest, and die without unwinding.
        let mut store = Store::open(&config(std::path::Path::new(&dir)))?;
        add_all(&mut store, &events[..60])?;
        store.commit()?;
        add_all(&mut store, &events[60..])?;
        std::process::abort();
    }
    let dir = tempfile::tempdir()?;
    let status = std::process::Command::new(std::env::current_exe()?)
        .args([
            "--exact",
            "exactly_once::hard_crash_after_commit_loses_nothing_and_duplicates_nothing",
            "--test-threads=1",
        ])
        .env(CRASH_CHILD_ENV, dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()?;
    assert!(!status.success(), "the child was expected to abort");
    let mut store = Store::open(&config(dir.path()))?;
    assert_eq!(count(&store.searcher(), "*")?, 60);
    let mut staged = 0;
    for ev in &events {
        if store.add(ev)? {
            staged += 1;
        }
    }
    assert_eq!(staged, N - 60);
    store.commit()?;
    assert_eq!(all_ids(&store)?.len(), N);
    Ok(())
}

#[test]
fn failed_multi_day_commit_is_an_honest_error_and_replay_repairs_it() -> TestResult {
    let dir = tempfile::tempdir()?;
    let events = dataset(midnight_days_ago(3));
    let second_day = events[N - 1].timestamp.format("%Y-%m-%d").to_string();
    let mut store = Store::open(&config(dir.path()))?;
    add_all(&mut store, &events)?;
    // The second day's partition disappears under the writer (disk trouble, an operator's rm).
    let doomed = dir.path().join("index").join(&second_day);
    std::fs::rename(&doomed, dir.path().join("moved-away"))?;
    match store.commit() {
        Err(IndexError::Commit { day, committed, .. }) => {
            assert_eq!(day, second_day);
            assert_eq!(committed.len(), 1, "the first day is durable");
        }
        other => return Err(format!("expected a commit error, got {other:?}").into()),
    }
    assert_eq!(store.staged_docs(), 0);
    assert_eq!(store.stats().commit_failures, 1);
    // The caller replays from its last acknowledged position: the first day is skipped.
    let mut staged = 0;
    for ev in &events {
        if store.add(ev)? {
            staged += 1;
        }
    }
    assert_eq!(staged, N / 2);
    store.commit()?;
    assert_eq!(all_ids(&store)?.len(), N);
    Ok(())
}
