//! The balancer's configuration: every option is a flag and an `RR_*`
//! environment variable, parsed and checked at start, shared by
//! `rusty_rail replay` and the live balancer.

mod api_access;
mod error;
pub mod file;
mod health;
mod listen;
mod mac;
mod primes;
mod targets;
mod values;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

pub use api_access::{
    ApiAccessArgs, ApiAccessError, ApiHosts, ApiToken, DEFAULT_MAX_CONNECTIONS, DEFAULT_RATE,
};
pub use error::{ConfigError, Problem, Setting};
pub use health::{parse_health_check, HealthCheck};
pub use listen::{parse_api_listen, ApiListen, DEFAULT_API};
pub use mac::{parse_backend_macs, BackendMacs, MacAddr};
pub use primes::{is_prime, nearest_primes};
pub use targets::{parse_targets, TargetSpec, Targets, DEFAULT_WEIGHT, MAX_TARGETS};
pub use values::{
    is_global_unicast, parse_duration, parse_seed, parse_table_size, parse_vips, Vips,
    TABLE_SIZE_RANGE,
};

/// The hash seed used when none is given (`RustyRai` in ASCII). Every
/// balancer sharing a seed and backend list picks the same backend for a flow.
pub const DEFAULT_SEED: u64 = 0x5275_7374_7952_6169;

/// The options that shape the balancer, for subcommands to flatten.
#[derive(Debug, Clone, clap::Args)]
pub struct BalancerArgs {
    /// Backends: `ip` or `ip:weight` (weight 0..=65535, default 1; 0 drains),
    /// ';'-separated (',' also accepted). IPv4 or IPv6 (GRE over IPv6 toward
    /// an IPv6 backend); an IPv6 address with a weight in brackets:
    /// `[2001:db8::1]:3`.
    #[arg(long, env = "RR_TARGET_IPS", value_name = "IP[:WEIGHT];...", value_parser = targets::parse_targets_arg)]
    pub target_ips: Targets,

    /// The balancer's own IPv4 address: GRE packets to it are balanced, and it
    /// is the outer source of what is sent to backends.
    #[arg(long, env = "RR_LB_IP", value_name = "IPV4", value_parser = values::parse_lb_ip)]
    pub lb_ip: Option<Ipv4Addr>,

    /// The balancer's own IPv6 address: the outer source of GRE over IPv6
    /// toward IPv6 backends, and GRE over IPv6 to it is balanced. The live
    /// balancer defaults to its interface's first global IPv6 address.
    #[arg(long, env = "RR_LB_IPV6", value_name = "IPV6", value_parser = values::parse_lb_ipv6)]
    pub lb_ipv6: Option<Ipv6Addr>,

    /// The balancer's MAC in replay: the Ethernet source of frames sent to
    /// backends. The live balancer uses its interface's MAC.
    #[arg(long, env = "RR_LB_MAC", value_name = "MAC", default_value = "02:00:00:00:00:01", value_parser = mac::parse_lb_mac)]
    pub lb_mac: MacAddr,

    /// The MAC frames to every backend are sent to in replay (the router, or
    /// the backend itself on a shared segment), unless --backend-macs
    /// overrides it. The live balancer asks the kernel's neighbour table.
    #[arg(long, env = "RR_NEXTHOP_MAC", value_name = "MAC", default_value = "02:00:00:00:00:02", value_parser = mac::parse_nexthop_mac)]
    pub nexthop_mac: MacAddr,

    /// Per-backend next-hop MACs: `ip=mac` entries, ';'-separated (live: these
    /// backends skip neighbour resolution).
    #[arg(long, env = "RR_BACKEND_MACS", value_name = "IP=MAC;...", default_value = "", hide_default_value = true, value_parser = parse_backend_macs)]
    pub backend_macs: BackendMacs,

    /// VIP mode: plain IPv4 or IPv6 packets to these addresses are
    /// GRE-encapsulated toward a backend. ';'-separated; none by default.
    #[arg(long, env = "RR_VIPS", value_name = "IP;...", default_value = "", hide_default_value = true, value_parser = parse_vips)]
    pub vips: Vips,

    /// Flow hash seed, decimal or 0x-hex. Balancers that share it (and the
    /// backend list) choose the same backend for a flow.
    #[arg(long, env = "RR_SEED", value_name = "U64", default_value = "0x5275737479526169", value_parser = parse_seed)]
    pub seed: u64,

    /// Maglev lookup table size; must be prime, ideally 100 times the
    /// number of backends or more.
    #[arg(long, env = "RR_TABLE_SIZE", value_name = "PRIME", default_value = "65537", value_parser = parse_table_size)]
    pub table_size: u32,

