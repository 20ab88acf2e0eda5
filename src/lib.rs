//! The `sluice` binary's library: CLI wiring, configuration, the embedded pipeline and the
//! built-in workload generator.
pub mod generate;
