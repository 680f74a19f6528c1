//! `NetmapRegion`: a bounds-checked view of a netmap memory region,
//! `netmap_if` -> rings -> slots -> buffers.
//!
//! Every offset in a region comes from the kernel (`nr_offset`,
//! `ring_ofs[]`, `buf_ofs`, `num_slots`, `nr_buf_size`) or, for buffer
//! indices, from slots that user and kernel both write. They are read and
//! checked once, when the view is built: every ring bound to the port must
//! lie inside the region and be aligned as the ABI aligns it, all rings must
//! share one buffer pool (same `nr_buf_size`, same absolute start) that
//! begins after the interface and the rings and ends inside the region.
//! After that no access reads an offset again: a slot position is checked
//! against the ring's `num_slots` as cached, a buffer index against the
//! pool's size, so a bad value reads as "no such buffer" and never
//! addresses memory outside the region.
//!
//! Ring fields and slots live in memory the kernel writes during a sync
//! (behind the compiler's back, for the real kernel): they are read and
//! written with volatile accesses through raw pointers, and no reference to
//! a ring or slot is ever formed. Buffers are handed out as slices, under
//! the ownership rules of the module documentation (`netmap.rs`).

use std::fmt;
use std::mem::offset_of;
use std::ptr::NonNull;

use netmap_sys::{netmap_if, netmap_ring, netmap_slot, nm_ring_next, nm_ring_space};

/// Most rings a region may describe (all four kinds together). netmap
/// ports have at most a few hundred.
pub const MAX_RINGS: usize = 1 << 16;

/// The four kinds of rings of a port, in `ring_ofs[]` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RingKind {
    /// NIC TX: frames to the wire.
    NicTx,
    /// Host TX: frames up to the host stack.
    HostTx,
    /// NIC RX: frames from the wire.
    NicRx,
    /// Host RX: frames the host stack sent.
    HostRx,
}

impl RingKind {
    /// All kinds, in `ring_ofs[]` order.
    pub const ALL: [RingKind; 4] = [Self::NicTx, Self::HostTx, Self::NicRx, Self::HostRx];

    /// Whether the user fills the ring (TX) rather than empties it (RX).
    pub fn is_tx(self) -> bool {
        matches!(self, Self::NicTx | Self::HostTx)
    }
}

impl fmt::Display for RingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NicTx => "NIC TX",
            Self::HostTx => "host TX",
            Self::NicRx => "NIC RX",
            Self::HostRx => "host RX",
        })
    }
}

/// Why a region's layout was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegionError {
    /// `netmap_if` (at `offset`) does not fit in the `len`-byte region or
    /// is misaligned.
    InterfaceOutOfRange { offset: usize, len: usize },
    /// The interface counts more rings than [`MAX_RINGS`], or more than its
    /// `ring_ofs[]` array in the region can hold.
    TooManyRings { rings: u64 },
    /// A ring's offset puts its header or slots outside the region, or
    /// misaligned.
    RingOutOfRange {
        kind: RingKind,
        index: usize,
        offset: i64,
    },
    /// A ring with no slots.
    NoSlots { kind: RingKind, index: usize },
    /// A ring's buffers are 0 bytes, or not the size of the other rings'.
    BufferSize {
        kind: RingKind,
        index: usize,
        size: u32,
    },
    /// A ring's buffer pool starts outside the region, or elsewhere than the
    /// other rings'.
    BufferPool {
        kind: RingKind,
        index: usize,
        buf_ofs: i64,
    },
    /// The region does not start on a `netmap_ring` boundary (128 bytes;
    /// an mmap is page-aligned).
    BaseMisaligned { address: usize },
    /// The buffer pool starts before the end of the interface or a ring.
    BuffersOverlapRings { pool_start: usize, rings_end: usize },
    /// A view of no interface at all.
    NoInterface,
    /// The `netmap_if` at `offset` counts other rings than the first
    /// interface of the view: not a registration of the same port.
    InterfacesDiffer { offset: usize },
}

