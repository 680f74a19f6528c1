//! The `rusty_rail` control process as a library: configuration, turning it
//! into forwarding tables, offline replay. `main.rs` is a thin shell over it.

pub mod api;
pub mod backends;
pub mod bgp;
pub mod config;
pub mod health;
pub mod live;
pub mod metrics;
pub mod readiness;
pub mod replay;
pub mod report;
pub mod stats;
pub mod synth_capture;
pub mod tables;
