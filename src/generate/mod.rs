//! The built-in realistic workload (filled in by the generator work).
