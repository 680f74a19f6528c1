//! The region the emulated kernel builds, laid out as netmap's allocator
//! (`netmap_mem2.c`) lays out its pools: the interface pool, then the ring
//! pool, then the buffer pool, each object cache-line aligned.
//!
//! ```text
//!  0      netmap_if + ring_ofs[4 x rings]: every ring (NR_REG_NIC_SW)
//!  ...    for each ring pair i: a netmap_if binding NIC ring pair i
//!         (NR_REG_ONE_NIC), a netmap_if binding host ring pair i
//!         (NR_REG_ONE_SW); ring_ofs 0 for the rings they do not bind
//!  ...    NIC TX rings, host TX rings, NIC RX rings, host RX rings:
//!         header (256 bytes) + slots x 16 bytes, each ring 128-aligned
//!  pool   (page-aligned) buffers 0, 1 (reserved, as in netmap), then one per
//!         slot, nr_buf_size bytes each
//! ```
//!
//! netmap gives each registration its own `netmap_if` in the shared region
//! (`netmap_mem2_if_new`); the emulated port writes the ones its
//! registrations would get up front. A port has as many host ring pairs as
//! NIC ring pairs (`nr_host_tx_rings`, `nr_host_rx_rings` asked for at the
//! first registration).
//!
//! Each ring's `buf_ofs` is the pool's offset from that ring, each slot
//! starts with its own buffer and `len = nr_buf_size` (as
//! `netmap_new_bufs` leaves them), TX rings with `tail = num_slots - 1` and
//! RX rings empty, `dir` as the kernel stores it (`RING_DIR_TX` = 1), and
//! `ringid` as the kernel numbers rings (host rings after the NIC rings).

use std::mem::offset_of;
use std::ops::Range;

use netmap_sys::{
    netmap_if, netmap_ring, netmap_slot, IFNAMSIZ, NETMAP_API, NM_CACHE_ALIGN, RING_DIR_RX,
    RING_DIR_TX,
};

use super::kring::FIRST_BUFFER;
use crate::io::netmap::region::RingKind;

const PAGE: usize = 4096;

/// Which rings a `netmap_if` binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Binding {
    /// Every ring (`NR_REG_NIC_SW`).
    All,
    /// NIC ring pair `i` (`NR_REG_ONE_NIC`, `nr_ringid = i`).
    OneNic(u32),
    /// Host ring pair `i` (`NR_REG_ONE_SW`, `nr_ringid = i`).
    OneHost(u32),
}

impl Binding {
    fn binds(self, kind: RingKind, index: u32) -> bool {
        match self {
            Self::All => true,
            Self::OneNic(i) => matches!(kind, RingKind::NicTx | RingKind::NicRx) && index == i,
            Self::OneHost(i) => matches!(kind, RingKind::HostTx | RingKind::HostRx) && index == i,
        }
    }
}

/// Sizes and offsets of an emulated region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Layout {
    pub name: String,
    /// NIC ring pairs, and as many host ring pairs.
    pub rings: u32,
    pub nic_slots: u32,
    pub host_slots: u32,
    pub buf_size: u32,
    /// Every slot's initial packet offset; non-zero turns the rings'
    /// `offset_mask` on (`NETMAP_REQ_OPT_OFFSETS`).
    pub offset: u32,
    /// Offset of each `netmap_if`: [`Binding::All`], then for each ring
    /// pair its [`Binding::OneNic`] and [`Binding::OneHost`].
    pub interfaces: Vec<usize>,
    /// Offset of each ring from the region's start, in `ring_ofs[]` order.
    pub ring_offsets: Vec<usize>,
    pub pool_start: usize,
    pub buffers: u32,
    pub len: usize,
}

impl Layout {
    /// One NIC ring pair and one host ring pair; `None` when the sizes
    /// overflow.
    #[cfg(test)]
    pub fn new(
        name: &str,
        nic_slots: u32,
        host_slots: u32,
        buf_size: u32,
        packet_offset: u32,
    ) -> Option<Self> {
        Self::with_rings(name, 1, nic_slots, host_slots, buf_size, packet_offset)
    }

