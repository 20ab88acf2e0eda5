//! The HTTP search API: `GET`/`POST` `/api/search` and `/api/aggregate`.
//!
//! `GET` takes query parameters (`q`, `from`, `to`, `limit`, `search_after`; for aggregations
//! also `type`, `interval`, `field`, `size`, `percents=50,99`); `POST` takes the JSON of
//! [`SearchRequest`] or [`AggregateRequest`]. Errors are JSON `{"error": .., "code": ..}` with
//! status 400 for a bad request, 401 for a missing or wrong bearer token, 500 otherwise.
//!
//! The binary binds 127.0.0.1 by default and must pass a token when it binds anywhere else;
//! [`router`] enforces whatever token it is given.

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::{AggregateRequest, Aggregation, IndexError, SearchRequest, Searcher};

/// Path of the search endpoint.
pub const SEARCH_PATH: &str = "/api/search";
/// Path of the aggregation endpoint.
pub const AGGREGATE_PATH: &str = "/api/aggregate";

#[derive(Clone)]
struct ApiState {
    searcher: Searcher,
    token: Option<Arc<str>>,
}

/// The API's routes over `searcher`. With `bearer_token`, every request must carry
/// `Authorization: Bearer <token>`.
pub fn router(searcher: Searcher, bearer_token: Option<String>) -> Router {
    let state = ApiState {
        searcher,
        token: bearer_token.map(Arc::from),
    };
    Router::new()
        .route(SEARCH_PATH, get(search_get).post(search_post))
        .route(AGGREGATE_PATH, get(aggregate_get).post(aggregate_post))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token))
        .with_state(state)
}

fn error_response(status: StatusCode, code: &str, message: String) -> Response {
    let body = serde_json::json!({ "error": message, "code": code });
    (status, axum::Json(body)).into_response()
}

fn index_error_response(err: &IndexError) -> Response {
    let status = if err.is_client_error() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    error_response(status, err.error_code(), err.to_string())
}

/// Compares in time independent of where the first difference is, so the token cannot be
/// guessed byte by byte from response times.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn require_token(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let Some(expected) = state.token.as_deref() else {
        return next.run(request).await;
    };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        Some(token) if constant_time_eq(token.trim().as_bytes(), expected.as_bytes()) => {
            next.run(request).await
        }
        _ => {
            let mut response = error_response(
                StatusCode::UNAUTHORIZED,
                "api_unauthorized",
                "missing or invalid bearer token".into(),
            );
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
    }
}

/// Runs `f` on the blocking pool: searches are CPU and disk work.
async fn blocking<T, F>(f: F) -> Response
where
    T: serde::Serialize + Send + 'static,
    F: FnOnce() -> Result<T, IndexError> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(value)) => axum::Json(value).into_response(),
        Ok(Err(err)) => index_error_response(&err),
        Err(join) => index_error_response(&IndexError::Internal(format!("search task: {join}"))),
    }
}

/// `GET /api/search` parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchParams {
    #[serde(default)]
    q: String,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    #[serde(default)]
    limit: usize,
    search_after: Option<String>,
}

async fn search_get(
    State(state): State<ApiState>,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Response {
    let Query(p) = match params {
        Ok(p) => p,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, "api_bad_params", e.body_text()),
    };
    let req = SearchRequest {
        query: p.q,
        from: p.from,
        to: p.to,
        limit: p.limit,
        search_after: p.search_after,
    };
    let searcher = state.searcher.clone();
    blocking(move || searcher.search(&req)).await
}

async fn search_post(
    State(state): State<ApiState>,
    body: Result<axum::Json<SearchRequest>, JsonRejection>,
) -> Response {
    let axum::Json(req) = match body {
        Ok(b) => b,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, "api_bad_body", e.body_text()),
    };
    let searcher = state.searcher.clone();
    blocking(move || searcher.search(&req)).await
}

/// `GET /api/aggregate` parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AggregateParams {
    #[serde(default)]
    q: String,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    /// `date_histogram`, `terms` or `percentiles`.
    #[serde(rename = "type")]
    kind: String,
    interval: Option<String>,
    field: Option<String>,
    size: Option<usize>,
    /// Comma-separated, e.g. `50,95,99`.
    percents: Option<String>,
}

fn aggregation_of(p: &AggregateParams) -> Result<Aggregation, String> {
    match p.kind.as_str() {
        "date_histogram" => Ok(Aggregation::DateHistogram {
            interval: p.interval.clone().ok_or("date_histogram needs interval")?,
        }),
        "terms" => Ok(Aggregation::Terms {
            field: p.field.clone().ok_or("terms needs field")?,
            size: p.size.unwrap_or(10),
        }),
        "percentiles" => {
            let mut percents = Vec::new();
            for part in p.percents.as_deref().unwrap_or("").split(',') {
                let part = part.trim();
                if part.is_empty() {
                    continue;
                }
                percents.push(
                    part.parse::<f64>()
                        .map_err(|_| format!("percent {part:?} is not a number"))?,
                );
            }
            Ok(Aggregation::Percentiles {
                field: p
                    .field
                    .clone()
                    .unwrap_or_else(|| schemas::fields::EVENT_DURATION.to_string()),
                percents,
            })
        }
        other => Err(format!(
            "unknown aggregation type {other:?} (date_histogram, terms, percentiles)"
        )),
    }
}

async fn aggregate_get(
    State(state): State<ApiState>,
    params: Result<Query<AggregateParams>, QueryRejection>,
) -> Response {
    let Query(p) = match params {
        Ok(p) => p,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, "api_bad_params", e.body_text()),
    };
    let aggregation = match aggregation_of(&p) {
        Ok(a) => a,
        Err(msg) => return error_response(StatusCode::BAD_REQUEST, "api_bad_params", msg),
    };
    let req = AggregateRequest {
        query: p.q,
        from: p.from,
        to: p.to,
        aggregation,
    };
    let searcher = state.searcher.clone();
    blocking(move || searcher.aggregate(&req)).await
}

async fn aggregate_post(
    State(state): State<ApiState>,
    body: Result<axum::Json<AggregateRequest>, JsonRejection>,
) -> Response {
    let axum::Json(req) = match body {
        Ok(b) => b,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, "api_bad_body", e.body_text()),
    };
    let searcher = state.searcher.clone();
    blocking(move || searcher.aggregate(&req)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_exactly() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
