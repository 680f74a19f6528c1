//! Why a change to the backend set was refused.

use std::fmt;
use std::net::Ipv4Addr;

use dataplane::forwarding::ForwardingError;
use dataplane::maglev::MAX_BACKENDS;

use super::backend::MAX_WEIGHT;

/// A refused change; the set and the published table are left as they were.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendError {
    /// No backend has this address.
    Unknown(Ipv4Addr),
    /// A backend with this address exists already.
    Exists(Ipv4Addr),
    /// A weight above [`MAX_WEIGHT`].
    WeightOutOfRange(u64),
    /// Every slot is taken.
    Full,
    /// The forwarding table cannot be built with the change (for example a
    /// Maglev table with no more entries than backends).
    Table(ForwardingError),
    /// No named service has this name.
    UnknownService(String),
    /// A named service with this name exists already.
    ServiceExists(String),
    /// Every service counter id is taken: no more services.
    TooManyServices,
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown(addr) => write!(f, "no backend {addr}"),
            Self::Exists(addr) => write!(f, "backend {addr} exists already"),
            Self::WeightOutOfRange(w) => {
                write!(f, "weight {w} is out of range; use 0..={MAX_WEIGHT}")
            }
            Self::Full => write!(
                f,
                "all {MAX_BACKENDS} backend slots are taken; remove a backend first"
            ),
            Self::Table(e) => write!(f, "the forwarding table cannot be built: {e}"),
            Self::UnknownService(name) => write!(f, "no service {name:?}"),
            Self::ServiceExists(name) => write!(f, "service {name:?} exists already"),
            Self::TooManyServices => write!(
                f,
                "all {} service counter ids are taken; remove a service first",
                dataplane::counters::SERVICE_COUNTERS
            ),
        }
    }
}

impl std::error::Error for BackendError {}

impl From<ForwardingError> for BackendError {
    fn from(e: ForwardingError) -> Self {
        Self::Table(e)
    }
}
