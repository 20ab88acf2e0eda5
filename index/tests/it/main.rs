//! Integration tests of the embedded store: real tantivy indexes in temp dirs and a real axum
//! server on 127.0.0.1.

mod aggregate;
mod api;
mod exactly_once;
mod fixtures;
mod retention;
mod search;
