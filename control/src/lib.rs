//! The `rusty_rail` control process as a library: configuration now; backends,
//! table publishing and replay as they land. `main.rs` is a thin shell over it.

pub mod config;