impl fmt::Display for RegionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InterfaceOutOfRange { offset, len } => write!(
                f,
                "netmap_if at offset {offset} does not fit the {len}-byte region \
                 (or is not 8-byte aligned); is nr_offset from this registration?"
            ),
            Self::TooManyRings { rings } => write!(
                f,
                "netmap_if counts {rings} rings, more than its ring_ofs[] in the region \
                 (or {MAX_RINGS}) can hold"
            ),
            Self::RingOutOfRange {
                kind,
                index,
                offset,
            } => write!(
                f,
                "{kind} ring {index} at offset {offset} from netmap_if lies outside the region \
                 or is not {}-byte aligned",
                align_of::<netmap_ring>()
            ),
            Self::NoSlots { kind, index } => write!(f, "{kind} ring {index} has no slots"),
            Self::BufferSize { kind, index, size } => write!(
                f,
                "{kind} ring {index} has {size}-byte buffers; expected a non-zero size \
                 shared by every ring"
            ),
            Self::BufferPool {
                kind,
                index,
                buf_ofs,
            } => write!(
                f,
                "{kind} ring {index}'s buffers (buf_ofs {buf_ofs}) start outside the region \
                 or apart from the other rings' pool"
            ),
            Self::BaseMisaligned { address } => write!(
                f,
                "the region at {address:#x} is not {}-byte aligned; map it with mmap",
                align_of::<netmap_ring>()
            ),
            Self::BuffersOverlapRings {
                pool_start,
                rings_end,
            } => write!(
                f,
                "the buffer pool starts at byte {pool_start}, before the interface and rings \
                 end at byte {rings_end}"
            ),
            Self::NoInterface => write!(f, "a region view needs at least one netmap_if"),
            Self::InterfacesDiffer { offset } => write!(
                f,
                "the netmap_if at offset {offset} counts other rings than the first: \
                 registrations of different ports cannot share one view"
            ),
        }
    }
}

impl std::error::Error for RegionError {}

/// Where one bound ring is, as checked when the view was built.
#[derive(Debug, Clone, Copy)]
struct RingLayout {
    /// Bytes from the region's start to the `netmap_ring`.
    offset: usize,
    num_slots: u32,
}

/// Rings per kind, in `ring_ofs[]` order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RingCounts {
    pub nic_tx: u32,
    pub host_tx: u32,
    pub nic_rx: u32,
    pub host_rx: u32,
}

impl RingCounts {
    /// Rings of `kind`.
    pub fn of(self, kind: RingKind) -> u32 {
        match kind {
            RingKind::NicTx => self.nic_tx,
            RingKind::HostTx => self.host_tx,
            RingKind::NicRx => self.nic_rx,
            RingKind::HostRx => self.host_rx,
        }
    }

    /// Position in `ring_ofs[]` of ring `index` of `kind`, if it exists.
    fn position(self, kind: RingKind, index: u32) -> Option<usize> {
        if index >= self.of(kind) {
            return None;
        }
        let before = match kind {
            RingKind::NicTx => 0,
            RingKind::HostTx => u64::from(self.nic_tx),
            RingKind::NicRx => u64::from(self.nic_tx) + u64::from(self.host_tx),
            RingKind::HostRx => {
                u64::from(self.nic_tx) + u64::from(self.host_tx) + u64::from(self.nic_rx)
            }
        };
        usize::try_from(before + u64::from(index)).ok()
    }

    fn total(self) -> u64 {
        RingKind::ALL
            .iter()
            .map(|&kind| u64::from(self.of(kind)))
            .sum()
    }
}

/// A bounds-checked view of one netmap region. See the module docs.
#[derive(Debug)]
pub struct NetmapRegion {
    base: NonNull<u8>,
    len: usize,
    counts: RingCounts,
    /// In `ring_ofs[]` order; `None` for rings not bound to this descriptor
    /// (the kernel writes offset 0 for them).
    rings: Box<[Option<RingLayout>]>,
    /// Bytes from the region's start to buffer 0.
    pool_start: usize,
    buf_size: u32,
    /// Buffers `0..buf_count` lie inside the region.
    buf_count: u32,
}

// SAFETY: the view holds a pointer into memory owned by the port that owns
// the view; moving the port (and so the view) to another thread moves the
// only user of the rings bound to it. Views of one region in other threads
// (one per worker) bind other rings, and under netmap's protocol a view
// touches only its rings and the buffers in their slots.
unsafe impl Send for NetmapRegion {}

