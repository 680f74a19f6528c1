//! SIGINT and SIGTERM as a flag: the one way the workspace's programs learn
//! that they should stop. The handler only stores to an atomic (what a
//! signal handler may safely do); each program's loop reads the flag where
//! it can stop cleanly: the tunnel endpoint and link emulator between
//! batches, `testbed run` between polls, the balancer between control ticks.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);
/// How many have arrived: a second one during a graceful stop means "now".
static COUNT: AtomicU32 = AtomicU32::new(0);
/// The signal that set [`STOP`] last, for the log line that says why.
static LAST: AtomicI32 = AtomicI32::new(0);

extern "C" fn request_stop(signal: libc::c_int) {
    // Only atomic stores: async-signal-safe.
    LAST.store(signal, Ordering::SeqCst);
    COUNT.fetch_add(1, Ordering::SeqCst);
    STOP.store(true, Ordering::SeqCst);
}

/// Makes SIGINT and SIGTERM set the flag instead of ending the process, and
/// returns the flag. Calling it again is harmless.
pub fn stop_on_signals() -> io::Result<&'static AtomicBool> {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = request_stop as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY: `action` is a valid sigaction whose handler only does an
        // atomic store; the old action is not asked for.
        let rc = unsafe { libc::sigaction(signal, &raw const action, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(&STOP)
}

/// Whether SIGINT or SIGTERM has arrived since [`stop_on_signals`].
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// How many SIGINTs and SIGTERMs have arrived since [`stop_on_signals`].
pub fn count() -> u32 {
    COUNT.load(Ordering::SeqCst)
}

/// `"SIGINT"` or `"SIGTERM"`: the signal that asked to stop, if one has.
pub fn received() -> Option<&'static str> {
    if !stop_requested() {
        return None;
    }
    Some(match LAST.load(Ordering::SeqCst) {
        libc::SIGINT => "SIGINT",
        _ => "SIGTERM",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigterm_sets_the_flag_instead_of_ending_the_process() {
        let flag = stop_on_signals().unwrap();
        assert!(!stop_requested());
        // SAFETY: raising a signal whose handler was just installed.
        assert_eq!(unsafe { libc::raise(libc::SIGTERM) }, 0);
        assert!(stop_requested());
        assert!(flag.load(Ordering::SeqCst));
        assert_eq!(received(), Some("SIGTERM"));
        assert_eq!(count(), 1);
        // SAFETY: as above.
        assert_eq!(unsafe { libc::raise(libc::SIGINT) }, 0);
        assert_eq!(count(), 2, "a second signal is counted");
        assert_eq!(received(), Some("SIGINT"));
    }
}
