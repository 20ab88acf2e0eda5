//! Date histogram, terms and percentiles on the known data set.

use chrono::Duration;
use index::{AggregateRequest, AggregateResponse, Aggregation, IndexError, TermBucket};

use crate::fixtures::{self, N, TestResult};

fn terms(buckets: &[(&str, u64)]) -> Vec<TermBucket> {
    buckets
        .iter()
        .map(|(k, c)| TermBucket {
            key: k.to_string(),
            count: *c,
        })
        .collect()
}

#[test]
fn date_histogram_counts_per_interval_and_fills_gaps() -> TestResult {
    let (_dir, store, start) = fixtures::loaded_store()?;
    let s = store.searcher();
    let req = |interval: &str, query: &str| AggregateRequest {
        query: query.into(),
        from: Some(start),
        to: Some(start + Duration::days(2)),
        aggregation: Aggregation::DateHistogram {
            interval: interval.into(),
        },
    };
    let AggregateResponse::DateHistogram { buckets } = s.aggregate(&req("1d", ""))? else {
        return Err("not a histogram".into());
    };
    assert_eq!(buckets.len(), 2);
    assert_eq!(buckets[0].start, start);
    assert_eq!(buckets[1].start, start + Duration::days(1));
    assert!(buckets.iter().all(|b| b.count == 48));

    let AggregateResponse::DateHistogram { buckets } = s.aggregate(&req("6h", ""))? else {
        return Err("not a histogram".into());
    };
    assert_eq!(buckets.len(), 8);
    assert!(buckets.iter().all(|b| b.count == 12), "{buckets:?}");

    // Errors happen every 2 h (i % 4 == 0); in 1 h buckets every other bucket is an empty gap,
    // and the range's tail after the last error is filled too.
    let AggregateResponse::DateHistogram { buckets } =
        s.aggregate(&req("1h", "log.level:error"))?
    else {
        return Err("not a histogram".into());
    };
    assert_eq!(buckets.len(), 48);
    for (k, b) in buckets.iter().enumerate() {
        assert_eq!(b.start, start + Duration::hours(k as i64));
        assert_eq!(b.count, u64::from(k % 2 == 0), "bucket {k}");
    }
    Ok(())
}

#[test]
fn terms_aggregations_rank_values() -> TestResult {
    let (_dir, store, _) = fixtures::loaded_store()?;
    let s = store.searcher();
    let run = |field: &str, size: usize, query: &str| {
        s.aggregate(&AggregateRequest {
            query: query.into(),
            from: None,
            to: None,
            aggregation: Aggregation::Terms {
                field: field.into(),
                size,
            },
        })
    };
    let third = (N / 3) as u64;
    let mut services = match run("service.name", 10, "")? {
        AggregateResponse::Terms {
            buckets,
            other_count,
        } => {
            assert_eq!(other_count, 0);
            buckets
        }
        other => return Err(format!("unexpected {other:?}").into()),
    };
    services.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(
        services,
        terms(&[("api", third), ("db", third), ("web", third)])
    );

    assert_eq!(
        run("log.level", 10, "")?,
        AggregateResponse::Terms {
            buckets: terms(&[("info", 72), ("error", 24)]),
            other_count: 0
        }
    );
    let AggregateResponse::Terms { buckets, .. } = run("http.response.status_code", 10, "")? else {
        return Err("not terms".into());
    };
    assert_eq!(buckets[0], terms(&[("200", 64)])[0]);
    let mut rest = buckets[1..].to_vec();
    rest.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(rest, terms(&[("404", 16), ("503", 16)]));

    // Top 2 of 5 patterns (p0 has 20 events, the others 19): the rest is counted as other.
    let AggregateResponse::Terms {
        buckets,
        other_count,
    } = run("sluice.pattern.id", 2, "")?
    else {
        return Err("not terms".into());
    };
    assert_eq!(buckets.len(), 2);
    assert_eq!(buckets[0], terms(&[("p0", 20)])[0]);
    assert_eq!(buckets[1].count, 19);
    assert_eq!(other_count, N as u64 - 39);

    // Filtered by a query.
    assert_eq!(
        run("service.name", 10, "http.response.status_code:503")?,
        AggregateResponse::Terms {
            buckets: terms(&[("api", 16)]),
            other_count: 0
        }
    );
    Ok(())
}

#[test]
fn duration_percentiles_are_within_sketch_error() -> TestResult {
    let (_dir, store, _) = fixtures::loaded_store()?;
    let resp = store.searcher().aggregate(&AggregateRequest {
        query: String::new(),
        from: None,
        to: None,
        aggregation: Aggregation::Percentiles {
            field: "event.duration".into(),
            percents: vec![50.0, 99.0],
        },
    })?;
    let AggregateResponse::Percentiles { count, values } = resp else {
        return Err("not percentiles".into());
    };
    assert_eq!(count, N as u64);
    assert_eq!(values.len(), 2);
    // Durations are 1..=96 ms: p50 ≈ 48.5 ms, p99 ≈ 95 ms; DDSketch keeps 1% relative error.
    let p50 = values[0].value.ok_or("no p50")?;
    let p99 = values[1].value.ok_or("no p99")?;
    assert!((p50 / 48.5e6 - 1.0).abs() < 0.03, "p50 {p50}");
    assert!((p99 / 95.0e6 - 1.0).abs() < 0.03, "p99 {p99}");

    // No event has the field in this range: a count of 0 and no values.
    let empty = store.searcher().aggregate(&AggregateRequest {
        query: "message:nonexistentword".into(),
        from: None,
        to: None,
        aggregation: Aggregation::Percentiles {
            field: "event.duration".into(),
            percents: vec![],
        },
    })?;
    let AggregateResponse::Percentiles { count, values } = empty else {
        return Err("not percentiles".into());
    };
    assert_eq!(count, 0);
    assert_eq!(values.len(), 4);
    assert!(values.iter().all(|v| v.value.is_none()));
    Ok(())
}

#[test]
fn bad_aggregations_are_bad_requests() -> TestResult {
    let (_dir, store, _) = fixtures::loaded_store()?;
    let s = store.searcher();
    let bad = [
        Aggregation::Terms {
            field: "message".into(),
            size: 10,
        },
        Aggregation::Terms {
            field: "event.id".into(),
            size: 10,
        },
        Aggregation::Terms {
            field: "service.name".into(),
            size: 0,
        },
        Aggregation::DateHistogram {
            interval: "fortnightly".into(),
        },
        Aggregation::Percentiles {
            field: "service.name".into(),
            percents: vec![],
        },
        Aggregation::Percentiles {
            field: "event.duration".into(),
            percents: vec![150.0],
        },
    ];
    for aggregation in bad {
        let req = AggregateRequest {
            query: String::new(),
            from: None,
            to: None,
            aggregation,
        };
        match s.aggregate(&req) {
            Err(IndexError::BadRequest(_)) => {}
            other => return Err(format!("{req:?}: expected BadRequest, got {other:?}").into()),
        }
    }
    Ok(())
}
