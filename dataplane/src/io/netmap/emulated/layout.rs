//! The region the emulated kernel builds, laid out as netmap's allocator
//! (`netmap_mem2.c`) lays out its pools: the interface pool, then the ring
//! pool, then the buffer pool, each object cache-line aligned.
//!
//! ```text
//!  0      netmap_if (56 bytes) + ring_ofs[4]: NIC TX, host TX, NIC RX, host RX
//!  128    NIC TX ring:  header (256 bytes) + nic_slots  x 16-byte slots
//!  ...    host TX ring: header + host_slots x slots    (each ring 128-aligned)
//!  ...    NIC RX ring, host RX ring
//!  pool   (page-aligned) buffers 0, 1 (reserved, as in netmap), then one per
//!         slot, nr_buf_size bytes each
//! ```
//!
//! Each ring's `buf_ofs` is the pool's offset from that ring, each slot
//! starts with its own buffer and `len = nr_buf_size` (as
//! `netmap_new_bufs` leaves them), TX rings with `tail = num_slots - 1` and
//! RX rings empty, `dir` as the kernel stores it (`RING_DIR_TX` = 1).

use std::mem::offset_of;

use netmap_sys::{
    netmap_if, netmap_ring, netmap_slot, IFNAMSIZ, NETMAP_API, NM_CACHE_ALIGN, RING_DIR_RX,
    RING_DIR_TX,
};

use super::kring::FIRST_BUFFER;
use crate::io::netmap::region::RingKind;

const PAGE: usize = 4096;

/// Sizes and offsets of an emulated region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Layout {
    pub name: String,
    pub nic_slots: u32,
    pub host_slots: u32,
    pub buf_size: u32,
    /// Every slot's initial packet offset; non-zero turns the rings'
    /// `offset_mask` on (`NETMAP_REQ_OPT_OFFSETS`).
    pub offset: u32,
    /// Offset of each ring from the region's start, in `RingKind::ALL` order.
    pub ring_offsets: [usize; 4],
    pub pool_start: usize,
    pub buffers: u32,
    pub len: usize,
}

impl Layout {
    /// Where everything goes; `None` when the sizes overflow.
    pub fn new(
        name: &str,
        nic_slots: u32,
        host_slots: u32,
        buf_size: u32,
        packet_offset: u32,
    ) -> Option<Self> {
        let if_size = size_of::<netmap_if>() + 4 * size_of::<isize>();
        let mut offset = if_size.checked_next_multiple_of(NM_CACHE_ALIGN)?;
        let mut ring_offsets = [0; 4];
        for (kind, ring_offset) in RingKind::ALL.into_iter().zip(&mut ring_offsets) {
            let slots = Self::slots_of(kind, nic_slots, host_slots) as usize;
            let size = slots
                .checked_mul(size_of::<netmap_slot>())?
                .checked_add(size_of::<netmap_ring>())?
                .checked_next_multiple_of(NM_CACHE_ALIGN)?;
            *ring_offset = offset;
            offset = offset.checked_add(size)?;
        }
        let pool_start = offset.checked_next_multiple_of(PAGE)?;
        let buffers = FIRST_BUFFER
            .checked_add(nic_slots.checked_mul(2)?)?
            .checked_add(host_slots.checked_mul(2)?)?;
        let len = (buffers as usize)
            .checked_mul(buf_size as usize)?
            .checked_add(pool_start)?
            .checked_next_multiple_of(PAGE)?;
        isize::try_from(len).ok()?;
        Some(Self {
            name: name.to_owned(),
            nic_slots,
            host_slots,
            buf_size,
            offset: packet_offset,
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

    /// Slots of the ring of `kind`.
    pub fn slots(&self, kind: RingKind) -> u32 {
        Self::slots_of(kind, self.nic_slots, self.host_slots)
    }

    /// Writes the interface, the rings and their slots into `region`, which
    /// is `len` zeroed bytes.
    pub fn write(&self, region: &mut [u8]) {
        assert_eq!(region.len(), self.len, "a region of the layout's length");
        let mut name = [0u8; IFNAMSIZ];
        let bytes = self.name.as_bytes();
        let kept = bytes.len().min(IFNAMSIZ - 1);
        name[..kept].copy_from_slice(&bytes[..kept]);
        put(region, offset_of!(netmap_if, ni_name), name);
        put(
            region,
            offset_of!(netmap_if, ni_version),
            u32::from(NETMAP_API),
        );
        put(region, offset_of!(netmap_if, ni_flags), 0u32);
        put(region, offset_of!(netmap_if, ni_tx_rings), 1u32);
        put(region, offset_of!(netmap_if, ni_rx_rings), 1u32);
        put(region, offset_of!(netmap_if, ni_bufs_head), 0u32);
        put(region, offset_of!(netmap_if, ni_host_tx_rings), 1u32);
        put(region, offset_of!(netmap_if, ni_host_rx_rings), 1u32);
        let mut next_buffer = FIRST_BUFFER;
        for (position, kind) in RingKind::ALL.into_iter().enumerate() {
            let ring = self.ring_offsets[position];
            // The interface sits at offset 0, so a ring's offset from it is
            // its offset in the region.
            put(
                region,
                offset_of!(netmap_if, ring_ofs) + position * size_of::<isize>(),
                signed(ring) as isize,
            );
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
            let ringid = u16::from(matches!(kind, RingKind::HostTx | RingKind::HostRx));
            put(region, field(offset_of!(netmap_ring, ringid)), ringid);
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
                    buf_idx: next_buffer,
                    len: self.buf_size as u16,
                    flags: 0,
                    ptr: u64::from(self.offset),
                };
                next_buffer += 1;
                put(
                    region,
                    field(offset_of!(netmap_ring, slot)) + i as usize * size_of::<netmap_slot>(),
                    slot,
                );
            }
        }
        debug_assert_eq!(next_buffer, self.buffers);
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
