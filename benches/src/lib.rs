//! Shared workload helpers for Sluice's benchmarks.
