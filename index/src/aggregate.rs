//! Aggregations over the committed partitions: date histogram, terms and percentiles.
//!
//! Each partition computes tantivy's intermediate (mergeable) result; they are merged and
//! finalized once, so buckets that span partitions (a terms bucket, a histogram gap) are right.

use std::ops::Bound;

use chrono::{DateTime, Utc};
use schemas::fields;
use serde::{Deserialize, Serialize};
use tantivy::aggregation::agg_req::Aggregations;
use tantivy::aggregation::agg_result::{
    AggregationResult, BucketEntries, BucketResult, MetricResult,
};
use tantivy::aggregation::intermediate_agg_result::IntermediateAggregationResults;
use tantivy::aggregation::metric::PercentileValues;
use tantivy::aggregation::{AggregationLimitsGuard, DistributedAggregationCollector, Key};

use crate::IndexError;
use crate::partition;
use crate::schema::is_aggregatable;
use crate::search::Searcher;

/// Memory an aggregation may use: terms on a high-cardinality field must fail cleanly rather
/// than take the process down.
const AGG_MEMORY_LIMIT_BYTES: u64 = 500 * 1024 * 1024;
/// Most buckets one aggregation may return: a month at one-minute resolution (43 200) fits.
const AGG_BUCKET_LIMIT: u32 = 65_000;
/// Largest terms `size`.
const MAX_TERMS_SIZE: usize = 1_000;
/// Percentiles reported when the request lists none.
const DEFAULT_PERCENTS: &[f64] = &[50.0, 90.0, 95.0, 99.0];
/// Names of the tantivy sub-aggregations.
const AGG_NAME: &str = "agg";
const COUNT_NAME: &str = "count";

/// An aggregation over the events matching a query in a time range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregateRequest {
    /// tantivy query syntax, as [`crate::SearchRequest::query`].
    #[serde(default)]
    pub query: String,
    /// Inclusive lower bound on `@timestamp`.
    #[serde(default)]
    pub from: Option<DateTime<Utc>>,
    /// Exclusive upper bound on `@timestamp`.
    #[serde(default)]
    pub to: Option<DateTime<Utc>>,
    /// What to compute.
    pub aggregation: Aggregation,
}

/// The aggregations the store supports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Aggregation {
    /// Event counts per fixed `@timestamp` interval (`30s`, `1m`, `1h`, `1d`, ...). With both
    /// `from` and `to` set, empty buckets cover the whole range.
    DateHistogram { interval: String },
    /// The most frequent values of a keyword or numeric field (`service.name`, `log.level`,
    /// `http.response.status_code`, `sluice.pattern.id`, ...).
    Terms {
        field: String,
        #[serde(default = "default_terms_size")]
        size: usize,
    },
    /// Percentiles of a numeric field, `event.duration` (ns) unless told otherwise.
    Percentiles {
        #[serde(default = "default_percentiles_field")]
        field: String,
        #[serde(default)]
        percents: Vec<f64>,
    },
}

fn default_terms_size() -> usize {
    10
}

fn default_percentiles_field() -> String {
    fields::EVENT_DURATION.to_string()
}

/// One date histogram bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DateBucket {
    /// Start of the bucket.
    pub start: DateTime<Utc>,
    pub count: u64,
}

/// One terms bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TermBucket {
    /// The value, as text (`"500"` for a status code).
    pub key: String,
    pub count: u64,
}

/// One percentile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PercentileValue {
    /// The percentile asked for, e.g. `99.0`.
    pub percent: f64,
    /// Its value, absent when no event had the field.
    pub value: Option<f64>,
}

/// The result of an [`AggregateRequest`], shaped like its [`Aggregation`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AggregateResponse {
    DateHistogram {
        buckets: Vec<DateBucket>,
    },
    Terms {
        buckets: Vec<TermBucket>,
        /// Events with a value outside the returned buckets.
        other_count: u64,
    },
    Percentiles {
        /// Events that had the field.
        count: u64,
        values: Vec<PercentileValue>,
    },
}