impl NetmapRegion {
    /// Checks the layout of the region at `base` (`len` bytes) whose
    /// `netmap_if` is `if_offset` bytes in, and builds the view.
    ///
    /// # Safety
    /// `base..base + len` must be mapped, readable and writable memory that
    /// stays so for the life of the view, and that nothing but netmap's
    /// protocol writes: our own accesses through this view, and the kernel
    /// (or the emulated kernel) during syncs.
    pub unsafe fn new(
        base: NonNull<u8>,
        len: usize,
        if_offset: usize,
    ) -> Result<Self, RegionError> {
        // SAFETY: the caller's promise.
        unsafe { Self::with_interfaces(base, len, &[if_offset]) }
    }

    /// The view of the rings bound through any of several `netmap_if`s of
    /// one region: the registrations of one port that share its memory
    /// (same `nr_mem_id`), each with its own interface at its own
    /// `nr_offset` (netmap gives every registration one, with `ring_ofs`
    /// 0 for the rings it did not bind). A worker registers its NIC ring
    /// pair (`NR_REG_ONE_NIC`) and its host ring pair (`NR_REG_ONE_SW`)
    /// separately and sees both through one view. Every interface must
    /// count the same rings; each is checked as [`new`](Self::new) checks
    /// one.
    ///
    /// # Safety
    /// As [`new`](Self::new).
    pub unsafe fn with_interfaces(
        base: NonNull<u8>,
        len: usize,
        if_offsets: &[usize],
    ) -> Result<Self, RegionError> {
        let address = base.as_ptr() as usize;
        if !address.is_multiple_of(align_of::<netmap_ring>()) {
            return Err(RegionError::BaseMisaligned { address });
        }
        if if_offsets.is_empty() {
            return Err(RegionError::NoInterface);
        }
        let mut region = Self {
            base,
            len,
            counts: RingCounts::default(),
            rings: Box::new([]),
            pool_start: len,
            buf_size: 0,
            buf_count: 0,
        };
        let mut rings: Vec<Option<RingLayout>> = Vec::new();
        let mut rings_end = 0;
        let mut pool: Option<(usize, u32)> = None;
        for (n, &nifp) in if_offsets.iter().enumerate() {
            let if_end = nifp.checked_add(size_of::<netmap_if>());
            if if_end.is_none_or(|end| end > len) || !nifp.is_multiple_of(align_of::<netmap_if>()) {
                return Err(RegionError::InterfaceOutOfRange { offset: nifp, len });
            }
            let counts = RingCounts {
                nic_tx: region.load(nifp + offset_of!(netmap_if, ni_tx_rings)),
                host_tx: region.load(nifp + offset_of!(netmap_if, ni_host_tx_rings)),
                nic_rx: region.load(nifp + offset_of!(netmap_if, ni_rx_rings)),
                host_rx: region.load(nifp + offset_of!(netmap_if, ni_host_rx_rings)),
            };
            if n == 0 {
                region.counts = counts;
            } else if counts != region.counts {
                return Err(RegionError::InterfacesDiffer { offset: nifp });
            }
            let total = counts.total();
            let ring_ofs = nifp + offset_of!(netmap_if, ring_ofs);
            let array_fits = usize::try_from(total)
                .ok()
                .filter(|&n| n <= MAX_RINGS)
                .and_then(|n| n.checked_mul(size_of::<isize>()))
                .and_then(|bytes| bytes.checked_add(ring_ofs))
                .is_some_and(|end| end <= len);
            if !array_fits {
                return Err(RegionError::TooManyRings { rings: total });
            }
            if n == 0 {
                rings = vec![None; total as usize];
            }
            rings_end = rings_end.max(ring_ofs + total as usize * size_of::<isize>());
            let mut position = 0;
            for kind in RingKind::ALL {
                for index in 0..counts.of(kind) {
                    let at = position;
                    position += 1;
                    let relative: isize = region.load(ring_ofs + at * size_of::<isize>());
                    // 0: not bound through this interface. A ring bound
                    // through an earlier one is the same ring.
                    if relative == 0 || rings[at].is_some() {
                        continue;
                    }
                    let index = index as usize;
                    let layout = region.check_ring(kind, index, nifp, relative)?;
                    let ring = layout.offset;
                    rings_end = rings_end.max(
                        ring + offset_of!(netmap_ring, slot)
                            + layout.num_slots as usize * size_of::<netmap_slot>(),
                    );
                    let buf_size: u32 = region.load(ring + offset_of!(netmap_ring, nr_buf_size));
                    let buf_ofs: i64 = region.load(ring + offset_of!(netmap_ring, buf_ofs));
                    let start = i64::try_from(ring)
                        .ok()
                        .and_then(|ring| ring.checked_add(buf_ofs))
                        .and_then(|start| usize::try_from(start).ok())
                        .filter(|&start| start <= len);
                    let Some(start) = start else {
                        return Err(RegionError::BufferPool {
                            kind,
                            index,
                            buf_ofs,
                        });
                    };
                    match pool {
                        _ if buf_size == 0 => {
                            return Err(RegionError::BufferSize {
                                kind,
                                index,
                                size: buf_size,
                            })
                        }
                        None => pool = Some((start, buf_size)),
                        Some((_, size)) if size != buf_size => {
                            return Err(RegionError::BufferSize {
                                kind,
                                index,
                                size: buf_size,
                            })
                        }
                        Some((pool_start, _)) if pool_start != start => {
                            return Err(RegionError::BufferPool {
                                kind,
                                index,
                                buf_ofs,
                            })
                        }
                        Some(_) => {}
                    }
                    rings[at] = Some(layout);
                }
            }
        }
        if let Some((start, size)) = pool {
            if start < rings_end {
                return Err(RegionError::BuffersOverlapRings {
                    pool_start: start,
                    rings_end,
                });
            }
            region.pool_start = start;
            region.buf_size = size;
            region.buf_count = u32::try_from((len - start) / size as usize).unwrap_or(u32::MAX);
        }
        region.rings = rings.into_boxed_slice();
        Ok(region)
    }

