//! A small synchronous rtnetlink client: the few link and address requests a
//! lab needs, each acknowledged before the next. A client belongs to the
//! network namespace of the thread that opened it, so one is opened per
//! namespace and per worker thread (which is what lets labs be built in
//! parallel without one `ip` process per object).

use std::fmt;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::RawFd;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::protocols::NETLINK_ROUTE;
use netlink_sys::{Socket, SocketAddr};

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
        self.sequence = self.sequence.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK;
        if create {
            header.flags |= NLM_F_CREATE | NLM_F_EXCL;
        }
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

    fn exchange(&mut self, request: &[u8]) -> io::Result<()> {
        self.socket.send(request, 0)?;
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
                                None => Ok(()),
                                Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
                            };
                        }
                        NetlinkPayload::Done(_) => return Ok(()),
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
