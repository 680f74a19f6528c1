//! GRE mode: the router already encapsulated the client's packet toward the
//! balancer. We validate the outer IP and GRE headers, balance by the inner
//! flow, and rewrite only the outer headers; GRE and the inner packet leave
//! byte-for-byte as they came.
//!
//! What is supported, by outer family in and backend family out:
//!
//! | GRE in over \ backend | IPv4                                   | IPv6                                      |
//! |-----------------------|----------------------------------------|-------------------------------------------|
//! | IPv4 (to `lb_ipv4`)   | rewritten in place: dst := backend, src := balancer, TTL - 1, incremental checksum (the fast path's frame) | the IPv4 header (options included) replaced by a 40-byte IPv6 one: 20 bytes more, taken from the headroom |
//! | IPv6 (to `lb_ipv6`)   | the IPv6 header replaced by a 20-byte IPv4 one (DF set): 20 bytes fewer | rewritten in place: dst := backend, src := balancer, hop limit - 1 |
//!
//! The inner packet may be IPv4 or IPv6 in every case. A new header keeps
//! the old one's traffic class (DSCP and ECN) and its TTL less one; its
//! flow label is 0. GRE over IPv6 with extension headers before GRE (or
//! anything but GRE) to the balancer's IPv6 address is the host's, as is
//! non-GRE IPv4 to its IPv4 address. An outer packet that would grow past
//! the MTU is dropped (`encap_exceeds_mtu`): it came from a router, which
//! has no use for an ICMP error about a tunnel it did not build.
//!
//! Outer IPv4 options are hop-by-hop: an IPv4 backend gets them kept, an
//! IPv6 backend's header has none.

use crate::forwarding::{BackendSlot, ForwardingTable, Ingress};
use crate::frame::Frame;
use crate::verdict::{DropReason, Verdict};
use crate::wire::{
    checksum, ethertype, ip_proto, EthernetFrame, GrePacket, Ipv4Packet, Ipv6Packet, WireError,
};

use super::balance::{choose, drop_of_slot, Choice};
use super::flow_of::{of_ipv4, of_ipv6, FlowOf};
use super::outer::{self, Outer};
use super::state::WorkerState;

/// Forwards a GRE packet addressed to the balancer; `l2` is the Ethernet
/// header's length, `outer_v6` whether the outer header is IPv6. Non-GRE
/// traffic to the balancer's address is the host's.
pub fn forward(
    frame: &mut Frame<'_>,
    l2: usize,
    outer_v6: bool,
    table: &ForwardingTable,
    state: &mut WorkerState,
) -> Result<Verdict, DropReason> {
    let data = frame.data();
    let Some((flow, outer)) = flow_of(data, l2, outer_v6)? else {
        return Ok(Verdict::ToHost);
    };
    match choose(flow, data, Ingress::Gre, table, state)? {
        Choice::Held => Ok(Verdict::Held),
        Choice::Backend(slot, backend) => {
            match (outer.is_ipv6, backend.is_ipv6) {
                (false, false) => rewrite(frame.data_mut(), l2, backend, table),
                (true, true) => rewrite_v6(frame.data_mut(), l2, backend, table),
                _ => outer::replace(frame, l2, &outer, backend, table)
                    .map_err(|reason| drop_of_slot(reason, slot, table, state))?,
            }
            Ok(Verdict::ToWire)
        }
    }
}

/// Validates the outer IP and GRE headers of a frame addressed to the
/// balancer and names the inner packet's flow and the outer header; `None`
/// when the packet is not GRE (the balancer host's own traffic).
pub fn flow_of(
    data: &[u8],
    l2: usize,
    outer_v6: bool,
) -> Result<Option<(FlowOf, Outer)>, DropReason> {
    let outer = if outer_v6 {
        outer_ipv6(&data[l2..])?
    } else {
        outer_ipv4(&data[l2..])?
    };
    let Some(outer) = outer else {
        return Ok(None);
    };
    let gre = &data[l2 + outer.header_len..l2 + outer.packet_len];
    Ok(Some((inner_flow(gre)?, outer)))
}

/// The outer IPv4 header, checked; `None` if it does not carry GRE.
fn outer_ipv4(packet: &[u8]) -> Result<Option<Outer>, DropReason> {
    let ip = Ipv4Packet::new_checked(packet).map_err(|e| match e {
        WireError::Truncated => DropReason::TruncatedIpv4,
        WireError::Malformed => DropReason::MalformedIpv4,
    })?;
    if ip.protocol() != ip_proto::GRE {
        return Ok(None);
    }
    if !ip.verify_checksum() {
        return Err(DropReason::BadIpv4Checksum);
    }
    if ip.is_fragment() {
        return Err(DropReason::OuterFragment);
    }
    if ip.ttl() <= 1 {
        return Err(DropReason::TtlExpired);
    }
    Ok(Some(Outer {
        is_ipv6: false,
        header_len: ip.header_len(),
        packet_len: usize::from(ip.total_len()),
        traffic_class: ip.dscp_ecn(),
        hop_limit: ip.ttl(),
    }))
}