    /// Checks that the ring `relative` bytes from the interface lies in the
    /// region, aligned, with at least one slot, all its slots inside.
    fn check_ring(
        &self,
        kind: RingKind,
        index: usize,
        nifp: usize,
        relative: isize,
    ) -> Result<RingLayout, RegionError> {
        let out_of_range = RegionError::RingOutOfRange {
            kind,
            index,
            offset: relative as i64,
        };
        let offset = nifp
            .checked_add_signed(relative)
            .filter(|&offset| offset.is_multiple_of(align_of::<netmap_ring>()))
            .filter(|&offset| {
                offset
                    .checked_add(size_of::<netmap_ring>())
                    .is_some_and(|end| end <= self.len)
            })
            .ok_or(out_of_range.clone())?;
        let num_slots: u32 = self.load(offset + offset_of!(netmap_ring, num_slots));
        if num_slots == 0 {
            return Err(RegionError::NoSlots { kind, index });
        }
        let slots_fit = (num_slots as usize)
            .checked_mul(size_of::<netmap_slot>())
            .and_then(|bytes| bytes.checked_add(offset + offset_of!(netmap_ring, slot)))
            .is_some_and(|end| end <= self.len);
        if !slots_fit {
            return Err(out_of_range);
        }
        Ok(RingLayout { offset, num_slots })
    }

    /// Reads a `T` at `offset` from the region's start.
    fn load<T: Copy>(&self, offset: usize) -> T {
        assert!(
            offset
                .checked_add(size_of::<T>())
                .is_some_and(|end| end <= self.len)
                && (self.base.as_ptr() as usize + offset).is_multiple_of(align_of::<T>()),
            "region read of {} bytes at {offset} outside {} bytes",
            size_of::<T>(),
            self.len
        );
        // SAFETY: inside the region (checked above), aligned (checked
        // above), and plain data of which any bit pattern is valid (the
        // callers read integers). Volatile: the kernel writes the region.
        unsafe { self.base.as_ptr().add(offset).cast::<T>().read_volatile() }
    }

    /// Bytes in the region.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a region holds at least its `netmap_if`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Rings of each kind the interface has (bound to this descriptor or not).
    pub fn ring_counts(&self) -> RingCounts {
        self.counts
    }

    /// Bytes per buffer (0 when no ring is bound).
    pub fn buf_size(&self) -> u32 {
        self.buf_size
    }

    /// Buffers `0..buf_count()` lie inside the region.
    pub fn buf_count(&self) -> u32 {
        self.buf_count
    }

    /// Byte offset of buffer 0 from the region's start.
    pub fn pool_start(&self) -> usize {
        self.pool_start
    }

