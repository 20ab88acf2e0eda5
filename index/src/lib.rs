//! placeholder until this crate's first module lands
pub mod elasticsearch;
