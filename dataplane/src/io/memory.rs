//! `MemoryIo`: netmap's rings simulated in memory, for tests and benches.
//!
//! A pool of fixed-size buffers and four rings of buffer indices (wire RX,
//! wire TX, host RX, host TX), each a power-of-two ring with free-running
//! head/tail positions, plus a free list of unused buffers. A frame moves
//! between rings as a buffer index, never as bytes: the only copies are the
//! simulated NIC's "DMA" (`push_from_wire`, `push_from_host`), the slow-path
//! `transmit_copy`, and what a test reads back with `pop_*`.
//!
//! `run_batch` follows netmap's `bridge.c`: a batch is bounded by the frames
//! waiting and by the space on every ring it may write to, so a full TX ring
//! leaves frames in RX for the next batch (backpressure) instead of dropping
//! them; ring positions are published once, at the end of the batch.

use std::fmt;
use std::io;
use std::time::Duration;

use arrayvec::ArrayVec;

use super::{BatchCounts, FrameHandler, PacketIo, CHUNK};
use crate::frame::Frame;
use crate::verdict::Verdict;

/// Sizes of a [`MemoryIo`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryIoConfig {
    /// Slots in each of the four rings; a power of two.
    pub ring_size: usize,
    /// Bytes in each buffer (netmap's default is 2048).
    pub buf_size: usize,
    /// Bytes left free in front of each received frame, so that VIP-mode
    /// encapsulation can prepend headers without moving the packet.
    pub headroom: usize,
}

impl Default for MemoryIoConfig {
    fn default() -> Self {
        Self {
            ring_size: 1024,
            buf_size: 2048,
            headroom: 128,
        }
    }
}

/// Why a [`MemoryIoConfig`] was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemoryIoConfigError {
    /// `ring_size` is zero or not a power of two.
    RingSizeNotPowerOfTwo(usize),
    /// `headroom` leaves no room for a frame in a `buf_size` buffer.
    HeadroomTooLarge { headroom: usize, buf_size: usize },
    /// The pool (`4 * ring_size * buf_size` bytes) cannot be indexed or allocated.
    PoolTooLarge { ring_size: usize, buf_size: usize },
}

impl fmt::Display for MemoryIoConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RingSizeNotPowerOfTwo(n) => write!(
                f,
                "ring_size {n} is not a power of two; expected 1, 2, 4, ... (netmap's rings are)"
            ),
            Self::HeadroomTooLarge { headroom, buf_size } => write!(
                f,
                "headroom {headroom} leaves no room for a frame in a {buf_size}-byte buffer; \
                 expected headroom < buf_size"
            ),
            Self::PoolTooLarge {
                ring_size,
                buf_size,
            } => write!(
                f,
                "a pool of 4 x {ring_size} buffers of {buf_size} bytes is too large; \
                 expected at most 2^32 buffers and an addressable byte count"
            ),
        }
    }
}

impl std::error::Error for MemoryIoConfigError {}

/// One ring slot: which buffer, and where the frame sits in it.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    buf: u32,
    offset: u32,
    len: u32,
}

/// A single-producer single-consumer ring of slots.
///
/// Positions run freely and wrap at `u32`; a slot is `slots[pos & mask]`.
/// The consumer owns `[head, tail)` (frames waiting), the producer owns the
/// rest. As with netmap's `head`/`cur`/`tail`, a batch walks a private cursor
/// and publishes it into `head` or `tail` once when it ends.
#[derive(Debug)]
struct Ring {
    slots: Box<[Slot]>,
    mask: u32,
    head: u32,
    tail: u32,
}

impl Ring {
    fn new(size: usize) -> Self {
        Self {
            slots: vec![Slot::default(); size].into_boxed_slice(),
            mask: (size - 1) as u32,
            head: 0,
            tail: 0,
        }
    }

    /// Frames waiting for the consumer.
    #[inline]
    fn len(&self) -> usize {
        self.tail.wrapping_sub(self.head) as usize
    }

    /// Slots free for the producer.
    #[inline]
    fn space(&self) -> usize {
        self.slots.len() - self.len()
    }

    #[inline]
    fn slot(&self, pos: u32) -> Slot {
        self.slots[(pos & self.mask) as usize]
    }

    #[inline]
    fn slot_mut(&mut self, pos: u32) -> &mut Slot {
        &mut self.slots[(pos & self.mask) as usize]
    }

    /// Appends one slot and publishes it at once (the single-frame paths).
    /// The caller has checked `space()`.
    fn push(&mut self, slot: Slot) {
        *self.slot_mut(self.tail) = slot;
        self.tail = self.tail.wrapping_add(1);
    }