    /// Ring `index` of `kind`, if the interface has it and it is bound to
    /// this descriptor.
    pub fn ring(&self, kind: RingKind, index: u32) -> Option<RingView<'_>> {
        let position = self.counts.position(kind, index)?;
        let layout = (*self.rings.get(position)?)?;
        Some(RingView {
            region: self,
            // SAFETY: `layout.offset` was checked to lie inside the region
            // with the ring's header and slots.
            ring: unsafe { self.base.add(layout.offset) },
            num_slots: layout.num_slots,
            kind,
        })
    }

    /// Buffer `index`, `buf_size` bytes, or `None` when it lies outside the
    /// region.
    ///
    /// # Safety
    /// No other slice of the same buffer may be alive while this one is, and
    /// the buffer must be the caller's under netmap's protocol (its slot is
    /// between `head` and `tail` of a ring, or the caller is the kernel
    /// inside a sync).
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn buffer_mut(&self, index: u32) -> Option<&mut [u8]> {
        if index >= self.buf_count {
            return None;
        }
        let size = self.buf_size as usize;
        // SAFETY: buffer `index` lies inside the region: the pool starts at
        // `pool_start` and `buf_count` buffers fit between it and the end.
        // Exclusive use of the buffer is the caller's promise.
        unsafe {
            let start = self
                .base
                .as_ptr()
                .add(self.pool_start + index as usize * size);
            Some(std::slice::from_raw_parts_mut(start, size))
        }
    }

    /// Buffer `index`, read-only; see [`buffer_mut`](Self::buffer_mut).
    ///
    /// # Safety
    /// No mutable slice of the same buffer may be alive while this one is.
    pub unsafe fn buffer(&self, index: u32) -> Option<&[u8]> {
        // SAFETY: the caller's promise covers the shared use.
        unsafe { self.buffer_mut(index).map(|buf| &*buf) }
    }
}

/// One ring of a [`NetmapRegion`]: its pointers and slots.
///
/// Positions (`head`, `cur`, `tail`, slot indices) are in `0..num_slots`;
/// a slot position outside it reads as an empty slot (buffer 0, netmap's
/// "no buffer") and is not written, so a bad position can never address
/// memory outside the ring. `debug_assert`s catch such a position in tests.
#[derive(Debug, Clone, Copy)]
pub struct RingView<'r> {
    region: &'r NetmapRegion,
    ring: NonNull<u8>,
    num_slots: u32,
    kind: RingKind,
}

macro_rules! ring_field {
    ($self:ident, $field:ident) => {
        // SAFETY: the ring's header lies inside the region (checked when the
        // view was built) and is 128-byte aligned, so the field is aligned.
        unsafe {
            $self
                .ring
                .as_ptr()
                .add(offset_of!(netmap_ring, $field))
                .cast()
        }
    };
}

impl<'r> RingView<'r> {
    /// Which ring this is.
    pub fn kind(&self) -> RingKind {
        self.kind
    }

