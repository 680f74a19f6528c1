//! The checked-in declarations of netmap's structures (API 14), written from
//! `sys/net/netmap.h`: used when the headers are not on the build machine or
//! the `bindgen` feature is off.
//!
//! Field names, order and types follow the header one for one; `const`
//! qualifiers (fields only the kernel writes) have no Rust counterpart and
//! are noted in the comments instead. Flexible array members (`slot[]`,
//! `ring_ofs[]`) are zero-length arrays: they give the offset where the
//! array starts and add nothing to the size, as in C. `tests/layout.rs`
//! holds every size and offset to the header's.
//!
//! The layouts are those of LP64 targets (`x86_64`, `aarch64`, on Linux and
//! FreeBSD): `struct timeval` and `ssize_t` are wider there than on 32-bit
//! targets, and the layout tests only run on 64-bit ones.

use libc::c_char;

use crate::consts::{IFNAMSIZ, NETMAP_REQ_IFNAMSIZ};

/// `struct timeval` as the ring's `ts` holds it (`time_t` seconds and
/// `suseconds_t` microseconds, as `<sys/time.h>` declares it).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct timeval {
    /// `tv_sec`.
    pub tv_sec: libc::time_t,
    /// `tv_usec`.
    pub tv_usec: libc::suseconds_t,
}

/// `struct netmap_slot`: one buffer descriptor of a ring.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct netmap_slot {
    /// `buf_idx`: the buffer's index in the region's buffer pool.
    pub buf_idx: u32,
    /// `len`: bytes of the frame (of this fragment, with `NS_MOREFRAG`).
    pub len: u16,
    /// `flags`: `NS_*`.
    pub flags: u16,
    /// `ptr`: user buffer address (`NS_INDIRECT`), or the packet's offset in
    /// the buffer under `netmap_ring::offset_mask`.
    pub ptr: u64,
}

/// The `sem` member of `struct netmap_ring`: 128 opaque bytes aligned to
/// `NM_CACHE_ALIGN`, which is what makes the slot array start at byte 256.
#[repr(C, align(128))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct netmap_ring_sem(pub [u8; 128]);

impl Default for netmap_ring_sem {
    fn default() -> Self {
        Self([0; 128])
    }
}

/// `struct netmap_ring`: one TX or RX ring, followed in memory by its
/// `num_slots` slots.
///
/// The user owns `head`, `cur` and the slots and buffers in `[head, tail)`;
/// the kernel owns `tail` and the rest, and touches the ring only inside a
/// sync (`NIOCTXSYNC`, `NIOCRXSYNC`, `poll`).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct netmap_ring {
    /// `buf_ofs` (const): offset of the buffer pool from this ring.
    pub buf_ofs: i64,
    /// `num_slots` (const): slots in the ring.
    pub num_slots: u32,
    /// `nr_buf_size` (const): bytes per buffer.
    pub nr_buf_size: u32,
    /// `ringid` (const).
    pub ringid: u16,
    /// `dir` (const): 0 for TX, 1 for RX.
    pub dir: u16,
    /// `head` (user): first slot the user owns.
    pub head: u32,
    /// `cur` (user): wake-up point.
    pub cur: u32,
    /// `tail` (kernel): first slot the kernel owns.
    pub tail: u32,
    /// `flags`: `NR_TIMESTAMP`, `NR_FORWARD`.
    pub flags: u32,
    /// `ts` (kernel): time of the last sync.
    pub ts: timeval,
    /// `offset_mask` (const): bits of `netmap_slot::ptr` holding an offset.
    pub offset_mask: u64,
    /// `buf_align` (const): alignment required of TX packet starts.
    pub buf_align: u64,
    /// `sem`: opaque, cache-aligned.
    pub sem: netmap_ring_sem,
    /// `slot[]`: the slots, `num_slots` of them.
    pub slot: [netmap_slot; 0],
}

/// `struct netmap_if`: the port as bound to one file descriptor, followed in
/// memory by the offsets of its rings from itself: NIC TX, host TX, NIC RX,
/// host RX, in that order.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct netmap_if {
    /// `ni_name`: the interface's name.
    pub ni_name: [c_char; IFNAMSIZ],
    /// `ni_version` (const).
    pub ni_version: u32,
    /// `ni_flags` (const): `NI_PRIV_MEM`.
    pub ni_flags: u32,
    /// `ni_tx_rings` (const): NIC TX rings.
    pub ni_tx_rings: u32,
    /// `ni_rx_rings` (const): NIC RX rings.
    pub ni_rx_rings: u32,
    /// `ni_bufs_head`: first of the extra buffers, linked by their first word.
    pub ni_bufs_head: u32,
    /// `ni_host_tx_rings` (const): host (software) TX rings.
    pub ni_host_tx_rings: u32,
    /// `ni_host_rx_rings` (const): host (software) RX rings.
    pub ni_host_rx_rings: u32,
    /// `ni_spare1`.
    pub ni_spare1: [u32; 3],
    /// `ring_ofs[]` (const): offset of each ring from this structure.
    pub ring_ofs: [isize; 0],
}

