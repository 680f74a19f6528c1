//! Rusty Rail's packet path.
//!
//! A [`worker::Worker`] takes a batch of frames from a [`io::PacketIo`]
//! backend, runs each through the [`pipeline::Pipeline`] against an immutable
//! [`forwarding::ForwardingTable`], and moves it by its [`Verdict`]. See
//! `DESIGN.md` section 3 for the map.

pub mod conntrack;
pub mod counters;
pub mod flow;
pub mod forwarding;
pub mod fragments;
pub mod frame;
mod huge;
pub mod io;
pub mod maglev;
pub mod pipeline;
pub mod verdict;
pub mod wire;
pub mod worker;

pub use frame::Frame;
pub use verdict::{DropReason, Verdict};
