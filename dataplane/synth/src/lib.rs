//! Synthetic traffic: frames as a GRE router and its clients send them, for
//! golden tests, benches, the robustness test and `rusty_rail synth`.
//!
//! Everything is built with etherparse (headers, checksums, constants) and
//! nothing of the dataplane's own wire code, so that tests which parse these
//! frames check the dataplane against an independent implementation. It is a
//! crate of its own so that the dataplane needs etherparse only to be tested.

use core::net::{IpAddr, Ipv4Addr};

use etherparse::checksum::Sum16BitWords;
use etherparse::{EtherType, IpNumber, Ipv4Header, PacketBuilder};

/// The Internet checksum (RFC 1071) of `bytes`, as the value to write big-endian.
fn internet_checksum(bytes: &[u8]) -> u16 {
    Sum16BitWords::new()
        .add_slice(bytes)
        .ones_complement()
        .to_be()
}

/// The transport of a synthetic flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Udp,
}

/// A client flow toward a VIP. When the families differ, the IPv4 address is
/// used in its IPv4-mapped IPv6 form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientFlow {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub transport: Transport,
    pub src_port: u16,
    pub dst_port: u16,
}

impl ClientFlow {
    /// The flow's IP packet carrying `payload`, with correct checksums.
    pub fn packet(&self, payload: &[u8]) -> Vec<u8> {
        let builder = match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s.octets(), d.octets(), 64),
            (s, d) => PacketBuilder::ipv6(v6_octets(s), v6_octets(d), 64),
        };
        let mut out = Vec::new();
        let written = match self.transport {
            Transport::Tcp => builder
                .tcp(self.src_port, self.dst_port, 1, 64240)
                .write(&mut out, payload),
            Transport::Udp => builder
                .udp(self.src_port, self.dst_port)
                .write(&mut out, payload),
        };
        written.expect("writing to a Vec cannot fail");
        out
    }
}

fn v6_octets(addr: IpAddr) -> [u8; 16] {
    match addr {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}

/// The GRE tunnel from the router to the balancer, as seen on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tunnel {
    pub eth_src: [u8; 6],
    pub eth_dst: [u8; 6],
    pub vlan: Option<u16>,
    pub outer_src: Ipv4Addr,
    pub outer_dst: Ipv4Addr,
    pub ttl: u8,
    pub key: Option<u32>,
    pub sequence: Option<u32>,
    pub gre_checksum: bool,
}

impl Tunnel {
    /// A plain tunnel (no VLAN, no GRE options) from `router` to `balancer`.
    pub fn new(router: Ipv4Addr, balancer: Ipv4Addr) -> Self {
        Self {
            eth_src: ROUTER_MAC,
            eth_dst: BALANCER_MAC,
            vlan: None,
            outer_src: router,
            outer_dst: balancer,
            ttl: 64,
            key: None,
            sequence: None,
            gre_checksum: false,
        }
    }

    /// The Ethernet frame carrying `inner` (an IPv4 or IPv6 packet) in GRE.
    pub fn encapsulate(&self, inner: &[u8]) -> Vec<u8> {
        let protocol = if inner.first().is_some_and(|b| b >> 4 == 6) {
            EtherType::IPV6
        } else {
            EtherType::IPV4
        };
        let mut gre = Vec::with_capacity(16 + inner.len());
        let flags = u16::from(self.gre_checksum) << 15
            | u16::from(self.key.is_some()) << 13
            | u16::from(self.sequence.is_some()) << 12;
        gre.extend_from_slice(&flags.to_be_bytes());
        gre.extend_from_slice(&protocol.0.to_be_bytes());
        if self.gre_checksum {
            gre.extend_from_slice(&[0; 4]);
        }
        if let Some(key) = self.key {
            gre.extend_from_slice(&key.to_be_bytes());
        }
        if let Some(seq) = self.sequence {
            gre.extend_from_slice(&seq.to_be_bytes());
        }
        gre.extend_from_slice(inner);
        if self.gre_checksum {
            let sum = internet_checksum(&gre);
            gre[4..6].copy_from_slice(&sum.to_be_bytes());
        }
        let mut ip = Ipv4Header::new(
            gre.len() as u16,
            self.ttl,
            IpNumber::GRE,
            self.outer_src.octets(),
            self.outer_dst.octets(),
        )
        .expect("synthetic packets are small");
        ip.header_checksum = ip.calc_header_checksum();
        let mut payload = ip.to_bytes().to_vec();
        payload.extend_from_slice(&gre);
        ethernet_frame(
            self.eth_src,
            self.eth_dst,
            self.vlan,
            EtherType::IPV4.0,
            &payload,
        )
    }
}

/// Ethernet address the synthetic router sends from.
pub const ROUTER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0xaa];
/// Ethernet address of the balancer in synthetic traffic.
pub const BALANCER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