fn bad(msg: String) -> IndexError {
    IndexError::BadRequest(msg)
}

fn ms(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64
}

/// The tantivy aggregation request for `req`.
fn tantivy_request(req: &AggregateRequest) -> Result<Aggregations, IndexError> {
    let json = match &req.aggregation {
        Aggregation::DateHistogram { interval } => {
            let mut histogram = serde_json::json!({
                "field": fields::TIMESTAMP,
                "fixed_interval": interval,
                "min_doc_count": 0,
            });
            if let (Some(from), Some(to)) = (req.from, req.to) {
                // Bounds are in ms; `to` is exclusive, so the last bucket is the one holding
                // the last millisecond before it.
                histogram["extended_bounds"] =
                    serde_json::json!({ "min": ms(from), "max": ms(to) - 1.0 });
                histogram["hard_bounds"] =
                    serde_json::json!({ "min": ms(from), "max": ms(to) - 1.0 });
            }
            serde_json::json!({ AGG_NAME: { "date_histogram": histogram } })
        }
        Aggregation::Terms { field, size } => {
            if !is_aggregatable(field) {
                return Err(bad(format!(
                    "field {field:?} cannot be aggregated (it is unknown, full text or has too \
                     many distinct values)"
                )));
            }
            if *size == 0 || *size > MAX_TERMS_SIZE {
                return Err(bad(format!("terms size must be in 1..={MAX_TERMS_SIZE}")));
            }
            serde_json::json!({ AGG_NAME: { "terms": { "field": field, "size": size } } })
        }
        Aggregation::Percentiles { field, percents } => {
            let numeric = fields::field(field).is_some_and(|d| {
                matches!(d.kind, fields::FieldKind::Long | fields::FieldKind::Date)
            });
            if !numeric {
                return Err(bad(format!("field {field:?} is not numeric")));
            }
            let percents = if percents.is_empty() {
                DEFAULT_PERCENTS.to_vec()
            } else {
                percents.clone()
            };
            if percents.iter().any(|p| !(0.0..=100.0).contains(p)) {
                return Err(bad("percents must be in 0..=100".into()));
            }
            serde_json::json!({
                AGG_NAME: { "percentiles": { "field": field, "percents": percents, "keyed": true } },
                COUNT_NAME: { "value_count": { "field": field } },
            })
        }
    };
    serde_json::from_value(json).map_err(|e| bad(format!("invalid aggregation: {e}")))
}

fn key_text(key: &Key) -> String {
    match key {
        Key::Str(s) => s.clone(),
        Key::I64(v) => v.to_string(),
        Key::U64(v) => v.to_string(),
        Key::F64(v) if v.fract() == 0.0 && v.abs() < 9.0e15 => format!("{}", *v as i64),
        Key::F64(v) => v.to_string(),
    }
}

impl Searcher {
    /// Runs an aggregation over the events matching `req`.
    ///
    /// # Errors
    /// [`IndexError::BadRequest`] for a bad query, interval or field (or too many buckets);
    /// [`IndexError::Tantivy`] when a partition cannot be read.
    pub fn aggregate(&self, req: &AggregateRequest) -> Result<AggregateResponse, IndexError> {
        let aggs = tantivy_request(req)?;
        let upper = req.to.map(Bound::Excluded).unwrap_or(Bound::Unbounded);
        let query = self.query(&req.query, req.from, upper)?;
        let limits =
            || AggregationLimitsGuard::new(Some(AGG_MEMORY_LIMIT_BYTES), Some(AGG_BUCKET_LIMIT));
        let mut merged: Option<IntermediateAggregationResults> = None;
        for (day, searcher) in self.snapshot(req.from, upper)? {
            let collector = DistributedAggregationCollector::from_aggs(aggs.clone(), limits());
            let part = searcher
                .search(query.for_day(day), &collector)
                .map_err(|e| agg_error(day, e))?;
            match merged.as_mut() {
                Some(m) => m.merge_fruits(part).map_err(|e| agg_error(day, e))?,
                None => merged = Some(part),
            }
        }
        let results = match merged {
            Some(m) => Some(
                m.into_final_result(aggs, limits())
                    .map_err(|e| agg_error(chrono::NaiveDate::MIN, e))?,
            ),
            None => None,
        };
        let result = results.as_ref().and_then(|r| r.0.get(AGG_NAME));
        let count = results
            .as_ref()
            .and_then(|r| r.0.get(COUNT_NAME))
            .and_then(|c| match c {
                AggregationResult::MetricResult(MetricResult::Count(v)) => v.value,
                _ => None,
            })
            .unwrap_or(0.0);
        convert(&req.aggregation, result, count as u64)
    }
}

