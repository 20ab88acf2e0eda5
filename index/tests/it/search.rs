//! Queries, time ranges, ordering and search-after pagination on the known data set.

use std::collections::HashSet;

use chrono::{Duration, Utc};
use index::{IndexError, SearchRequest, Searcher, Store};
use schemas::LogEvent;

use crate::fixtures::{
    self, N, STEP_MINUTES, TestResult, add_all, config, count, dataset, midnight_days_ago,
};

#[test]
fn field_queries_match_the_known_data_set() -> TestResult {
    let (_dir, store, start) = fixtures::loaded_store()?;
    let events = dataset(start);
    let s = store.searcher();
    let expect =
        |pred: &dyn Fn(&LogEvent) -> bool| events.iter().filter(|e| pred(e)).count() as u64;
    let cases: Vec<(&str, u64)> = vec![
        ("*", N as u64),
        (
            "log.level:error",
            expect(&|e| e.message.contains("refused")),
        ),
        (
            "service.name:api",
            expect(&|e| e.service.name.as_deref() == Some("api")),
        ),
        (
            "service.name:api AND log.level:error",
            expect(&|e| e.service.name.as_deref() == Some("api") && e.message.contains("refused")),
        ),
        (
            "http.response.status_code:[500 TO 599]",
            expect(&|e| e.http.response.status_code.is_some_and(|s| s >= 500)),
        ),
        (
            "http.response.status_code:404 OR http.response.status_code:503",
            expect(&|e| e.http.response.status_code != Some(200)),
        ),
        ("NOT http.response.status_code:200", 32),
        ("service.name:api AND NOT http.response.status_code:200", 16),
        ("-log.level:info", 24),
        ("NOT log.level:info AND service.name:web", 8),
        (
            "service.name:db OR (service.name:web AND NOT log.level:info)",
            40,
        ),
        ("\"connection refused\"", 24),
        ("connection refused", 24),
        ("message:orders", N as u64),
        ("message:\"/api/v1/orders/17\"", 1),
        ("message:\"req-0011\"", 1),
        ("message:req-0011", 1),
        ("url.path:\"/api/v1/orders/17\"", 1),
        (
            "sluice.pattern.id:p3",
            expect(&|e| e.sluice.pattern.id.as_deref() == Some("p3")),
        ),
        ("event.duration:[1000000 TO 10000000]", 10),
        ("event.duration:[90000000 TO *]", 7),
        ("http.response.status_code:503", 16),
        ("app.user:alice", expect(&|e| e.app["user"] == "alice")),
        ("app.attempt:2", expect(&|e| e.app["attempt"] == 2)),
        ("kubernetes.labels.team:payments", (N / 2) as u64),
        (
            "kubernetes.namespace:shop AND kubernetes.pod.name:\"db-7d9f-1\"",
            16,
        ),
        ("sluice.source.file_id:2", (N / 3) as u64),
        ("message:nonexistentword", 0),
    ];
    for (query, expected) in cases {
        assert_eq!(count(&s, query)?, expected, "query {query:?}");
    }
    Ok(())
}

#[test]
fn search_returns_the_stored_events_newest_first() -> TestResult {
    let (_dir, store, start) = fixtures::loaded_store()?;
    let events = dataset(start);
    let page = store.searcher().search(&SearchRequest {
        query: "service.name:db".into(),
        limit: 5,
        ..SearchRequest::default()
    })?;
    let mut db: Vec<&LogEvent> = events
        .iter()
        .filter(|e| e.service.name.as_deref() == Some("db"))
        .collect();
    db.reverse();
    let expected: Vec<LogEvent> = db.into_iter().take(5).cloned().collect();
    assert_eq!(page.events, expected);
    assert!(page.next_cursor.is_some());
    Ok(())
}

#[test]
fn time_range_is_inclusive_from_and_exclusive_to() -> TestResult {
    let (_dir, store, start) = fixtures::loaded_store()?;
    let s = store.searcher();
    let req = |from_i: i64, to_i: i64| SearchRequest {
        from: Some(start + Duration::minutes(STEP_MINUTES * from_i)),
        to: Some(start + Duration::minutes(STEP_MINUTES * to_i)),
        limit: 1000,
        ..SearchRequest::default()
    };
    // Events 10..20: the one at `from` counts, the one at `to` does not.
    assert_eq!(s.count(&req(10, 20))?, 10);
    let page = s.search(&req(10, 20))?;
    assert_eq!(page.events.len(), 10);
    assert_eq!(
        page.events[0].timestamp,
        start + Duration::minutes(STEP_MINUTES * 19)
    );
    assert_eq!(
        page.events[9].timestamp,
        start + Duration::minutes(STEP_MINUTES * 10)
    );
    // A range across the day boundary (events 40..56).
    assert_eq!(s.count(&req(40, 56))?, 16);
    // Exactly the second day, via an exclusive bound at midnight.
    assert_eq!(s.count(&req(48, 96))?, 48);
    // With a query.
    let mut errors = req(0, 48);
    errors.query = "log.level:error".into();
    assert_eq!(s.count(&errors)?, 12);
    Ok(())
}

