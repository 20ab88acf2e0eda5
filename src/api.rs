//! The HTTP API of a running pipeline: `/health`, `/metrics`, and the index's `/api/*` routes.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

/// What `/health` and `/metrics` read.
pub trait Observe: Send + Sync + 'static {
    /// Prometheus text exposition of every counter.
    fn render_prometheus(&self, out: &mut String);
}

/// Builds the router: health, metrics, and search/aggregate over `searcher`.
pub fn router(
    observe: Arc<dyn Observe>,
    searcher: index::Searcher,
    bearer_token: Option<String>,
) -> Router {
    let metrics = {
        let observe = observe.clone();
        move || {
            let observe = observe.clone();
            async move {
                let mut text = String::new();
                observe.render_prometheus(&mut text);
                ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
            }
        }
    };
    Router::new()
        .route(
            "/health",
            get(|| async {
                (
                    StatusCode::OK,
                    axum::Json(serde_json::json!({"status": "ok"})),
                )
            }),
        )
        .route("/metrics", get(metrics))
        .merge(index::api::router(searcher, bearer_token))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n").into_response() })
}

/// Binds `listen` and serves `router` until `shutdown` resolves.
///
/// # Errors
/// The address cannot be bound (in use, or not permitted).
pub async fn serve(
    listen: SocketAddr,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("failed to bind the API to {listen}"))?;
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .context("API server failed")
}