fn agg_error(day: chrono::NaiveDate, e: tantivy::TantivyError) -> IndexError {
    match e {
        // Limits and request problems are the caller's to fix.
        tantivy::TantivyError::AggregationError(inner) => bad(inner.to_string()),
        tantivy::TantivyError::InvalidArgument(msg) => bad(msg),
        other => IndexError::tantivy(partition::day_name(day), other),
    }
}

fn convert(
    agg: &Aggregation,
    result: Option<&AggregationResult>,
    count: u64,
) -> Result<AggregateResponse, IndexError> {
    let unexpected = || IndexError::Internal("aggregation result of an unexpected shape".into());
    match agg {
        Aggregation::DateHistogram { .. } => {
            let mut buckets = Vec::new();
            if let Some(result) = result {
                let AggregationResult::BucketResult(BucketResult::Histogram { buckets: entries }) =
                    result
                else {
                    return Err(unexpected());
                };
                let BucketEntries::Vec(entries) = entries else {
                    return Err(unexpected());
                };
                for entry in entries {
                    let Key::F64(key_ms) = entry.key else {
                        return Err(unexpected());
                    };
                    let start = DateTime::<Utc>::from_timestamp_millis(key_ms as i64)
                        .ok_or_else(unexpected)?;
                    buckets.push(DateBucket {
                        start,
                        count: entry.doc_count,
                    });
                }
            }
            Ok(AggregateResponse::DateHistogram { buckets })
        }
        Aggregation::Terms { .. } => {
            let mut buckets = Vec::new();
            let mut other_count = 0;
            if let Some(result) = result {
                let AggregationResult::BucketResult(BucketResult::Terms {
                    buckets: entries,
                    sum_other_doc_count,
                    ..
                }) = result
                else {
                    return Err(unexpected());
                };
                other_count = *sum_other_doc_count;
                for entry in entries {
                    buckets.push(TermBucket {
                        key: key_text(&entry.key),
                        count: entry.doc_count,
                    });
                }
            }
            Ok(AggregateResponse::Terms {
                buckets,
                other_count,
            })
        }
        Aggregation::Percentiles { percents, .. } => {
            let percents = if percents.is_empty() {
                DEFAULT_PERCENTS.to_vec()
            } else {
                percents.clone()
            };
            let mut keyed = std::collections::HashMap::new();
            if let Some(result) = result {
                let AggregationResult::MetricResult(MetricResult::Percentiles(p)) = result else {
                    return Err(unexpected());
                };
                let PercentileValues::HashMap(map) = &p.values else {
                    return Err(unexpected());
                };
                for (k, v) in map {
                    if let Ok(percent) = k.parse::<f64>() {
                        keyed.insert(percent.to_bits(), *v);
                    }
                }
            }
            let values = percents
                .iter()
                .map(|p| PercentileValue {
                    percent: *p,
                    value: keyed
                        .get(&p.to_bits())
                        .copied()
                        .filter(|v| v.is_finite() && count > 0),
                })
                .collect();
            Ok(AggregateResponse::Percentiles { count, values })
        }
    }
}
