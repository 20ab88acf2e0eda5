//! Integration tests of the `ingest` crate: one binary, one module per area.

mod copytruncate;
mod decode;
mod harness;
mod kube;
mod model;
mod tailer;
