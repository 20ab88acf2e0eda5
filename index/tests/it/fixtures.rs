//! The known data set and store helpers shared by the test modules.

use std::path::Path;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use index::{IndexConfig, SearchRequest, Searcher, Store};
use schemas::{Level, LogEvent, SourceRef};

pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Events in the known data set.
pub const N: usize = 96;
/// Spacing of the known data set: 96 events every 30 minutes cover exactly two days.
pub const STEP_MINUTES: i64 = 30;
pub const SERVICES: [&str; 3] = ["api", "db", "web"];

/// Midnight UTC `days_ago` days before today.
pub fn midnight_days_ago(days_ago: i64) -> DateTime<Utc> {
    let day = Utc::now().date_naive() - Duration::days(days_ago);
    day_start(day)
}

pub fn day_start(day: NaiveDate) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(day.year(), day.month(), day.day(), 0, 0, 0)
        .single()
        .unwrap_or_else(Utc::now)
}

/// A small config for tests: one indexing thread, the minimum heap.
pub fn config(dir: &Path) -> IndexConfig {
    IndexConfig {
        writer_heap_bytes: 15_000_000,
        writer_threads: 1,
        ..IndexConfig::with_data_dir(dir)
    }
}

/// Event `i` of the known data set starting at `start`:
/// - `@timestamp` = start + 30 min × i (two UTC days when `start` is midnight)
/// - `service.name` cycles api/db/web; each service has its own source file (file_id 1..=3)
/// - `log.level` is error when i % 4 == 0, else info
/// - status 503 when i % 6 == 0, 404 when i % 6 == 1, else 200
/// - `event.duration` = (i + 1) ms
/// - `sluice.pattern.id` = `p{i % 5}`
pub fn event(start: DateTime<Utc>, i: usize) -> LogEvent {
    let ts = start + Duration::minutes(STEP_MINUTES * i as i64);
    let message = if i.is_multiple_of(4) {
        format!("db connection refused for req-{i:04x} on /api/v1/orders/{i}")
    } else {
        format!("GET /api/v1/orders/{i} served in {}ms req-{i:04x}", i + 1)
    };
    let mut ev = LogEvent::new(ts, message);
    ev.service.name = Some(SERVICES[i % 3].to_string());
    ev.log.level = Some(if i.is_multiple_of(4) {
        Level::Error
    } else {
        Level::Info
    });
    ev.http.response.status_code = Some(match i % 6 {
        0 => 503,
        1 => 404,
        _ => 200,
    });
    ev.http.request.method = Some("GET".into());
    ev.url.path = Some(format!("/api/v1/orders/{i}"));
    ev.event.duration = Some((i as i64 + 1) * 1_000_000);
    ev.sluice.pattern.id = Some(format!("p{}", i % 5));
    ev.kubernetes.namespace = Some("shop".into());
    ev.kubernetes.pod.name = Some(format!("{}-7d9f-{}", SERVICES[i % 3], i % 2));
    ev.kubernetes.labels.insert(
        "team".into(),
        if i.is_multiple_of(2) {
            "payments"
        } else {
            "search"
        }
        .into(),
    );
    ev.app.insert(
        "user".into(),
        serde_json::json!(if i.is_multiple_of(3) { "alice" } else { "bob" }),
    );
    ev.app.insert("attempt".into(), serde_json::json!(i % 3));
    let file_id = 1 + (i % 3) as u64;
    let offset = i as u64 * 100;
    ev.sluice.source = SourceRef {
        path: format!("/var/log/pods/shop_{}/app/0.log", SERVICES[i % 3]),
        file_id,
        offset,
        end_offset: offset + 100,
    };
    ev.event.id = schemas::event_id(file_id, offset);
    ev
}

/// The whole known data set, in file-offset order (the order the agent ships it).
pub fn dataset(start: DateTime<Utc>) -> Vec<LogEvent> {
    (0..N).map(|i| event(start, i)).collect()
}

/// Adds every event, expecting each to be staged (`Ok(true)`).
pub fn add_all(store: &mut Store, events: &[LogEvent]) -> TestResult {
    for ev in events {
        assert!(
            store.add(ev)?,
            "event {} was unexpectedly skipped",
            ev.event.id
        );
    }
    Ok(())
}

/// Events matching `query` over all time.
pub fn count(searcher: &Searcher, query: &str) -> TestResult<u64> {
    Ok(searcher.count(&SearchRequest {
        query: query.into(),
        ..SearchRequest::default()
    })?)
}

/// Opens a store on a fresh temp dir holding the known data set, committed.
pub fn loaded_store() -> TestResult<(tempfile::TempDir, Store, DateTime<Utc>)> {
    let dir = tempfile::tempdir()?;
    let mut store = Store::open(&config(dir.path()))?;
    let start = midnight_days_ago(3);
    add_all(&mut store, &dataset(start))?;
    store.commit()?;
    Ok((dir, store, start))
}
