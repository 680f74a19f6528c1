//! Next-hop MACs for backends, from the kernel's neighbour table.
//!
//! The balancer's frames bypass the kernel, so the kernel never learns that
//! a neighbour is in use: entries we read go stale and a missing one is never
//! looked up. So for a missing, failed or stale entry we send one empty UDP
//! datagram to the backend's discard port through the kernel, which makes it
//! resolve (or re-confirm) the next hop; the next pass reads the answer.
//!
//! The route and the table are read per system: [`linux`] through rtnetlink,
//! [`freebsd`] through the routing socket and the ARP table's sysctl. Each
//! says of every entry whether its MAC may be used and whether it needs a
//! nudge; what follows from that is the same everywhere.
//!
//! IPv6 backends ([`Resolver::resolve_ip`]) are resolved the same way from
//! the NDP cache on Linux (the nudge, a datagram over IPv6, makes the kernel
//! send a neighbour solicitation); on FreeBSD they are reported unreachable
//! (its NDP cache is not read yet).

#[cfg(target_os = "freebsd")]
mod freebsd;
#[cfg(target_os = "linux")]
mod linux;

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};

#[cfg(target_os = "freebsd")]
use freebsd::KernelTable;
#[cfg(target_os = "linux")]
use linux::KernelTable;

/// The discard port (RFC 863): a datagram there asks nothing of the backend.
const DISCARD_PORT: u16 = 9;

/// What is known about the next hop toward one backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextHop {
    /// Frames for the backend go to this MAC.
    Resolved([u8; 6]),
    /// The kernel is resolving it (or was just asked to).
    Pending { via: IpAddr },
    /// The backend cannot be reached through the balancer's interface.
    Unreachable(String),
}

impl NextHop {
    pub fn mac(&self) -> Option<[u8; 6]> {
        match self {
            Self::Resolved(mac) => Some(*mac),
            _ => None,
        }
    }
}

impl fmt::Display for NextHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Resolved(m) => write!(
                f,
                "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                m[0], m[1], m[2], m[3], m[4], m[5]
            ),
            Self::Pending { via } => write!(f, "unresolved (resolving {via})"),
            Self::Unreachable(why) => write!(f, "unreachable: {why}"),
        }
    }
}

/// One neighbour-table entry as the resolver needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    mac: Option<[u8; 6]>,
    /// The MAC may be used.
    usable: bool,
    /// The kernel should be made to resolve or re-confirm it.
    nudge: bool,
}

/// The route toward a backend: its gateway (`None` on-link) and interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Route {
    gateway: Option<IpAddr>,
    oif: u32,
}

/// Resolves backends' next hops on one interface.
#[derive(Debug)]
pub struct Resolver {
    table: KernelTable,
    interface: u32,
    interface_name: String,
}

impl Resolver {
    pub fn new(interface: u32, interface_name: &str) -> io::Result<Self> {
        Ok(Self {
            table: KernelTable::open()?,
            interface,
            interface_name: interface_name.to_owned(),
        })
    }

    /// One pass: the next hop of every backend, nudging the kernel where an
    /// entry is missing, failed or stale; IPv4 next hops from the ARP
    /// table, IPv6 ones from the NDP cache.
    pub fn resolve_ip(&mut self, backends: &[IpAddr]) -> io::Result<HashMap<IpAddr, NextHop>> {
        let ipv6 = backends.iter().any(IpAddr::is_ipv6);
        let table: HashMap<IpAddr, Entry> = self.table.entries(self.interface, ipv6)?;
        let mut result = HashMap::with_capacity(backends.len());
        for &backend in backends {
            let hop = match self.table.route_to(backend) {
                Err(e) => NextHop::Unreachable(format!("no route: {e}")),
                Ok(route) if route.oif != self.interface => NextHop::Unreachable(format!(
                    "the kernel routes it through interface {} ({}), not {}",
                    route.oif,
                    super::device::name_of(route.oif),
                    self.interface_name
                )),
                Ok(route) => {
                    let via = route.gateway.unwrap_or(backend);
                    let entry = table.get(&via);
                    let (usable, nudge) = entry.map_or((false, true), |n| (n.usable, n.nudge));
                    if nudge {
                        nudge_toward(backend);
                    }
                    match entry.and_then(|n| n.mac) {
                        Some(mac) if usable => NextHop::Resolved(mac),
                        _ => NextHop::Pending { via },
                    }
                }
            };
            result.insert(backend, hop);
        }
        Ok(result)
    }
}

/// Sends one empty datagram to the backend's discard port, so the kernel
/// resolves the next hop on its way (ARP or a neighbour solicitation).
/// Failure only delays resolution.
fn nudge_toward(backend: IpAddr) {
    let any = match backend {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    if let Ok(socket) = UdpSocket::bind((any, 0)) {
        let _ = socket.send_to(&[], SocketAddr::new(backend, DISCARD_PORT));
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_backend_routed_through_another_interface_is_unreachable() {
        // SAFETY: the literal is NUL-terminated.
        let lo = unsafe { libc::if_nametoindex(c"lo".as_ptr()) };
        // Pretend the balancer runs on an interface that is not lo: 127.0.0.1
        // is then routed elsewhere.
        let mut resolver = Resolver::new(lo + 100_000, "rr-test0").expect("rtnetlink");
        let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let hops = resolver.resolve_ip(&[localhost]).expect("resolve");
        let hop = &hops[&localhost];
        assert!(
            matches!(hop, NextHop::Unreachable(why) if why.contains("(lo), not rr-test0")),
            "{hop:?}"
        );
    }
}
