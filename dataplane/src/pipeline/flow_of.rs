//! Which flow a packet belongs to: its 5-tuple, the quoted flow of an ICMP
//! error, or for a non-first fragment the datagram it is part of.

use crate::flow::{DatagramKey, FlowKey};
use crate::verdict::DropReason;
use crate::wire::{
    ip_proto, transport_ports, Icmpv4Packet, Icmpv6Packet, Ipv4Packet, Ipv6Packet, TcpPacket,
    UdpPacket, WireError,
};

/// How a packet is balanced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowOf {
    /// A whole packet or a first fragment: balanced by its flow key. A first
    /// fragment also names its datagram so later fragments can follow it.
    Flow {
        key: FlowKey,
        first_fragment_of: Option<DatagramKey>,
    },
    /// A non-first fragment: it has no transport header and follows its datagram.
    LaterFragment(DatagramKey),
}

/// The transport header of a whole packet must be complete and consistent
/// for the protocols we read (TCP data offset, UDP length, ICMP header);
/// other protocols are balanced by addresses alone and not inspected.
fn check_transport(protocol: u8, l4: &[u8]) -> Result<(), DropReason> {
    let checked = match protocol {
        ip_proto::TCP => TcpPacket::new_checked(l4).map(drop),
        ip_proto::UDP => UdpPacket::new_checked(l4).map(drop),
        ip_proto::ICMP | ip_proto::ICMPV6 if l4.len() < 8 => Err(WireError::Truncated),
        _ => Ok(()),
    };
    checked.map_err(|e| match e {
        WireError::Truncated => DropReason::TruncatedTransport,
        WireError::Malformed => DropReason::MalformedTransport,
    })
}

fn has_ports(protocol: u8) -> bool {
    matches!(protocol, ip_proto::TCP | ip_proto::UDP)
}

/// The flow of an IPv4 packet (the inner packet in GRE mode, the packet
/// itself in VIP mode).
pub fn of_ipv4(bytes: &[u8]) -> Result<FlowOf, DropReason> {
    let ip = Ipv4Packet::new_checked(bytes).map_err(|e| match e {
        WireError::Truncated => DropReason::TruncatedInnerIpv4,
        WireError::Malformed => DropReason::MalformedInnerIp,
    })?;
    let (src, dst, protocol) = (ip.src_addr(), ip.dst_addr(), ip.protocol());
    let l4 = ip.payload();
    if ip.is_fragment() {
        let datagram = DatagramKey {
            src: widen(src),
            dst: widen(dst),
            ident: u32::from(ip.ident()),
            protocol,
            is_ipv6: false,
        };
        if ip.frag_offset() != 0 {
            return Ok(FlowOf::LaterFragment(datagram));
        }
        // RFC 1858: a first fragment too short to hold the ports is an attack
        // on filters, not a packet worth forwarding.
        if !ip.more_frags() || (has_ports(protocol) && l4.len() < 8) {
            return Err(DropReason::MalformedFragment);
        }
        let (sport, dport) = ports_of(protocol, l4);
        return Ok(FlowOf::Flow {
            key: FlowKey::v4(src, dst, protocol, sport, dport),
            first_fragment_of: Some(datagram),
        });
    }
    check_transport(protocol, l4)?;
    let key = if protocol == ip_proto::ICMP {
        let icmp = Icmpv4Packet::new_unchecked(l4);
        if icmp.is_error() {
            quoted_ipv4_flow(icmp.payload())?
        } else {
            FlowKey::v4(src, dst, protocol, 0, 0)
        }
    } else {
        let (sport, dport) = ports_of(protocol, l4);
        FlowKey::v4(src, dst, protocol, sport, dport)
    };
    Ok(FlowOf::Flow {
        key,
        first_fragment_of: None,
    })
}

