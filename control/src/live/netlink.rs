//! The two rtnetlink questions the balancer asks the kernel: which next hop
//! and interface a backend is reached through (`RTM_GETROUTE`), and what the
//! neighbour table knows about addresses on an interface (`RTM_GETNEIGH`).

use std::io;
use std::net::Ipv4Addr;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::protocols::NETLINK_ROUTE;
use netlink_sys::{Socket, SocketAddr};

/// Where the kernel would send a packet for some destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The gateway, or `None` when the destination is on-link.
    pub gateway: Option<Ipv4Addr>,
    /// The outgoing interface's index.
    pub oif: u32,
}

/// One IPv4 neighbour-table entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neighbour {
    pub addr: Ipv4Addr,
    pub mac: Option<[u8; 6]>,
    pub state: NeighbourState,
}

/// An rtnetlink socket in the opening thread's network namespace.
#[derive(Debug)]
pub struct RouteNetlink {
    socket: Socket,
    sequence: u32,
}

impl RouteNetlink {
    pub fn open() -> io::Result<Self> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(Self {
            socket,
            sequence: 0,
        })
    }

    /// The route the kernel would use toward `dst`.
    pub fn route_to(&mut self, dst: Ipv4Addr) -> io::Result<Route> {
        let mut message = RouteMessage::default();
        message.header.address_family = AddressFamily::Inet;
        message.header.destination_prefix_length = 32;
        message
            .attributes
            .push(RouteAttribute::Destination(RouteAddress::Inet(dst)));
        let replies = self.ask(RouteNetlinkMessage::GetRoute(message), false)?;
        for reply in replies {
            if let RouteNetlinkMessage::NewRoute(route) = reply {
                let mut found = Route {
                    gateway: None,
                    oif: 0,
                };
                for attribute in route.attributes {
                    match attribute {
                        RouteAttribute::Gateway(RouteAddress::Inet(gw)) => found.gateway = Some(gw),
                        RouteAttribute::Oif(oif) => found.oif = oif,
                        _ => {}
                    }
                }
                return Ok(found);
            }
        }
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("the kernel returned no route to {dst}"),
        ))
    }

    /// The IPv4 neighbour entries on interface `index`.
    pub fn neighbours(&mut self, index: u32) -> io::Result<Vec<Neighbour>> {
        let mut message = NeighbourMessage::default();
        message.header.family = AddressFamily::Inet;
        message.header.ifindex = index;
        let replies = self.ask(RouteNetlinkMessage::GetNeighbour(message), true)?;
        let mut found = Vec::new();
        for reply in replies {
            let RouteNetlinkMessage::NewNeighbour(entry) = reply else {
                continue;
            };
            if entry.header.ifindex != index {
                continue;
            }
            let mut addr = None;
            let mut mac = None;
            for attribute in entry.attributes {
                match attribute {
                    NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => addr = Some(a),
                    NeighbourAttribute::LinkLayerAddress(bytes) => {
                        mac = <[u8; 6]>::try_from(bytes.as_slice()).ok();
                    }
                    _ => {}
                }
            }
            if let Some(addr) = addr {
                found.push(Neighbour {
                    addr,
                    mac,
                    state: entry.header.state,
                });
            }
        }
        Ok(found)
    }

    /// Sends one request and collects its replies (all parts of a dump).
    fn ask(
        &mut self,
        message: RouteNetlinkMessage,
        dump: bool,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.sequence = self.sequence.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST;
        if dump {
            header.flags |= NLM_F_DUMP;
        }
        header.sequence_number = self.sequence;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(message));
        packet.finalize();
        let mut buffer = vec![0; packet.buffer_len()];
        packet.serialize(&mut buffer);
        self.socket.send(&buffer, 0)?;
        let mut replies = Vec::new();
        loop {
            let (data, _) = self.socket.recv_from_full()?;
            let mut offset = 0;
            while offset < data.len() {
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[offset..])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let length = reply.header.length as usize;
                if reply.header.sequence_number == self.sequence {
                    match reply.payload {
                        NetlinkPayload::Error(error) => {
                            return match error.code {
                                None => Ok(replies),
                                Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
                            };
                        }
                        NetlinkPayload::Done(_) => return Ok(replies),
                        NetlinkPayload::InnerMessage(inner) => {
                            replies.push(inner);
                            // A non-dump request is answered by one message.
                            if !dump {
                                return Ok(replies);
                            }
                        }
                        _ => {}
                    }
                }
                if length == 0 {
                    break;
                }
                offset += (length + 3) & !3;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_addresses_route_through_lo_without_a_gateway() {
        let mut netlink = RouteNetlink::open().expect("rtnetlink socket");
        let route = netlink
            .route_to(Ipv4Addr::LOCALHOST)
            .expect("a route to 127.0.0.1");
        assert_eq!(route.gateway, None);
        // SAFETY: the literal is NUL-terminated.
        let lo = unsafe { libc::if_nametoindex(c"lo".as_ptr()) };
        assert_eq!(route.oif, lo);
    }

    #[test]
    fn a_neighbour_dump_parses_to_its_done_message() {
        let mut netlink = RouteNetlink::open().expect("rtnetlink socket");
        // SAFETY: the literal is NUL-terminated.
        let lo = unsafe { libc::if_nametoindex(c"lo".as_ptr()) };
        netlink.neighbours(lo).expect("a complete neighbour dump");
    }
}
