//! Packet I/O backends, all shaped like netmap: rings of fixed-size buffers,
//! a batch received at once, each frame moved by its verdict, ring positions
//! published once per batch.

#[cfg(target_os = "linux")]
pub mod af_packet;
pub mod memory;
#[cfg(target_os = "linux")]
pub mod offloads;
pub mod pcap;

use std::io;
use std::time::Duration;

use crate::frame::Frame;
use crate::verdict::Verdict;

/// What one call to [`PacketIo::run_batch`] moved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchCounts {
    /// Frames received from the wire and handed to the pipeline.
    pub from_wire: usize,
    /// Of those, frames transmitted back on the wire (`ToWire`).
    pub to_wire: usize,
    /// Of those, frames passed to the host stack (`ToHost`).
    pub to_host: usize,
    /// Of those, frames freed (`Drop`).
    pub dropped: usize,
    /// Of those, frames the pipeline copied aside (`Held`); their buffers are freed.
    pub held: usize,
    /// Frames the host stack sent, passed through to the wire untouched.
    pub host_to_wire: usize,
}

/// The code a backend hands each frame of a batch to.
///
/// A plain closure `FnMut(&mut Frame) -> Verdict` is a handler. The pipeline
/// also implements `prefetch`: backends call it for every frame of a batch
/// before deciding any, so the memory each frame will need (its
/// connection-table bucket) is already on its way when the frame's turn comes.
/// Both calls name the frame by its position in the batch (0, 1, ...), so
/// what `prefetch` learned about a frame is found again by index.
pub trait FrameHandler {
    /// Looks at the frame at position `index` of the batch ahead of
    /// `decide` (read-only). The default does nothing.
    #[inline]
    fn prefetch(&mut self, _index: usize, _frame: &[u8]) {}

    /// Rewrites the frame in place as needed and says where it goes;
    /// `index` is its position in the batch, as given to `prefetch`.
    fn decide(&mut self, index: usize, frame: &mut Frame<'_>) -> Verdict;
}

impl<F: FnMut(&mut Frame<'_>) -> Verdict> FrameHandler for F {
    #[inline]
    fn decide(&mut self, _index: usize, frame: &mut Frame<'_>) -> Verdict {
        self(frame)
    }
}

/// A source and sink of frames for one worker.
pub trait PacketIo {
    /// Receives up to `budget` frames from the wire, shows each to
    /// `handler.prefetch`, then lets `handler.decide` rewrite each in place and
    /// pick its verdict, and moves every frame by its verdict:
    /// `ToWire` to the wire TX ring, `ToHost` to the host TX ring (zero-copy
    /// where the backend can), `Drop` back to the free list. Frames the host
    /// sent are passed to the wire. A batch is bounded by the free space on
    /// the destination rings (backpressure, not drops), and ring positions are
    /// published once at its end.
    fn run_batch<H: FrameHandler>(&mut self, budget: usize, handler: H) -> io::Result<BatchCounts>;

    /// Copies `bytes` into a free TX slot toward the wire (the slow path used
    /// for frames the pipeline held back, such as early fragments). Returns
    /// false when the TX ring is full.
    fn transmit_copy(&mut self, bytes: &[u8]) -> io::Result<bool>;

    /// Blocks until frames may be ready or `timeout` passes.
    fn wait(&mut self, timeout: Duration) -> io::Result<()>;
}
