//! Configuration errors: each names the setting, the value given and what
//! would have been accepted, so that a wrong `RR_*` variable is fixed on the
//! first try.

use std::fmt;
use std::net::IpAddr;

/// A configuration setting: its environment variable, flag and accepted form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Setting {
    TargetIps,
    LbIp,
    LbIpv6,
    LbMac,
    NexthopMac,
    BackendMacs,
    Vips,
    Seed,
    TableSize,
    ConntrackCapacity,
    TcpTimeout,
    UdpTimeout,
    MaxNewFlows,
    FragmentHold,
    FragmentHoldCapacity,
    Mtu,
    Device,
    Io,
    Poll,
    Workers,
    Cores,
    KeepOffloads,
    Health,
    HealthInterval,
    HealthTimeout,
    HealthRise,
    HealthFall,
    Api,
}

impl Setting {
    /// The environment variable that sets it.
    pub const fn env(self) -> &'static str {
        match self {
            Self::TargetIps => "RR_TARGET_IPS",
            Self::LbIp => "RR_LB_IP",
            Self::LbIpv6 => "RR_LB_IPV6",
            Self::LbMac => "RR_LB_MAC",
            Self::NexthopMac => "RR_NEXTHOP_MAC",
            Self::BackendMacs => "RR_BACKEND_MACS",
            Self::Vips => "RR_VIPS",
            Self::Seed => "RR_SEED",
            Self::TableSize => "RR_TABLE_SIZE",
            Self::ConntrackCapacity => "RR_CONNTRACK_CAPACITY",
            Self::TcpTimeout => "RR_TCP_TIMEOUT",
            Self::UdpTimeout => "RR_UDP_TIMEOUT",
            Self::MaxNewFlows => "RR_MAX_NEW_FLOWS",
            Self::FragmentHold => "RR_FRAGMENT_HOLD",
            Self::FragmentHoldCapacity => "RR_FRAGMENT_HOLD_CAPACITY",
            Self::Mtu => "RR_MTU",
            Self::Device => "RR_DEVICE",
            Self::Io => "RR_IO",
            Self::Poll => "RR_POLL",
            Self::Workers => "RR_WORKERS",
            Self::Cores => "RR_CORES",
            Self::KeepOffloads => "RR_KEEP_OFFLOADS",
            Self::Health => "RR_HEALTH",
            Self::HealthInterval => "RR_HEALTH_INTERVAL",
            Self::HealthTimeout => "RR_HEALTH_TIMEOUT",
            Self::HealthRise => "RR_HEALTH_RISE",
            Self::HealthFall => "RR_HEALTH_FALL",
            Self::Api => "RR_API",
        }
    }

    /// What a valid value looks like, for error messages.
    pub const fn accepted(self) -> &'static str {
        match self {
            Self::TargetIps => {
                "ip or ip:weight with weight 0..=65535, ';'-separated \
                 (IPv4 or IPv6, an IPv6 address with a weight in brackets such as [2001:db8::1]:3; \
                 each backend once, at most 65535 backends)"
            }
            Self::LbIp => "an IPv4 address such as 192.0.2.10",
            Self::LbIpv6 => "a global IPv6 address such as 2001:db8::10",
            Self::LbMac | Self::NexthopMac => "a unicast MAC such as 02:00:00:00:00:01",
            Self::BackendMacs => {
                "ip=mac entries such as 10.1.0.1=02:00:00:00:01:01 or \
                 2001:db8::1=02:00:00:00:01:02, ';'-separated (unicast MACs, each ip once)"
            }
            Self::Vips => "IPv4 or IPv6 addresses, ';'-separated, each once",
            Self::Seed => "a 64-bit number, decimal or 0x-hex",
            Self::TableSize => "a prime from 3 to 16777213",
            Self::ConntrackCapacity => {
                "a number of connections per worker from 32 to 268435456 (rounded up to a power of two)"
            }
            Self::TcpTimeout | Self::UdpTimeout => {
                "a duration above zero such as 300s, 5m or 30 (seconds)"
            }
            Self::MaxNewFlows => "new flows per second, at least 1",
            Self::FragmentHold => "a duration from 0 to 60s such as 100ms (0 holds nothing)",
            Self::FragmentHoldCapacity => "a number of frames from 0 to 65536",
            Self::Mtu => "bytes from 576 to 9216",
            Self::Device => "an interface name in the balancer's network namespace, such as eth0",
            Self::Io => "auto, af_packet, af_xdp, netmap or netmap-emulated (a test mode: netmap's backend over a packet socket)",
            Self::Poll => "poll (sleep in the backend's poll when idle) or busy (never sleep)",
            Self::Workers => "a number of workers from 1 to the number of cores",
            Self::Cores => "core numbers such as 1;2 or a range 1-3, one per worker, each once",
            Self::KeepOffloads => "1, true or yes to keep offloads; 0, false or no (default) to turn the harmful ones off",
            Self::Health => {
                "tcp:PORT (connect), http:PORT/PATH (GET, 2xx or 3xx is healthy) \
                 or none, with PORT 1..=65535 and PATH printable ASCII without spaces"
            }
            Self::HealthInterval | Self::HealthTimeout => {
                "a duration from 10ms to 1h such as 1s, 500ms or 2 (seconds)"
            }
            Self::HealthRise | Self::HealthFall => "a count of checks from 1 to 100",
            Self::Api => "ip:port such as 127.0.0.1:9700 or [::1]:9700, or none / off",
        }
    }
}

