//! FreeBSD: an interface's capabilities (`ifconfig IF -txcsum -rxcsum -tso
//! -lro`), read and changed through `SIOCGIFCAP`/`SIOCSIFCAP`, and put back
//! by a guard. This is FreeBSD's counterpart of `offloads` on Linux
//! (`SIOCETHTOOL`).
//!
//! # Why netmap needs them off
//!
//! netmap transmits what it is given, byte for byte. The host stack's own
//! frames reach the NIC through netmap's host rings and our worker: with
//! transmit checksum offload or TSO on, the stack leaves checksums to the
//! NIC and hands over segments larger than the MTU, which would leave on the
//! wire unfinished. On receive, LRO merges segments the balancer must
//! forward one by one, and receive checksum offload marks frames the host
//! then gets through a path that does not carry the mark.

use std::ffi::c_int;
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `_IOW('i', 30, struct ifreq)` and `_IOWR('i', 31, struct ifreq)` from
/// `<sys/sockio.h>`, built as `<sys/ioccom.h>` builds them, so that the
/// size in the number is this `ifreq`'s.
const SIOCSIFCAP: libc::c_ulong = ioc(IOC_IN, 30);
const SIOCGIFCAP: libc::c_ulong = ioc(IOC_IN | IOC_OUT, 31);
const IOC_OUT: libc::c_ulong = 0x4000_0000;
const IOC_IN: libc::c_ulong = 0x8000_0000;
const IOCPARM_MASK: libc::c_ulong = 0x1fff;

const fn ioc(direction: libc::c_ulong, number: libc::c_ulong) -> libc::c_ulong {
    let length = size_of::<libc::ifreq>() as libc::c_ulong;
    direction | ((length & IOCPARM_MASK) << 16) | ((b'i' as libc::c_ulong) << 8) | number
}

// The kernel checks the size encoded in the number: FreeBSD's amd64 `ifreq`
// is 16 bytes of name and a 16-byte union.
const _: () = assert!(SIOCGIFCAP == 0xc020_691f && SIOCSIFCAP == 0x8020_691e);

/// The capabilities the netmap backend turns off, with `ifconfig`'s names.
pub const FOR_NETMAP: [(c_int, &str); 6] = [
    (libc::IFCAP_RXCSUM, "rxcsum"),
    (libc::IFCAP_TXCSUM, "txcsum"),
    (libc::IFCAP_RXCSUM_IPV6, "rxcsum6"),
    (libc::IFCAP_TXCSUM_IPV6, "txcsum6"),
    (libc::IFCAP_TSO, "tso"),
    (libc::IFCAP_LRO, "lro"),
];

/// Why capabilities could not be read or changed; names the interface and
/// the call.
#[derive(Debug)]
pub struct CapabilityError {
    pub interface: String,
    pub call: &'static str,
    pub source: io::Error,
}

impl fmt::Display for CapabilityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on {}: {}", self.call, self.interface, self.source)?;
        if self.source.raw_os_error() == Some(libc::EPERM) {
            f.write_str(" (changing interface capabilities needs root)")?;
        }
        Ok(())
    }
}

impl std::error::Error for CapabilityError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Capabilities [`disable`] turned off; turned back on by
/// [`restore`](Self::restore) or when dropped.
#[derive(Debug)]
pub struct CapabilityGuard {
    interface: String,
    socket: OwnedFd,
    /// The enabled set before the change; `None` once restored.
    before: Option<c_int>,
    after: c_int,
}

impl CapabilityGuard {
    /// `ifconfig`'s names of the capabilities that went from on to off.
    pub fn changed(&self) -> Vec<&'static str> {
        let before = self.before.unwrap_or(self.after);
        names_of(before & !self.after)
    }

    /// The interface changed.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// Puts the enabled set back as it was, reporting failure.
    pub fn restore(&mut self) -> Result<(), CapabilityError> {
        let Some(before) = self.before.take() else {
            return Ok(());
        };
        if before == self.after {
            return Ok(());
        }
        set_enabled(&self.socket, &self.interface, before)
    }
}

impl Drop for CapabilityGuard {
    fn drop(&mut self) {
        let _ = self.restore();
    }
}

/// Turns off those of `which` (bits of [`FOR_NETMAP`] or other `IFCAP_*`)
/// that are on, in one `SIOCSIFCAP` as `ifconfig` does, and returns the
/// guard that turns them back on. A driver may turn others off with them
/// (TSO follows transmit checksums); the guard restores the whole set.
pub fn disable(interface: &str, which: c_int) -> Result<CapabilityGuard, CapabilityError> {
    let error = |call, source| CapabilityError {
        interface: interface.to_owned(),
        call,
        source,
    };
    if interface.is_empty() || interface.len() >= libc::IFNAMSIZ || interface.contains('\0') {
        return Err(error(
            "naming the interface",
            io::Error::new(io::ErrorKind::InvalidInput, "not an interface name"),
        ));
    }
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(error("socket", io::Error::last_os_error()));
    }
    // SAFETY: fd is a fresh descriptor nothing else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    let (supported, before) = get(&socket, interface)?;
    let wanted = before & !(which & supported);
    if wanted != before {
        set_enabled(&socket, interface, wanted)?;
    }
    let (_, after) = get(&socket, interface)?;
    Ok(CapabilityGuard {
        interface: interface.to_owned(),
        socket,
        before: Some(before),
        after,
    })
}

/// The names, from [`FOR_NETMAP`], of the bits set in `bits`.
fn names_of(bits: c_int) -> Vec<&'static str> {
    FOR_NETMAP
        .iter()
        .filter(|(bit, _)| bits & bit != 0)
        .map(|&(_, name)| name)
        .collect()
}

fn ifreq_for(interface: &str) -> libc::ifreq {
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(interface.bytes()) {
        *slot = libc::c_char::from_ne_bytes([byte]);
    }
    request
}

/// `SIOCGIFCAP`: (what the interface supports, what is enabled).
fn get(socket: &OwnedFd, interface: &str) -> Result<(c_int, c_int), CapabilityError> {
    let mut request = ifreq_for(interface);
    // SAFETY: the socket is open and the ifreq is valid and writable for the
    // call; SIOCGIFCAP reads the name and writes ifru_cap.
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), SIOCGIFCAP, &raw mut request) };
    if rc < 0 {
        return Err(CapabilityError {
            interface: interface.to_owned(),
            call: "SIOCGIFCAP",
            source: io::Error::last_os_error(),
        });
    }
    // SAFETY: SIOCGIFCAP filled ifru_cap: [0] supported (ifr_reqcap), [1]
    // enabled (ifr_curcap).
    let [supported, enabled] = unsafe { request.ifr_ifru.ifru_cap };
    Ok((supported, enabled))
}

/// `SIOCSIFCAP`: asks for exactly `enabled` (`ifr_reqcap`).
fn set_enabled(socket: &OwnedFd, interface: &str, enabled: c_int) -> Result<(), CapabilityError> {
    let mut request = ifreq_for(interface);
    request.ifr_ifru.ifru_cap = [enabled, 0];
    // SAFETY: the socket is open and the ifreq is valid for the call;
    // SIOCSIFCAP reads the name and ifr_reqcap.
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), SIOCSIFCAP, &raw mut request) };
    if rc < 0 {
        return Err(CapabilityError {
            interface: interface.to_owned(),
            call: "SIOCSIFCAP",
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}
