//! Shared helpers for the benchmarks.

pub mod batch;
pub mod netmap;
pub mod rusty_rail;
pub mod stats;
pub mod system;
pub mod traffic;
