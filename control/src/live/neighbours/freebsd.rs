//! FreeBSD: the route through an `RTM_GET` on the routing socket and the
//! ARP table through its sysctl dump (`host::route_socket`; why not `arp
//! -an`'s text is said there).
//!
//! FreeBSD's ARP table has no "stale" state: an entry that nobody refreshes
//! (the balancer's frames never pass the kernel) is deleted when it expires,
//! 20 minutes by default, and re-resolving it leaves it incomplete for a
//! moment. Taking the backend out of service for that moment would be a
//! periodic outage for no reason, so the last MAC seen is remembered and
//! used, with a nudge, while the kernel re-resolves it — what Linux's stale
//! state gives — for at most [`REMEMBER_FOR`] after it was last seen; a
//! neighbour that stops answering ARP is given up after that.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use host::route_socket::RouteSocket;

use super::{Entry, Route};

/// How long a MAC is used after its ARP entry went away or became
/// incomplete: several of the kernel's ARP retries (one a second, five by
/// default).
const REMEMBER_FOR: Duration = Duration::from_secs(30);

/// The kernel's tables, and the MACs last seen in them.
#[derive(Debug)]
pub(super) struct KernelTable {
    socket: RouteSocket,
    /// Address -> (MAC, when the kernel last had it).
    remembered: HashMap<Ipv4Addr, ([u8; 6], Instant)>,
}

impl KernelTable {
    pub(super) fn open() -> io::Result<Self> {
        Ok(Self {
            socket: RouteSocket::open()?,
            remembered: HashMap::new(),
        })
    }

    /// The route toward `backend` (`route -n get`); IPv6 backends are not
    /// resolved here yet.
    pub(super) fn route_to(&mut self, backend: IpAddr) -> io::Result<Route> {
        let IpAddr::V4(backend) = backend else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "IPv6 next hops are not read on FreeBSD yet",
            ));
        };
        let answer = self.socket.route_to(backend)?;
        Ok(Route {
            gateway: answer.gateway.map(IpAddr::V4),
            oif: answer.interface,
        })
    }

    /// The ARP entries on `interface`, each judged, with remembered MACs
    /// standing in for entries being re-resolved.
    pub(super) fn entries(
        &mut self,
        interface: u32,
        _ipv6: bool,
    ) -> io::Result<HashMap<IpAddr, Entry>> {
        let now = Instant::now();
        let kernel: Vec<(Ipv4Addr, Option<[u8; 6]>)> = self
            .socket
            .arp_table()?
            .into_iter()
            .filter(|e| e.interface == interface)
            .map(|e| (e.addr, e.mac))
            .collect();
        let judged = judge_all(&kernel, &mut self.remembered, now);
        Ok(judged
            .into_iter()
            .map(|(addr, entry)| (IpAddr::V4(addr), entry))
            .collect())
    }
}

/// Judges the kernel's entries (address, MAC or `None` while incomplete)
/// against the MACs remembered, updating them: a complete entry is used as
/// it is; an incomplete one (the kernel is asking) or a missing one (it
/// expired: nudge) uses the remembered MAC while it is recent enough.
fn judge_all(
    kernel: &[(Ipv4Addr, Option<[u8; 6]>)],
    remembered: &mut HashMap<Ipv4Addr, ([u8; 6], Instant)>,
    now: Instant,
) -> HashMap<Ipv4Addr, Entry> {
    remembered.retain(|_, (_, seen)| now.saturating_duration_since(*seen) <= REMEMBER_FOR);
    let mut entries = HashMap::with_capacity(kernel.len());
    for &(addr, mac) in kernel {
        let entry = if let Some(mac) = mac {
            remembered.insert(addr, (mac, now));
            Entry {
                mac: Some(mac),
                usable: true,
                nudge: false,
            }
        } else {
            let last = remembered.get(&addr).map(|&(mac, _)| mac);
            Entry {
                mac: last,
                usable: last.is_some(),
                nudge: false,
            }
        };
        entries.insert(addr, entry);
    }
    for (&addr, &(mac, _)) in remembered.iter() {
        entries.entry(addr).or_insert(Entry {
            mac: Some(mac),
            usable: true,
            nudge: true,
        });
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 1);
    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

    #[test]
    fn an_expired_entry_keeps_its_mac_while_re_resolved_then_is_given_up() {
        let mut remembered = HashMap::new();
        let start = Instant::now();
        let seen = judge_all(&[(A, Some(MAC))], &mut remembered, start);
        assert_eq!(
            seen[&A],
            Entry {
                mac: Some(MAC),
                usable: true,
                nudge: false
            }
        );
        // Expired and deleted: used, and the kernel nudged.
        let gone = judge_all(&[], &mut remembered, start + Duration::from_secs(1));
        assert_eq!(
            gone[&A],
            Entry {
                mac: Some(MAC),
                usable: true,
                nudge: true
            }
        );
        // Being re-resolved: used, not nudged again.
        let asking = judge_all(
            &[(A, None)],
            &mut remembered,
            start + Duration::from_secs(2),
        );
        assert_eq!(
            asking[&A],
            Entry {
                mac: Some(MAC),
                usable: true,
                nudge: false
            }
        );
        // Never answered: given up.
        let later = start + REMEMBER_FOR + Duration::from_secs(1);
        assert!(!judge_all(&[], &mut remembered, later).contains_key(&A));
        let incomplete = judge_all(&[(A, None)], &mut remembered, later);
        assert_eq!(
            incomplete[&A],
            Entry {
                mac: None,
                usable: false,
                nudge: false
            }
        );
    }
}
