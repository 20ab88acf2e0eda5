//! Retention drops exactly the day partitions older than the cutoff, and searches never see
//! expired days even before the drop runs.

use chrono::{Duration, Utc};
use index::{IndexConfig, Searcher, Store};
use schemas::LogEvent;

use crate::fixtures::{TestResult, config, count, midnight_days_ago};

/// Day partitions on disk.
fn partitions(dir: &std::path::Path) -> TestResult<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir.join("index"))? {
        names.push(entry?.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

fn day_name(days_ago: i64) -> String {
    midnight_days_ago(days_ago).format("%Y-%m-%d").to_string()
}

/// Three events at noon of each of these days ago.
const DAYS_AGO: [i64; 6] = [100, 91, 90, 89, 1, 0];

/// Writes three events per day of [`DAYS_AGO`] with a long retention, so old days exist.
fn write_days(dir: &std::path::Path) -> TestResult {
    let mut store = Store::open(&IndexConfig {
        retention_days: 365,
        ..config(dir)
    })?;
    for days_ago in DAYS_AGO {
        for k in 0..3 {
            // Noon, or for today a moment ago, so no event is in the future.
            let ts = if days_ago == 0 {
                Utc::now() - Duration::seconds(10 + k)
            } else {
                midnight_days_ago(days_ago) + Duration::hours(12) + Duration::seconds(k)
            };
            let mut ev = LogEvent::new(ts, format!("day {days_ago} event {k}"));
            ev.event.id = format!("d{days_ago}-{k}");
            assert!(store.add(&ev)?);
        }
    }
    store.commit()?;
    Ok(())
}

#[test]
fn retention_drops_exactly_the_partitions_older_than_the_cutoff() -> TestResult {
    let dir = tempfile::tempdir()?;
    write_days(dir.path())?;
    let all: Vec<String> = DAYS_AGO.iter().map(|d| day_name(*d)).collect();
    assert_eq!(partitions(dir.path())?, all);

    let mut store = Store::open(&config(dir.path()))?;
    let dropped = store.enforce_retention(Utc::now())?;
    assert_eq!(dropped, vec![day_name(100), day_name(91)]);
    let kept: Vec<String> = [90, 89, 1, 0].iter().map(|d| day_name(*d)).collect();
    assert_eq!(partitions(dir.path())?, kept);
    assert_eq!(count(&store.searcher(), "*")?, 12);
    assert_eq!(store.stats().days_dropped, 2);

    // Running it again drops nothing; a later `now` drops the days that expire by then.
    assert!(store.enforce_retention(Utc::now())?.is_empty());
    let later = Utc::now() + Duration::days(2);
    assert_eq!(
        store.enforce_retention(later)?,
        vec![day_name(90), day_name(89)]
    );
    assert_eq!(count(&store.searcher(), "*")?, 6);
    Ok(())
}

#[test]
fn searches_never_see_expired_days_before_the_drop() -> TestResult {
    let dir = tempfile::tempdir()?;
    write_days(dir.path())?;
    let searcher = Searcher::open(dir.path(), 90)?;
    // Days 100 and 91 ago are still on disk but expired.
    assert_eq!(partitions(dir.path())?.len(), 6);
    assert_eq!(count(&searcher, "*")?, 12);
    assert_eq!(count(&searcher, "message:100")?, 0);
    assert_eq!(searcher.days()?.len(), 4);
    let wide = Searcher::open(dir.path(), 365)?;
    assert_eq!(count(&wide, "*")?, 18);
    Ok(())
}

#[test]
fn events_older_than_retention_are_skipped_and_counted() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut store = Store::open(&config(dir.path()))?;
    let old = LogEvent::new(Utc::now() - Duration::days(120), "ancient");
    assert!(!store.add(&old)?);
    assert_eq!(store.stats().expired_skipped, 1);
    store.commit()?;
    assert!(partitions(dir.path())?.is_empty());
    Ok(())
}

#[test]
fn dropping_a_day_with_staged_events_discards_them() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut store = Store::open(&IndexConfig {
        retention_days: 10,
        ..config(dir.path())
    })?;
    let ev = LogEvent::new(midnight_days_ago(5) + Duration::hours(1), "staged");
    assert!(store.add(&ev)?);
    let dropped = store.enforce_retention(Utc::now() + Duration::days(30))?;
    assert_eq!(dropped, vec![day_name(5)]);
    assert_eq!(store.staged_docs(), 0);
    let stats = store.commit()?;
    assert_eq!(stats.docs, 0);
    Ok(())
}
