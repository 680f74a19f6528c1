//! Shared helpers for the benchmarks.

pub mod stats;
pub mod system;
pub mod traffic;
