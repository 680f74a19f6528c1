//! Shared helpers for the benchmarks.

pub mod system;
pub mod traffic;
