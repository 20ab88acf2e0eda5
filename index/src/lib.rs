//! Sluice's stores: the embedded tantivy index (one partition per UTC day, exactly-once over
//! replays, retention, search and aggregations, an HTTP API) and the Elasticsearch writer.
//!
//! - [`Store`]: stages [`schemas::LogEvent`]s, commits them durably, skips replays, drops
//!   expired days.
//! - [`Searcher`]: search (newest first, `search_after` pages), count and aggregate, in this
//!   process or another one while a writer runs.
//! - [`api::router`]: `GET`/`POST` `/api/search` and `/api/aggregate`.
//!
//! ```no_run
//! # fn main() -> Result<(), index::IndexError> {
//! use index::{IndexConfig, SearchRequest, Store};
//! let mut store = Store::open(&IndexConfig::with_data_dir("/var/lib/sluice"))?;
//! let event = schemas::LogEvent::new(chrono::Utc::now(), "db connection refused");
//! store.add(&event)?;
//! store.commit()?; // now acknowledge upstream
//! let page = store.searcher().search(&SearchRequest {
//!     query: "message:refused".into(),
//!     ..SearchRequest::default()
//! })?;
//! assert_eq!(page.events.len(), 1);
//! # Ok(())
//! # }
//! ```

mod aggregate;
pub mod api;
mod config;
pub mod elasticsearch;
mod error;
mod in_flight;
mod partition;
pub mod schema;
mod search;
mod store;

pub use aggregate::{
    AggregateRequest, AggregateResponse, Aggregation, DateBucket, PercentileValue, TermBucket,
};
pub use config::{
    DEFAULT_COMMIT_INTERVAL_MS, DEFAULT_COMMIT_MAX_DOCS, DEFAULT_MAX_OPEN_WRITERS,
    DEFAULT_RETENTION_DAYS, DEFAULT_WRITER_HEAP_BYTES, DEFAULT_WRITER_THREADS, IndexConfig,
};
pub use error::IndexError;
pub use search::{DEFAULT_LIMIT, MAX_LIMIT, SearchRequest, SearchResponse, Searcher};
pub use store::{CommitStats, Store, StoreStats};
