//! The process's descriptor limit (`RLIMIT_NOFILE`), raised at start from
//! its soft value (1024 on most systems) to its hard one.
//!
//! Every health probe is a socket, every API connection is one, the workers
//! and the neighbour resolver hold some: with the soft default, a thousand
//! idle API connections used to leave the probes failing with EMFILE and
//! every backend taken out. The API's connections are capped far below what
//! this leaves ([`crate::api::ApiLimits`]), so the probes always have theirs.

use std::io;

/// Descriptors the balancer needs besides the API's connections and one
/// per backend: workers' sockets, the runtime, netlink, logs, and room for
/// backends added through the API.
pub const RESERVE: u64 = 512;

/// What a balancer with `backends` backends and `api_connections` API
/// connections needs at most.
pub fn needed(backends: usize, api_connections: usize) -> u64 {
    RESERVE + backends as u64 + api_connections as u64
}

/// The limits before and after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raised {
    pub before: u64,
    pub now: u64,
    pub hard: u64,
}

/// Highest soft limit asked for: Linux's default `fs.nr_open`, above which
/// even a hard limit of "unlimited" is refused.
const CEILING: libc::rlim_t = 1 << 20;

/// Raises the soft limit to the hard one (at most [`CEILING`]).
pub fn raise_to_hard() -> io::Result<Raised> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let before = as_u64(limit.rlim_cur);
    let target = limit.rlim_max.min(CEILING);
    if limit.rlim_cur < target {
        let raised = libc::rlimit {
            rlim_cur: target,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads one rlimit; a soft limit up to the hard
        // one needs no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const raised) } != 0 {
            return Err(io::Error::last_os_error());
        }
        limit = raised;
    }
    Ok(Raised {
        before,
        now: as_u64(limit.rlim_cur),
        hard: as_u64(limit.rlim_max),
    })
}

/// A limit as reported: Linux's `rlim_t` is already unsigned 64-bit.
#[cfg(target_os = "linux")]
fn as_u64(limit: libc::rlim_t) -> u64 {
    limit
}

/// A limit as reported: FreeBSD's `rlim_t` is signed (never negative;
/// "unlimited" is its largest value).
#[cfg(not(target_os = "linux"))]
fn as_u64(limit: libc::rlim_t) -> u64 {
    u64::try_from(limit).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_ends_at_the_hard_one() {
        let raised = raise_to_hard().unwrap();
        assert!(raised.now >= raised.before.min(as_u64(CEILING)));
        assert!(raised.now == raised.hard.min(as_u64(CEILING)) || raised.now == raised.before);
        assert_eq!(raise_to_hard().unwrap().before, raised.now, "idempotent");
    }

    #[test]
    fn what_is_needed_grows_with_backends_and_api_connections() {
        assert_eq!(needed(0, 0), RESERVE);
        assert_eq!(needed(100, 64), RESERVE + 164);
    }
}
