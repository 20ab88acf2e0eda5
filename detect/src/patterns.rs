//! Log-pattern mining (filled in by the patterns work).