    /// `rings` NIC ring pairs and as many host ring pairs; `None` when the
    /// sizes overflow or `rings` is 0.
    pub fn with_rings(
        name: &str,
        rings: u32,
        nic_slots: u32,
        host_slots: u32,
        buf_size: u32,
        packet_offset: u32,
    ) -> Option<Self> {
        if rings == 0 {
            return None;
        }
        let total = usize::try_from(rings).ok()?.checked_mul(4)?;
        let if_size = total
            .checked_mul(size_of::<isize>())?
            .checked_add(size_of::<netmap_if>())?
            .checked_next_multiple_of(NM_CACHE_ALIGN)?;
        let interface_count = usize::try_from(rings)
            .ok()?
            .checked_mul(2)?
            .checked_add(1)?;
        let interfaces: Vec<usize> = (0..interface_count).map(|n| n * if_size).collect();
        let mut offset = if_size.checked_mul(interface_count)?;
        let mut ring_offsets = Vec::with_capacity(total);
        for kind in RingKind::ALL {
            let slots = Self::slots_of(kind, nic_slots, host_slots) as usize;
            let size = slots
                .checked_mul(size_of::<netmap_slot>())?
                .checked_add(size_of::<netmap_ring>())?
                .checked_next_multiple_of(NM_CACHE_ALIGN)?;
            for _ in 0..rings {
                ring_offsets.push(offset);
                offset = offset.checked_add(size)?;
            }
        }
        let pool_start = offset.checked_next_multiple_of(PAGE)?;
        let per_pair = nic_slots
            .checked_mul(2)?
            .checked_add(host_slots.checked_mul(2)?)?;
        let buffers = FIRST_BUFFER.checked_add(per_pair.checked_mul(rings)?)?;
        let len = (buffers as usize)
            .checked_mul(buf_size as usize)?
            .checked_add(pool_start)?
            .checked_next_multiple_of(PAGE)?;
        isize::try_from(len).ok()?;
        Some(Self {
            name: name.to_owned(),
            rings,
            nic_slots,
            host_slots,
            buf_size,
            offset: packet_offset,
            interfaces,
            ring_offsets,
            pool_start,
            buffers,
            len,
        })
    }

    fn slots_of(kind: RingKind, nic_slots: u32, host_slots: u32) -> u32 {
        match kind {
            RingKind::NicTx | RingKind::NicRx => nic_slots,
            RingKind::HostTx | RingKind::HostRx => host_slots,
        }
    }

    /// Slots of each ring of `kind`.
    pub fn slots(&self, kind: RingKind) -> u32 {
        Self::slots_of(kind, self.nic_slots, self.host_slots)
    }

    /// Position in `ring_ofs[]` (and `ring_offsets`) of ring `index` of
    /// `kind`.
    fn position(&self, kind: RingKind, index: u32) -> usize {
        let kind_at = RingKind::ALL.iter().position(|&k| k == kind).unwrap_or(0);
        kind_at * self.rings as usize + index as usize
    }

    /// The `netmap_if` offset of a registration binding `binding`.
    pub fn interface(&self, binding: Binding) -> usize {
        let at = match binding {
            Binding::All => 0,
            Binding::OneNic(i) => 1 + 2 * i as usize,
            Binding::OneHost(i) => 2 + 2 * i as usize,
        };
        self.interfaces[at]
    }

    /// The binding of the `n`th interface, in `interfaces` order.
    fn binding_of(n: usize) -> Binding {
        match n {
            0 => Binding::All,
            n if n % 2 == 1 => Binding::OneNic(u32::try_from(n / 2).unwrap_or(u32::MAX)),
            n => Binding::OneHost(u32::try_from(n / 2 - 1).unwrap_or(u32::MAX)),
        }
    }

    /// The buffers ring `index` of `kind` starts with.
    pub fn initial_buffers(&self, kind: RingKind, index: u32) -> Range<u32> {
        // Rings take their buffers in ring_ofs[] order.
        let rings = self.rings as usize;
        let before: u32 = (0..self.position(kind, index))
            .map(|position| self.slots(RingKind::ALL[position / rings]))
            .sum();
        let start = FIRST_BUFFER + before;
        start..start + self.slots(kind)
    }

    /// Writes the interfaces, the rings and their slots into `region`,
    /// which is `len` zeroed bytes.
    pub fn write(&self, region: &mut [u8]) {
        assert_eq!(region.len(), self.len, "a region of the layout's length");
        for (n, &nifp) in self.interfaces.iter().enumerate() {
            self.write_interface(region, nifp, Self::binding_of(n));
        }
        let mut next_buffer = FIRST_BUFFER;
        for kind in RingKind::ALL {
            for index in 0..self.rings {
                let ring = self.ring_offsets[self.position(kind, index)];
                self.write_ring(region, ring, kind, index, &mut next_buffer);
            }
        }
        debug_assert_eq!(next_buffer, self.buffers);
    }

