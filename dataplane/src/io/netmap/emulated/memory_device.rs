//! `MemoryDevice`: a wire and a host stack made of queues of frames, for
//! driving the emulated kernel from tests.

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use super::device::Device;

/// Queues of frames in both directions on both sides. Frames are copied in
/// and out; their allocations are recycled, so a long test does not
/// allocate per frame.
#[derive(Debug)]
pub struct MemoryDevice {
    max_frame_len: usize,
    /// Frames `transmit` accepts before reporting the device full, until
    /// the test takes them (`pop_to_wire`, `drain_to_wire`).
    tx_capacity: usize,
    from_wire: VecDeque<Vec<u8>>,
    to_wire: VecDeque<Vec<u8>>,
    from_host: VecDeque<Vec<u8>>,
    to_host: VecDeque<Vec<u8>>,
    spare: Vec<Vec<u8>>,
}

impl MemoryDevice {
    /// A device that receives frames up to `max_frame_len` bytes and whose
    /// transmit queue never fills.
    pub fn new(max_frame_len: usize) -> Self {
        Self {
            max_frame_len,
            tx_capacity: usize::MAX,
            from_wire: VecDeque::new(),
            to_wire: VecDeque::new(),
            from_host: VecDeque::new(),
            to_host: VecDeque::new(),
            spare: Vec::new(),
        }
    }

    /// Reports the device full once `frames` transmitted frames wait in it.
    #[must_use]
    pub fn with_tx_capacity(mut self, frames: usize) -> Self {
        self.tx_capacity = frames;
        self
    }

    fn copy(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut frame = self.spare.pop().unwrap_or_default();
        frame.clear();
        frame.extend_from_slice(bytes);
        frame
    }

    /// A frame arrives from the wire. Returns false (and drops nothing else)
    /// when it is longer than `max_frame_len`.
    pub fn push_from_wire(&mut self, bytes: &[u8]) -> bool {
        if bytes.len() > self.max_frame_len {
            return false;
        }
        let frame = self.copy(bytes);
        self.from_wire.push_back(frame);
        true
    }

    /// The host stack sends a frame on the interface.
    pub fn push_from_host(&mut self, bytes: &[u8]) {
        let frame = self.copy(bytes);
        self.from_host.push_back(frame);
    }

    /// The oldest frame transmitted on the wire.
    pub fn pop_to_wire(&mut self) -> Option<Vec<u8>> {
        self.to_wire.pop_front()
    }

    /// The oldest frame passed up to the host stack.
    pub fn pop_to_host(&mut self) -> Option<Vec<u8>> {
        self.to_host.pop_front()
    }

    /// Hands every frame transmitted on the wire to `f`, oldest first.
    pub fn drain_to_wire(&mut self, mut f: impl FnMut(&[u8])) {
        while let Some(frame) = self.to_wire.pop_front() {
            f(&frame);
            self.spare.push(frame);
        }
    }

    /// Hands every frame passed up to the host stack to `f`, oldest first.
    pub fn drain_to_host(&mut self, mut f: impl FnMut(&[u8])) {
        while let Some(frame) = self.to_host.pop_front() {
            f(&frame);
            self.spare.push(frame);
        }
    }

    /// Frames from the wire not yet received into a ring.
    pub fn wire_pending(&self) -> usize {
        self.from_wire.len()
    }

    /// Frames from the host stack not yet received into a ring.
    pub fn host_pending(&self) -> usize {
        self.from_host.len()
    }

    /// Frames transmitted and not yet taken by the test.
    pub fn to_wire_len(&self) -> usize {
        self.to_wire.len()
    }

    /// Frames passed up and not yet taken by the test.
    pub fn to_host_len(&self) -> usize {
        self.to_host.len()
    }
}

impl Device for MemoryDevice {
    fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    fn receive(&mut self, max: usize, mut deliver: impl FnMut(&[u8])) -> io::Result<usize> {
        let n = max.min(self.from_wire.len());
        for _ in 0..n {
            if let Some(frame) = self.from_wire.pop_front() {
                deliver(&frame);
                self.spare.push(frame);
            }
        }
        Ok(n)
    }

    fn transmit(&mut self, frame: &[u8]) -> io::Result<bool> {
        if self.to_wire.len() >= self.tx_capacity {
            return Ok(false);
        }
        let frame = self.copy(frame);
        self.to_wire.push_back(frame);
        Ok(true)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn send_up(&mut self, frame: &[u8]) -> io::Result<()> {
        let frame = self.copy(frame);
        self.to_host.push_back(frame);
        Ok(())
    }

    fn host_transmitted(
        &mut self,
        max: usize,
        mut deliver: impl FnMut(&[u8]),
    ) -> io::Result<usize> {
        let n = max.min(self.from_host.len());
        for _ in 0..n {
            if let Some(frame) = self.from_host.pop_front() {
                deliver(&frame);
                self.spare.push(frame);
            }
        }
        Ok(n)
    }

    /// Never blocks: frames are queued or they are not.
    fn wait(&mut self, _timeout: Duration) -> io::Result<()> {
        Ok(())
    }
}