/// What is wrong with a value (or one entry of a list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The list has no entries.
    Empty,
    /// Not an IPv4 address.
    NotIpv4,
    /// Not an IPv6 address.
    NotIpv6,
    /// An IPv6 address where only IPv4 works.
    Ipv6NotAccepted,
    /// Not an IPv4 or IPv6 address.
    NotIp,
    /// Colons enough for IPv6 but not an IPv6 address: likely one given a
    /// weight without brackets.
    Ipv6WeightNeedsBrackets,
    /// An IPv6 address that cannot be the balancer's own (loopback,
    /// link-local, multicast, unspecified, IPv4-mapped).
    NotGlobalIpv6,
    /// The `:weight` part is not a number in 0..=65535.
    BadWeight(String),
    /// Not six two-digit hex groups.
    NotMac,
    /// A multicast or broadcast MAC (group bit set).
    GroupMac,
    /// The all-zero MAC.
    ZeroMac,
    /// An entry without `=` between address and MAC.
    MissingEquals,
    /// The same address twice.
    Duplicate(IpAddr),
    /// Not a whole number.
    NotNumber,
    /// A number outside the accepted range.
    OutOfRange,
    /// Not a duration; the parser's explanation.
    NotDuration(String),
    /// A zero duration where time must pass.
    Zero,
    /// A list with the wrong number of entries.
    WrongCount { expected: usize },
    /// A packet I/O backend this build or kernel does not have.
    Unavailable(String),
    /// Not one of the health-check forms.
    UnknownHealthCheck,
    /// Not an `ip:port` socket address.
    NotSocketAddr,
    /// A table size that is not prime, with the nearest primes in range.
    NotPrime {
        below: Option<u64>,
        above: Option<u64>,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("has no entries"),
            Self::NotIpv4 => f.write_str("is not an IPv4 address"),
            Self::Ipv6NotAccepted => f.write_str(
                "is IPv6, but only IPv4 works here (the balancer's IPv6 address is RR_LB_IPV6)",
            ),
            Self::NotIp => f.write_str("is not an IPv4 or IPv6 address"),
            Self::NotIpv6 => f.write_str("is not an IPv6 address"),
            Self::Ipv6WeightNeedsBrackets => f.write_str(
                "is not an address: an IPv6 backend with a weight is written in brackets, \
                 such as [2001:db8::1]:3",
            ),
            Self::NotGlobalIpv6 => f.write_str(
                "is not an address the balancer can send from \
                 (loopback, link-local, multicast, unspecified or IPv4-mapped)",
            ),
            Self::BadWeight(w) => write!(f, "has weight {w:?}"),
            Self::NotMac => f.write_str("is not a MAC address"),
            Self::GroupMac => f.write_str("is a multicast or broadcast MAC"),
            Self::ZeroMac => f.write_str("is the all-zero MAC"),
            Self::MissingEquals => f.write_str("has no '=' between address and MAC"),
            Self::Duplicate(addr) => write!(f, "lists {addr} more than once"),
            Self::NotNumber => f.write_str("is not a whole number"),
            Self::OutOfRange => f.write_str("is out of range"),
            Self::NotDuration(why) => write!(f, "is not a duration ({why})"),
            Self::Zero => f.write_str("is zero"),
            Self::WrongCount { expected } => {
                write!(f, "does not have {expected} entries (one per worker)")
            }
            Self::Unavailable(why) => write!(f, "is not available: {why}"),
            Self::UnknownHealthCheck => f.write_str("is not a health check"),
            Self::NotSocketAddr => f.write_str("is not an ip:port address"),
            Self::NotPrime { below, above } => {
                f.write_str("is not a prime")?;
                match (below, above) {
                    (Some(b), Some(a)) => write!(f, " (nearest primes: {b} below, {a} above)"),
                    (Some(b), None) => write!(f, " (nearest prime: {b} below)"),
                    (None, Some(a)) => write!(f, " (nearest prime: {a} above)"),
                    (None, None) => Ok(()),
                }
            }
        }
    }
}

/// A configuration value that was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// `value` (the whole setting or one entry of a list) has `problem`.
    Invalid {
        setting: Setting,
        value: String,
        problem: Problem,
    },
    /// More backends than a 16-bit backend index can name.
    TooManyTargets { count: usize },
    /// A Maglev table with fewer slots than backends leaves some without any.
    TableSmallerThanTargets { table_size: u32, targets: usize },
}

impl ConfigError {
    pub(crate) fn invalid(setting: Setting, value: &str, problem: Problem) -> Self {
        Self::Invalid {
            setting,
            value: value.to_owned(),
            problem,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid {
                setting,
                value,
                problem,
            } => write!(
                f,
                "{}: {value:?} {problem}; expected {}",
                setting.env(),
                setting.accepted()
            ),
            Self::TooManyTargets { count } => write!(
                f,
                "{}: {count} backends given; expected {}",
                Setting::TargetIps.env(),
                Setting::TargetIps.accepted()
            ),
            Self::TableSmallerThanTargets {
                table_size,
                targets,
            } => write!(
                f,
                "{}: {table_size} is smaller than the {targets} backends in {}; \
                 expected a prime at least as large (100 times the backends or more \
                 keeps the spread even)",
                Setting::TableSize.env(),
                Setting::TargetIps.env()
            ),
        }
    }
}

impl std::error::Error for ConfigError {}
