//! What the tester needs from the host: its name and enough file descriptors.

use std::io;

/// The host name, as mconnect's server answers by default.
pub fn hostname() -> io::Result<String> {
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is writable for `buf.len()` bytes, and gethostname writes at most that many.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // POSIX does not promise a terminating NUL when the name was truncated.
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Ok(String::from_utf8_lossy(&buf[..len]).into_owned())
}

/// Raises the soft limit on open files to the hard limit, because a server or a
/// `--keep` client holds one descriptor per connection and the usual soft limit
/// (1024) is far below "many thousands". Returns the new soft limit.
pub fn raise_open_file_limit() -> io::Result<libc::rlim_t> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit for getrlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: `limit` is a valid rlimit that only asks for what the hard limit allows.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const limit) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(limit.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hostname_is_not_empty() {
        assert!(!hostname().unwrap().is_empty());
    }

    #[test]
    fn the_open_file_limit_ends_at_least_as_high_as_it_was() {
        assert!(raise_open_file_limit().unwrap() >= 1);
    }
}
