//! Completing a transport checksum the sender left to offload.
//!
//! A packet sent from a local socket over a device with transmit checksum
//! offload (a veth, a tap, virtio-net between guests) carries only its
//! pseudo-header sum in the TCP or UDP checksum field; the kernel marks it
//! `CHECKSUM_PARTIAL` and a packet socket reports it as
//! `TP_STATUS_CSUMNOTREADY`. Forwarded by the kernel, the device it leaves
//! on would finish the sum. Forwarded by us, and in VIP mode wrapped in
//! GRE, nobody would: the backend's stack would drop every such packet.
//! [`complete`] writes the checksum the kernel's `skb_checksum_help` would,
//! with the wire views' own verify and fill, finding the transport header
//! itself (the ring does not say where it starts).

use super::{
    ethertype, ip_proto, EthernetFrame, GrePacket, Ipv4Packet, Ipv6Packet, TcpPacket, UdpPacket,
};

/// GRE headers looked through to reach the transport header: the one a
/// tunnel endpoint with offload adds.
const MAX_TUNNELS: usize = 1;

/// Fills in the checksum the sender left unfinished in `frame` (Ethernet,
/// one 802.1Q tag at most; IPv4 or IPv6, possibly inside GRE): the TCP or
/// UDP checksum (its field holds only the pseudo-header sum), or, when that one
/// is whole and the GRE header carries a checksum, the GRE checksum (a
/// kernel tunnel with checksums leaves that one to offload instead).
///
/// A checksum that already verifies is left alone: the receiver checks
/// nothing else. So a whole frame passes through unchanged, and so does an
/// unfinished one that verifies by chance. Returns whether a checksum was
/// written; a frame it cannot parse is left as it is for the pipeline to
/// judge.
pub fn complete(frame: &mut [u8]) -> bool {
    let Ok(eth) = EthernetFrame::new_checked(&*frame) else {
        return false;
    };
    let (l3, kind) = (eth.header_len(), eth.inner_ethertype());
    complete_ip(&mut frame[l3..], kind, MAX_TUNNELS)
}

/// [`complete`] from the IP header of a packet of `kind` (an ethertype).
fn complete_ip(packet: &mut [u8], kind: u16, tunnels_left: usize) -> bool {
    let Some((protocol, start, end, addresses)) = transport_of(packet, kind) else {
        return false;
    };
    // Both parsers checked the lengths; `get_mut` keeps a slip from panicking.
    let Some(segment) = packet.get_mut(start..end) else {
        return false;
    };
    match protocol {
        ip_proto::TCP => TcpPacket::new_checked(segment).is_ok_and(|mut tcp| match addresses {
            Addresses::V4(src, dst) => fill_unless(tcp.verify_checksum_v4(src, dst), || {
                tcp.fill_checksum_v4(src, dst);
            }),
            Addresses::V6(src, dst) => fill_unless(tcp.verify_checksum_v6(&src, &dst), || {
                tcp.fill_checksum_v6(&src, &dst);
            }),
        }),
        ip_proto::UDP => UdpPacket::new_checked(segment).is_ok_and(|mut udp| match addresses {
            Addresses::V4(src, dst) => fill_unless(udp.verify_checksum_v4(src, dst), || {
                udp.fill_checksum_v4(src, dst);
            }),
            Addresses::V6(src, dst) => fill_unless(udp.verify_checksum_v6(&src, &dst), || {
                udp.fill_checksum_v6(&src, &dst);
            }),
        }),
        ip_proto::GRE if tunnels_left > 0 => {
            let Ok(mut gre) = GrePacket::new_checked(segment) else {
                return false;
            };
            let kind = gre.protocol_type();
            // GRE's own checksum (when C is set) covers the inner packet:
            // only when that one was whole may GRE's be the unfinished one.
            complete_ip(gre.payload_mut(), kind, tunnels_left - 1)
                || fill_unless(gre.verify_checksum(), || gre.fill_checksum())
        }
        _ => false,
    }
}

/// Runs `fill` unless the checksum is `whole` already; whether it ran.
fn fill_unless(whole: bool, fill: impl FnOnce()) -> bool {
    if !whole {
        fill();
    }
    !whole
}

/// A packet's source and destination, for its transport's pseudo-header.
#[derive(Clone, Copy)]
enum Addresses {
    V4([u8; 4], [u8; 4]),
    V6([u8; 16], [u8; 16]),
}

/// The transport protocol of an unfragmented IPv4 or IPv6 packet, where its
/// header starts and the packet ends, and the packet's addresses.
fn transport_of(packet: &[u8], kind: u16) -> Option<(u8, usize, usize, Addresses)> {
    match kind {
        ethertype::IPV4 => {
            let ip = Ipv4Packet::new_checked(packet).ok()?;
            (!ip.is_fragment()).then(|| {
                (
                    ip.protocol(),
                    ip.header_len(),
                    usize::from(ip.total_len()),
                    Addresses::V4(ip.src_addr(), ip.dst_addr()),
                )
            })
        }
        ethertype::IPV6 => {
            let ip = Ipv6Packet::new_checked(packet).ok()?;
            let upper = ip.upper_layer().ok()?;
            upper.fragment.is_none().then(|| {
                (
                    upper.protocol,
                    upper.offset,
                    40 + usize::from(ip.payload_len()),
                    Addresses::V6(ip.src_addr(), ip.dst_addr()),
                )
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
