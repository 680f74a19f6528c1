//! Link impairments in netem's syntax, applied in userspace where the
//! kernel has no `sch_netem` (these machines, FreeBSD): the spec parser and
//! the seeded per-packet model. The same seed and the same offered traffic
//! give the same drops, duplicates, corruptions and delays, packet for packet.
//! [`live`] runs the emulator between two real interfaces; [`placement`]
//! decides which packets of a link a spec applies to (by default those the
//! host sends, as netem does), for the emulator and the kernel mode alike.

pub mod delay;
pub mod dist_table;
pub mod emulator;
pub mod link;
#[cfg(target_os = "linux")]
pub mod live;
pub mod loss;
pub mod placement;
pub mod random;
pub mod spec;

pub use emulator::{DirectionCounters, Emulator};
pub use link::{DropCause, Fate, ImpairedLink, Offer};
pub use placement::{Direction, LinkSpecs};
pub use spec::{NetemSpec, SpecError};

#[cfg(test)]
mod tests;