    fn write_interface(&self, region: &mut [u8], nifp: usize, binding: Binding) {
        let mut name = [0u8; IFNAMSIZ];
        let bytes = self.name.as_bytes();
        let kept = bytes.len().min(IFNAMSIZ - 1);
        name[..kept].copy_from_slice(&bytes[..kept]);
        put(region, nifp + offset_of!(netmap_if, ni_name), name);
        put(
            region,
            nifp + offset_of!(netmap_if, ni_version),
            u32::from(NETMAP_API),
        );
        put(region, nifp + offset_of!(netmap_if, ni_flags), 0u32);
        for field in [
            offset_of!(netmap_if, ni_tx_rings),
            offset_of!(netmap_if, ni_rx_rings),
            offset_of!(netmap_if, ni_host_tx_rings),
            offset_of!(netmap_if, ni_host_rx_rings),
        ] {
            put(region, nifp + field, self.rings);
        }
        put(region, nifp + offset_of!(netmap_if, ni_bufs_head), 0u32);
        for kind in RingKind::ALL {
            for index in 0..self.rings {
                let position = self.position(kind, index);
                // A ring's offset from this interface; 0 for a ring the
                // registration did not bind, as netmap writes it.
                let relative = if binding.binds(kind, index) {
                    signed(self.ring_offsets[position]) - signed(nifp)
                } else {
                    0
                };
                put(
                    region,
                    nifp + offset_of!(netmap_if, ring_ofs) + position * size_of::<isize>(),
                    relative as isize,
                );
            }
        }
    }

    fn write_ring(
        &self,
        region: &mut [u8],
        ring: usize,
        kind: RingKind,
        index: u32,
        next_buffer: &mut u32,
    ) {
        let num_slots = self.slots(kind);
        let field = |name: usize| ring + name;
        put(
            region,
            field(offset_of!(netmap_ring, buf_ofs)),
            signed(self.pool_start) - signed(ring),
        );
        put(region, field(offset_of!(netmap_ring, num_slots)), num_slots);
        // With offsets, the whole `ptr` holds one (`nro_offset_bits` 0)
        // and packets may start anywhere (`buf_align` 1).
        let (offset_mask, buf_align) = if self.offset > 0 {
            (u64::MAX, 1u64)
        } else {
            (0, 0)
        };
        put(
            region,
            field(offset_of!(netmap_ring, offset_mask)),
            offset_mask,
        );
        put(region, field(offset_of!(netmap_ring, buf_align)), buf_align);
        put(
            region,
            field(offset_of!(netmap_ring, nr_buf_size)),
            self.buf_size,
        );
        // Host rings follow the NIC rings in the kernel's numbering.
        let ringid = match kind {
            RingKind::HostTx | RingKind::HostRx => self.rings + index,
            RingKind::NicTx | RingKind::NicRx => index,
        };
        put(
            region,
            field(offset_of!(netmap_ring, ringid)),
            u16::try_from(ringid).unwrap_or(u16::MAX),
        );
        let dir = if kind.is_tx() {
            RING_DIR_TX
        } else {
            RING_DIR_RX
        };
        put(region, field(offset_of!(netmap_ring, dir)), dir);
        let tail = if kind.is_tx() { num_slots - 1 } else { 0 };
        put(region, field(offset_of!(netmap_ring, tail)), tail);
        for i in 0..num_slots {
            let slot = netmap_slot {
                buf_idx: *next_buffer,
                len: self.buf_size as u16,
                flags: 0,
                ptr: u64::from(self.offset),
            };
            *next_buffer += 1;
            put(
                region,
                field(offset_of!(netmap_ring, slot)) + i as usize * size_of::<netmap_slot>(),
                slot,
            );
        }
    }
}

/// An offset of the layout as a signed number: `Layout::new` checked that
/// the whole region fits `isize`.
fn signed(offset: usize) -> i64 {
    i64::try_from(offset).expect("layout offsets fit isize")
}

/// Writes `value`'s bytes at `offset` (native byte order, as the kernel
/// writes them).
fn put<T: Copy>(region: &mut [u8], offset: usize, value: T) {
    let bytes = &mut region[offset..offset + size_of::<T>()];
    // SAFETY: `bytes` is exactly `size_of::<T>()` writable bytes; the write
    // is unaligned-safe and `T` is plain data (integers, arrays of them,
    // `netmap_slot`), so its bytes are initialised.
    unsafe { bytes.as_mut_ptr().cast::<T>().write_unaligned(value) };
}
