//! The outer IP header of a forwarded GRE packet when its family changes:
//! GRE over IPv4 toward an IPv6 backend, or GRE over IPv6 toward an IPv4
//! one. GRE and the inner packet stay where they are in the buffer; only
//! the Ethernet header moves, by the 20 bytes the IP headers differ, into
//! the headroom in front of the frame (IPv6 out) or out of it (IPv4 out).
//! Without enough headroom the frame is moved once into its buffer's
//! tailroom ([`Frame::push_front`]); without that either it is dropped.

use crate::forwarding::{BackendSlot, ForwardingTable};
use crate::frame::Frame;
use crate::verdict::DropReason;
use crate::wire::{ethertype, ip_proto, EthernetFrame, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr};

/// The outer header of a GRE packet to the balancer, as checked by
/// `gre_mode::flow_of`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outer {
    pub is_ipv6: bool,
    /// Bytes of the IP header (IPv4 options included).
    pub header_len: usize,
    /// Bytes of the whole outer packet: header, GRE and the inner packet.
    pub packet_len: usize,
    /// DSCP and ECN, kept in the new header.
    pub traffic_class: u8,
    /// TTL or hop limit, at least 2.
    pub hop_limit: u8,
}

/// Replaces the outer header of the frame (Ethernet header of `l2` bytes)
/// by one of `backend`'s family, toward it from the balancer, with the
/// hop limit one lower; the Ethernet header is readdressed to the backend's
/// next hop. Changes nothing on error.
pub fn replace(
    frame: &mut Frame<'_>,
    l2: usize,
    outer: &Outer,
    backend: &BackendSlot,
    table: &ForwardingTable,
) -> Result<(), DropReason> {
    let payload_len = outer.packet_len - outer.header_len;
    let header_len = if backend.is_ipv6 { 40 } else { 20 };
    // At most the MTU, itself a u16: the length fields below cannot overflow.
    if header_len + payload_len > usize::from(table.mtu) {
        return Err(DropReason::EncapExceedsMtu);
    }
    // Ethernet padding behind the packet must not end up inside the tunnel.
    frame.set_len(l2 + outer.packet_len);
    if header_len > outer.header_len {
        let grow = header_len - outer.header_len;
        if !frame.push_front(grow) {
            return Err(DropReason::NoHeadroom);
        }
        frame.data_mut().copy_within(grow..grow + l2, 0);
    } else {
        let shrink = outer.header_len - header_len;
        frame.data_mut().copy_within(0..l2, shrink);
        frame.pull_front(shrink);
    }
    let data = frame.data_mut();
    let mut eth = EthernetFrame::new_unchecked(&mut data[..]);
    eth.set_dst(backend.mac);
    eth.set_src(table.lb_mac);
    let hop_limit = outer.hop_limit - 1;
    let header = &mut data[l2..l2 + header_len];
    // The (last) EtherType announces the new outer header.
    let new_ethertype = if backend.is_ipv6 {
        Ipv6Repr {
            // A table with an IPv6 backend has the balancer's IPv6 address.
            src: table.lb_ipv6.unwrap_or_default(),
            dst: backend.addr_v6,
            next_header: ip_proto::GRE,
            payload_len: payload_len as u16,
            hop_limit,
        }
        .emit(header);
        Ipv6Packet::new_unchecked(header).set_version_tc_flow(outer.traffic_class, 0);
        ethertype::IPV6
    } else {
        Ipv4Repr {
            src: table.lb_ipv4,
            dst: backend.addr,
            protocol: ip_proto::GRE,
            payload_len: payload_len as u16,
            ttl: hop_limit,
            ident: 0,
            // IPv6 is not fragmented on the way: neither is its replacement.
            dont_frag: true,
        }
        .emit(header);
        let mut ip = Ipv4Packet::new_unchecked(header);
        ip.set_dscp_ecn(outer.traffic_class);
        ip.fill_checksum();
        ethertype::IPV4
    };
    data[l2 - 2..l2].copy_from_slice(&new_ethertype.to_be_bytes());
    Ok(())
}
