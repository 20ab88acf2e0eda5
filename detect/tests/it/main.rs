//! Integration tests of the `detect` rules engine (one binary, a module per area).

mod components;
mod memory;
mod merge;
mod order;
mod scenarios;
mod state;
mod traffic;
