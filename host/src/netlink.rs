//! The one rtnetlink client of the workspace: small and synchronous, each
//! request acknowledged (or its dump finished) before the next. It asks what
//! the balancer needs (the route toward a backend, the neighbour table) and
//! makes what a lab needs (links, bridges, veths, VXLAN, addresses, routes).
//! A client belongs to the network namespace of the thread that opened it,
//! so one is opened per namespace and per worker thread (which is what lets
//! labs be built in parallel without one `ip` process per object).

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::RawFd;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE,
    NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, InfoVxlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::protocols::NETLINK_ROUTE;
use netlink_sys::{Socket, SocketAddr};

/// A neighbour entry's state, as the kernel reports it.
pub use netlink_packet_route::neighbour::NeighbourState;

/// A failed netlink request, naming what it tried to do.
#[derive(Debug)]
pub struct NetlinkError {
    pub what: String,
    pub source: io::Error,
}

impl fmt::Display for NetlinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "netlink: {} failed: {}", self.what, self.source)
    }
}

impl std::error::Error for NetlinkError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl From<NetlinkError> for io::Error {
    fn from(error: NetlinkError) -> Self {
        io::Error::new(error.source.kind(), error.to_string())
    }
}

/// Where the kernel would send a packet for some destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The gateway (of the destination's family), or `None` when the
    /// destination is on-link.
    pub gateway: Option<IpAddr>,
    /// The outgoing interface's index.
    pub oif: u32,
}

/// One neighbour-table entry: ARP for IPv4, NDP for IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neighbour {
    pub addr: IpAddr,
    pub mac: Option<[u8; 6]>,
    pub state: NeighbourState,
}

/// An rtnetlink socket in the opening thread's network namespace.
#[derive(Debug)]
pub struct Netlink {
    socket: Socket,
    sequence: u32,
}

impl Netlink {
    pub fn open() -> Result<Self, NetlinkError> {
        let fail = |source| NetlinkError {
            what: "opening a NETLINK_ROUTE socket".into(),
            source,
        };
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(fail)?;
        socket.bind_auto().map_err(fail)?;
        socket.connect(&SocketAddr::new(0, 0)).map_err(fail)?;
        Ok(Self {
            socket,
            sequence: 0,
        })
    }

    /// Sends one request and waits for its acknowledgement.
    fn request(
        &mut self,
        message: RouteNetlinkMessage,
        create: bool,
        what: impl FnOnce() -> String,
    ) -> Result<(), NetlinkError> {
        let flags = if create { NLM_F_CREATE | NLM_F_EXCL } else { 0 };
        self.request_with(message, flags, what).map(|_| ())
    }

