//! Shared workload helpers for Sluice's benchmarks.
//!
//! Binaries:
//! - `agent_path`: the agent's data path alone (tail → CRI decode → partial/multi-line merge →
//!   parse → NDJSON file or null sink), run over a pod-log directory to completion. Driven by
//!   the `benches/compare` script, which runs it side by side with `sluice run --until-idle`
//!   and rsyslog on the same generated files.