/// The outer IPv6 header, checked; `None` if GRE does not follow it
/// directly (extension headers, a fragment, the host's own traffic).
fn outer_ipv6(packet: &[u8]) -> Result<Option<Outer>, DropReason> {
    let ip = Ipv6Packet::new_checked(packet).map_err(|e| match e {
        WireError::Truncated => DropReason::TruncatedIpv6,
        WireError::Malformed => DropReason::MalformedIpv6,
    })?;
    if ip.next_header() != ip_proto::GRE {
        return Ok(None);
    }
    if ip.hop_limit() <= 1 {
        return Err(DropReason::TtlExpired);
    }
    Ok(Some(Outer {
        is_ipv6: true,
        header_len: 40,
        packet_len: 40 + usize::from(ip.payload_len()),
        traffic_class: ip.traffic_class(),
        hop_limit: ip.hop_limit(),
    }))
}

/// The flow of the packet inside a GRE packet (header and payload), after
/// the GRE header's checks.
fn inner_flow(gre: &[u8]) -> Result<FlowOf, DropReason> {
    let gre = GrePacket::new_checked(gre).map_err(|_| DropReason::TruncatedGre)?;
    if gre.version() != 0 {
        return Err(DropReason::BadGreVersion);
    }
    if gre.routing_present() || gre.reserved0() != 0 {
        return Err(DropReason::BadGreFlags);
    }
    let inner = gre.payload();
    match (gre.protocol_type(), inner.first().map(|b| b >> 4)) {
        (ethertype::IPV4, Some(4)) => of_ipv4(inner),
        (ethertype::IPV6, Some(6)) => of_ipv6(inner),
        (ethertype::IPV4, None) => Err(DropReason::TruncatedInnerIpv4),
        (ethertype::IPV6, None) => Err(DropReason::TruncatedInnerIpv6),
        (ethertype::IPV4 | ethertype::IPV6, Some(_)) => Err(DropReason::InnerVersionMismatch),
        _ => Err(DropReason::UnsupportedGreProtocol),
    }
}

/// Rewrites an outer IPv4 header in place toward an IPv4 backend. The
/// caller has validated it.
#[inline]
pub fn rewrite(data: &mut [u8], l2: usize, backend: &BackendSlot, table: &ForwardingTable) {
    let mut eth = EthernetFrame::new_unchecked(&mut data[..]);
    eth.set_dst(backend.mac);
    eth.set_src(table.lb_mac);
    let mut ip = Ipv4Packet::new_unchecked(&mut data[l2..]);
    let before = changed_words(&ip);
    let old_checksum = ip.checksum();
    ip.set_src_addr(table.lb_ipv4);
    ip.set_dst_addr(backend.addr);
    ip.set_ttl(ip.ttl() - 1);
    let after = changed_words(&ip);
    ip.set_checksum(checksum::update_sum(old_checksum, before, after));
}

/// Rewrites an outer IPv6 header in place toward an IPv6 backend (IPv6 has
/// no header checksum, and GRE's does not cover the outer header). The
/// caller has validated it; a table with IPv6 backends has `lb_ipv6`.
#[inline]
fn rewrite_v6(data: &mut [u8], l2: usize, backend: &BackendSlot, table: &ForwardingTable) {
    let mut eth = EthernetFrame::new_unchecked(&mut data[..]);
    eth.set_dst(backend.mac);
    eth.set_src(table.lb_mac);
    let mut ip = Ipv6Packet::new_unchecked(&mut data[l2..]);
    ip.set_src_addr(table.lb_ipv6.unwrap_or_default());
    ip.set_dst_addr(backend.addr_v6);
    ip.set_hop_limit(ip.hop_limit() - 1);
}

/// The sum of the header words forwarding changes: TTL (sharing a word with
/// the protocol), source and destination address.
#[inline]
fn changed_words(ip: &Ipv4Packet<&mut [u8]>) -> u32 {
    let pair = |a: [u8; 4]| {
        u32::from(u16::from_be_bytes([a[0], a[1]])) + u32::from(u16::from_be_bytes([a[2], a[3]]))
    };
    u32::from(u16::from_be_bytes([ip.ttl(), ip.protocol()]))
        + pair(ip.src_addr())
        + pair(ip.dst_addr())
}
