//! netmap's constants (API 14), typed as the fields that hold them:
//! request types are `u16` like `nmreq_header::nr_reqtype`, slot flags `u16`
//! like `netmap_slot::flags`, register flags `u64` like
//! `nmreq_register::nr_flags`. Written from `sys/net/netmap.h` and
//! `sys/net/netmap_user.h`; with generated bindings, `lib.rs` holds every
//! one of them equal to the header's value at compile time.

use core::ffi::CStr;

/// `NETMAP_API`: the version this crate speaks, put in `nr_version`.
pub const NETMAP_API: u16 = 14;
/// `NETMAP_MIN_API`: the oldest version a kernel of this API accepts.
pub const NETMAP_MIN_API: u16 = 14;
/// `NETMAP_MAX_API`: the newest version a kernel of this API accepts.
pub const NETMAP_MAX_API: u16 = 15;

/// `NETMAP_DEVICE_NAME` (`netmap_user.h`): the control device.
pub const NETMAP_DEVICE_NAME: &CStr = c"/dev/netmap";

/// `IFNAMSIZ` on Linux and FreeBSD: the length of `netmap_if::ni_name`.
pub const IFNAMSIZ: usize = 16;

/// `NETMAP_REQ_IFNAMSIZ`: the length of `nmreq_header::nr_name`, the
/// longest port name (with its NUL) a request carries.
pub const NETMAP_REQ_IFNAMSIZ: usize = 64;

/// `NM_CACHE_ALIGN`: the alignment of `netmap_ring::sem`.
pub const NM_CACHE_ALIGN: usize = 128;

/// `NETMAP_REQ_MAXSIZE`: the largest request, options included.
pub const NETMAP_REQ_MAXSIZE: usize = 4096;

// ---- netmap_slot::flags -------------------------------------------------

/// `NS_BUF_CHANGED`: `buf_idx` was changed (a buffer swap); set by whoever
/// changed it, user or kernel.
pub const NS_BUF_CHANGED: u16 = 0x0001;
/// `NS_REPORT`: ask for a completion report of this TX slot.
pub const NS_REPORT: u16 = 0x0002;
/// `NS_FORWARD`: pass this RX slot to the peer (host <-> NIC) on release,
/// with `NR_FORWARD` set on the ring.
pub const NS_FORWARD: u16 = 0x0004;
/// `NS_NO_LEARN`: VALE switch, do not learn the source port.
pub const NS_NO_LEARN: u16 = 0x0008;
/// `NS_INDIRECT`: VALE TX, the data is at `ptr` in user memory.
pub const NS_INDIRECT: u16 = 0x0010;
/// `NS_MOREFRAG`: the packet continues in the next slot; `len` is this
/// fragment's.
pub const NS_MOREFRAG: u16 = 0x0020;
/// `NS_TXMON`: monitor ports, the packet comes from a TX ring.
pub const NS_TXMON: u16 = 0x0040;
/// `NS_PORT_SHIFT`: where a VALE destination port sits in `flags`.
pub const NS_PORT_SHIFT: u32 = 8;
/// `NS_PORT_MASK`: the VALE destination port bits of `flags`.
pub const NS_PORT_MASK: u16 = 0xff << NS_PORT_SHIFT;
/// `NETMAP_MAX_FRAGS`: most slots one packet may span.
pub const NETMAP_MAX_FRAGS: u32 = 64;

// ---- netmap_ring::flags -------------------------------------------------

/// `NR_TIMESTAMP`: update `ts` on every sync.
pub const NR_TIMESTAMP: u32 = 0x0002;
/// `NR_FORWARD`: honour `NS_FORWARD` on this ring.
pub const NR_FORWARD: u32 = 0x0004;

/// `netmap_ring::dir` of a TX ring. The header's comment says "0: tx,
/// 1: rx", but the kernel stores its `enum txrx` there (`NR_RX = 0`,
/// `NR_TX = 1`, `netmap_kern.h`; `ring->dir = kring->tx` in
/// `netmap_mem2.c`), so a TX ring reads 1. Not a header constant.
pub const RING_DIR_TX: u16 = 1;
/// `netmap_ring::dir` of an RX ring (see [`RING_DIR_TX`]).
pub const RING_DIR_RX: u16 = 0;

// ---- netmap_if::ni_flags ------------------------------------------------

/// `NI_PRIV_MEM`: the port has a private memory region.
pub const NI_PRIV_MEM: u32 = 0x1;

// ---- nmreq_header::nr_reqtype -------------------------------------------

