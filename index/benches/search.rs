//! Search latency over a large embedded store: term + time range (first page, newest first),
//! a 24 h date histogram, a 24 h terms aggregation and a count.
//!
//! The store (10 M events over three days by default) is built once into a persistent
//! directory and reused by later runs:
//! - `SLUICE_INDEX_BENCH_DIR` (default `$TMPDIR/sluice-index-bench-<docs>`)
//! - `SLUICE_INDEX_BENCH_DOCS` (default 10000000)
//!
//! `cargo bench -p index --bench search`

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use index::{AggregateRequest, Aggregation, IndexConfig, SearchRequest, Searcher, Store};

/// Default corpus size: the target is measured over at least 10 M events.
const DEFAULT_DOCS: u64 = 10_000_000;
/// The corpus covers three full days, so a 24 h query touches one day partition of three.
const CORPUS_DAYS: i64 = 3;
/// Written once the corpus is complete; holds the corpus start time (RFC 3339). Versioned:
/// bump it when the schema or the on-disk format changes (v2: sstable term dictionaries,
/// `event.original` not indexed), so an old corpus is rebuilt instead of misread.
const MARKER: &str = "bench-complete-v2";

fn corpus_dir(docs: u64) -> PathBuf {
    std::env::var_os("SLUICE_INDEX_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join(format!("sluice-index-bench-{docs}")))
}

/// Builds the corpus unless a complete one is there; returns its start time.
fn ensure_corpus(dir: &Path, docs: u64) -> DateTime<Utc> {
    if let Ok(text) = std::fs::read_to_string(dir.join(MARKER))
        && let Ok(start) = text.trim().parse::<DateTime<Utc>>()
    {
        eprintln!("search bench: reusing {} ({docs} events)", dir.display());
        return start;
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("create bench corpus dir");
    let start = (Utc::now() - chrono::Duration::days(CORPUS_DAYS + 1))
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc();
    let step_ns = CORPUS_DAYS * 86_400_000_000_000 / docs as i64;
    let mut generator = common::Generator::new(11, start, chrono::Duration::nanoseconds(step_ns));
    let config = IndexConfig {
        writer_threads: 2,
        writer_heap_bytes: 512 * 1024 * 1024,
        commit_max_docs: 1_000_000,
        ..IndexConfig::with_data_dir(dir)
    };
    let mut store = Store::open(&config).expect("open bench store");
    let t0 = Instant::now();
    let mut bytes = 0u64;
    for i in 0..docs {
        let ev = generator.next_event();
        bytes += serde_json::to_vec(&ev).map_or(0, |v| v.len() as u64);
        store.add(&ev).expect("add");
        if store.should_commit() {
            store.commit().expect("commit");
        }
        if i % 1_000_000 == 0 && i > 0 {
            eprintln!("search bench: {i} events indexed in {:.0?}", t0.elapsed());
        }
    }
    store.commit().expect("final commit");
    drop(store);
    let secs = t0.elapsed().as_secs_f64();
    eprintln!(
        "search bench: built {docs} events ({:.2} GB of JSON) in {secs:.0} s = {:.1} MB/s",
        bytes as f64 / 1e9,
        bytes as f64 / 1e6 / secs
    );
    std::fs::write(dir.join(MARKER), start.to_rfc3339()).expect("write marker");
    start
}

fn bench_search(c: &mut Criterion) {
    let docs = std::env::var("SLUICE_INDEX_BENCH_DOCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_DOCS);
    let dir = corpus_dir(docs);
    let start = ensure_corpus(&dir, docs);
    let searcher = Searcher::open(&dir, 90).expect("open searcher");
    let total = searcher.count(&SearchRequest::default()).expect("count");
    eprintln!("search bench: {total} events searchable");

    // The middle day, and one hour in its afternoon.
    let day_from = start + chrono::Duration::days(1);
    let day_to = day_from + chrono::Duration::days(1);
    let hour_from = day_from + chrono::Duration::hours(14);
    let hour_to = hour_from + chrono::Duration::hours(1);

    let mut group = c.benchmark_group("search");
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(15));

    let term_range = SearchRequest {
        query: "service.name:checkout AND log.level:error".into(),
        from: Some(hour_from),
        to: Some(hour_to),
        limit: 100,
        search_after: None,
    };
    eprintln!(
        "term+range matches {}",
        searcher.count(&term_range).expect("count term+range")
    );
    group.bench_function("term_and_1h_range_top100", |b| {
        b.iter(|| searcher.search(&term_range).expect("search"))
    });

    let term_day = SearchRequest {
        from: Some(day_from),
        to: Some(day_to),
        ..term_range.clone()
    };
    group.bench_function("term_and_24h_range_top100", |b| {
        b.iter(|| searcher.search(&term_day).expect("search"))
    });

    let text = SearchRequest {
        query: "\"connection is not available\"".into(),
        from: Some(day_from),
        to: Some(day_to),
        limit: 100,
        search_after: None,
    };
    group.bench_function("phrase_24h_top100", |b| {
        b.iter(|| searcher.search(&text).expect("search"))
    });

    for interval in ["1m", "1h"] {
        let histogram = AggregateRequest {
            query: String::new(),
            from: Some(day_from),
            to: Some(day_to),
            aggregation: Aggregation::DateHistogram {
                interval: interval.into(),
            },
        };
        group.bench_function(format!("date_histogram_24h_{interval}"), |b| {
            b.iter(|| searcher.aggregate(&histogram).expect("aggregate"))
        });
    }

    let terms = AggregateRequest {
        query: String::new(),
        from: Some(day_from),
        to: Some(day_to),
        aggregation: Aggregation::Terms {
            field: "service.name".into(),
            size: 10,
        },
    };
    group.bench_function("terms_service_24h", |b| {
        b.iter(|| searcher.aggregate(&terms).expect("aggregate"))
    });

    let percentiles = AggregateRequest {
        query: "http.response.status_code:[500 TO 599]".into(),
        from: Some(day_from),
        to: Some(day_to),
        aggregation: Aggregation::Percentiles {
            field: "event.duration".into(),
            percents: vec![50.0, 99.0],
        },
    };
    group.bench_function("duration_percentiles_5xx_24h", |b| {
        b.iter(|| searcher.aggregate(&percentiles).expect("aggregate"))
    });

    let count_all = SearchRequest {
        query: "log.level:error".into(),
        ..SearchRequest::default()
    };
    group.bench_function("count_errors_all_days", |b| {
        b.iter(|| searcher.count(&count_all).expect("count"))
    });
    group.finish();
}

criterion_group!(benches, bench_search);
criterion_main!(benches);
