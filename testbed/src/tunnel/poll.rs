//! The endpoints' loop: wait (bounded) for a descriptor to become
//! readable, drain a batch, look at the stop flag, repeat. No async runtime:
//! one or two descriptors in (the server side reads GRE over IPv4 and over
//! IPv6), one out, per endpoint.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};

/// How long one wait lasts: the longest a stop request waits to be seen.
const WAIT_MS: libc::c_int = 100;
/// Packets handled between two looks at the stop flag.
const BATCH: usize = 256;

/// Calls `receive` whenever `fd` is readable until `stop` is set. `receive`
/// handles one packet and returns `Ok(false)` when none was queued
/// (`WouldBlock`). Errors of `receive` end the loop.
pub fn run_until(
    fd: RawFd,
    stop: &AtomicBool,
    mut receive: impl FnMut() -> io::Result<bool>,
) -> io::Result<()> {
    run_until_any(&[fd], stop, |_| receive())
}

/// [`run_until`] over up to two descriptors: `receive(i)` handles one
/// packet of `fds[i]`, called while `fds[i]` is readable.
pub fn run_until_any(
    fds: &[RawFd],
    stop: &AtomicBool,
    mut receive: impl FnMut(usize) -> io::Result<bool>,
) -> io::Result<()> {
    let mut pollfds = [libc::pollfd {
        fd: -1,
        events: libc::POLLIN,
        revents: 0,
    }; 2];
    let count = fds.len().min(pollfds.len());
    for (pollfd, &fd) in pollfds.iter_mut().zip(fds) {
        pollfd.fd = fd;
    }
    while !stop.load(Ordering::Relaxed) {
        for pollfd in &mut pollfds {
            pollfd.revents = 0;
        }
        // SAFETY: `pollfds` holds `count` (at most 2) valid, writable pollfds
        // for the call's duration.
        let ready = unsafe { libc::poll(pollfds.as_mut_ptr(), count as libc::nfds_t, WAIT_MS) };
        if ready < 0 {
            let error = io::Error::last_os_error();
            // A signal (the stop request itself, usually) interrupts the wait.
            if error.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(error);
        }
        if ready == 0 {
            continue;
        }
        for (i, pollfd) in pollfds.iter().enumerate().take(count) {
            if pollfd.revents == 0 {
                continue;
            }
            for _ in 0..BATCH {
                if !receive(i)? {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// `Ok(None)` for "nothing queued" and "interrupted", so callers treat both
/// as an empty receive.
pub fn nothing_queued<T>(result: io::Result<T>) -> io::Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}
