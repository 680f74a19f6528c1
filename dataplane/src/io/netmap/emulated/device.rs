//! What the emulated kernel drives: the device's side of a port, the part
//! a real kernel reaches through the driver and the host stack.

use std::io;
use std::time::Duration;

/// The wire and the host stack behind an [`EmulatedPort`](super::EmulatedPort).
///
/// The emulated kernel calls these only inside a sync, in the thread that
/// called it, as netmap's generic adapter reaches the driver and the stack.
pub trait Device {
    /// The longest frame [`receive`](Self::receive) may deliver: the RX
    /// sync asks for no more frames than fit its free slots at this length.
    fn max_frame_len(&self) -> usize;

    /// Hands at most `max` frames received from the wire to `deliver`,
    /// oldest first; returns how many. (netmap: the driver's frames, queued
    /// by the adapter's receive hook until `rxsync` copies them into slots.)
    fn receive(&mut self, max: usize, deliver: impl FnMut(&[u8])) -> io::Result<usize>;

    /// Queues `frame` for the wire. `Ok(false)` when the device's queue is
    /// full: the TX sync stops there and retries the frame at the next sync
    /// (backpressure; netmap: the driver refused the mbuf).
    fn transmit(&mut self, frame: &[u8]) -> io::Result<bool>;

    /// Pushes out what [`transmit`](Self::transmit) queued (end of a TX sync).
    fn flush(&mut self) -> io::Result<()>;

    /// Passes `frame` up to the host stack, as received on this interface
    /// (netmap: `netmap_send_up`, the host TX ring's sync).
    fn send_up(&mut self, frame: &[u8]) -> io::Result<()>;

    /// Hands at most `max` frames the host stack sent on this interface to
    /// `deliver`; returns how many (netmap: intercepted by `netmap_transmit`
    /// and queued for the host RX ring's sync).
    fn host_transmitted(&mut self, max: usize, deliver: impl FnMut(&[u8])) -> io::Result<usize>;

    /// Blocks until a frame may have arrived (from the wire or the host
    /// stack) or `timeout` passes.
    fn wait(&mut self, timeout: Duration) -> io::Result<()>;
}