/// An Ethernet frame, with one 802.1Q tag when `vlan` is set.
pub fn ethernet_frame(
    src: [u8; 6],
    dst: [u8; 6],
    vlan: Option<u16>,
    ethertype: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(18 + payload.len());
    out.extend_from_slice(&dst);
    out.extend_from_slice(&src);
    if let Some(vid) = vlan {
        out.extend_from_slice(&EtherType::VLAN_TAGGED_FRAME.0.to_be_bytes());
        out.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
    }
    out.extend_from_slice(&ethertype.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Splits an IPv4 packet (header without the DF bit) into fragments carrying
/// at most `size` payload bytes each (rounded down to a multiple of 8), as a
/// router would (RFC 791).
pub fn fragment_ipv4(packet: &[u8], size: usize) -> Vec<Vec<u8>> {
    let header_len = usize::from(packet[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    let payload = &packet[header_len..total];
    let size = (size / 8).max(1) * 8;
    let count = payload.len().div_ceil(size);
    (0..count)
        .map(|i| {
            let chunk = &payload[i * size..((i + 1) * size).min(payload.len())];
            let mut out = packet[..header_len].to_vec();
            out.extend_from_slice(chunk);
            let len = out.len() as u16;
            out[2..4].copy_from_slice(&len.to_be_bytes());
            let more = u16::from(i + 1 < count) << 13;
            let offset = ((i * size) / 8) as u16;
            out[6..8].copy_from_slice(&(more | offset).to_be_bytes());
            out[10..12].copy_from_slice(&[0, 0]);
            let sum = internet_checksum(&out[..header_len]);
            out[10..12].copy_from_slice(&sum.to_be_bytes());
            out
        })
        .collect()
}

/// Splits an IPv6 packet without extension headers into fragments of at most
/// `size` payload bytes (rounded down to a multiple of 8), each with a
/// Fragment header (RFC 8200 section 4.5).
pub fn fragment_ipv6(packet: &[u8], size: usize, ident: u32) -> Vec<Vec<u8>> {
    let next_header = packet[6];
    let payload = &packet[40..40 + usize::from(u16::from_be_bytes([packet[4], packet[5]]))];
    let size = (size / 8).max(1) * 8;
    let count = payload.len().div_ceil(size);
    (0..count)
        .map(|i| {
            let chunk = &payload[i * size..((i + 1) * size).min(payload.len())];
            let mut out = packet[..40].to_vec();
            out[6] = IpNumber::IPV6_FRAGMENTATION_HEADER.0;
            let offset_and_more = ((i * size) as u16) | u16::from(i + 1 < count);
            out.extend_from_slice(&[next_header, 0]);
            out.extend_from_slice(&offset_and_more.to_be_bytes());
            out.extend_from_slice(&ident.to_be_bytes());
            out.extend_from_slice(chunk);
            let len = (out.len() - 40) as u16;
            out[4..6].copy_from_slice(&len.to_be_bytes());
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};

    fn flow() -> ClientFlow {
        ClientFlow {
            src: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)),
            dst: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 80)),
            transport: Transport::Tcp,
            src_port: 40_000,
            dst_port: 80,
        }
    }

    #[test]
    fn a_tunnelled_packet_parses_back_with_valid_checksums() {
        let inner = flow().packet(b"hello");
        let mut tunnel = Tunnel::new(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 10));
        tunnel.vlan = Some(7);
        tunnel.key = Some(0xdead_beef);
        tunnel.gre_checksum = true;
        let frame = tunnel.encapsulate(&inner);
        let outer = SlicedPacket::from_ethernet(&frame).unwrap();
        let Some(NetSlice::Ipv4(ip)) = outer.net else {
            panic!("outer IPv4")
        };
        let header = ip.header().to_header();
        assert_eq!(header.protocol, IpNumber::GRE);
        assert_eq!(header.header_checksum, header.calc_header_checksum());
        let gre = ip.payload().payload;
        // Flags C and K, protocol IPv4, checksum, key, then the inner packet.
        assert_eq!(&gre[..4], &[0xa0, 0x00, 0x08, 0x00]);
        assert_eq!(&gre[8..12], &0xdead_beef_u32.to_be_bytes());
        assert_eq!(&gre[12..], inner.as_slice());
        // A whole GRE checksum sums to all ones.
        assert_eq!(Sum16BitWords::new().add_slice(gre).ones_complement(), 0);
        let sliced = SlicedPacket::from_ip(&gre[12..]).unwrap();
        let Some(TransportSlice::Tcp(tcp)) = sliced.transport else {
            panic!("inner TCP")
        };
        assert_eq!((tcp.source_port(), tcp.destination_port()), (40_000, 80));
        assert_eq!(tcp.payload(), b"hello");
    }

    #[test]
    fn ipv4_fragments_carry_the_payload_in_order_with_valid_headers() {
        let packet = flow().packet(&[0x5a; 100]);
        let fragments = fragment_ipv4(&packet, 40);
        assert_eq!(fragments.len(), 3);
        let mut payload = Vec::new();
        for (i, fragment) in fragments.iter().enumerate() {
            let header = Ipv4Header::from_slice(fragment).unwrap().0;
            assert_eq!(header.header_checksum, header.calc_header_checksum());
            assert_eq!(header.more_fragments, i < 2);
            assert_eq!(
                usize::from(header.fragment_offset.value()) * 8,
                payload.len()
            );
            payload.extend_from_slice(&fragment[20..]);
        }
        assert_eq!(payload, packet[20..]);
    }

    #[test]
    fn ipv6_fragments_have_a_fragment_header_each() {
        let mut six = flow();
        six.src = "2001:db8::7".parse().unwrap();
        six.dst = "2001:db8::80".parse().unwrap();
        six.transport = Transport::Udp;
        let packet = six.packet(&[1; 50]);
        let fragments = fragment_ipv6(&packet, 24, 0x1234);
        assert_eq!(fragments.len(), 3);
        for (i, fragment) in fragments.iter().enumerate() {
            assert_eq!(fragment[6], 44);
            assert_eq!(fragment[40], 17, "the next header is UDP");
            assert_eq!(&fragment[44..48], &0x1234_u32.to_be_bytes());
            assert_eq!(fragment[43] & 1 == 1, i < 2, "more fragments");
        }
    }
}