    /// The region the ring is in.
    pub fn region(&self) -> &'r NetmapRegion {
        self.region
    }

    /// Slots in the ring.
    #[inline]
    pub fn num_slots(&self) -> u32 {
        self.num_slots
    }

    /// `head`: the first slot the user owns.
    #[inline]
    pub fn head(&self) -> u32 {
        let p: *mut u32 = ring_field!(self, head);
        // SAFETY: see ring_field!; volatile, as the kernel writes the ring.
        unsafe { p.read_volatile() }
    }

    /// `cur`: the wake-up point.
    #[inline]
    pub fn cur(&self) -> u32 {
        let p: *mut u32 = ring_field!(self, cur);
        // SAFETY: see ring_field!.
        unsafe { p.read_volatile() }
    }

    /// `tail`: the first slot the kernel owns.
    #[inline]
    pub fn tail(&self) -> u32 {
        let p: *mut u32 = ring_field!(self, tail);
        // SAFETY: see ring_field!.
        unsafe { p.read_volatile() }
    }

    /// `offset_mask`: the bits of a slot's `ptr` that say where its packet
    /// starts in the buffer; 0 on a port registered without
    /// `NETMAP_REQ_OPT_OFFSETS` (every packet starts at byte 0).
    #[inline]
    pub fn offset_mask(&self) -> u64 {
        let p: *mut u64 = ring_field!(self, offset_mask);
        // SAFETY: see ring_field!.
        unsafe { p.read_volatile() }
    }

    /// `buf_align`: the alignment a packet's start must have in a TX slot
    /// (0 or 1: none).
    pub fn buf_align(&self) -> u64 {
        let p: *mut u64 = ring_field!(self, buf_align);
        // SAFETY: see ring_field!.
        unsafe { p.read_volatile() }
    }

    /// Where the packet of slot `i` starts in its buffer (`NETMAP_ROFFSET`),
    /// unchecked: the kernel crops it to the port's largest offset, and a
    /// reader checks it against the buffer.
    #[inline]
    pub fn slot_offset(&self, i: u32) -> usize {
        let offset = netmap_sys::netmap_roffset(self.slot(i).ptr, self.offset_mask());
        usize::try_from(offset).unwrap_or(usize::MAX)
    }

    /// Sets where the packet of slot `i` starts (`NETMAP_WOFFSET`; a no-op
    /// without offsets).
    #[inline]
    pub fn set_slot_offset(&self, i: u32, offset: usize) {
        let mut slot = self.slot(i);
        let mask = self.offset_mask();
        slot.ptr = netmap_sys::netmap_woffset(slot.ptr, mask, offset as u64);
        self.set_slot(i, slot);
    }

    /// `flags` (`NR_*` ring flags).
    pub fn flags(&self) -> u32 {
        let p: *mut u32 = ring_field!(self, flags);
        // SAFETY: see ring_field!.
        unsafe { p.read_volatile() }
    }

    /// `dir`, as the kernel writes it (`RING_DIR_TX` or `RING_DIR_RX`).
    pub fn dir(&self) -> u16 {
        let p: *mut u16 = ring_field!(self, dir);
        // SAFETY: see ring_field!.
        unsafe { p.read_volatile() }
    }

    /// `ringid`.
    pub fn ringid(&self) -> u16 {
        let p: *mut u16 = ring_field!(self, ringid);
        // SAFETY: see ring_field!.
        unsafe { p.read_volatile() }
    }

    /// `ts`: seconds and microseconds of the last RX sync.
    // time_t and suseconds_t are i64 on LP64 targets only.
    #[allow(clippy::useless_conversion)]
    pub fn timestamp(&self) -> (i64, i64) {
        let p: *mut netmap_sys::timeval = ring_field!(self, ts);
        // SAFETY: see ring_field!; timeval is two integers.
        let ts = unsafe { p.read_volatile() };
        (i64::from(ts.tv_sec), i64::from(ts.tv_usec))
    }

    /// Sets `head` and `cur` together: hands the slots before `head` to the
    /// kernel (RX: consumed; TX: filled) at the next sync.
    #[inline]
    pub fn publish(&self, head: u32) {
        self.set_cur(head);
        let p: *mut u32 = ring_field!(self, head);
        // SAFETY: see ring_field!; `head` is the user's to write.
        unsafe { p.write_volatile(head) };
    }

    /// Sets `cur` alone (to ask to be woken later than `head`).
    #[inline]
    pub fn set_cur(&self, cur: u32) {
        let p: *mut u32 = ring_field!(self, cur);
        // SAFETY: see ring_field!; `cur` is the user's to write.
        unsafe { p.write_volatile(cur) };
    }

    /// The kernel's side: sets `tail` (at the end of a sync).
    #[inline]
    pub(super) fn set_tail(&self, tail: u32) {
        let p: *mut u32 = ring_field!(self, tail);
        // SAFETY: see ring_field!; the (emulated) kernel writes `tail`.
        unsafe { p.write_volatile(tail) };
    }

    /// The kernel's side: sets `ts`.
    pub(super) fn set_timestamp(&self, seconds: i64, micros: i64) {
        let p: *mut netmap_sys::timeval = ring_field!(self, ts);
        let ts = netmap_sys::timeval {
            tv_sec: seconds as _,
            tv_usec: micros as _,
        };
        // SAFETY: see ring_field!.
        unsafe { p.write_volatile(ts) };
    }

    /// `nm_ring_next` over this ring.
    #[inline]
    pub fn next(&self, i: u32) -> u32 {
        nm_ring_next(self.num_slots, i)
    }

    /// `nm_ring_space`: slots from `head` to `tail` (RX: frames waiting;
    /// TX: free slots).
    #[inline]
    pub fn space(&self) -> u32 {
        nm_ring_space(self.num_slots, self.head(), self.tail())
    }

    #[inline]
    fn slot_ptr(&self, i: u32) -> Option<*mut netmap_slot> {
        if i >= self.num_slots {
            debug_assert!(false, "slot {i} outside a {}-slot ring", self.num_slots);
            return None;
        }
        // SAFETY: slot `i` lies inside the region: the ring's slots were
        // checked to fit when the view was built, and `i < num_slots`.
        // Slots start at byte 256 of a 128-aligned ring and are 16 bytes,
        // so each is aligned for `netmap_slot`.
        Some(unsafe {
            self.ring
                .as_ptr()
                .add(offset_of!(netmap_ring, slot) + i as usize * size_of::<netmap_slot>())
                .cast()
        })
    }

    /// Slot `i` (a copy).
    #[inline]
    pub fn slot(&self, i: u32) -> netmap_slot {
        match self.slot_ptr(i) {
            // SAFETY: inside the ring and aligned (slot_ptr); a slot is
            // plain integers.
            Some(p) => unsafe { p.read_volatile() },
            None => netmap_slot::default(),
        }
    }

    /// Overwrites slot `i`.
    #[inline]
    pub fn set_slot(&self, i: u32, slot: netmap_slot) {
        if let Some(p) = self.slot_ptr(i) {
            // SAFETY: as in `slot`.
            unsafe { p.write_volatile(slot) };
        }
    }

    /// Sets the length and flags of slot `i`, keeping its buffer.
    #[inline]
    pub fn set_len_flags(&self, i: u32, len: u16, flags: u16) {
        let mut slot = self.slot(i);
        slot.len = len;
        slot.flags = flags;
        self.set_slot(i, slot);
    }

    /// The buffer of slot `i`, whole (`buf_size` bytes), or `None` when
    /// the slot's buffer index lies outside the region.
    ///
    /// # Safety
    /// As [`NetmapRegion::buffer_mut`]: the slot is the caller's, and no
    /// other slice of its buffer is alive.
    #[allow(clippy::mut_from_ref)]
    #[inline]
    pub unsafe fn slot_buffer_mut(&self, i: u32) -> Option<&'r mut [u8]> {
        let index = self.slot(i).buf_idx;
        // SAFETY: the caller's promise.
        unsafe { self.region.buffer_mut(index) }
    }

    /// The frame in slot `i`: `len` bytes from its offset
    /// (`NETMAP_BUF_OFFSET`; both clamped to the buffer), or `None` when the
    /// buffer index is bad.
    ///
    /// # Safety
    /// As [`NetmapRegion::buffer`].
    #[inline]
    pub unsafe fn slot_bytes(&self, i: u32) -> Option<&'r [u8]> {
        let slot = self.slot(i);
        // SAFETY: the caller's promise.
        let buf = unsafe { self.region.buffer(slot.buf_idx)? };
        let start = self.slot_offset(i).min(buf.len());
        let end = start.saturating_add(usize::from(slot.len)).min(buf.len());
        Some(&buf[start..end])
    }
}

