//! Why an [`AfPacketIo`](super::AfPacketIo) could not be opened or run.

use std::fmt;
use std::io;

/// Why an [`AfPacketConfig`](super::AfPacketConfig) was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfPacketConfigError {
    /// The interface name is empty, too long for the kernel, or holds a NUL.
    InterfaceName(String),
    /// `frame_size` is not a power of two in the accepted range.
    FrameSize(u32),
    /// `ring_frames` is not a power of two, or fewer than one memory block holds.
    RingFrames { ring_frames: u32, min: u32 },
    /// `headroom` leaves too little of a frame slot for an Ethernet frame.
    HeadroomTooLarge { headroom: u32, frame_size: u32 },
}

impl fmt::Display for AfPacketConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InterfaceName(name) => write!(
                f,
                "interface name {name:?} is not usable; expected 1 to 15 bytes without NUL"
            ),
            Self::FrameSize(size) => write!(
                f,
                "frame_size {size} is not usable; expected a power of two from {} to {}",
                super::MIN_FRAME_SIZE,
                super::MAX_FRAME_SIZE
            ),
            Self::RingFrames { ring_frames, min } => write!(
                f,
                "ring_frames {ring_frames} is not usable; expected a power of two of at least \
                 {min} (one memory block of frames) and at most {}",
                super::MAX_RING_FRAMES
            ),
            Self::HeadroomTooLarge {
                headroom,
                frame_size,
            } => write!(
                f,
                "headroom {headroom} leaves no room for a 1514-byte Ethernet frame in a \
                 {frame_size}-byte slot; expected headroom + 1514 + {} <= frame_size",
                super::SLOT_DATA_START
            ),
        }
    }
}

impl std::error::Error for AfPacketConfigError {}

/// Why an `AF_PACKET` socket could not be set up or used.
#[derive(Debug)]
pub enum AfPacketError {
    /// The configuration was refused before any system call.
    Config(AfPacketConfigError),
    /// No interface of that name in this thread's network namespace.
    NoSuchInterface {
        interface: String,
        source: io::Error,
    },
    /// A system call on the interface's socket failed.
    Call {
        interface: String,
        /// The call and, for socket options, the option: `setsockopt(PACKET_RX_RING)`.
        call: &'static str,
        source: io::Error,
    },
}

impl AfPacketError {
    pub(super) fn call(interface: &str, call: &'static str, source: io::Error) -> Self {
        Self::Call {
            interface: interface.to_owned(),
            call,
            source,
        }
    }

    /// The underlying OS error kind, for `io::Error` conversion.
    fn kind(&self) -> io::ErrorKind {
        match self {
            Self::Config(_) => io::ErrorKind::InvalidInput,
            Self::NoSuchInterface { .. } => io::ErrorKind::NotFound,
            Self::Call { source, .. } => source.kind(),
        }
    }
}

impl fmt::Display for AfPacketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(error) => write!(f, "AF_PACKET configuration: {error}"),
            Self::NoSuchInterface { interface, source } => write!(
                f,
                "AF_PACKET: no interface {interface:?} in this network namespace ({source}); \
                 check `ip link` in the namespace the worker runs in"
            ),
            Self::Call {
                interface,
                call,
                source,
            } => {
                write!(f, "AF_PACKET on {interface}: {call} failed: {source}")?;
                if source.kind() == io::ErrorKind::PermissionDenied {
                    write!(f, "; AF_PACKET needs CAP_NET_RAW (run as root)")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for AfPacketError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Config(error) => Some(error),
            Self::NoSuchInterface { source, .. } | Self::Call { source, .. } => Some(source),
        }
    }
}

impl From<AfPacketConfigError> for AfPacketError {
    fn from(error: AfPacketConfigError) -> Self {
        Self::Config(error)
    }
}

impl From<AfPacketError> for io::Error {
    fn from(error: AfPacketError) -> Self {
        io::Error::new(error.kind(), error)
    }
}