/// `NETMAP_REQ_REGISTER`: bind a port to the file descriptor.
pub const NETMAP_REQ_REGISTER: u16 = 1;
/// `NETMAP_REQ_PORT_INFO_GET`.
pub const NETMAP_REQ_PORT_INFO_GET: u16 = 2;
/// `NETMAP_REQ_VALE_ATTACH`.
pub const NETMAP_REQ_VALE_ATTACH: u16 = 3;
/// `NETMAP_REQ_VALE_DETACH`.
pub const NETMAP_REQ_VALE_DETACH: u16 = 4;
/// `NETMAP_REQ_VALE_LIST`.
pub const NETMAP_REQ_VALE_LIST: u16 = 5;
/// `NETMAP_REQ_PORT_HDR_SET`.
pub const NETMAP_REQ_PORT_HDR_SET: u16 = 6;
/// `NETMAP_REQ_PORT_HDR_GET`.
pub const NETMAP_REQ_PORT_HDR_GET: u16 = 7;
/// `NETMAP_REQ_VALE_NEWIF`.
pub const NETMAP_REQ_VALE_NEWIF: u16 = 8;
/// `NETMAP_REQ_VALE_DELIF`.
pub const NETMAP_REQ_VALE_DELIF: u16 = 9;
/// `NETMAP_REQ_VALE_POLLING_ENABLE`.
pub const NETMAP_REQ_VALE_POLLING_ENABLE: u16 = 10;
/// `NETMAP_REQ_VALE_POLLING_DISABLE`.
pub const NETMAP_REQ_VALE_POLLING_DISABLE: u16 = 11;
/// `NETMAP_REQ_POOLS_INFO_GET`.
pub const NETMAP_REQ_POOLS_INFO_GET: u16 = 12;
/// `NETMAP_REQ_SYNC_KLOOP_START`.
pub const NETMAP_REQ_SYNC_KLOOP_START: u16 = 13;
/// `NETMAP_REQ_SYNC_KLOOP_STOP`.
pub const NETMAP_REQ_SYNC_KLOOP_STOP: u16 = 14;
/// `NETMAP_REQ_CSB_ENABLE`.
pub const NETMAP_REQ_CSB_ENABLE: u16 = 15;

// ---- nmreq_option::nro_reqtype ------------------------------------------

/// `NETMAP_REQ_OPT_EXTMEM`: register with user-allocated memory.
pub const NETMAP_REQ_OPT_EXTMEM: u32 = 1;
/// `NETMAP_REQ_OPT_SYNC_KLOOP_EVENTFDS`.
pub const NETMAP_REQ_OPT_SYNC_KLOOP_EVENTFDS: u32 = 2;
/// `NETMAP_REQ_OPT_CSB`.
pub const NETMAP_REQ_OPT_CSB: u32 = 3;
/// `NETMAP_REQ_OPT_SYNC_KLOOP_MODE`.
pub const NETMAP_REQ_OPT_SYNC_KLOOP_MODE: u32 = 4;
/// `NETMAP_REQ_OPT_OFFSETS`: part of `netmap_slot::ptr` is a packet offset.
pub const NETMAP_REQ_OPT_OFFSETS: u32 = 5;
/// `NETMAP_REQ_OPT_MAX`: one past the last option.
pub const NETMAP_REQ_OPT_MAX: u32 = 6;

// ---- nmreq_register::nr_mode --------------------------------------------

/// `NR_REG_DEFAULT`: backward compatibility only.
pub const NR_REG_DEFAULT: u32 = 0;
/// `NR_REG_ALL_NIC`: every NIC ring.
pub const NR_REG_ALL_NIC: u32 = 1;
/// `NR_REG_SW`: the host rings only.
pub const NR_REG_SW: u32 = 2;
/// `NR_REG_NIC_SW`: every NIC ring and the host rings.
pub const NR_REG_NIC_SW: u32 = 3;
/// `NR_REG_ONE_NIC`: the NIC ring pair `nr_ringid`.
pub const NR_REG_ONE_NIC: u32 = 4;
/// `NR_REG_PIPE_MASTER`: deprecated (port name `x{y`).
pub const NR_REG_PIPE_MASTER: u32 = 5;
/// `NR_REG_PIPE_SLAVE`: deprecated (port name `x}y`).
pub const NR_REG_PIPE_SLAVE: u32 = 6;
/// `NR_REG_NULL`.
pub const NR_REG_NULL: u32 = 7;
/// `NR_REG_ONE_SW`: the host ring pair `nr_ringid`.
pub const NR_REG_ONE_SW: u32 = 8;

// ---- nmreq_register::nr_flags -------------------------------------------

/// `NR_MONITOR_TX`.
pub const NR_MONITOR_TX: u64 = 0x100;
/// `NR_MONITOR_RX`.
pub const NR_MONITOR_RX: u64 = 0x200;
/// `NR_ZCOPY_MON`.
pub const NR_ZCOPY_MON: u64 = 0x400;
/// `NR_EXCLUSIVE`: exclusive access to the selected rings.
pub const NR_EXCLUSIVE: u64 = 0x800;
/// `NR_RX_RINGS_ONLY`.
pub const NR_RX_RINGS_ONLY: u64 = 0x2000;
/// `NR_TX_RINGS_ONLY`.
pub const NR_TX_RINGS_ONLY: u64 = 0x4000;
/// `NR_ACCEPT_VNET_HDR`: the application handles virtio-net headers.
pub const NR_ACCEPT_VNET_HDR: u64 = 0x8000;
/// `NR_DO_RX_POLL`: `poll` syncs RX rings without `POLLIN` too.
pub const NR_DO_RX_POLL: u64 = 0x10000;
/// `NR_NO_TX_POLL`: `poll` syncs TX rings only with `POLLOUT`.
pub const NR_NO_TX_POLL: u64 = 0x20000;
