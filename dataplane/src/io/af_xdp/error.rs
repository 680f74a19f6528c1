//! Why an [`AfXdpIo`](super::AfXdpIo) or its program could not be set up.

use std::fmt;
use std::io;

/// Why `AF_XDP` is not usable here, each with what to do about it.
#[derive(Debug)]
pub enum AfXdpError {
    /// No interface of that name in this thread's network namespace.
    NoSuchInterface {
        interface: String,
        source: io::Error,
    },
    /// Workers and receive queues differ: each queue needs its one worker
    /// (frames on a queue without one would reach nobody; a worker without
    /// a queue has nothing to bind to).
    WorkersNotQueues {
        interface: String,
        queues: u32,
        workers: u32,
    },
    /// The verifier refused the steering program.
    Load { source: io::Error, log: String },
    /// The program could be attached neither in the driver nor generically.
    Attach {
        interface: String,
        native: io::Error,
        generic: io::Error,
    },
    /// A system call on the socket or its rings failed.
    Call {
        interface: String,
        call: &'static str,
        source: io::Error,
    },
}

impl AfXdpError {
    pub(super) fn call(interface: &str, call: &'static str, source: io::Error) -> Self {
        Self::Call {
            interface: interface.to_owned(),
            call,
            source,
        }
    }

    fn kind(&self) -> io::ErrorKind {
        match self {
            Self::NoSuchInterface { .. } => io::ErrorKind::NotFound,
            Self::WorkersNotQueues { .. } => io::ErrorKind::InvalidInput,
            Self::Load { source, .. } | Self::Call { source, .. } => source.kind(),
            Self::Attach { generic, .. } => generic.kind(),
        }
    }
}

fn permission_hint(f: &mut fmt::Formatter<'_>, source: &io::Error) -> fmt::Result {
    if matches!(source.raw_os_error(), Some(libc::EPERM | libc::EACCES)) {
        write!(
            f,
            "; AF_XDP and bpf(2) need CAP_NET_ADMIN, CAP_NET_RAW and CAP_BPF (run as root)"
        )?;
    }
    Ok(())
}

impl fmt::Display for AfXdpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSuchInterface { interface, source } => write!(
                f,
                "AF_XDP: no interface {interface:?} in this network namespace ({source})"
            ),
            Self::WorkersNotQueues {
                interface,
                queues,
                workers,
            } => write!(
                f,
                "AF_XDP on {interface}: {queues} receive queue(s) but {workers} worker(s); AF_XDP \
                 serves each queue with one worker, so set RR_WORKERS={queues} or change the \
                 queues (ethtool -L {interface} combined {workers})"
            ),
            Self::Load { source, log } => {
                write!(
                    f,
                    "AF_XDP: the kernel refused the steering program: {source}"
                )?;
                permission_hint(f, source)?;
                if !log.is_empty() {
                    write!(f, "; verifier log:\n{log}")?;
                }
                Ok(())
            }
            Self::Attach {
                interface,
                native,
                generic,
            } => {
                write!(
                    f,
                    "AF_XDP on {interface}: attaching the XDP program failed in driver mode \
                     ({native}) and in generic mode ({generic})"
                )?;
                permission_hint(f, generic)
            }
            Self::Call {
                interface,
                call,
                source,
            } => {
                write!(f, "AF_XDP on {interface}: {call} failed: {source}")?;
                if source.raw_os_error() == Some(libc::EAFNOSUPPORT) {
                    write!(f, "; this kernel has no XDP sockets (CONFIG_XDP_SOCKETS)")?;
                }
                permission_hint(f, source)
            }
        }
    }
}

impl std::error::Error for AfXdpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::NoSuchInterface { source, .. }
            | Self::Load { source, .. }
            | Self::Call { source, .. } => Some(source),
            Self::Attach { generic, .. } => Some(generic),
            Self::WorkersNotQueues { .. } => None,
        }
    }
}

impl From<AfXdpError> for io::Error {
    fn from(error: AfXdpError) -> Self {
        io::Error::new(error.kind(), error)
    }
}
