//! The two calls every kernel-ring backend (`AF_PACKET`, `AF_XDP`) makes
//! the same way: naming its interface, and telling the kernel that its
//! transmit ring holds frames. Each backend wraps the errors in its own enum.

use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;

/// The index of interface `name` in this thread's network namespace.
pub(crate) fn interface_index(name: &str) -> io::Result<u32> {
    let c_name = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "name contains NUL"))?;
    // SAFETY: c_name is a live NUL-terminated string.
    let index = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
    if index == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(index)
}

/// Asks the kernel to send what the socket's TX ring holds, without
/// waiting: a zero-length `sendto` with no buffer and no address.
pub(crate) fn send_tx_ring(fd: RawFd) -> io::Result<()> {
    // SAFETY: no buffer and no address are passed (null, length 0), so the
    // kernel reads no memory of ours; it takes the frames from the TX ring
    // mapped for `fd`. A stale fd only makes the call fail.
    let rc = unsafe {
        libc::sendto(
            fd,
            std::ptr::null(),
            0,
            libc::MSG_DONTWAIT,
            std::ptr::null(),
            0,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lo_has_an_index_and_a_missing_or_nul_name_is_an_error() {
        assert!(interface_index("lo").unwrap() > 0);
        assert!(interface_index("rr-no-such-if").is_err());
        assert_eq!(
            interface_index("lo\0x").unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }
}
