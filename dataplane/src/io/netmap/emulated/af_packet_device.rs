//! `AfPacketDevice`: the emulated kernel's device on a live interface,
//! through [`AfPacketIo`].
//!
//! - **Wire to NIC RX**: each RX sync runs one `AfPacketIo` batch whose
//!   handler copies every frame into the netmap slots and marks it `Held`
//!   (copied aside; the packet socket's slot goes straight back). One copy
//!   per received frame, where a netmap driver DMAs into the buffer: the
//!   price of the emulation.
//! - **NIC TX to wire**: each frame is copied into the packet socket's TX
//!   ring (`transmit_copy`) and the ring is kicked once per TX sync. A full
//!   TX ring is reported as a full device: the TX sync stops and the frames
//!   stay in netmap's TX ring (backpressure). Frames longer than a TX slot
//!   are dropped, as a NIC drops what exceeds its MTU.
//! - **Host TX to the host stack**: nothing is sent. A packet socket sees a
//!   *copy* of what the interface receives; the kernel's stack already has
//!   every frame this device delivered, so passing one up again would
//!   deliver it twice. The frames are counted
//!   ([`AfPacketDeviceStats::left_to_kernel`]) and their slots returned. A
//!   frame the balancer changed before sending it to the host is therefore
//!   not seen by the host changed: with `AF_PACKET`, "to host" means "left
//!   to the kernel", as in [`AfPacketIo`] itself.
//! - **Host stack to host RX**: nothing arrives. The host stack's frames
//!   leave through the interface directly; the packet socket does not
//!   intercept them (netmap's `netmap_transmit` does), so the host RX ring
//!   stays empty rather than carrying copies the wire already got.
//!
//! netmap's generic adapter on Linux steals frames from the stack (an
//! `rx_handler`) and hooks the driver's transmit; doing the same from
//! userspace would take a tap device or a qdisc hook and a second copy of
//! every host frame. The difference is confined to the two host rings:
//! the NIC rings and the syncs behave as netmap's.

use std::io;
use std::time::Duration;

use super::device::Device;
use crate::frame::Frame;
use crate::io::af_packet::{AfPacketConfig, AfPacketError, AfPacketIo};
use crate::io::PacketIo;
use crate::verdict::Verdict;

/// What the device did that netmap would not see.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AfPacketDeviceStats {
    /// Frames the host TX ring passed up, left to the kernel's own copy.
    pub left_to_kernel: u64,
    /// Frames longer than a packet-socket TX slot, dropped.
    pub oversize: u64,
}

/// A packet socket as the emulated kernel's device. See the module docs.
#[derive(Debug)]
pub struct AfPacketDevice {
    io: AfPacketIo,
    stats: AfPacketDeviceStats,
}

impl AfPacketDevice {
    /// The device over an open packet socket.
    pub fn new(io: AfPacketIo) -> Self {
        Self {
            io,
            stats: AfPacketDeviceStats::default(),
        }
    }

    /// Opens a packet socket on `config.interface`.
    pub fn open(config: &AfPacketConfig) -> Result<Self, AfPacketError> {
        AfPacketIo::open(config).map(Self::new)
    }

    /// The packet socket.
    pub fn io_mut(&mut self) -> &mut AfPacketIo {
        &mut self.io
    }

    /// What the device did that netmap would not see.
    pub fn stats(&self) -> AfPacketDeviceStats {
        self.stats
    }
}

impl Device for AfPacketDevice {
    fn max_frame_len(&self) -> usize {
        // An RX frame's view and a TX slot have the same capacity.
        self.io.max_tx_frame()
    }

    fn receive(&mut self, max: usize, mut deliver: impl FnMut(&[u8])) -> io::Result<usize> {
        let counts = self.io.run_batch(max, |frame: &mut Frame<'_>| {
            deliver(frame.data());
            Verdict::Held
        })?;
        Ok(counts.held)
    }

    fn transmit(&mut self, frame: &[u8]) -> io::Result<bool> {
        if frame.len() > self.io.max_tx_frame() {
            self.stats.oversize += 1;
            return Ok(true);
        }
        self.io.transmit_copy(frame)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.io.flush()
    }

    fn send_up(&mut self, _frame: &[u8]) -> io::Result<()> {
        self.stats.left_to_kernel += 1;
        Ok(())
    }

    fn host_transmitted(&mut self, _max: usize, _deliver: impl FnMut(&[u8])) -> io::Result<usize> {
        Ok(0)
    }

    fn wait(&mut self, timeout: Duration) -> io::Result<()> {
        self.io.wait(timeout)
    }
}
