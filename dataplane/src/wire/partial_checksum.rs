//! Completing a transport checksum the sender left to offload.
//!
//! A packet sent from a local socket over a device with transmit checksum
//! offload (a veth, a tap, virtio-net between guests) carries only its
//! pseudo-header sum in the TCP or UDP checksum field; the kernel marks it
//! `CHECKSUM_PARTIAL` and a packet socket reports it as
//! `TP_STATUS_CSUMNOTREADY`. Forwarded by the kernel, the device it leaves
//! on would finish the sum. Forwarded by us, and in VIP mode wrapped in
//! GRE, nobody would: the backend's stack would drop every such packet.
//! [`complete`] does what the kernel's `skb_checksum_help` does, finding
//! the transport header itself (the ring does not say where it starts).

use super::{checksum, ethertype, ip_proto, EthernetFrame, GrePacket, Ipv4Packet, Ipv6Packet};

/// GRE headers looked through to reach the transport header: the one a
/// tunnel endpoint with offload adds.
const MAX_TUNNELS: usize = 1;

/// Fills in the TCP or UDP checksum of `frame` (Ethernet, one 802.1Q tag at
/// most; IPv4 or IPv6, possibly inside GRE) whose checksum field holds the
/// pseudo-header sum. Returns whether it did: a frame it cannot parse, or
/// whose innermost packet is not a whole TCP or UDP segment, is left as it
/// is for the pipeline to judge.
pub fn complete(frame: &mut [u8]) -> bool {
    let Ok(eth) = EthernetFrame::new_checked(&*frame) else {
        return false;
    };
    let (l3, kind) = (eth.header_len(), eth.inner_ethertype());
    complete_ip(&mut frame[l3..], kind, MAX_TUNNELS)
}

/// [`complete`] from the IP header of a packet of `kind` (an ethertype).
fn complete_ip(packet: &mut [u8], kind: u16, tunnels_left: usize) -> bool {
    let Some((protocol, l4, end)) = transport_of(packet, kind) else {
        return false;
    };
    // Both parsers checked the lengths; `get_mut` keeps a slip from panicking.
    let Some(segment) = packet.get_mut(l4..end) else {
        return false;
    };
    match protocol {
        ip_proto::TCP => fill(segment, 16, false),
        ip_proto::UDP => fill(segment, 6, true),
        ip_proto::GRE if tunnels_left > 0 => {
            let Ok(gre) = GrePacket::new_checked(&*segment) else {
                return false;
            };
            let (inner, kind) = (gre.header_len(), gre.protocol_type());
            complete_ip(&mut segment[inner..], kind, tunnels_left - 1)
        }
        _ => false,
    }
}

/// The transport protocol, and where its header starts and the packet ends,
/// for an unfragmented IPv4 or IPv6 packet.
fn transport_of(packet: &[u8], kind: u16) -> Option<(u8, usize, usize)> {
    match kind {
        ethertype::IPV4 => {
            let ip = Ipv4Packet::new_checked(packet).ok()?;
            (!ip.is_fragment())
                .then(|| (ip.protocol(), ip.header_len(), usize::from(ip.total_len())))
        }
        ethertype::IPV6 => {
            let ip = Ipv6Packet::new_checked(packet).ok()?;
            let upper = ip.upper_layer().ok()?;
            upper.fragment.is_none().then(|| {
                (
                    upper.protocol,
                    upper.offset,
                    40 + usize::from(ip.payload_len()),
                )
            })
        }
        _ => None,
    }
}

/// Sums `segment`, its checksum field at `at` holding the pseudo-header
/// sum, and stores the complement there. With `zero_as_ones` (UDP, where 0
/// means "no checksum", RFC 768) a result of 0 is sent as 0xFFFF, the same
/// value in one's complement.
fn fill(segment: &mut [u8], at: usize, zero_as_ones: bool) -> bool {
    if segment.len() < at + 2 {
        return false;
    }
    let folded = !checksum::fold(checksum::sum(segment, 0));
    let value = if folded == 0 && zero_as_ones {
        0xFFFF
    } else {
        folded
    };
    segment[at..at + 2].copy_from_slice(&value.to_be_bytes());
    true
}

#[cfg(test)]
mod tests;
