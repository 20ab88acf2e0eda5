//! Integration tests of the `sluice` binary and its library: one test binary, a module per area.

mod cli;
mod crash;
mod delivery;
mod distributed;
mod embedded;
mod scenarios;
mod support;