    /// Sends one request with `flags` added to `NLM_F_REQUEST | NLM_F_ACK`
    /// and returns the messages answered before the acknowledgement (or,
    /// for a dump, before its end).
    fn request_with(
        &mut self,
        message: RouteNetlinkMessage,
        flags: u16,
        what: impl FnOnce() -> String,
    ) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
        self.sequence = self.sequence.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = self.sequence;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(message));
        packet.finalize();
        let mut buffer = vec![0; packet.buffer_len()];
        packet.serialize(&mut buffer);
        let result = self.exchange(&buffer);
        result.map_err(|source| NetlinkError {
            what: what(),
            source,
        })
    }

    fn exchange(&mut self, request: &[u8]) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.socket.send(request, 0)?;
        let mut answers = Vec::new();
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
                                None => Ok(answers),
                                Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
                            };
                        }
                        NetlinkPayload::Done(_) => return Ok(answers),
                        NetlinkPayload::InnerMessage(message) => answers.push(message),
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

    /// The route the kernel would use toward `dst` (`ip route get DST`),
    /// IPv4 or IPv6.
    pub fn route_to(&mut self, dst: IpAddr) -> Result<Route, NetlinkError> {
        let mut message = RouteMessage::default();
        let (family, length, destination) = match dst {
            IpAddr::V4(a) => (AddressFamily::Inet, 32, RouteAddress::Inet(a)),
            IpAddr::V6(a) => (AddressFamily::Inet6, 128, RouteAddress::Inet6(a)),
        };
        message.header.address_family = family;
        message.header.destination_prefix_length = length;
        message
            .attributes
            .push(RouteAttribute::Destination(destination));
        let answers = self.request_with(RouteNetlinkMessage::GetRoute(message), 0, || {
            format!("asking for the route to {dst}")
        })?;
        answers
            .into_iter()
            .find_map(|answer| match answer {
                RouteNetlinkMessage::NewRoute(route) => Some(route_of(&route)),
                _ => None,
            })
            .ok_or_else(|| NetlinkError {
                what: format!("asking for the route to {dst}"),
                source: io::Error::new(io::ErrorKind::NotFound, "the kernel returned no route"),
            })
    }

    /// The gateways of the main table's route for exactly `dst/prefix_len`
    /// (`ip route show exact`): every next hop of a multipath route, the
    /// one gateway of a plain route, none when there is no such route (or
    /// it is on-link). A router's ECMP group, as its routing daemon
    /// installed it.
    pub fn gateways_of(
        &mut self,
        dst: Ipv4Addr,
        prefix_len: u8,
    ) -> Result<Vec<Ipv4Addr>, NetlinkError> {
        let mut message = RouteMessage::default();
        message.header.address_family = AddressFamily::Inet;
        let answers =
            self.request_with(RouteNetlinkMessage::GetRoute(message), NLM_F_DUMP, || {
                format!("listing the routes to find {dst}/{prefix_len}")
            })?;
        let mut gateways = Vec::new();
        for answer in &answers {
            let RouteNetlinkMessage::NewRoute(route) = answer else {
                continue;
            };
            let exact = route.header.destination_prefix_length == prefix_len
                && route.header.table == RouteHeader::RT_TABLE_MAIN
                && route.attributes.iter().any(|a| {
                    matches!(a, RouteAttribute::Destination(RouteAddress::Inet(d)) if *d == dst)
                });
            if !exact {
                continue;
            }
            for attribute in &route.attributes {
                match attribute {
                    RouteAttribute::Gateway(RouteAddress::Inet(gateway)) => gateways.push(*gateway),
                    RouteAttribute::MultiPath(hops) => {
                        gateways.extend(hops.iter().flat_map(|hop| {
                            hop.attributes.iter().filter_map(|a| match a {
                                RouteAttribute::Gateway(RouteAddress::Inet(g)) => Some(*g),
                                _ => None,
                            })
                        }));
                    }
                    _ => {}
                }
            }
        }
        gateways.sort_unstable();
        gateways.dedup();
        Ok(gateways)
    }

    /// The neighbour entries of one family on link `index` (`ip -4 neigh
    /// show dev NAME`, or `ip -6` with `ipv6`: the NDP cache).
    pub fn neighbours(&mut self, index: u32, ipv6: bool) -> Result<Vec<Neighbour>, NetlinkError> {
        let mut message = NeighbourMessage::default();
        message.header.family = if ipv6 {
            AddressFamily::Inet6
        } else {
            AddressFamily::Inet
        };
        message.header.ifindex = index;
        let answers = self.request_with(
            RouteNetlinkMessage::GetNeighbour(message),
            NLM_F_DUMP,
            || format!("listing the neighbours on interface {index}"),
        )?;
        Ok(answers
            .iter()
            .filter_map(|answer| match answer {
                RouteNetlinkMessage::NewNeighbour(entry) if entry.header.ifindex == index => {
                    neighbour_of(entry)
                }
                _ => None,
            })
            .collect())
    }

    /// The MTU of link `index`.
    pub fn link_mtu(&mut self, index: u32, name: &str) -> Result<u32, NetlinkError> {
        let mut message = LinkMessage::default();
        message.header.index = index;
        let answers = self.request_with(RouteNetlinkMessage::GetLink(message), 0, || {
            format!("reading the settings of {name}")
        })?;
        answers
            .iter()
            .find_map(|answer| match answer {
                RouteNetlinkMessage::NewLink(link) => {
                    link.attributes
                        .iter()
                        .find_map(|attribute| match attribute {
                            LinkAttribute::Mtu(mtu) => Some(*mtu),
                            _ => None,
                        })
                }
                _ => None,
            })
            .ok_or_else(|| NetlinkError {
                what: format!("reading the MTU of {name}"),
                source: io::Error::new(io::ErrorKind::InvalidData, "no IFLA_MTU in the answer"),
            })
    }

    /// The IPv4 addresses of link `index`, in the kernel's order.
    pub fn ipv4_addresses(
        &mut self,
        index: u32,
        name: &str,
    ) -> Result<Vec<Ipv4Addr>, NetlinkError> {
        let mut message = AddressMessage::default();
        message.header.family = AddressFamily::Inet;
        let answers =
            self.request_with(RouteNetlinkMessage::GetAddress(message), NLM_F_DUMP, || {
                format!("listing the addresses of {name}")
            })?;
        Ok(answers
            .iter()
            .filter_map(|answer| match answer {
                RouteNetlinkMessage::NewAddress(address) if address.header.index == index => {
                    address
                        .attributes
                        .iter()
                        .find_map(|attribute| match attribute {
                            AddressAttribute::Local(IpAddr::V4(local)) => Some(*local),
                            _ => None,
                        })
                }
                _ => None,
            })
            .collect())
    }

    /// Sets the MTU of link `index`.
    pub fn set_mtu(&mut self, index: u32, name: &str, mtu: u32) -> Result<(), NetlinkError> {
        let mut message = LinkMessage::default();
        message.header.index = index;
        message.attributes = vec![LinkAttribute::Mtu(mtu)];
        self.request(RouteNetlinkMessage::SetLink(message), false, || {
            format!("setting the MTU of {name} to {mtu}")
        })
    }

    /// Creates VXLAN device `vxlan.name` (VNI, UDP port, source address and
    /// underlying link as given, learning on), up, on bridge `controller`.
    pub fn add_vxlan(
        &mut self,
        vxlan: &VxlanDevice<'_>,
        controller: u32,
    ) -> Result<(), NetlinkError> {
        let mut message = LinkMessage::default();
        message.header.flags = LinkFlags::Up;
        message.header.change_mask = LinkFlags::Up;
        message.attributes = vec![
            LinkAttribute::IfName(vxlan.name.to_owned()),
            LinkAttribute::Controller(controller),
            LinkAttribute::LinkInfo(vec![
                LinkInfo::Kind(InfoKind::Vxlan),
                LinkInfo::Data(InfoData::Vxlan(vec![
                    InfoVxlan::Id(vxlan.id),
                    InfoVxlan::Link(vxlan.underlying),
                    InfoVxlan::Local(vxlan.local),
                    InfoVxlan::Port(vxlan.port),
                    InfoVxlan::Learning(true),
                ])),
            ]),
        ];
        self.request(RouteNetlinkMessage::NewLink(message), true, || {
            format!(
                "creating VXLAN {} (VNI {}, port {}, local {})",
                vxlan.name, vxlan.id, vxlan.port, vxlan.local
            )
        })
    }

    /// Appends a forwarding entry for the all-zeros MAC to VXLAN link
    /// `index`, toward `remote` (`bridge fdb append 00:00:00:00:00:00 dev
    /// NAME dst REMOTE`): broadcasts, multicasts and unknown destinations
    /// are sent to every remote so added (head-end replication).
    pub fn append_flood_remote(
        &mut self,
        index: u32,
        name: &str,
        remote: Ipv4Addr,
    ) -> Result<(), NetlinkError> {
        let mut message = NeighbourMessage::default();
        message.header.family = AddressFamily::Bridge;
        message.header.ifindex = index;
        // What `bridge fdb` sends by default: permanent, no ARP, on the
        // device itself (not on the bridge it is a port of).
        message.header.state = NeighbourState::Other(NUD_NOARP | NUD_PERMANENT);
        message.header.flags = NeighbourFlags::Own;
        message.attributes = vec![
            NeighbourAttribute::LinkLayerAddress(vec![0; 6]),
            NeighbourAttribute::Destination(NeighbourAddress::Inet(remote)),
        ];
        self.request_with(
            RouteNetlinkMessage::NewNeighbour(message),
            NLM_F_CREATE | NLM_F_APPEND,
            || format!("adding VXLAN remote {remote} to {name}"),
        )
        .map(|_| ())
    }

    /// Creates bridge `name`, up.
    pub fn add_bridge(&mut self, name: &str) -> Result<(), NetlinkError> {
        let mut message = LinkMessage::default();
        message.header.flags = LinkFlags::Up;
        message.header.change_mask = LinkFlags::Up;
        message.attributes = vec![
            LinkAttribute::IfName(name.to_owned()),
            LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Bridge)]),
        ];
        self.request(RouteNetlinkMessage::NewLink(message), true, || {
            format!("creating bridge {name}")
        })
    }

    /// Creates the veth pair `name` (here, up, enslaved to `controller`) and
    /// `peer` (in the namespace open at `peer_namespace`, down).
    pub fn add_veth(
        &mut self,
        name: &str,
        controller: u32,
        peer: &str,
        peer_namespace: RawFd,
    ) -> Result<(), NetlinkError> {
        let mut peer_message = LinkMessage::default();
        peer_message.attributes = vec![
            LinkAttribute::IfName(peer.to_owned()),
            LinkAttribute::NetNsFd(peer_namespace),
        ];
        let mut message = LinkMessage::default();
        message.header.flags = LinkFlags::Up;
        message.header.change_mask = LinkFlags::Up;
        message.attributes = vec![
            LinkAttribute::IfName(name.to_owned()),
            LinkAttribute::Controller(controller),
            LinkAttribute::LinkInfo(vec![
                LinkInfo::Kind(InfoKind::Veth),
                LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_message))),
            ]),
        ];
        self.request(RouteNetlinkMessage::NewLink(message), true, || {
            format!("creating veth {name} (peer {peer})")
        })
    }

    /// Creates a veth pair whose two ends are made directly in other
    /// namespaces: `name` in the one open at `namespace` (on bridge
    /// `controller` of that namespace when given, and up), `peer` in the one
    /// open at `peer_namespace` (down). Made in place, the ends never take a
    /// name in this namespace, so their names cannot clash here.
    pub fn add_veth_between(
        &mut self,
        end: VethEnd<'_>,
        peer: VethEnd<'_>,
    ) -> Result<(), NetlinkError> {
        let mut peer_message = LinkMessage::default();
        peer_message.attributes = vec![LinkAttribute::IfName(peer.name.to_owned())];
        if let Some(fd) = peer.namespace {
            peer_message.attributes.push(LinkAttribute::NetNsFd(fd));
        }
        let mut message = LinkMessage::default();
        message.attributes = vec![LinkAttribute::IfName(end.name.to_owned())];
        if let Some(fd) = end.namespace {
            message.attributes.push(LinkAttribute::NetNsFd(fd));
        }
        if let Some(controller) = end.controller {
            message.header.flags = LinkFlags::Up;
            message.header.change_mask = LinkFlags::Up;
            message
                .attributes
                .push(LinkAttribute::Controller(controller));
        }
        message.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_message))),
        ]));
        self.request(RouteNetlinkMessage::NewLink(message), true, || {
            format!("creating veth {} (peer {})", end.name, peer.name)
        })
    }

    /// Adds an IPv4 route to the main table: `destination/prefix_len`
    /// through `gateway` and/or out of link `device` (at least one).
    pub fn add_route(
        &mut self,
        destination: Ipv4Addr,
        prefix_len: u8,
        gateway: Option<Ipv4Addr>,
        device: Option<u32>,
        shown_as: &str,
    ) -> Result<(), NetlinkError> {
        let mut message = RouteMessage::default();
        message.header.address_family = AddressFamily::Inet;
        message.header.destination_prefix_length = prefix_len;
        message.header.table = RouteHeader::RT_TABLE_MAIN;
        message.header.protocol = RouteProtocol::Boot;
        // Without a gateway the destination is on the link itself.
        message.header.scope = if gateway.is_some() {
            RouteScope::Universe
        } else {
            RouteScope::Link
        };
        message.header.kind = RouteType::Unicast;
        if prefix_len > 0 {
            message
                .attributes
                .push(RouteAttribute::Destination(RouteAddress::Inet(destination)));
        }
        if let Some(gateway) = gateway {
            message
                .attributes
                .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
        }
        if let Some(device) = device {
            message.attributes.push(RouteAttribute::Oif(device));
        }
        self.request(RouteNetlinkMessage::NewRoute(message), true, || {
            format!("adding route {shown_as}")
        })
    }

    /// Sets link `index` up.
    pub fn set_up(&mut self, index: u32, name: &str) -> Result<(), NetlinkError> {
        let mut message = LinkMessage::default();
        message.header.index = index;
        message.header.flags = LinkFlags::Up;
        message.header.change_mask = LinkFlags::Up;
        self.request(RouteNetlinkMessage::SetLink(message), false, || {
            format!("setting {name} up")
        })
    }

    /// Puts link `index` on bridge `controller` and sets it up.
    pub fn set_controller_up(
        &mut self,
        index: u32,
        name: &str,
        controller: u32,
    ) -> Result<(), NetlinkError> {
        let mut message = LinkMessage::default();
        message.header.index = index;
        message.header.flags = LinkFlags::Up;
        message.header.change_mask = LinkFlags::Up;
        message.attributes = vec![LinkAttribute::Controller(controller)];
        self.request(RouteNetlinkMessage::SetLink(message), false, || {
            format!("putting {name} on its bridge")
        })
    }

    /// Takes link `index` off its bridge (`ip link set NAME nomaster`).
    pub fn release_from_controller(&mut self, index: u32, name: &str) -> Result<(), NetlinkError> {
        let mut message = LinkMessage::default();
        message.header.index = index;
        message.attributes = vec![LinkAttribute::Controller(0)];
        self.request(RouteNetlinkMessage::SetLink(message), false, || {
            format!("taking {name} off its bridge")
        })
    }

    /// Moves link `index` into the namespace open at `namespace` (it
    /// arrives down, as the kernel moves links).
    pub fn move_to_namespace(
        &mut self,
        index: u32,
        name: &str,
        namespace: RawFd,
    ) -> Result<(), NetlinkError> {
        let mut message = LinkMessage::default();
        message.header.index = index;
        message.attributes = vec![LinkAttribute::NetNsFd(namespace)];
        self.request(RouteNetlinkMessage::SetLink(message), false, || {
            format!("moving {name} to another namespace")
        })
    }

    /// Deletes link `name`.
    pub fn delete_link(&mut self, name: &str) -> Result<(), NetlinkError> {
        let mut message = LinkMessage::default();
        message.attributes = vec![LinkAttribute::IfName(name.to_owned())];
        self.request(RouteNetlinkMessage::DelLink(message), false, || {
            format!("deleting {name}")
        })
    }

    /// Adds `address/prefix_len` to link `index`.
    pub fn add_address(
        &mut self,
        index: u32,
        name: &str,
        address: Ipv4Addr,
        prefix_len: u8,
    ) -> Result<(), NetlinkError> {
        let mut message = AddressMessage::default();
        message.header.family = AddressFamily::Inet;
        message.header.prefix_len = prefix_len;
        message.header.index = index;
        message.attributes = vec![
            AddressAttribute::Local(address.into()),
            AddressAttribute::Address(address.into()),
        ];
        self.request(RouteNetlinkMessage::NewAddress(message), true, || {
            format!("adding {address}/{prefix_len} to {name}")
        })
    }
}

