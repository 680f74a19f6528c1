//! Linux: the route and the neighbour table through rtnetlink
//! (`host::netlink`), each entry judged by its NUD state.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;

use host::netlink::{NeighbourState, Netlink, NetlinkError};

use super::{Entry, Route};

/// The kernel's tables, read through one rtnetlink socket.
#[derive(Debug)]
pub(super) struct KernelTable {
    netlink: Netlink,
}

impl KernelTable {
    pub(super) fn open() -> io::Result<Self> {
        Ok(Self {
            netlink: Netlink::open()?,
        })
    }

    /// The route toward `backend` (`ip route get`).
    pub(super) fn route_to(&mut self, backend: IpAddr) -> Result<Route, NetlinkError> {
        let route = self.netlink.route_to(backend)?;
        Ok(Route {
            gateway: route.gateway,
            oif: route.oif,
        })
    }

    /// The IPv4 neighbours on `interface` (and with `ipv6` the IPv6 ones,
    /// NDP's), each judged: NDP's states are ARP's.
    pub(super) fn entries(
        &mut self,
        interface: u32,
        ipv6: bool,
    ) -> io::Result<HashMap<IpAddr, Entry>> {
        let mut neighbours = self.netlink.neighbours(interface, false)?;
        if ipv6 {
            neighbours.extend(self.netlink.neighbours(interface, true)?);
        }
        Ok(neighbours
            .into_iter()
            .map(|n| {
                let (usable, nudge) = judge(n.state);
                let entry = Entry {
                    mac: n.mac,
                    usable,
                    nudge,
                };
                (n.addr, entry)
            })
            .collect())
    }
}

/// Whether an entry's MAC may be used, and whether it needs a nudge.
fn judge(state: NeighbourState) -> (bool, bool) {
    match state {
        NeighbourState::Reachable
        | NeighbourState::Permanent
        | NeighbourState::Noarp
        | NeighbourState::Delay
        | NeighbourState::Probe => (true, false),
        // Still the last MAC the kernel confirmed: use it, and have it checked.
        NeighbourState::Stale => (true, true),
        // The kernel is already asking.
        NeighbourState::Incomplete => (false, false),
        _ => (false, true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_entries_are_used_and_refreshed_incomplete_ones_are_waited_for() {
        assert_eq!(judge(NeighbourState::Reachable), (true, false));
        assert_eq!(judge(NeighbourState::Permanent), (true, false));
        assert_eq!(judge(NeighbourState::Stale), (true, true));
        assert_eq!(judge(NeighbourState::Incomplete), (false, false));
        assert_eq!(judge(NeighbourState::Failed), (false, true));
    }
}