/// The flow of an IPv6 packet.
pub fn of_ipv6(bytes: &[u8]) -> Result<FlowOf, DropReason> {
    let ip = Ipv6Packet::new_checked(bytes).map_err(|e| match e {
        WireError::Truncated => DropReason::TruncatedInnerIpv6,
        WireError::Malformed => DropReason::MalformedInnerIp,
    })?;
    let upper = ip.upper_layer().map_err(|e| match e {
        WireError::Truncated => DropReason::TruncatedInnerIpv6,
        WireError::Malformed => DropReason::Ipv6ExtensionChainTooLong,
    })?;
    let (src, dst, protocol) = (ip.src_addr(), ip.dst_addr(), upper.protocol);
    let end = 40 + usize::from(ip.payload_len());
    let l4 = bytes.get(upper.offset..end).unwrap_or(&[]);
    if let Some(fragment) = upper.fragment {
        let datagram = DatagramKey {
            src,
            dst,
            ident: fragment.ident,
            protocol,
            is_ipv6: true,
        };
        if fragment.offset != 0 {
            return Ok(FlowOf::LaterFragment(datagram));
        }
        if !fragment.more || (has_ports(protocol) && l4.len() < 8) {
            return Err(DropReason::MalformedFragment);
        }
        let (sport, dport) = ports_of(protocol, l4);
        return Ok(FlowOf::Flow {
            key: FlowKey::v6(src, dst, protocol, sport, dport),
            first_fragment_of: Some(datagram),
        });
    }
    check_transport(protocol, l4)?;
    let key = if protocol == ip_proto::ICMPV6 {
        let icmp = Icmpv6Packet::new_unchecked(l4);
        if icmp.is_error() {
            quoted_ipv6_flow(icmp.payload())?
        } else {
            FlowKey::v6(src, dst, protocol, 0, 0)
        }
    } else {
        let (sport, dport) = ports_of(protocol, l4);
        FlowKey::v6(src, dst, protocol, sport, dport)
    };
    Ok(FlowOf::Flow {
        key,
        first_fragment_of: None,
    })
}

fn ports_of(protocol: u8, l4: &[u8]) -> (u16, u16) {
    if has_ports(protocol) {
        transport_ports(l4).unwrap_or((0, 0))
    } else {
        (0, 0)
    }
}

fn widen(v4: [u8; 4]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..4].copy_from_slice(&v4);
    out
}

/// An ICMP error quotes a packet the flow's far end sent (RFC 792: its IP
/// header and at least 8 bytes more); reversed, that is the flow the error
/// belongs to, so it reaches the backend that owns the connection.
fn quoted_ipv4_flow(quoted: &[u8]) -> Result<FlowKey, DropReason> {
    if quoted.len() < 20 || quoted[0] >> 4 != 4 {
        return Err(DropReason::TruncatedIcmpError);
    }
    let ip = Ipv4Packet::new_unchecked(quoted);
    let header_len = ip.header_len();
    let protocol = ip.protocol();
    let l4 = quoted
        .get(header_len..)
        .ok_or(DropReason::TruncatedIcmpError)?;
    let (sport, dport) = if has_ports(protocol) {
        transport_ports(l4).ok_or(DropReason::TruncatedIcmpError)?
    } else {
        (0, 0)
    };
    Ok(FlowKey::v4(ip.src_addr(), ip.dst_addr(), protocol, sport, dport).reversed())
}

/// The IPv6 counterpart (RFC 4443 quotes as much of the packet as fits).
fn quoted_ipv6_flow(quoted: &[u8]) -> Result<FlowKey, DropReason> {
    if quoted.len() < 40 || quoted[0] >> 4 != 6 {
        return Err(DropReason::TruncatedIcmpError);
    }
    let ip = Ipv6Packet::new_unchecked(quoted);
    let protocol = ip.next_header();
    let (sport, dport) = if has_ports(protocol) {
        transport_ports(&quoted[40..]).ok_or(DropReason::TruncatedIcmpError)?
    } else {
        (0, 0)
    };
    Ok(FlowKey::v6(ip.src_addr(), ip.dst_addr(), protocol, sport, dport).reversed())
}
