//! Why an interface's offloads could not be read or changed.

use std::fmt;
use std::io;

use super::Offload;

/// Why an interface's offloads could not be read, changed or restored.
/// Every variant names the interface; those about one setting name it too.
#[derive(Debug)]
pub enum OffloadError {
    /// The name cannot be an interface name.
    InterfaceName(String),
    /// The socket that carries the ioctls could not be opened.
    Socket {
        interface: String,
        source: io::Error,
    },
    /// No interface of that name in the caller's network namespace.
    NoSuchInterface {
        interface: String,
        source: io::Error,
    },
    /// Reading or setting one offload failed.
    Call {
        interface: String,
        offload: Offload,
        /// The ethtool command: `ETHTOOL_SGRO`.
        call: &'static str,
        source: io::Error,
    },
    /// The kernel accepted the change but the offload kept its old value
    /// (another setting the device has on or off forces it).
    Unchanged {
        interface: String,
        offload: Offload,
        wanted: bool,
    },
}

impl OffloadError {
    /// True when the device cannot report or change this setting
    /// (`EOPNOTSUPP`), or kept it: the cases [`disable`](super::disable)
    /// reports without failing.
    pub fn is_unsupported(&self) -> bool {
        match self {
            Self::Call { source, .. } => is_unsupported(source),
            Self::Unchanged { .. } => true,
            _ => false,
        }
    }

    /// The interface the error is about.
    pub fn interface(&self) -> &str {
        match self {
            Self::InterfaceName(interface)
            | Self::Socket { interface, .. }
            | Self::NoSuchInterface { interface, .. }
            | Self::Call { interface, .. }
            | Self::Unchanged { interface, .. } => interface,
        }
    }

    /// Maps a failed ioctl: `ENODEV` means the interface is gone.
    pub(super) fn from_call(
        interface: &str,
        offload: Offload,
        call: &'static str,
        source: io::Error,
    ) -> Self {
        if source.raw_os_error() == Some(libc::ENODEV) {
            return Self::NoSuchInterface {
                interface: interface.to_owned(),
                source,
            };
        }
        Self::Call {
            interface: interface.to_owned(),
            offload,
            call,
            source,
        }
    }
}

/// `EOPNOTSUPP` (also spelled `ENOTSUP` on Linux).
pub(super) fn is_unsupported(error: &io::Error) -> bool {
    error.raw_os_error() == Some(libc::EOPNOTSUPP)
}

fn on_off(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}

impl fmt::Display for OffloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InterfaceName(name) => write!(
                f,
                "interface name {name:?} is not usable; expected 1 to 15 bytes without NUL or '/'"
            ),
            Self::Socket { interface, source } => write!(
                f,
                "offloads of {interface}: cannot open a socket for SIOCETHTOOL: {source}"
            ),
            Self::NoSuchInterface { interface, source } => write!(
                f,
                "offloads: no interface {interface:?} in this network namespace ({source}); \
                 check `ip link` in the namespace the caller runs in"
            ),
            Self::Call {
                interface,
                offload,
                call,
                source,
            } => {
                write!(
                    f,
                    "offloads of {interface}: {offload} ({call}) failed: {source}"
                )?;
                if source.raw_os_error() == Some(libc::EPERM) {
                    write!(f, "; changing offloads needs CAP_NET_ADMIN (run as root)")?;
                } else if is_unsupported(source) {
                    write!(f, "; the device cannot report or change this offload")?;
                }
                Ok(())
            }
            Self::Unchanged {
                interface,
                offload,
                wanted,
            } => write!(
                f,
                "offloads of {interface}: {offload} stayed {} after asking for {}; the device \
                 ties it to another setting",
                on_off(!wanted),
                on_off(*wanted)
            ),
        }
    }
}

impl std::error::Error for OffloadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Socket { source, .. }
            | Self::NoSuchInterface { source, .. }
            | Self::Call { source, .. } => Some(source),
            Self::InterfaceName(_) | Self::Unchanged { .. } => None,
        }
    }
}

impl From<OffloadError> for io::Error {
    fn from(error: OffloadError) -> Self {
        let kind = match &error {
            OffloadError::InterfaceName(_) => io::ErrorKind::InvalidInput,
            OffloadError::NoSuchInterface { .. } => io::ErrorKind::NotFound,
            OffloadError::Socket { source, .. } | OffloadError::Call { source, .. } => {
                source.kind()
            }
            OffloadError::Unchanged { .. } => io::ErrorKind::Unsupported,
        };
        io::Error::new(kind, error)
    }
}