/// Moves the packet in slot `i` of `src` into slot `j` of `dst` by swapping
/// their buffers, as netmap's own `netmap_sw_to_nic` does: `dst` gets
/// `src`'s buffer, length, `NS_MOREFRAG` and packet offset (with
/// `NETMAP_REQ_OPT_OFFSETS`), `src` gets `dst`'s old buffer and keeps its own
/// offset (an RX slot's is where the kernel receives into it),
/// and both are marked `NS_BUF_CHANGED` so the kernel reloads them. No
/// bytes move.
#[inline]
pub fn swap_into(src: &RingView<'_>, i: u32, dst: &RingView<'_>, j: u32) {
    let from = src.slot(i);
    let to = dst.slot(j);
    let offset = netmap_sys::netmap_roffset(from.ptr, src.offset_mask());
    dst.set_slot(
        j,
        netmap_slot {
            buf_idx: from.buf_idx,
            len: from.len,
            flags: netmap_sys::NS_BUF_CHANGED | (from.flags & netmap_sys::NS_MOREFRAG),
            ptr: netmap_sys::netmap_woffset(to.ptr, dst.offset_mask(), offset),
        },
    );
    src.set_slot(
        i,
        netmap_slot {
            buf_idx: to.buf_idx,
            len: from.len,
            flags: netmap_sys::NS_BUF_CHANGED,
            ptr: from.ptr,
        },
    );
}
