//! FFI to netmap, API version 14: the interface current kernels accept
//! (`NIOCCTRL` with `struct nmreq_header`). The older `nmreq`/`NIOCREGIF`
//! interface of API 11, which the `netmap_sys` crate on crates.io
//! declares, is refused by current kernels and is not declared here.
//!
//! What is here:
//! - the shared-memory structures: [`netmap_if`], [`netmap_ring`] and
//!   [`netmap_slot`]; the request structures: [`nmreq_header`],
//!   [`nmreq_register`], [`nmreq_option`], [`nmreq_opt_offsets`],
//!   [`nmreq_port_info_get`];
//! - the constants ([`consts`]): request types, `NR_REG_*` modes, `NR_*`
//!   register flags, `NS_*` slot flags and `NR_*` ring flags, typed as the
//!   fields that hold them;
//! - the ioctl numbers ([`ioctl`]): [`NIOCCTRL`], [`NIOCTXSYNC`],
//!   [`NIOCRXSYNC`] for the target system (Linux and FreeBSD encode them
//!   differently), and both systems' values for reference;
//! - the ring arithmetic of `netmap_user.h` ([`ring`]) as safe functions.
//!
//! # Where the declarations come from
//!
//! `build.rs` looks for netmap's headers (`net/netmap.h`):
//! 1. in `$NETMAP_INCLUDE_DIR` (the directory holding `net/netmap.h`; a
//!    netmap source tree's `sys/`), which must have them when set;
//! 2. when building natively on FreeBSD, in the base system's `/usr/include`;
//! 3. when building natively, in `/usr/local/include`.
//!
//! With the headers found **and the `bindgen` feature on**, the structures
//! are generated from them with bindgen (which then needs libclang), and
//! every constant of this crate is checked against the header's value at
//! compile time. Otherwise the checked-in declarations of `abi.rs`, written
//! from netmap's `sys/net/netmap.h`, are used. The feature is off by default
//! because bindgen is a heavy build and needs libclang; CI and machines
//! without netmap use the checked-in declarations. [`BINDINGS_SOURCE`] says
//! which were compiled in. Either way `tests/layout.rs` holds the size and
//! offset of every field to the header's (on 64-bit targets). Nothing is
//! ever downloaded by the build.
//!
//! The constants and ioctl numbers are always this crate's: bindgen cannot
//! expand `_IOWR`, and typing flags as their fields spares every user a
//! cast.

// The declarations keep C's names, so that a reader can match them to
// netmap.h and the generated bindings can stand in for them.
#![allow(non_camel_case_types)]

#[cfg(not(netmap_sys_bindgen))]
mod abi;
#[cfg(not(netmap_sys_bindgen))]
pub use abi::{
    netmap_if, netmap_ring, netmap_slot, nmreq_header, nmreq_opt_offsets, nmreq_option,
    nmreq_port_info_get, nmreq_register, timeval,
};

#[cfg(netmap_sys_bindgen)]
#[allow(
    non_upper_case_globals,
    non_snake_case,
    dead_code,
    missing_debug_implementations,
    unused_qualifications,
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks,
    clippy::all,
    clippy::pedantic
)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/netmap_bindings.rs"));
}
#[cfg(netmap_sys_bindgen)]
pub use generated::{
    netmap_if, netmap_ring, netmap_slot, nmreq_header, nmreq_opt_offsets, nmreq_option,
    nmreq_port_info_get, nmreq_register, timeval,
};

pub mod consts;
pub mod ioctl;
pub mod ring;

pub use consts::*;
#[cfg(any(target_os = "linux", target_os = "freebsd"))]
pub use ioctl::{NIOCCTRL, NIOCRXSYNC, NIOCTXSYNC};
pub use ring::{
    netmap_buf_offset, netmap_roffset, netmap_woffset, nm_ring_empty, nm_ring_next, nm_ring_space,
    nm_tx_pending,
};

/// Where the structure declarations were compiled from: `"checked-in"`, or
/// `"bindgen:<include dir>"`.
pub const BINDINGS_SOURCE: &str = env!("NETMAP_SYS_BINDINGS");

/// Every constant of [`consts`] equals the header's, at compile time.
#[cfg(netmap_sys_bindgen)]
mod header_agreement {
    use super::generated;

    macro_rules! same_as_header {
        ($($name:ident),* $(,)?) => {
            $(
                const _: () = assert!(
                    crate::consts::$name as u64 == generated::$name as u64,
                    concat!(stringify!($name), " differs from the header's value")
                );
            )*
        };
    }

    same_as_header!(
        NETMAP_API,
        NETMAP_MIN_API,
        NETMAP_MAX_API,
        NM_CACHE_ALIGN,
        NETMAP_REQ_MAXSIZE,
        NETMAP_REQ_IFNAMSIZ,
        NS_BUF_CHANGED,
        NS_REPORT,
        NS_FORWARD,
        NS_NO_LEARN,
        NS_INDIRECT,
        NS_MOREFRAG,
        NS_TXMON,
        NS_PORT_SHIFT,
        NETMAP_MAX_FRAGS,
        NR_TIMESTAMP,
        NR_FORWARD,
        NI_PRIV_MEM,
        NETMAP_REQ_REGISTER,
        NETMAP_REQ_PORT_INFO_GET,
        NETMAP_REQ_VALE_ATTACH,
        NETMAP_REQ_VALE_DETACH,
        NETMAP_REQ_VALE_LIST,
        NETMAP_REQ_PORT_HDR_SET,
        NETMAP_REQ_PORT_HDR_GET,
        NETMAP_REQ_VALE_NEWIF,
        NETMAP_REQ_VALE_DELIF,
        NETMAP_REQ_VALE_POLLING_ENABLE,
        NETMAP_REQ_VALE_POLLING_DISABLE,
        NETMAP_REQ_POOLS_INFO_GET,
        NETMAP_REQ_SYNC_KLOOP_START,
        NETMAP_REQ_SYNC_KLOOP_STOP,
        NETMAP_REQ_CSB_ENABLE,
        NETMAP_REQ_OPT_EXTMEM,
        NETMAP_REQ_OPT_SYNC_KLOOP_EVENTFDS,
        NETMAP_REQ_OPT_CSB,
        NETMAP_REQ_OPT_SYNC_KLOOP_MODE,
        NETMAP_REQ_OPT_OFFSETS,
        NETMAP_REQ_OPT_MAX,
        NR_REG_DEFAULT,
        NR_REG_ALL_NIC,
        NR_REG_SW,
        NR_REG_NIC_SW,
        NR_REG_ONE_NIC,
        NR_REG_PIPE_MASTER,
        NR_REG_PIPE_SLAVE,
        NR_REG_NULL,
        NR_REG_ONE_SW,
        NR_MONITOR_TX,
        NR_MONITOR_RX,
        NR_ZCOPY_MON,
        NR_EXCLUSIVE,
        NR_RX_RINGS_ONLY,
        NR_TX_RINGS_ONLY,
        NR_ACCEPT_VNET_HDR,
        NR_DO_RX_POLL,
        NR_NO_TX_POLL,
    );

    // NS_PORT_MASK is `(0xff << NS_PORT_SHIFT)`, an expression bindgen may
    // not evaluate; it is derived from NS_PORT_SHIFT above.
}
