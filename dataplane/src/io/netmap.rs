//! netmap: rings of buffers shared between the kernel and us, in one
//! memory region, moved by swapping buffer indices.
//!
//! # The region
//!
//! Registering a port (`NIOCCTRL` with `NETMAP_REQ_REGISTER`) binds some of
//! its rings to a file descriptor: each worker registers its NIC ring pair
//! (`NR_REG_ONE_NIC`) and its host ring pair (`NR_REG_ONE_SW`), see
//! [`served_rings`]. Every registration of a port shares the port's one
//! region (`nr_mem_id`), mapped once, holding, at offsets the kernel
//! chooses (each registration with its own `netmap_if`, `ring_ofs` 0 for
//! the rings it did not bind):
//!
//! ```text
//!  netmap_if (nr_offset)        netmap_ring (one per ring)          buffers
//!  ni_tx_rings, ni_rx_rings,    buf_ofs, num_slots, nr_buf_size,    buffer i at
//!  ni_host_{tx,rx}_rings,  ---> head, cur, tail, ... (256 bytes) -> ring + buf_ofs
//!  ring_ofs[]: NIC TX, host TX, slot[num_slots]: buf_idx, len,        + i * nr_buf_size
//!  NIC RX, host RX               flags, ptr (16 bytes each)
//! ```
//!
//! [`region::NetmapRegion`] is the bounds-checked view of it: every offset
//! and index the kernel or a slot provides is checked before it addresses
//! memory, so no value in the region can make us read or write outside it.
//!
//! # Ownership of every slot
//!
//! Each ring is split by two positions, and a slot belongs to exactly one
//! side at a time:
//!
//! - **RX rings** (NIC RX: frames from the wire; host RX: frames the host
//!   stack sent): slots `[head, tail)` hold frames received and are ours;
//!   `[tail, head)` are the kernel's to fill. We consume from `head` and
//!   hand slots back by moving `head` (and `cur`) forward; the kernel moves
//!   `tail` forward as it fills slots. One slot always stays empty, so a
//!   full ring has `num_slots - 1` frames.
//! - **TX rings** (NIC TX: frames to the wire; host TX: frames up to the
//!   host stack): slots `[head, tail)` are free and ours to fill; we fill
//!   from `head` and hand the frames over by moving `head`. The kernel sends
//!   them and moves `tail` forward as their slots become free again. A fresh
//!   TX ring has `tail = num_slots - 1`.
//! - `head`, `cur` and everything in our slots (buffer index, length,
//!   flags, and the buffer's bytes) are written by us only; `tail` and the
//!   kernel's slots by the kernel only. The kernel reads our `head`/`cur`
//!   and acts on the slots between its old position and our `head` only
//!   during a sync (`NIOCTXSYNC`, `NIOCRXSYNC`, `poll`), which runs in our
//!   thread: between syncs nothing but us touches the region. This is why
//!   the views use plain volatile accesses, not atomics, and why a port's
//!   sync takes `&mut self`: no slice of a buffer can be alive across one.
//! - A ring position is published by writing `head` once per batch, after
//!   every slot before it is complete (netmap's `bridge.c` does the same).
//!
//! # Zero copy: swapping buffers
//!
//! All rings of a port share one buffer pool, so a frame moves between
//! rings by exchanging buffer indices: the RX slot's buffer goes to the TX
//! slot, the TX slot's free buffer goes to the RX slot, and both are marked
//! `NS_BUF_CHANGED` (the kernel may have to remap them; it clears the flag).
//! Every buffer index therefore stays in exactly one slot: none is ever
//! lost or duplicated, which the tests check after ten million frames.
//! [`region::swap_into`] is that move. A frame longer than a buffer spans
//! several slots, all but the last marked `NS_MOREFRAG` (the backend drops
//! such frames whole; its docs say when they occur and why).
//!
//! # One worker per ring pair
//!
//! A NIC with several queues spreads flows over its RX rings, and a ring
//! may be synced by one thread only. Each worker owns NIC ring pair `i` and
//! host ring pair `i` (the port asks for as many host ring pairs as
//! workers), so a worker bridges its NIC and host rings exactly as a lone
//! worker bridges all of them: frames and buffers never cross between
//! workers, and no lock or handoff queue is needed. The host stack's
//! frames reach some host RX ring (netmap picks it by the frame's transmit
//! queue) and leave through that worker's NIC TX ring; frames for the host
//! from any worker go up through its own host TX ring.
//!
//! # Two ports behind one seam
//!
//! [`NetmapPort`] is what a backend sees: the region and the two syncs
//! (plus `poll`). Two implementations differ only there:
//!
//! - [`kernel::KernelPort`] opens `/dev/netmap`, registers the port, maps
//!   the region, and syncs with `ioctl`: the real thing, on Linux with the
//!   netmap module and on FreeBSD;
//! - [`emulated::EmulatedPort`] plays the kernel in userspace, for machines
//!   without netmap (these): it lays out a region exactly as the ABI says
//!   and performs at each sync what netmap's emulated ("generic") adapter
//!   does, against a pluggable device: in memory for tests, `AF_PACKET` on a
//!   live interface. See its docs for what it copies and where it differs.
//!
//! Backpressure follows from the ownership rules: a full TX ring has no
//! free slot to swap into, so frames stay in the RX ring (and, behind it,
//! in the device) until the kernel frees TX slots; nothing is dropped for
//! lack of space.

mod backend;
pub mod emulated;
#[cfg(any(target_os = "linux", target_os = "freebsd"))]
pub mod kernel;
mod mapping;
#[cfg(any(target_os = "linux", target_os = "freebsd"))]
pub mod port_info;
pub mod region;
pub mod served_rings;

use std::io;
use std::time::Duration;

pub use backend::{NetmapIo, NetmapIoStats};
pub use region::{NetmapRegion, RingKind, RingView};
pub use served_rings::{ServedRings, ServedRingsError};

/// A netmap port bound to NIC and host rings: the region and the syncs.
///
/// The only code that differs between the kernel and the emulated kernel
/// is opening the port and these methods.
pub trait NetmapPort {
    /// The region the rings live in.
    fn region(&self) -> &NetmapRegion;

    /// The largest packet offset the port was registered with
    /// (`NETMAP_REQ_OPT_OFFSETS`), which is also where every RX slot
    /// receives its packet: the room in front of each received frame. 0
    /// without the option.
    fn max_offset(&self) -> usize {
        0
    }

    /// `NIOCTXSYNC`: the kernel takes the TX slots up to each TX ring's
    /// `head` (sends them, or passes them up to the host stack) and moves
    /// `tail` past the slots it has finished with.
    fn txsync(&mut self) -> io::Result<()>;

    /// `NIOCRXSYNC`: the kernel takes back the RX slots before each RX
    /// ring's `head` and fills free slots with frames that arrived, moving
    /// `tail`.
    fn rxsync(&mut self) -> io::Result<()>;

    /// `poll(POLLIN)`: pushes pending TX, then waits until an RX ring holds
    /// frames or `timeout` passes; the RX rings are synced on return.
    fn poll(&mut self, timeout: Duration) -> io::Result<()>;
}
