//! Shared helpers for the benchmarks (traffic generators live here).
