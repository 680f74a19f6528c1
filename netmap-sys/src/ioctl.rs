//! netmap's ioctl numbers.
//!
//! `netmap.h` defines them with the system's macros:
//! `NIOCCTRL = _IOWR('i', 151, struct nmreq_header)`,
//! `NIOCTXSYNC = _IO('i', 148)`, `NIOCRXSYNC = _IO('i', 149)`. Linux and
//! FreeBSD encode those macros differently: FreeBSD marks an argument-less
//! ioctl with `IOC_VOID` (`0x2000_0000`) where Linux's `_IO` leaves the
//! direction bits zero, so the two sync numbers differ between the systems
//! while `NIOCCTRL` happens to coincide. Both encodings are computed here
//! (and tested on any host); [`NIOCCTRL`], [`NIOCTXSYNC`] and [`NIOCRXSYNC`]
//! are the target's.

use crate::nmreq_header;

/// The three netmap ioctls under one system's encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoctlNumbers {
    /// `NIOCCTRL`: every `NETMAP_REQ_*` request, argument `nmreq_header`.
    pub ctrl: u32,
    /// `NIOCTXSYNC`: sync the bound TX rings, no argument.
    pub txsync: u32,
    /// `NIOCRXSYNC`: sync the bound RX rings, no argument.
    pub rxsync: u32,
}

/// The ioctl group netmap uses.
const GROUP: u32 = b'i' as u32;
const NR_CTRL: u32 = 151;
const NR_TXSYNC: u32 = 148;
const NR_RXSYNC: u32 = 149;
const HEADER_SIZE: u32 = size_of::<nmreq_header>() as u32;

/// How one system packs direction, size, group and number into a request.
#[derive(Debug, Clone, Copy)]
struct Encoding {
    /// Direction bits of `_IO` (no argument).
    none: u32,
    /// Direction bits of `_IOWR` (copied in and out).
    read_write: u32,
    /// Mask of the size field (applied before shifting it by 16).
    size_mask: u32,
}

impl Encoding {
    const fn io(self, nr: u32) -> u32 {
        self.none | (GROUP << 8) | nr
    }

    const fn iowr(self, nr: u32, size: u32) -> u32 {
        self.read_write | ((size & self.size_mask) << 16) | (GROUP << 8) | nr
    }

    const fn numbers(self) -> IoctlNumbers {
        IoctlNumbers {
            ctrl: self.iowr(NR_CTRL, HEADER_SIZE),
            txsync: self.io(NR_TXSYNC),
            rxsync: self.io(NR_RXSYNC),
        }
    }
}

/// Linux's `asm-generic/ioctl.h` (x86, arm, aarch64, riscv, s390, ...):
/// direction in bits 30-31 (`_IOC_NONE` 0, `_IOC_WRITE` 1, `_IOC_READ` 2),
/// 14 bits of size from bit 16.
const LINUX_GENERIC: Encoding = Encoding {
    none: 0,
    read_write: (1 | 2) << 30,
    size_mask: (1 << 14) - 1,
};

/// Linux on powerpc, mips and sparc: direction in bits 29-31
/// (`_IOC_NONE` 1, `_IOC_READ` 2, `_IOC_WRITE` 4), 13 bits of size.
const LINUX_PPC_MIPS_SPARC: Encoding = Encoding {
    none: 1 << 29,
    read_write: (2 | 4) << 29,
    size_mask: (1 << 13) - 1,
};

/// FreeBSD's `sys/ioccom.h`: `IOC_VOID` `0x2000_0000`, `IOC_INOUT`
/// `0xc000_0000`, 13 bits of size (`IOCPARM_MASK`) from bit 16.
const FREEBSD_ENCODING: Encoding = Encoding {
    none: 0x2000_0000,
    read_write: 0xc000_0000,
    size_mask: 0x1fff,
};

/// The numbers under Linux's generic encoding (every architecture but
/// powerpc, mips and sparc).
pub const LINUX: IoctlNumbers = LINUX_GENERIC.numbers();
/// The numbers under Linux's powerpc/mips/sparc encoding.
pub const LINUX_PPC_MIPS_SPARC_NUMBERS: IoctlNumbers = LINUX_PPC_MIPS_SPARC.numbers();
/// The numbers under FreeBSD's encoding (every architecture).
pub const FREEBSD: IoctlNumbers = FREEBSD_ENCODING.numbers();