    /// Connections each worker can track at once.
    #[arg(long, env = "RR_CONNTRACK_CAPACITY", value_name = "N", default_value = "1048576", value_parser = values::parse_conntrack_capacity)]
    pub conntrack_capacity: usize,

    /// Idle time after which a TCP connection is forgotten (e.g. 300s, 5m, or
    /// a bare number of seconds).
    #[arg(long, env = "RR_TCP_TIMEOUT", value_name = "DURATION", default_value = "300s", value_parser = values::parse_tcp_timeout)]
    pub tcp_timeout: Duration,

    /// Idle time after which a UDP flow is forgotten.
    #[arg(long, env = "RR_UDP_TIMEOUT", value_name = "DURATION", default_value = "30s", value_parser = values::parse_udp_timeout)]
    pub udp_timeout: Duration,

    /// New connections a worker records per second; beyond it new flows are
    /// still balanced but not tracked (a SYN flood cannot evict real flows).
    #[arg(long, env = "RR_MAX_NEW_FLOWS", value_name = "N", default_value = "1000000", value_parser = values::parse_max_new_flows)]
    pub max_new_flows_per_sec: u64,

    /// How long a non-first IP fragment waits for its first fragment (which
    /// carries the ports) before it is dropped; 0 holds nothing.
    #[arg(long, env = "RR_FRAGMENT_HOLD", value_name = "DURATION", default_value = "100ms", value_parser = values::parse_fragment_hold)]
    pub fragment_hold: Duration,

    /// Fragments a worker holds at most while waiting for first fragments.
    #[arg(long, env = "RR_FRAGMENT_HOLD_CAPACITY", value_name = "FRAMES", default_value = "64", value_parser = values::parse_fragment_hold_capacity)]
    pub fragment_hold_capacity: usize,

    /// Largest IP packet sent toward backends; VIP-mode packets that would
    /// exceed it once encapsulated are dropped.
    #[arg(long, env = "RR_MTU", value_name = "BYTES", default_value = "1500", value_parser = values::parse_mtu)]
    pub mtu: u16,

    /// Backend health check: `tcp:PORT`, `http:PORT/PATH` (2xx or 3xx is
    /// healthy) or `none` (every backend counts as up). With a check, a
    /// backend starts up and leaves after --health-fall failures in a row.
    #[arg(long, env = "RR_HEALTH", value_name = "CHECK", default_value = "none", value_parser = parse_health_check)]
    pub health: HealthCheck,

    /// Time between two checks of a backend.
    #[arg(long, env = "RR_HEALTH_INTERVAL", value_name = "DURATION", default_value = "1s", value_parser = health::parse_health_interval)]
    pub health_interval: Duration,

    /// How long one check may take before it counts as failed.
    #[arg(long, env = "RR_HEALTH_TIMEOUT", value_name = "DURATION", default_value = "1s", value_parser = health::parse_health_timeout)]
    pub health_timeout: Duration,

    /// Successes in a row that bring a down backend back.
    #[arg(long, env = "RR_HEALTH_RISE", value_name = "N", default_value = "2", value_parser = health::parse_health_rise)]
    pub health_rise: u32,

    /// Failures in a row that take an up backend out.
    #[arg(long, env = "RR_HEALTH_FALL", value_name = "N", default_value = "3", value_parser = health::parse_health_fall)]
    pub health_fall: u32,

    /// Where the HTTP API (backends, stats, Prometheus metrics) listens;
    /// `none` or `off` runs without it.
    #[arg(long, env = "RR_API", value_name = "IP:PORT", default_value = DEFAULT_API, value_parser = parse_api_listen)]
    pub api: ApiListen,

    /// Who may use the API and how much: token, Host names, limits.
    #[command(flatten)]
    pub api_access: ApiAccessArgs,
}

impl BalancerArgs {
    /// Checks what no single option can: the Maglev table must have at least
    /// one slot per backend.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let targets = self.target_ips.as_slice().len();
        if (self.table_size as usize) < targets {
            return Err(ConfigError::TableSmallerThanTargets {
                table_size: self.table_size,
                targets,
            });
        }
        Ok(())
    }

    /// The MAC to send `backend`'s frames to.
    pub fn backend_mac(&self, backend: IpAddr) -> MacAddr {
        self.backend_macs.mac_for(backend, self.nexthop_mac)
    }
}

/// The entries of a `;`- or `,`-separated list, trimmed, empty ones skipped
/// (so a trailing separator is harmless).
pub(crate) fn list_entries(s: &str) -> impl Iterator<Item = &str> {
    s.split([';', ','])
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
}

#[cfg(test)]
mod tests;
