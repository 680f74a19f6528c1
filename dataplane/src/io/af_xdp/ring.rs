//! The four rings of an XDP socket, each an `mmap` of the socket holding a
//! producer index, a consumer index, a flags word and an array of entries
//! (`XDP_MMAP_OFFSETS` says where each is).
//!
//! # Ownership of every UMEM frame
//!
//! A frame (a 2 KiB chunk of the UMEM) is always in exactly one place:
//!
//! ```text
//!   free list (ours) --fill ring--> kernel --RX ring--> ours (the batch)
//!        ^                                                 |  ToWire: its address to the TX ring
//!        |                                                 |  other verdicts: back to the fill ring
//!        +-- completion ring <-- kernel (sending) <-- TX ring
//! ```
//!
//! - **Fill** (we produce, the kernel consumes): addresses of frames the
//!   kernel may receive into. Once written and the producer index published,
//!   the frame is the kernel's.
//! - **RX** (the kernel produces, we consume): descriptors of received
//!   frames. Between reading the producer index and publishing our consumer
//!   index the frames are ours; the descriptors' slots in the ring are
//!   ours to read until we publish.
//! - **TX** (we produce): descriptors of frames to send. Published, the frame
//!   is the kernel's until it comes back on the completion ring.
//! - **Completion** (the kernel produces): addresses of sent frames, ours again.
//!
//! Indices are free-running `u32`s; an entry's slot is `index & (size - 1)`.
//! Each side reads the other side's index with acquire ordering (the
//! entries behind it are then complete) and publishes its own with release
//! ordering (its entries are written first). Each ring caches the other
//! side's index and rereads it only when the cache says the ring is empty
//! (consumer) or full (producer), so a batch touches the shared cache line
//! of an index once.
//!
//! The fill ring is as large as the UMEM, so a frame handed back to it
//! always finds room: no frame is ever stranded, and the only backpressure
//! is the TX ring (a batch takes no more frames than the TX ring has room
//! for), as with netmap.

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

/// An `mmap` of one ring, unmapped on drop.
#[derive(Debug)]
struct RingMap {
    base: NonNull<u8>,
    len: usize,
}

impl Drop for RingMap {
    fn drop(&mut self) {
        // SAFETY: exactly what mmap returned; the ring's pointers into it are
        // owned by the `Ring` that owns this map and die with it.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
    }
}

/// One ring of `T` entries (`u64` addresses for fill and completion,
/// `xdp_desc` for RX and TX).
#[derive(Debug)]
pub(super) struct Ring<T> {
    producer: NonNull<AtomicU32>,
    consumer: NonNull<AtomicU32>,
    flags: NonNull<AtomicU32>,
    entries: NonNull<T>,
    mask: u32,
    size: u32,
    /// Our copy of the producer index: ours to advance on fill/TX, the
    /// kernel's last published value on RX/completion.
    producer_cache: u32,
    /// Likewise for the consumer index.
    consumer_cache: u32,
    _map: RingMap,
}

impl<T: Copy> Ring<T> {
    /// Maps the ring of socket `fd` at page offset `pgoff`, `size` entries
    /// (a power of two, as set with the ring's socket option).
    pub(super) fn map(
        fd: libc::c_int,
        pgoff: u64,
        size: u32,
        offsets: &libc::xdp_ring_offset,
    ) -> io::Result<Self> {
        let len = offsets.desc as usize + size as usize * size_of::<T>();
        // SAFETY: a fresh shared mapping of the socket's ring chosen by the
        // kernel (null hint); the result is checked before use.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                pgoff.cast_signed(),
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = NonNull::new(addr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap: null"))?;
        let map = RingMap { base, len };
        let at = |offset: u64| {
            // SAFETY: the kernel's offsets lie inside the mapping it sized
            // for this ring; the indices are aligned u32s, the entries
            // aligned for `T`.
            unsafe { base.add(offset as usize) }
        };
        let producer = at(offsets.producer).cast::<AtomicU32>();
        let consumer = at(offsets.consumer).cast::<AtomicU32>();
        // SAFETY: as above; both indices live as long as the mapping.
        let (producer_now, consumer_now) = unsafe {
            (
                producer.as_ref().load(Ordering::Acquire),
                consumer.as_ref().load(Ordering::Acquire),
            )
        };
        Ok(Self {
            producer,
            consumer,
            flags: at(offsets.flags).cast(),
            entries: at(offsets.desc).cast(),
            mask: size - 1,
            size,
            producer_cache: producer_now,
            consumer_cache: consumer_now,
            _map: map,
        })
    }

    fn producer(&self) -> &AtomicU32 {
        // SAFETY: points into the mapping `self` owns; shared with the
        // kernel, hence atomic.
        unsafe { self.producer.as_ref() }
    }

    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: as for `producer`.
        unsafe { self.consumer.as_ref() }
    }