/// The type of `ioctl`'s request argument in the target's libc.
#[cfg(target_os = "linux")]
pub type IoctlRequest = libc::Ioctl;
/// The type of `ioctl`'s request argument in the target's libc.
#[cfg(not(target_os = "linux"))]
pub type IoctlRequest = libc::c_ulong;

/// The target system's numbers.
#[cfg(all(
    target_os = "linux",
    any(
        target_arch = "powerpc",
        target_arch = "powerpc64",
        target_arch = "mips",
        target_arch = "mips64",
        target_arch = "sparc",
        target_arch = "sparc64"
    )
))]
pub const TARGET: IoctlNumbers = LINUX_PPC_MIPS_SPARC_NUMBERS;
/// The target system's numbers.
#[cfg(all(
    target_os = "linux",
    not(any(
        target_arch = "powerpc",
        target_arch = "powerpc64",
        target_arch = "mips",
        target_arch = "mips64",
        target_arch = "sparc",
        target_arch = "sparc64"
    ))
))]
pub const TARGET: IoctlNumbers = LINUX;
/// The target system's numbers.
#[cfg(target_os = "freebsd")]
pub const TARGET: IoctlNumbers = FREEBSD;

/// `NIOCCTRL` on the target system.
#[cfg(any(target_os = "linux", target_os = "freebsd"))]
pub const NIOCCTRL: IoctlRequest = TARGET.ctrl as IoctlRequest;
/// `NIOCTXSYNC` on the target system.
#[cfg(any(target_os = "linux", target_os = "freebsd"))]
pub const NIOCTXSYNC: IoctlRequest = TARGET.txsync as IoctlRequest;
/// `NIOCRXSYNC` on the target system.
#[cfg(any(target_os = "linux", target_os = "freebsd"))]
pub const NIOCRXSYNC: IoctlRequest = TARGET.rxsync as IoctlRequest;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_numbers_are_the_asm_generic_encoding_of_the_header_macros() {
        // _IOWR('i', 151, 88 bytes): dir 3 << 30 | 88 << 16 | 0x69 << 8 | 0x97.
        assert_eq!(LINUX.ctrl, 0xc058_6997);
        // _IO('i', 148) and _IO('i', 149): no direction bits at all.
        assert_eq!(LINUX.txsync, 0x6994);
        assert_eq!(LINUX.rxsync, 0x6995);
    }

    #[test]
    fn freebsd_marks_argumentless_syncs_with_ioc_void() {
        assert_eq!(FREEBSD.ctrl, 0xc058_6997);
        assert_eq!(FREEBSD.txsync, 0x2000_6994);
        assert_eq!(FREEBSD.rxsync, 0x2000_6995);
        assert_ne!(FREEBSD.txsync, LINUX.txsync);
    }

    #[test]
    fn linux_ppc_mips_sparc_use_three_direction_bits() {
        // _IOC_NONE is 1 << 29 there; _IOWR is (2 | 4) << 29.
        assert_eq!(LINUX_PPC_MIPS_SPARC_NUMBERS.txsync, 0x2000_6994);
        assert_eq!(LINUX_PPC_MIPS_SPARC_NUMBERS.ctrl, 0xc058_6997);
    }

    #[test]
    fn ctrl_carries_the_size_of_nmreq_header() {
        assert_eq!(size_of::<nmreq_header>(), 88);
        assert_eq!((LINUX.ctrl >> 16) & 0x3fff, 88);
        assert_eq!((FREEBSD.ctrl >> 16) & 0x1fff, 88);
    }

    #[cfg(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))]
    #[test]
    fn a_linux_target_uses_the_linux_numbers() {
        assert_eq!(NIOCCTRL, 0xc058_6997);
        assert_eq!(NIOCTXSYNC, 0x6994);
        assert_eq!(NIOCRXSYNC, 0x6995);
    }

    #[cfg(target_os = "freebsd")]
    #[test]
    fn a_freebsd_target_uses_the_freebsd_numbers() {
        assert_eq!(NIOCCTRL, 0xc058_6997);
        assert_eq!(NIOCTXSYNC, 0x2000_6994);
        assert_eq!(NIOCRXSYNC, 0x2000_6995);
    }
}
