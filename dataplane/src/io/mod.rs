//! Packet I/O backends, all shaped like netmap: rings of fixed-size buffers,
//! a batch received at once, each frame moved by its verdict, ring positions
//! published once per batch.

#[cfg(target_os = "linux")]
pub mod af_packet;
#[cfg(target_os = "linux")]
pub mod af_xdp;
#[cfg(target_os = "linux")]
mod kernel_socket;
pub mod memory;
pub mod netmap;
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

/// The code a backend hands the frames of a batch to.
///
/// A plain closure `FnMut(&mut Frame) -> Verdict` is a handler. Backends
/// hand over every frame they hold at once, through `decide_all`, so that
/// a handler can look at all of them before deciding any: the pipeline
/// parses and hashes each frame first and starts loading its
/// connection-table bucket, which is then in cache when the frame's turn
/// comes.
pub trait FrameHandler {
    /// Rewrites the frame in place as needed and says where it goes.
    fn decide(&mut self, frame: &mut Frame<'_>) -> Verdict;

    /// Decides `frames[i]` into `verdicts[i]`, for every `i` below the
    /// shorter length of the two. The default decides them one by one.
    #[inline]
    fn decide_all(&mut self, frames: &mut [Frame<'_>], verdicts: &mut [Verdict]) {
        for (frame, verdict) in frames.iter_mut().zip(verdicts) {
            *verdict = self.decide(frame);
        }
    }
}

impl<F: FnMut(&mut Frame<'_>) -> Verdict> FrameHandler for F {
    #[inline]
    fn decide(&mut self, frame: &mut Frame<'_>) -> Verdict {
        self(frame)
    }
}

/// Frames a backend hands to [`FrameHandler::decide_all`] at once (fewer
/// when fewer are waiting; a larger budget is handed over in several
/// calls): enough for the memory loads of one frame to overlap the parsing
/// of the others, few enough that what the first frames loaded is still in
/// cache when they are decided.
pub const CHUNK: usize = 64;

/// A source and sink of frames for one worker.
pub trait PacketIo {
    /// Receives up to `budget` frames from the wire, hands them to
    /// `handler.decide_all` (at most [`CHUNK`] at a time) to be rewritten in
    /// place and given their verdicts, and moves every frame by its verdict:
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