    /// True when the kernel asks to be woken (`XDP_RING_NEED_WAKEUP`): for
    /// the fill ring, to receive; for the TX ring, to send.
    pub(super) fn needs_wakeup(&self) -> bool {
        // SAFETY: as for `producer`.
        let flags = unsafe { self.flags.as_ref() };
        flags.load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0
    }

    fn slot(&self, index: u32) -> *mut T {
        // SAFETY: masked to the ring's size, inside the mapping.
        unsafe { self.entries.as_ptr().add((index & self.mask) as usize) }
    }

    // ---- producer side (fill, TX) ----

    /// Entries free for us to produce, at most `want` (rereads the kernel's
    /// consumer index only when the cache shows fewer than `want`).
    pub(super) fn free(&mut self, want: u32) -> u32 {
        let mut free = self.size - self.producer_cache.wrapping_sub(self.consumer_cache);
        if free < want {
            self.consumer_cache = self.consumer().load(Ordering::Acquire);
            free = self.size - self.producer_cache.wrapping_sub(self.consumer_cache);
        }
        free.min(want)
    }

    /// Writes the `i`th entry after the last produced one. The caller has
    /// seen at least `i + 1` entries [`free`](Self::free).
    pub(super) fn put(&mut self, i: u32, entry: T) {
        let slot = self.slot(self.producer_cache.wrapping_add(i));
        // SAFETY: the slot is free (between the producer and the consumer
        // index plus size): the kernel does not read it until we publish.
        unsafe { slot.write_volatile(entry) };
    }

    /// Publishes `n` entries written with [`put`](Self::put) (release: the
    /// entries are visible to the kernel before the index).
    pub(super) fn submit(&mut self, n: u32) {
        if n == 0 {
            return;
        }
        self.producer_cache = self.producer_cache.wrapping_add(n);
        self.producer()
            .store(self.producer_cache, Ordering::Release);
    }

    /// Entries the kernel has yet to consume (fill: frames waiting for
    /// packets; TX: frames waiting to be sent).
    pub(super) fn pending(&mut self) -> u32 {
        self.consumer_cache = self.consumer().load(Ordering::Acquire);
        self.producer_cache.wrapping_sub(self.consumer_cache)
    }

    // ---- consumer side (RX, completion) ----

    /// Entries ready for us, at most `max` (rereads the kernel's producer
    /// index only when the cache shows none).
    pub(super) fn ready(&mut self, max: u32) -> u32 {
        let mut ready = self.producer_cache.wrapping_sub(self.consumer_cache);
        if ready == 0 {
            self.producer_cache = self.producer().load(Ordering::Acquire);
            ready = self.producer_cache.wrapping_sub(self.consumer_cache);
        }
        ready.min(max)
    }

    /// The `i`th ready entry. The caller has seen at least `i + 1`
    /// [`ready`](Self::ready).
    pub(super) fn get(&self, i: u32) -> T {
        let slot = self.slot(self.consumer_cache.wrapping_add(i));
        // SAFETY: the slot is between our consumer index and the kernel's
        // producer index (acquired): written, and not rewritten before we
        // release it.
        unsafe { slot.read_volatile() }
    }

    /// Gives `n` consumed entries' slots back to the kernel.
    pub(super) fn release(&mut self, n: u32) {
        if n == 0 {
            return;
        }
        self.consumer_cache = self.consumer_cache.wrapping_add(n);
        self.consumer()
            .store(self.consumer_cache, Ordering::Release);
    }
}