    /// Takes the oldest slot, if any.
    fn pop(&mut self) -> Option<Slot> {
        if self.len() == 0 {
            return None;
        }
        let slot = self.slot(self.head);
        self.head = self.head.wrapping_add(1);
        Some(slot)
    }
}

/// netmap's rings, simulated in memory. See the module documentation.
#[derive(Debug)]
pub struct MemoryIo {
    config: MemoryIoConfig,
    /// All buffers, back to back: buffer `i` is `pool[i * buf_size..][..buf_size]`.
    pool: Box<[u8]>,
    free: Vec<u32>,
    wire_rx: Ring,
    wire_tx: Ring,
    host_rx: Ring,
    host_tx: Ring,
}

impl MemoryIo {
    /// A simulator whose pool holds `4 * ring_size` buffers: enough for all
    /// four rings to be full at once, so the RX rings fill before the pool
    /// runs dry.
    pub fn new(config: MemoryIoConfig) -> Result<Self, MemoryIoConfigError> {
        let MemoryIoConfig {
            ring_size,
            buf_size,
            headroom,
        } = config;
        if !ring_size.is_power_of_two() {
            return Err(MemoryIoConfigError::RingSizeNotPowerOfTwo(ring_size));
        }
        if headroom >= buf_size {
            return Err(MemoryIoConfigError::HeadroomTooLarge { headroom, buf_size });
        }
        let too_large = MemoryIoConfigError::PoolTooLarge {
            ring_size,
            buf_size,
        };
        let buffers = ring_size.checked_mul(4).ok_or(too_large.clone())?;
        let bytes = buffers.checked_mul(buf_size).ok_or(too_large.clone())?;
        // Slot offsets and lengths are u32, as are buffer indices.
        if u32::try_from(buffers).is_err()
            || u32::try_from(buf_size).is_err()
            || isize::try_from(bytes).is_err()
        {
            return Err(too_large);
        }
        // Popped from the back: buffer 0 is handed out first, which keeps
        // a short test's buffers at the front of the pool.
        let free = (0..buffers as u32).rev().collect();
        Ok(Self {
            config,
            pool: vec![0u8; bytes].into_boxed_slice(),
            free,
            wire_rx: Ring::new(ring_size),
            wire_tx: Ring::new(ring_size),
            host_rx: Ring::new(ring_size),
            host_tx: Ring::new(ring_size),
        })
    }

    /// The configuration this simulator was built with.
    pub fn config(&self) -> MemoryIoConfig {
        self.config
    }

    /// Simulates the NIC receiving `bytes`: copies them into a free buffer at
    /// `headroom` and appends it to the wire RX ring. Returns false (and
    /// changes nothing) when the RX ring or the pool is full or the frame does
    /// not fit in a buffer after the headroom.
    pub fn push_from_wire(&mut self, bytes: &[u8]) -> bool {
        Self::dma_into(
            &mut self.pool,
            &mut self.free,
            &mut self.wire_rx,
            self.config,
            bytes,
        )
    }

    /// Simulates the host stack sending `bytes` toward the wire: like
    /// [`push_from_wire`](Self::push_from_wire), into the host RX ring.
    pub fn push_from_host(&mut self, bytes: &[u8]) -> bool {
        Self::dma_into(
            &mut self.pool,
            &mut self.free,
            &mut self.host_rx,
            self.config,
            bytes,
        )
    }

    fn dma_into(
        pool: &mut [u8],
        free: &mut Vec<u32>,
        ring: &mut Ring,
        config: MemoryIoConfig,
        bytes: &[u8],
    ) -> bool {
        if ring.space() == 0 || bytes.len() > config.buf_size - config.headroom {
            return false;
        }
        let Some(buf) = free.pop() else {
            return false;
        };
        let start = buf as usize * config.buf_size + config.headroom;
        pool[start..start + bytes.len()].copy_from_slice(bytes);
        ring.push(Slot {
            buf,
            offset: config.headroom as u32,
            len: bytes.len() as u32,
        });
        true
    }

    /// Takes the oldest frame from the wire TX ring (what the NIC would send
    /// next), returning its buffer to the free list.
    pub fn pop_wire_tx(&mut self) -> Option<Vec<u8>> {
        let slot = self.wire_tx.pop()?;
        Some(self.reclaim(slot))
    }

    /// Takes the oldest frame from the host TX ring (what the host stack would
    /// receive next), returning its buffer to the free list.
    pub fn pop_host_tx(&mut self) -> Option<Vec<u8>> {
        let slot = self.host_tx.pop()?;
        Some(self.reclaim(slot))
    }