/// Pages through `req` with `search_after`, checking order, and returns every event.
fn page_through(s: &Searcher, mut req: SearchRequest) -> TestResult<Vec<LogEvent>> {
    let mut all: Vec<LogEvent> = Vec::new();
    for _ in 0..1000 {
        let page = s.search(&req)?;
        assert!(page.events.len() <= req.limit);
        all.extend(page.events);
        match page.next_cursor {
            Some(c) => req.search_after = Some(c),
            None => return Ok(all),
        }
    }
    Err("pagination did not end".into())
}

#[test]
fn search_after_pages_cover_everything_once_in_order() -> TestResult {
    let (_dir, store, start) = fixtures::loaded_store()?;
    let all = page_through(
        &store.searcher(),
        SearchRequest {
            limit: 7,
            ..SearchRequest::default()
        },
    )?;
    let mut expected = dataset(start);
    expected.reverse();
    assert_eq!(all, expected);
    Ok(())
}

#[test]
fn search_after_is_stable_when_timestamps_tie() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut store = Store::open(&config(dir.path()))?;
    let ts = Utc::now() - Duration::minutes(1);
    let events: Vec<LogEvent> = (0..25u64)
        .map(|i| {
            let mut e = LogEvent::new(ts, format!("same instant {i}"));
            e.sluice.source.file_id = 9;
            e.sluice.source.offset = i * 10;
            e.event.id = schemas::event_id(9, i * 10);
            e
        })
        .collect();
    add_all(&mut store, &events)?;
    store.commit()?;
    let all = page_through(
        &store.searcher(),
        SearchRequest {
            limit: 4,
            ..SearchRequest::default()
        },
    )?;
    let ids: HashSet<String> = all.iter().map(|e| e.event.id.clone()).collect();
    assert_eq!(all.len(), 25);
    assert_eq!(ids.len(), 25);
    Ok(())
}

#[test]
fn bad_requests_are_reported_not_panicked() -> TestResult {
    let (_dir, store, _) = fixtures::loaded_store()?;
    let s = store.searcher();
    let bad = [
        SearchRequest {
            query: "log.level:(error".into(),
            ..SearchRequest::default()
        },
        SearchRequest {
            query: "no.such.field:x".into(),
            ..SearchRequest::default()
        },
        SearchRequest {
            query: "event.duration:5000000".into(),
            ..SearchRequest::default()
        },
        SearchRequest {
            search_after: Some("garbage".into()),
            ..SearchRequest::default()
        },
        SearchRequest {
            limit: 1_000_000,
            ..SearchRequest::default()
        },
    ];
    for req in bad {
        match s.search(&req) {
            Err(e @ IndexError::BadRequest(_)) => assert_eq!(e.error_code(), "index_bad_request"),
            other => return Err(format!("{req:?}: expected BadRequest, got {other:?}").into()),
        }
    }
    Ok(())
}

#[test]
fn a_searcher_in_another_process_sees_new_commits() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut store = Store::open(&config(dir.path()))?;
    // Opened the way `sluice search` opens it, before any data exists.
    let reader = Searcher::open(dir.path(), 90)?;
    assert_eq!(count(&reader, "*")?, 0);
    let events = dataset(midnight_days_ago(2));
    add_all(&mut store, &events[..30])?;
    assert_eq!(
        count(&reader, "*")?,
        0,
        "uncommitted events must not be visible"
    );
    store.commit()?;
    assert_eq!(count(&reader, "*")?, 30);
    // A second commit to the same day partition.
    add_all(&mut store, &events[30..40])?;
    store.commit()?;
    assert_eq!(count(&reader, "*")?, 40);
    assert_eq!(count(&store.searcher(), "*")?, 40);
    Ok(())
}

#[test]
fn searcher_open_fails_for_a_missing_data_dir() {
    let missing = std::path::Path::new("/nonexistent/sluice-index-test");
    assert!(matches!(
        Searcher::open(missing, 90),
        Err(IndexError::Io { .. })
    ));
}

/// `event.original` is kept in the source only (indexing the raw access line tokenized every
/// such line twice): a query on it is a clear bad request, and searches still return it.
#[test]
fn event_original_is_returned_but_not_searchable() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut store = Store::open(&config(dir.path()))?;
    let mut events = dataset(midnight_days_ago(1));
    events.truncate(3);
    for (i, ev) in events.iter_mut().enumerate() {
        ev.event.original = Some(format!("10.0.0.{i} - - \"GET /raw/zebra{i} HTTP/1.1\" 200"));
    }
    add_all(&mut store, &events)?;
    store.commit()?;
    let s = store.searcher();
    match s.search(&SearchRequest {
        query: "event.original:zebra1".into(),
        ..SearchRequest::default()
    }) {
        Err(IndexError::BadRequest(msg)) => assert!(msg.contains("not searchable"), "{msg}"),
        other => return Err(format!("expected BadRequest, got {other:?}").into()),
    }
    assert_eq!(
        count(&s, "zebra1")?,
        0,
        "bare terms do not reach event.original"
    );
    let page = s.search(&SearchRequest {
        query: "*".into(),
        ..SearchRequest::default()
    })?;
    let mut originals: Vec<String> = page
        .events
        .iter()
        .filter_map(|e| e.event.original.clone())
        .collect();
    originals.sort();
    let mut expected: Vec<String> = events
        .iter()
        .filter_map(|e| e.event.original.clone())
        .collect();
    expected.sort();
    assert_eq!(originals, expected);
    Ok(())
}
