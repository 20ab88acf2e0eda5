//! The `sluice` binary's library: CLI, configuration, the embedded pipeline, the HTTP API,
//! alert delivery and the built-in workload generator.
//!
//! The stages themselves live in their own crates (`ingest`, `parse`, `detect`, `index`);
//! this crate only wires them together, so integration tests can drive the same code the
//! binary runs.

pub mod api;
pub mod cli;
pub mod commands;
pub mod config;
pub mod delivery;
pub mod distributed;
pub mod generate;
pub mod pipeline;
pub mod util;
