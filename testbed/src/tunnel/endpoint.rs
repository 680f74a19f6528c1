//! The two endpoints with their I/O: each owns its tun device and raw
//! socket, runs its loop on the calling thread until a stop flag is set, and
//! counts every packet's fate in [`Counters`] that can be read meanwhile.
//! Dropping an endpoint closes the tun, which removes the device with its
//! routes and addresses.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use socket2::SockAddr;

use super::config::{DecapConfig, EncapConfig};
use super::counters::Counters;
use super::decap::{DecapDrop, Decapsulator};
use super::ecmp_group::EcmpGroup;
use super::encap::{EncapDrop, Encapsulator, HEADROOM};
use super::gre_socket::GreSocket;
use super::poll::{nothing_queued, run_until, run_until_any};
use super::system::{self, SetupError};
use super::tun::Tun;

/// The largest IP packet.
const MAX_PACKET: usize = 65_535;
/// Outer IPv4 header (the kernel's, without options).
const OUTER_IPV4_LEN: u16 = 20;
/// Outer IPv6 header (the kernel's, without extension headers).
const OUTER_IPV6_LEN: u16 = 40;

/// Why an endpoint could not start or stopped early.
#[derive(Debug)]
pub enum TunnelError {
    /// The options contradict each other or the system.
    Config(String),
    /// `/dev/net/tun` could not give us the device.
    Tun(io::Error),
    /// The raw GRE socket could not be opened (needs `CAP_NET_RAW`).
    Socket(io::Error),
    /// Configuring the device failed.
    Setup(SetupError),
    /// The packet loop failed reading its descriptor.
    Loop(io::Error),
}

impl fmt::Display for TunnelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TunnelError::Config(text) => write!(f, "{text}"),
            TunnelError::Tun(e) => write!(f, "tun device (needs root and /dev/net/tun): {e}"),
            TunnelError::Socket(e) => write!(f, "{e} (needs root or CAP_NET_RAW)"),
            TunnelError::Setup(e) => write!(f, "configuring the tun device: {e}"),
            TunnelError::Loop(e) => write!(f, "packet loop: {e}"),
        }
    }
}

impl std::error::Error for TunnelError {}

impl From<SetupError> for TunnelError {
    fn from(e: SetupError) -> Self {
        TunnelError::Setup(e)
    }
}

/// Whether the outer header is IPv6: the remotes' family, which must be one
/// (one socket sends to all of them), as must `--local`'s. The routes
/// `--follow-routes` watches are IPv4 /32s, so it takes IPv4 remotes only.
fn outer_is_ipv6(config: &EncapConfig) -> Result<bool, TunnelError> {
    let ipv6 = config.remote.first().is_some_and(IpAddr::is_ipv6);
    let other_family = |a: &IpAddr| a.is_ipv6() != ipv6;
    if let Some(other) = config.remote.iter().find(|a| other_family(a)) {
        return Err(TunnelError::Config(format!(
            "--remote {other} is not of the family of {}: give balancers of one family (IPv4 for GRE over IPv4, IPv6 for GRE over IPv6)",
            config.remote[0]
        )));
    }
    if let Some(local) = config.local.filter(other_family) {
        return Err(TunnelError::Config(format!(
            "--local {local} is not of the family of --remote {}: give a source address of the same family",
            config.remote[0]
        )));
    }
    if ipv6 && config.follow_routes {
        return Err(TunnelError::Config(format!(
            "--follow-routes follows IPv4 /32 routes; --remote {} is IPv6: use --remotes-file instead",
            config.remote[0]
        )));
    }
    Ok(ipv6)
}

/// The tun's MTU when none is given: what fits a 1500-byte outer packet
/// behind the outer IP header and the GRE header (with its key, if any).
fn default_mtu(ipv6: bool, key: Option<u32>) -> u16 {
    let outer = if ipv6 { OUTER_IPV6_LEN } else { OUTER_IPV4_LEN };
    let gre: u16 = if key.is_some() { 8 } else { 4 };
    1500 - outer - gre
}

