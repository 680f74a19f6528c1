//! SIGINT and SIGTERM set a stop flag that the packet loop reads, so the
//! endpoint leaves its loop, prints its counters and closes its tun device.

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn request_stop(_signal: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    STOP.store(true, Ordering::Relaxed);
}

/// Installs the handlers and returns the flag they set.
pub fn stop_on_signals() -> std::io::Result<&'static AtomicBool> {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = request_stop as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY: `action` is a valid sigaction whose handler only does an
        // atomic store; the old action is not asked for.
        let rc = unsafe { libc::sigaction(signal, &raw const action, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(&STOP)
}
