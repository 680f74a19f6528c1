//! Rusty Rail's packet path.
//!
//! A worker takes a batch of frames from a [`io::PacketIo`] backend, runs
//! each through the [`pipeline`] against an immutable forwarding table, and
//! moves it by its [`Verdict`]. See `DESIGN.md` section 3 for the map.

pub mod conntrack;
pub mod frame;
pub mod io;
pub mod maglev;
pub mod verdict;

pub use frame::Frame;
pub use verdict::{DropReason, Verdict};