/// The gateway and outgoing interface of a route message.
fn route_of(route: &RouteMessage) -> Route {
    let mut found = Route {
        gateway: None,
        oif: 0,
    };
    for attribute in &route.attributes {
        match attribute {
            RouteAttribute::Gateway(RouteAddress::Inet(gateway)) => {
                found.gateway = Some((*gateway).into());
            }
            RouteAttribute::Gateway(RouteAddress::Inet6(gateway)) => {
                found.gateway = Some((*gateway).into());
            }
            RouteAttribute::Oif(oif) => found.oif = *oif,
            _ => {}
        }
    }
    found
}

/// The address, MAC and state of a neighbour message; `None` without an
/// IP address.
fn neighbour_of(entry: &NeighbourMessage) -> Option<Neighbour> {
    let mut addr = None;
    let mut mac = None;
    for attribute in &entry.attributes {
        match attribute {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => {
                addr = Some(IpAddr::V4(*a));
            }
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(a)) => {
                addr = Some(IpAddr::V6(*a));
            }
            NeighbourAttribute::LinkLayerAddress(bytes) => {
                mac = <[u8; 6]>::try_from(bytes.as_slice()).ok();
            }
            _ => {}
        }
    }
    Some(Neighbour {
        addr: addr?,
        mac,
        state: entry.header.state,
    })
}

