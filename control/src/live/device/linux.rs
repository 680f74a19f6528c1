//! Linux: the MAC and MTU through `SIOCGIFHWADDR` and `SIOCGIFMTU` on a
//! datagram socket of the calling thread's network namespace.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// The MAC and MTU of `name`; an error names what was being read.
pub(super) fn mac_and_mtu(name: &str) -> Result<([u8; 6], u32), (&'static str, io::Error)> {
    let socket = control_socket().map_err(|e| ("MAC address", e))?;
    let mut request = ifreq_for(name);
    ioctl(&socket, libc::SIOCGIFHWADDR, &mut request).map_err(|e| ("MAC address", e))?;
    // SAFETY: SIOCGIFHWADDR filled the hwaddr member of the union.
    let hwaddr = unsafe { request.ifr_ifru.ifru_hwaddr };
    let mut mac = [0u8; 6];
    for (byte, raw) in mac.iter_mut().zip(hwaddr.sa_data.iter()) {
        *byte = raw.to_ne_bytes()[0];
    }
    let mut request = ifreq_for(name);
    ioctl(&socket, libc::SIOCGIFMTU, &mut request).map_err(|e| ("MTU", e))?;
    // SAFETY: SIOCGIFMTU filled the mtu member of the union.
    let mtu = unsafe { request.ifr_ifru.ifru_mtu };
    Ok((mac, u32::try_from(mtu).unwrap_or(0)))
}

fn control_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn ifreq_for(name: &str) -> libc::ifreq {
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(name.bytes()) {
        *slot = libc::c_char::from_ne_bytes([byte]);
    }
    request
}

fn ioctl(socket: &OwnedFd, request: libc::c_ulong, ifreq: &mut libc::ifreq) -> io::Result<()> {
    // SAFETY: the socket is open and ifreq is a valid, writable ifreq that
    // outlives the call; the request reads the name and writes the union.
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), request, std::ptr::from_mut(ifreq)) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