    fn reclaim(&mut self, slot: Slot) -> Vec<u8> {
        let bytes = self.slot_bytes(slot).to_vec();
        self.free.push(slot.buf);
        bytes
    }

    /// Hands every frame in the wire TX ring to `f`, oldest first, and frees
    /// their buffers; allocates nothing.
    pub fn drain_wire_tx(&mut self, mut f: impl FnMut(&[u8])) {
        while let Some(slot) = self.wire_tx.pop() {
            f(self.slot_bytes(slot));
            self.free.push(slot.buf);
        }
    }

    /// Like [`drain_wire_tx`](Self::drain_wire_tx), for the host TX ring.
    pub fn drain_host_tx(&mut self, mut f: impl FnMut(&[u8])) {
        while let Some(slot) = self.host_tx.pop() {
            f(self.slot_bytes(slot));
            self.free.push(slot.buf);
        }
    }

    /// Frees every buffer waiting in both TX rings without reading it, as if
    /// the NIC and the host stack had consumed them (what benches do between
    /// batches).
    pub fn clear_tx(&mut self) {
        while let Some(slot) = self.wire_tx.pop() {
            self.free.push(slot.buf);
        }
        while let Some(slot) = self.host_tx.pop() {
            self.free.push(slot.buf);
        }
    }

    /// Frames received from the wire not yet handed to the pipeline.
    pub fn wire_rx_pending(&self) -> usize {
        self.wire_rx.len()
    }

    /// Frames the host stack sent not yet passed to the wire.
    pub fn host_rx_pending(&self) -> usize {
        self.host_rx.len()
    }

    /// Frames waiting in the wire TX ring.
    pub fn wire_tx_len(&self) -> usize {
        self.wire_tx.len()
    }

    /// Frames waiting in the host TX ring.
    pub fn host_tx_len(&self) -> usize {
        self.host_tx.len()
    }

    /// Buffers on the free list.
    pub fn free_buffers(&self) -> usize {
        self.free.len()
    }

    /// Buffers in the pool: always the free ones plus those in the four rings.
    pub fn pool_buffers(&self) -> usize {
        self.pool.len() / self.config.buf_size
    }

    fn slot_bytes(&self, slot: Slot) -> &[u8] {
        let start = slot.buf as usize * self.config.buf_size + slot.offset as usize;
        &self.pool[start..start + slot.len as usize]
    }