// Counter indexes of the router side; drops follow, then one per remote.
const E_READ: usize = 0;
const E_ENCAPSULATED: usize = 1;
const E_BYTES: usize = 2;
const E_SEND_ERRORS: usize = 3;
const E_DROPS: usize = 4;

/// The router side: tun -> GRE -> remote balancer.
#[derive(Debug)]
pub struct EncapEndpoint {
    tun: Tun,
    socket: GreSocket,
    encapsulator: Encapsulator,
    remotes: Vec<SockAddr>,
    counters: Arc<Counters>,
    buf: Vec<u8>,
    ecmp: EcmpGroup,
}

impl EncapEndpoint {
    /// Creates the tun, routes the VIPs into it and opens the GRE socket.
    pub fn open(config: &EncapConfig) -> Result<Self, TunnelError> {
        let no_remote = || TunnelError::Config("give at least one --remote and one --vip".into());
        if config.vip.is_empty() {
            return Err(no_remote());
        }
        let encapsulator = Encapsulator::new(
            config.remote.clone(),
            config.key,
            config.seed,
            config.vip.clone(),
        )
        .ok_or_else(no_remote)?;
        if let Some((remote, vip)) = config
            .remote
            .iter()
            .find_map(|r| config.vip.iter().find(|v| v.contains(*r)).map(|v| (r, v)))
        {
            return Err(TunnelError::Config(format!(
                "remote {remote} lies inside VIP {vip}: its GRE packets would be routed back into the tunnel"
            )));
        }
        let ipv6 = outer_is_ipv6(config)?;
        let mtu = config.mtu.unwrap_or_else(|| default_mtu(ipv6, config.key));
        let tun = Tun::open(&config.tun).map_err(TunnelError::Tun)?;
        // IPv6 off before the link is up, or its first solicitations go out.
        if !config.vip.iter().any(|v| v.address().is_ipv6()) {
            system::disable_ipv6(tun.name())?;
        }
        system::link_up(tun.name(), mtu)?;
        for vip in &config.vip {
            system::route_into(tun.name(), vip)?;
        }
        let socket = GreSocket::open_sender(ipv6, config.local).map_err(TunnelError::Socket)?;
        socket.discard_received().map_err(TunnelError::Socket)?;
        let names = ["read", "encapsulated", "encapsulated_bytes", "send_errors"]
            .into_iter()
            .map(String::from)
            .chain(EncapDrop::ALL.iter().map(|d| d.name().to_owned()))
            .chain(config.remote.iter().map(|r| format!("sent_to_{r}")));
        Ok(Self {
            tun,
            socket,
            encapsulator,
            remotes: config
                .remote
                .iter()
                .map(|r| GreSocket::remote(*r))
                .collect(),
            counters: Arc::new(Counters::new(names)),
            buf: vec![0; HEADROOM + MAX_PACKET],
            ecmp: EcmpGroup::new(config),
        })
    }

    /// The counters, readable while [`run`](Self::run) runs.
    pub fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.counters)
    }

    /// Moves packets until `stop` is set.
    pub fn run(&mut self, stop: &AtomicBool) -> Result<(), TunnelError> {
        let Self {
            tun,
            socket,
            encapsulator,
            remotes,
            counters,
            buf,
            ecmp,
        } = self;
        let fd = tun.as_raw_fd();
        run_until(fd, stop, || {
            ecmp.refresh(encapsulator);
            let Some(len) = nothing_queued(tun.recv(&mut buf[HEADROOM..]))? else {
                return Ok(false);
            };
            counters.add(E_READ, 1);
            match encapsulator.encapsulate(buf, len) {
                Ok(packet) => {
                    match socket.send_to(packet.gre, &remotes[ecmp.active[packet.remote]]) {
                        Ok(_) => {
                            counters.add(E_ENCAPSULATED, 1);
                            counters.add(E_BYTES, packet.gre.len() as u64);
                            counters.add(
                                E_DROPS + EncapDrop::ALL.len() + ecmp.active[packet.remote],
                                1,
                            );
                        }
                        // Unreachable remotes, full queues: the packet is lost as
                        // on a wire; the tunnel keeps going.
                        Err(_) => counters.add(E_SEND_ERRORS, 1),
                    }
                }
                Err(drop) => counters.add(E_DROPS + drop as usize, 1),
            }
            Ok(true)
        })
        .map_err(TunnelError::Loop)
    }
}

