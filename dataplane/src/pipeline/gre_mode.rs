//! GRE mode: the router already encapsulated the client's packet toward the
//! balancer. We validate the outer IPv4 and GRE headers, balance by the inner
//! flow, and rewrite only the outer headers: IPv4 destination := backend,
//! source := balancer, TTL - 1 (incremental checksum), Ethernet addresses.
//! GRE and the inner packet leave byte-for-byte as they came.

use crate::forwarding::{BackendSlot, ForwardingTable, Ingress};
use crate::frame::Frame;
use crate::verdict::{DropReason, Verdict};
use crate::wire::{checksum, ethertype, ip_proto, EthernetFrame, GrePacket, Ipv4Packet, WireError};

use super::balance::{choose, Choice};
use super::flow_of::{of_ipv4, of_ipv6, FlowOf};
use super::state::WorkerState;

/// Forwards a GRE packet addressed to the balancer; `l2` is the Ethernet
/// header's length. Non-GRE traffic to the balancer's address is the host's.
pub fn forward(
    frame: &mut Frame<'_>,
    l2: usize,
    table: &ForwardingTable,
    state: &mut WorkerState,
) -> Result<Verdict, DropReason> {
    let data = frame.data();
    let Some(flow) = flow_of(data, l2)? else {
        return Ok(Verdict::ToHost);
    };
    match choose(flow, data, Ingress::Gre, table, state)? {
        Choice::Held => Ok(Verdict::Held),
        Choice::Backend(backend) => {
            rewrite(frame.data_mut(), l2, backend, table);
            Ok(Verdict::ToWire)
        }
    }
}

/// Validates the outer IPv4 and GRE headers of a frame addressed to the
/// balancer and names the inner packet's flow; `None` when the packet is
/// not GRE (the balancer host's own traffic).
pub fn flow_of(data: &[u8], l2: usize) -> Result<Option<FlowOf>, DropReason> {
    let ip = Ipv4Packet::new_checked(&data[l2..]).map_err(|e| match e {
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
    let gre = GrePacket::new_checked(ip.payload()).map_err(|_| DropReason::TruncatedGre)?;
    if gre.version() != 0 {
        return Err(DropReason::BadGreVersion);
    }
    if gre.routing_present() || gre.reserved0() != 0 {
        return Err(DropReason::BadGreFlags);
    }
    let inner = gre.payload();
    let flow = match (gre.protocol_type(), inner.first().map(|b| b >> 4)) {
        (ethertype::IPV4, Some(4)) => of_ipv4(inner)?,
        (ethertype::IPV6, Some(6)) => of_ipv6(inner)?,
        (ethertype::IPV4, None) => return Err(DropReason::TruncatedInnerIpv4),
        (ethertype::IPV6, None) => return Err(DropReason::TruncatedInnerIpv6),
        (ethertype::IPV4 | ethertype::IPV6, Some(_)) => {
            return Err(DropReason::InnerVersionMismatch)
        }
        _ => return Err(DropReason::UnsupportedGreProtocol),
    };
    Ok(Some(flow))
}

/// Rewrites the outer headers in place. The caller has validated them.
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