    /// Receives, decides and moves the frames of one batch from wire RX,
    /// handing them to the handler [`CHUNK`] at a time.
    fn wire_batch<H: FrameHandler>(&mut self, budget: usize, mut handler: H) -> BatchCounts {
        let n = budget
            .min(self.wire_rx.len())
            .min(self.wire_tx.space())
            .min(self.host_tx.space());
        let mut counts = BatchCounts {
            from_wire: n,
            ..BatchCounts::default()
        };
        // Private cursors, published once below.
        let mut rx_cur = self.wire_rx.head;
        let mut wire_cur = self.wire_tx.tail;
        let mut host_cur = self.host_tx.tail;
        let mut verdicts = [Verdict::ToHost; CHUNK];
        let mut left = n;
        while left > 0 {
            let len = left.min(CHUNK);
            let mut bufs = [0u32; CHUNK];
            // Filled in place: an ArrayVec returned by value would be copied
            // whole, all CHUNK frames' worth, however few it holds.
            let mut frames = ArrayVec::new();
            Self::frames_of(
                &mut self.pool,
                self.config.buf_size,
                &self.wire_rx,
                rx_cur,
                &mut bufs[..len],
                &mut frames,
            );
            handler.decide_all(&mut frames, &mut verdicts);
            // The pipeline may have moved a frame (encapsulation): its TX
            // slot records where it is now.
            let moved = |buf: u32, frame: &Frame<'_>| Slot {
                buf,
                offset: frame.head() as u32,
                len: frame.len() as u32,
            };
            // A balancer sends nearly every frame back out: when the whole
            // chunk goes to the wire, its slots move without a match each.
            if verdicts[..len].iter().all(|v| *v == Verdict::ToWire) {
                for (&buf, frame) in bufs.iter().zip(&frames) {
                    *self.wire_tx.slot_mut(wire_cur) = moved(buf, frame);
                    wire_cur = wire_cur.wrapping_add(1);
                }
                counts.to_wire += len;
                rx_cur = rx_cur.wrapping_add(len as u32);
                left -= len;
                continue;
            }
            for ((&buf, frame), verdict) in bufs.iter().zip(&frames).zip(verdicts) {
                let moved = moved(buf, frame);
                match verdict {
                    Verdict::ToWire => {
                        *self.wire_tx.slot_mut(wire_cur) = moved;
                        wire_cur = wire_cur.wrapping_add(1);
                        counts.to_wire += 1;
                    }
                    Verdict::ToHost => {
                        *self.host_tx.slot_mut(host_cur) = moved;
                        host_cur = host_cur.wrapping_add(1);
                        counts.to_host += 1;
                    }
                    Verdict::Drop(_) => {
                        self.free.push(buf);
                        counts.dropped += 1;
                    }
                    Verdict::Held => {
                        self.free.push(buf);
                        counts.held += 1;
                    }
                }
            }
            rx_cur = rx_cur.wrapping_add(len as u32);
            left -= len;
        }
        self.wire_rx.head = rx_cur;
        self.wire_tx.tail = wire_cur;
        self.host_tx.tail = host_cur;
        counts
    }

    /// Appends to `frames` the frames in the buffers of `ring`'s next
    /// `bufs.len()` slots from position `from`, all writable at once; `bufs`
    /// gets their buffer indices.
    fn frames_of<'p>(
        pool: &'p mut [u8],
        buf_size: usize,
        ring: &Ring,
        from: u32,
        bufs: &mut [u32],
        frames: &mut ArrayVec<Frame<'p>, CHUNK>,
    ) {
        let buffers = pool.len() / buf_size;
        let pool = pool.as_mut_ptr();
        for (i, buf) in bufs.iter_mut().enumerate().take(CHUNK) {
            let slot = ring.slot(from.wrapping_add(i as u32));
            *buf = slot.buf;
            // Every slot a ring holds was made here, for a buffer of the
            // pool; the check keeps a bug from becoming a wild pointer (the
            // pipeline drops an empty frame).
            if slot.buf as usize >= buffers {
                frames.push(Frame::whole(&mut []));
                continue;
            }
            // SAFETY: buffer `slot.buf` lies inside the pool (checked above).
            // Each buffer index has exactly one owner, the free list or one
            // ring slot (see `assert_buffers_conserved` in the tests), so the
            // slots of a batch name distinct buffers and these slices never
            // overlap; all derive from one pointer into the pool, which
            // the `&mut` borrow of the pool keeps unaliased while they live.
            let buf = unsafe {
                core::slice::from_raw_parts_mut(pool.add(slot.buf as usize * buf_size), buf_size)
            };
            frames.push(Frame::new(buf, slot.offset as usize, slot.len as usize));
        }
    }

    /// Moves up to `budget` frames from host RX to wire TX untouched.
    fn host_passthrough(&mut self, budget: usize) -> usize {
        let n = budget.min(self.host_rx.len()).min(self.wire_tx.space());
        let mut rx_cur = self.host_rx.head;
        let mut tx_cur = self.wire_tx.tail;
        for _ in 0..n {
            *self.wire_tx.slot_mut(tx_cur) = self.host_rx.slot(rx_cur);
            rx_cur = rx_cur.wrapping_add(1);
            tx_cur = tx_cur.wrapping_add(1);
        }
        self.host_rx.head = rx_cur;
        self.wire_tx.tail = tx_cur;
        n
    }
}

impl PacketIo for MemoryIo {
    /// Moves at most `budget` frames from the wire (bounded also by the space
    /// in both TX rings), then at most `budget` frames from the host to the
    /// wire (bounded by the wire TX space left).
    fn run_batch<H: FrameHandler>(&mut self, budget: usize, handler: H) -> io::Result<BatchCounts> {
        let mut counts = self.wire_batch(budget, handler);
        counts.host_to_wire = self.host_passthrough(budget);
        Ok(counts)
    }

    fn transmit_copy(&mut self, bytes: &[u8]) -> io::Result<bool> {
        let buf_size = self.config.buf_size;
        if bytes.len() > buf_size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "frame of {} bytes does not fit a {buf_size}-byte buffer",
                    bytes.len()
                ),
            ));
        }
        if self.wire_tx.space() == 0 {
            return Ok(false);
        }
        let Some(buf) = self.free.pop() else {
            return Ok(false);
        };
        // Keep the usual headroom when the frame leaves room for it.
        let offset = self.config.headroom.min(buf_size - bytes.len());
        let start = buf as usize * buf_size + offset;
        self.pool[start..start + bytes.len()].copy_from_slice(bytes);
        self.wire_tx.push(Slot {
            buf,
            offset: offset as u32,
            len: bytes.len() as u32,
        });
        Ok(true)
    }

    /// Never blocks: frames are there or they are not.
    fn wait(&mut self, _timeout: Duration) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