// Counter indexes of the server side; drops follow.
const D_RECEIVED: usize = 0;
const D_DECAPSULATED: usize = 1;
const D_BYTES: usize = 2;
const D_TUN_WRITE_ERRORS: usize = 3;
const D_DROPS: usize = 4;

/// The server side: GRE over IPv4 or IPv6 -> tun holding the VIPs -> local
/// sockets.
#[derive(Debug)]
pub struct DecapEndpoint {
    tun: Tun,
    socket: GreSocket,
    /// GRE over IPv6; `None` where the system has no IPv6.
    socket_v6: Option<GreSocket>,
    decapsulator: Decapsulator,
    counters: Arc<Counters>,
    buf: Vec<u8>,
}

impl DecapEndpoint {
    /// Creates the tun with the VIPs on it and opens the GRE socket.
    pub fn open(config: &DecapConfig) -> Result<Self, TunnelError> {
        if config.vip.is_empty() {
            return Err(TunnelError::Config("give at least one --vip".into()));
        }
        if let Some(vip) = config.vip.iter().find(|v| !v.is_host()) {
            return Err(TunnelError::Config(format!(
                "--vip {vip}: the server side takes addresses (a /32 or /128), which it puts on the tun device"
            )));
        }
        let tun = Tun::open(&config.tun).map_err(TunnelError::Tun)?;
        system::loose_rp_filter(tun.name())?;
        if !config.vip.iter().any(|v| v.address().is_ipv6()) {
            system::disable_ipv6(tun.name())?;
        }
        system::link_up(tun.name(), 1500)?;
        for vip in &config.vip {
            system::address_on(tun.name(), vip)?;
        }
        let socket = GreSocket::open(None, true).map_err(TunnelError::Socket)?;
        let socket_v6 = match GreSocket::open_v6(None, true) {
            Ok(socket) => Some(socket),
            // A kernel without IPv6 cannot receive GRE over it either.
            Err(e) if e.raw_os_error() == Some(libc::EAFNOSUPPORT) => None,
            Err(e) => return Err(TunnelError::Socket(e)),
        };
        let names = [
            "received",
            "decapsulated",
            "decapsulated_bytes",
            "tun_write_errors",
        ]
        .into_iter()
        .map(String::from)
        .chain(DecapDrop::ALL.iter().map(|d| d.name().to_owned()));
        Ok(Self {
            tun,
            socket,
            socket_v6,
            decapsulator: Decapsulator::new(config.key, config.vip.clone()),
            counters: Arc::new(Counters::new(names)),
            buf: vec![0; MAX_PACKET],
        })
    }