/// `NUD_NOARP` and `NUD_PERMANENT` (`linux/neighbour.h`).
const NUD_NOARP: u16 = 0x40;
const NUD_PERMANENT: u16 = 0x80;

/// A VXLAN device to create with [`Netlink::add_vxlan`].
#[derive(Debug, Clone, Copy)]
pub struct VxlanDevice<'a> {
    pub name: &'a str,
    /// The VNI.
    pub id: u32,
    /// UDP destination port.
    pub port: u16,
    /// The index of the link it sends through.
    pub underlying: u32,
    /// The source address of its UDP packets.
    pub local: Ipv4Addr,
}

/// One end of a veth pair made by [`Netlink::add_veth_between`].
#[derive(Debug, Clone, Copy)]
pub struct VethEnd<'a> {
    pub name: &'a str,
    /// The namespace to create it in (an open namespace file); `None`: the
    /// socket's own.
    pub namespace: Option<RawFd>,
    /// The bridge to put it on (an index in its namespace).
    pub controller: Option<u32>,
}

/// The index of interface `name` in the calling thread's network namespace.
pub fn link_index(name: &str) -> Result<u32, NetlinkError> {
    let fail = |source| NetlinkError {
        what: format!("looking up interface {name}"),
        source,
    };
    let c_name = std::ffi::CString::new(name)
        .map_err(|_| fail(io::Error::new(io::ErrorKind::InvalidInput, "NUL in name")))?;
    // SAFETY: c_name is a live NUL-terminated string.
    let index = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
    if index == 0 {
        return Err(fail(io::Error::last_os_error()));
    }
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lo() -> u32 {
        link_index("lo").expect("every namespace has lo")
    }

    #[test]
    fn loopback_addresses_route_through_lo_without_a_gateway() {
        let mut netlink = Netlink::open().expect("rtnetlink socket");
        let route = netlink
            .route_to(Ipv4Addr::LOCALHOST.into())
            .expect("a route to 127.0.0.1");
        assert_eq!(
            route,
            Route {
                gateway: None,
                oif: lo()
            }
        );
        // The socket is ready for the next request: the acknowledgement was read.
        assert_eq!(
            netlink
                .route_to(Ipv4Addr::new(127, 0, 0, 9).into())
                .unwrap()
                .oif,
            lo()
        );
    }

    #[test]
    fn a_neighbour_dump_parses_to_its_done_message() {
        let mut netlink = Netlink::open().expect("rtnetlink socket");
        netlink
            .neighbours(lo(), false)
            .expect("a complete neighbour dump");
        assert!(netlink.link_mtu(lo(), "lo").unwrap() >= 1500);
    }

    #[test]
    fn lo_has_127_0_0_1() {
        let mut netlink = Netlink::open().expect("rtnetlink socket");
        let addresses = netlink.ipv4_addresses(lo(), "lo").unwrap();
        assert!(addresses.contains(&Ipv4Addr::LOCALHOST), "{addresses:?}");
    }

    #[test]
    fn a_missing_interface_is_named_in_the_error() {
        let error = link_index("rr-no-such-if").unwrap_err();
        assert!(
            error
                .to_string()
                .contains("looking up interface rr-no-such-if"),
            "{error}"
        );
        let io: io::Error = error.into();
        assert!(io.to_string().contains("rr-no-such-if"));
    }

    #[test]
    fn the_route_and_neighbour_parsers_read_their_attributes() {
        let mut route = RouteMessage::default();
        route.attributes = vec![
            RouteAttribute::Gateway(RouteAddress::Inet(Ipv4Addr::new(10, 0, 0, 1))),
            RouteAttribute::Oif(7),
        ];
        assert_eq!(
            route_of(&route),
            Route {
                gateway: Some(Ipv4Addr::new(10, 0, 0, 1).into()),
                oif: 7
            }
        );
        let mut entry = NeighbourMessage::default();
        entry.header.state = NeighbourState::Reachable;
        entry.attributes = vec![
            NeighbourAttribute::Destination(NeighbourAddress::Inet(Ipv4Addr::new(10, 0, 0, 2))),
            NeighbourAttribute::LinkLayerAddress(vec![2, 0, 0, 0, 0, 9]),
        ];
        assert_eq!(
            neighbour_of(&entry),
            Some(Neighbour {
                addr: Ipv4Addr::new(10, 0, 0, 2).into(),
                mac: Some([2, 0, 0, 0, 0, 9]),
                state: NeighbourState::Reachable,
            })
        );
        entry.attributes.truncate(0);
        assert_eq!(neighbour_of(&entry), None);
    }
}