/// `struct nmreq_header`: the argument of `NIOCCTRL`, common to all requests.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct nmreq_header {
    /// `nr_version`: `NETMAP_API`.
    pub nr_version: u16,
    /// `nr_reqtype`: `NETMAP_REQ_*`.
    pub nr_reqtype: u16,
    /// `nr_reserved`: must be zero.
    pub nr_reserved: u32,
    /// `nr_name`: the port's name (`em0`, `valeX:Y`, `eth0{1`), NUL-terminated.
    pub nr_name: [c_char; NETMAP_REQ_IFNAMSIZ],
    /// `nr_options`: address of the first `nmreq_option`, or 0.
    pub nr_options: u64,
    /// `nr_body`: address of the request's body (`nmreq_register`, ...).
    pub nr_body: u64,
}

impl Default for nmreq_header {
    fn default() -> Self {
        Self {
            nr_version: 0,
            nr_reqtype: 0,
            nr_reserved: 0,
            nr_name: [0; NETMAP_REQ_IFNAMSIZ],
            nr_options: 0,
            nr_body: 0,
        }
    }
}

/// `struct nmreq_register`: the body of `NETMAP_REQ_REGISTER`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct nmreq_register {
    /// `nr_offset` (out): offset of the `netmap_if` in the region.
    pub nr_offset: u64,
    /// `nr_memsize` (out): bytes to map.
    pub nr_memsize: u64,
    /// `nr_tx_slots` (in/out).
    pub nr_tx_slots: u32,
    /// `nr_rx_slots` (in/out).
    pub nr_rx_slots: u32,
    /// `nr_tx_rings` (in/out).
    pub nr_tx_rings: u16,
    /// `nr_rx_rings` (in/out).
    pub nr_rx_rings: u16,
    /// `nr_host_tx_rings` (in/out).
    pub nr_host_tx_rings: u16,
    /// `nr_host_rx_rings` (in/out).
    pub nr_host_rx_rings: u16,
    /// `nr_mem_id` (in/out): the memory allocator.
    pub nr_mem_id: u16,
    /// `nr_ringid` (in): the ring with `NR_REG_ONE_NIC` / `NR_REG_ONE_SW`.
    pub nr_ringid: u16,
    /// `nr_mode` (in): `NR_REG_*`.
    pub nr_mode: u32,
    /// `nr_extra_bufs` (in/out).
    pub nr_extra_bufs: u32,
    /// `nr_flags` (in): `NR_*` register flags.
    pub nr_flags: u64,
}

/// `struct nmreq_option`: the header of every request option, chained
/// through `nro_next`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct nmreq_option {
    /// `nro_next`: address of the next option, or 0.
    pub nro_next: u64,
    /// `nro_reqtype`: `NETMAP_REQ_OPT_*`.
    pub nro_reqtype: u32,
    /// `nro_status` (out): 0, or an errno.
    pub nro_status: u32,
    /// `nro_size`: for variable-size options; 0 otherwise.
    pub nro_size: u64,
}

/// `struct nmreq_opt_offsets`: option `NETMAP_REQ_OPT_OFFSETS` of a
/// register request: part of each slot's `ptr` holds where the packet
/// starts in its buffer, so a packet can have room in front of it.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct nmreq_opt_offsets {
    /// `nro_opt`: the option header (`nro_reqtype = NETMAP_REQ_OPT_OFFSETS`,
    /// `nro_size = 0`: a fixed-size option).
    pub nro_opt: nmreq_option,
    /// `nro_max_offset` (in/out): the largest offset the user will write;
    /// larger ones are cropped by the kernel.
    pub nro_max_offset: u64,
    /// `nro_initial_offset` (in): the offset every slot starts with.
    pub nro_initial_offset: u64,
    /// `nro_offset_bits` (in/out): low bits of `ptr` holding the offset; 0
    /// for all of them.
    pub nro_offset_bits: u32,
    /// `nro_tx_align` (in): alignment required of TX packet starts.
    pub nro_tx_align: u32,
    /// `nro_min_gap`: reserved, 0.
    pub nro_min_gap: u64,
}

/// `struct nmreq_port_info_get`: the body of `NETMAP_REQ_PORT_INFO_GET`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct nmreq_port_info_get {
    /// `nr_memsize` (out).
    pub nr_memsize: u64,
    /// `nr_tx_slots` (out).
    pub nr_tx_slots: u32,
    /// `nr_rx_slots` (out).
    pub nr_rx_slots: u32,
    /// `nr_tx_rings` (out).
    pub nr_tx_rings: u16,
    /// `nr_rx_rings` (out).
    pub nr_rx_rings: u16,
    /// `nr_host_tx_rings` (out).
    pub nr_host_tx_rings: u16,
    /// `nr_host_rx_rings` (out).
    pub nr_host_rx_rings: u16,
    /// `nr_mem_id` (in/out).
    pub nr_mem_id: u16,
    /// `pad`.
    pub pad: [u16; 3],
}
