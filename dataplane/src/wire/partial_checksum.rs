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

/// Fills in the checksum the sender left unfinished in `frame` (Ethernet,
/// one 802.1Q tag at most; IPv4 or IPv6, possibly inside GRE): the TCP or
/// UDP checksum, whose field holds the pseudo-header sum, or, when that one
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
    let Some(Transport {
        protocol,
        start,
        end,
        pseudo,
    }) = transport_of(packet, kind)
    else {
        return false;
    };
    // Both parsers checked the lengths; `get_mut` keeps a slip from panicking.
    let Some(segment) = packet.get_mut(start..end) else {
        return false;
    };
    match protocol {
        ip_proto::TCP => fill_unless_whole(segment, 16, pseudo, false),
        ip_proto::UDP => fill_unless_whole(segment, 6, pseudo, true),
        ip_proto::GRE if tunnels_left > 0 => {
            let Ok(gre) = GrePacket::new_checked(&*segment) else {
                return false;
            };
            let (inner, kind) = (gre.header_len(), gre.protocol_type());
            let checksummed = gre.checksum_present();
            complete_ip(&mut segment[inner..], kind, tunnels_left - 1)
                // GRE's checksum covers its header and payload, no pseudo-header.
                || checksummed && fill_unless_whole(segment, 4, 0, false)
        }
        _ => false,
    }
}

/// Where a packet's transport header starts and the packet ends, and the
/// sum of its pseudo-header.
struct Transport {
    protocol: u8,
    start: usize,
    end: usize,
    pseudo: u32,
}

/// The transport of an unfragmented IPv4 or IPv6 packet.
fn transport_of(packet: &[u8], kind: u16) -> Option<Transport> {
    match kind {
        ethertype::IPV4 => {
            let ip = Ipv4Packet::new_checked(packet).ok()?;
            let (start, end) = (ip.header_len(), usize::from(ip.total_len()));
            let len = u16::try_from(end.checked_sub(start)?).ok()?;
            (!ip.is_fragment()).then(|| Transport {
                protocol: ip.protocol(),
                start,
                end,
                pseudo: checksum::pseudo_header_v4(
                    ip.src_addr(),
                    ip.dst_addr(),
                    ip.protocol(),
                    len,
                ),
            })
        }
        ethertype::IPV6 => {
            let ip = Ipv6Packet::new_checked(packet).ok()?;
            let upper = ip.upper_layer().ok()?;
            let end = 40 + usize::from(ip.payload_len());
            let len = u32::try_from(end.checked_sub(upper.offset)?).ok()?;
            upper.fragment.is_none().then(|| Transport {
                protocol: upper.protocol,
                start: upper.offset,
                end,
                pseudo: checksum::pseudo_header_v6(
                    &ip.src_addr(),
                    &ip.dst_addr(),
                    upper.protocol,
                    len,
                ),
            })
        }
        _ => None,
    }
}

/// Unless `segment` already verifies (with `pseudo`, its pseudo-header's
/// sum), sums it, its checksum field at `at` holding what the sender left
/// there, and stores the complement in that field. With `zero_as_ones`
/// (UDP, where 0 means "no checksum", RFC 768) a result of 0 is sent as
/// 0xFFFF, the same value in one's complement.
fn fill_unless_whole(segment: &mut [u8], at: usize, pseudo: u32, zero_as_ones: bool) -> bool {
    if segment.len() < at + 2 || checksum::fold(checksum::sum(segment, pseudo)) == 0xFFFF {
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