    /// The counters, readable while [`run`](Self::run) runs.
    pub fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.counters)
    }

    /// Moves packets until `stop` is set.
    pub fn run(&mut self, stop: &AtomicBool) -> Result<(), TunnelError> {
        let Self {
            tun,
            socket,
            socket_v6,
            decapsulator,
            counters,
            buf,
        } = self;
        let mut fds = vec![socket.as_raw_fd()];
        fds.extend(socket_v6.as_ref().map(AsRawFd::as_raw_fd));
        run_until_any(&fds, stop, |i| {
            // Descriptor 1 is the IPv6 socket, whose packets come without
            // their outer header.
            let (from, is_v6) = match socket_v6.as_mut() {
                Some(v6) if i == 1 => (v6, true),
                _ => (&mut *socket, false),
            };
            let Some(len) = nothing_queued(from.recv(buf))? else {
                return Ok(false);
            };
            counters.add(D_RECEIVED, 1);
            let decapsulated = if is_v6 {
                decapsulator.decapsulate_gre(&buf[..len])
            } else {
                decapsulator.decapsulate(&buf[..len])
            };
            match decapsulated {
                Ok(inner) => match tun.send(inner) {
                    Ok(_) => {
                        counters.add(D_DECAPSULATED, 1);
                        counters.add(D_BYTES, inner.len() as u64);
                    }
                    Err(_) => counters.add(D_TUN_WRITE_ERRORS, 1),
                },
                Err(drop) => counters.add(D_DROPS + drop as usize, 1),
            }
            Ok(true)
        })
        .map_err(TunnelError::Loop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encap_config(vip: &str, remote: &str) -> EncapConfig {
        EncapConfig {
            tun: "rrtn-unit".into(),
            vip: vec![vip.parse().unwrap()],
            remote: vec![remote.parse().unwrap()],
            local: None,
            key: None,
            seed: 0,
            mtu: None,
            remotes_file: None,
            follow_routes: false,
        }
    }

    #[test]
    fn a_remote_inside_a_vip_is_refused_before_anything_is_created() {
        let error = EncapEndpoint::open(&encap_config("10.0.0.0/8", "10.1.2.3")).unwrap_err();
        let text = error.to_string();
        assert!(matches!(error, TunnelError::Config(_)), "{text}");
        assert!(
            text.contains("10.1.2.3") && text.contains("10.0.0.0/8"),
            "{text}"
        );
    }

    #[test]
    fn an_encap_without_remotes_or_vips_is_refused() {
        let mut config = encap_config("192.0.2.1", "10.1.2.3");
        config.remote.clear();
        assert!(matches!(
            EncapEndpoint::open(&config),
            Err(TunnelError::Config(_))
        ));
        let mut config = encap_config("192.0.2.1", "10.1.2.3");
        config.vip.clear();
        assert!(matches!(
            EncapEndpoint::open(&config),
            Err(TunnelError::Config(_))
        ));
    }

    #[test]
    fn ipv6_remotes_make_the_outer_header_ipv6_and_the_default_mtu_20_bytes_smaller() {
        let config = encap_config("192.0.2.1", "fd00:201::10");
        assert!(outer_is_ipv6(&config).unwrap());
        assert!(!outer_is_ipv6(&encap_config("192.0.2.1", "10.1.2.3")).unwrap());
        assert_eq!(default_mtu(false, None), 1476);
        assert_eq!(default_mtu(true, None), 1456);
        assert_eq!(default_mtu(true, Some(7)), 1452);
    }

    #[test]
    fn remotes_and_local_of_two_families_and_ipv6_with_follow_routes_are_refused_by_name() {
        let mut mixed = encap_config("192.0.2.1", "fd00:201::10");
        mixed.remote.push("10.1.2.3".parse().unwrap());
        let text = EncapEndpoint::open(&mixed).unwrap_err().to_string();
        assert!(
            text.contains("--remote 10.1.2.3") && text.contains("fd00:201::10"),
            "{text}"
        );
        let mut local = encap_config("192.0.2.1", "fd00:201::10");
        local.local = Some("10.1.2.1".parse().unwrap());
        let text = EncapEndpoint::open(&local).unwrap_err().to_string();
        assert!(text.contains("--local 10.1.2.1"), "{text}");
        let mut routes = encap_config("192.0.2.1", "fd00:201::10");
        routes.follow_routes = true;
        let text = EncapEndpoint::open(&routes).unwrap_err().to_string();
        assert!(
            text.contains("--follow-routes") && text.contains("--remotes-file"),
            "{text}"
        );
    }

    #[test]
    fn the_server_side_takes_vip_addresses_not_prefixes() {
        let config = DecapConfig {
            tun: "rrtn-unit".into(),
            vip: vec!["192.0.2.0/24".parse().unwrap()],
            key: None,
        };
        let text = DecapEndpoint::open(&config).unwrap_err().to_string();
        assert!(
            text.contains("192.0.2.0/24") && text.contains("/32"),
            "{text}"
        );
    }
}
