//! Why a change to the backend set was refused.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use dataplane::forwarding::ForwardingError;
use dataplane::maglev::MAX_BACKENDS;

use super::backend::MAX_WEIGHT;

/// A refused change; the set and the published table are left as they were.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendError {
    /// No backend has this address.
    Unknown(IpAddr),
    /// A backend with this address exists already.
    Exists(IpAddr),
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
    /// An IPv6 backend, but the balancer has no IPv6 address to send GRE
    /// over IPv6 from.
    Ipv6WithoutLbIpv6(Ipv6Addr),
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
            Self::Ipv6WithoutLbIpv6(addr) => write!(
                f,
                "backend {addr} is IPv6, but the balancer has no IPv6 address to send GRE over \
                 IPv6 from; give RR_DEVICE a global IPv6 address (or set RR_LB_IPV6), or use \
                 IPv4 backends"
            ),
        }
    }
}

impl std::error::Error for BackendError {}

impl From<ForwardingError> for BackendError {
    fn from(e: ForwardingError) -> Self {
        match e {
            ForwardingError::Ipv6BackendWithoutLbIpv6(addr) => Self::Ipv6WithoutLbIpv6(addr),
            e => Self::Table(e),
        }
    }
}
