//! `complete` against the sums etherparse computes, on what a sender with
//! checksum offload puts on the wire.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::complete;
use crate::wire::{checksum, ethertype, ip_proto};
use synth::{ethernet_frame, ClientFlow, Transport, Tunnel, BALANCER_MAC, ROUTER_MAC};

/// Where `packet`'s (IP, correct checksums) transport checksum field is, and
/// what a sender with offload leaves in it: the folded pseudo-header sum,
/// which is what Linux writes there for `CHECKSUM_PARTIAL`.
fn partial_field(packet: &[u8]) -> (usize, [u8; 2]) {
    let (protocol, l4, pseudo) = if packet[0] >> 4 == 4 {
        let l4 = usize::from(packet[0] & 0x0f) * 4;
        let len = (packet.len() - l4) as u16;
        let (src, dst) = (
            packet[12..16].try_into().unwrap(),
            packet[16..20].try_into().unwrap(),
        );
        let pseudo = checksum::pseudo_header_v4(src, dst, packet[9], len);
        (packet[9], l4, pseudo)
    } else {
        let len = (packet.len() - 40) as u32;
        let (src, dst) = (
            packet[8..24].try_into().unwrap(),
            packet[24..40].try_into().unwrap(),
        );
        (
            packet[6],
            40,
            checksum::pseudo_header_v6(&src, &dst, packet[6], len),
        )
    };
    let field = l4 + if protocol == ip_proto::TCP { 16 } else { 6 };
    (field, checksum::fold(pseudo).to_be_bytes())
}

/// `packet` in an Ethernet frame, tagged or not, through a GRE tunnel (with
/// a GRE checksum or not) or not; and where the packet starts in it.
fn framed(packet: &[u8], vlan: Option<u16>, tunnel: Option<bool>) -> (Vec<u8>, usize) {
    let l2 = if vlan.is_some() { 18 } else { 14 };
    if let Some(gre_checksum) = tunnel {
        let tunnel = Tunnel {
            vlan,
            gre_checksum,
            ..Tunnel::new(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 10))
        };
        let gre = if gre_checksum { 8 } else { 4 };
        return (tunnel.encapsulate(packet), l2 + 20 + gre);
    }
    let kind = if packet[0] >> 4 == 4 {
        ethertype::IPV4
    } else {
        ethertype::IPV6
    };
    (
        ethernet_frame(ROUTER_MAC, BALANCER_MAC, vlan, kind, packet),
        l2,
    )
}

fn flow(v6: bool, udp: bool, src_port: u16, dst_port: u16, seed: u128) -> ClientFlow {
    let (src, dst) = if v6 {
        (
            IpAddr::V6(Ipv6Addr::from(seed)),
            IpAddr::V6(Ipv6Addr::from(seed.rotate_left(64) ^ 1)),
        )
    } else {
        (
            IpAddr::V4(Ipv4Addr::from(seed as u32)),
            IpAddr::V4(Ipv4Addr::from((seed >> 32) as u32 ^ 1)),
        )
    };
    ClientFlow {
        src,
        dst,
        transport: if udp { Transport::Udp } else { Transport::Tcp },
        src_port,
        dst_port,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Whatever the addresses, ports and payload (odd lengths included), for
    /// TCP and UDP, IPv4 and IPv6, tagged or not, plain or inside GRE (with a
    /// GRE checksum the sender computed as if the inner one were whole, as
    /// Linux's local checksum offload does): the completed frame is the
    /// frame with its checksums computed in full.
    #[test]
    fn a_partial_checksum_is_completed_to_the_full_one(
        v6 in any::<bool>(),
        udp in any::<bool>(),
        vlan in prop::option::of(1u16..4095),
        tunnel in prop::option::of(any::<bool>()),
        ports in any::<(u16, u16)>(),
        seed in any::<u128>(),
        payload in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let packet = flow(v6, udp, ports.0, ports.1, seed).packet(&payload);
        let (expected, at) = framed(&packet, vlan, tunnel);
        let (field, partial) = partial_field(&packet);
        let mut frame = expected.clone();
        frame[at + field..at + field + 2].copy_from_slice(&partial);
        prop_assert!(complete(&mut frame) || frame == expected);
        prop_assert_eq!(frame, expected);
    }

    /// A kernel GRE tunnel with checksums whose inner checksum is whole
    /// leaves the GRE checksum (zero) to offload instead: it is filled in.
    #[test]
    fn a_gre_checksum_left_to_offload_is_completed(
        v6 in any::<bool>(),
        udp in any::<bool>(),
        vlan in prop::option::of(1u16..4095),
        seed in any::<u128>(),
        payload in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let packet = flow(v6, udp, 40000, 53, seed).packet(&payload);
        let (expected, at) = framed(&packet, vlan, Some(true));
        let mut frame = expected.clone();
        // The GRE checksum field: right after the GRE flags and protocol.
        frame[at - 4..at - 2].copy_from_slice(&[0, 0]);
        prop_assert!(complete(&mut frame) || frame == expected);
        prop_assert_eq!(frame, expected);
    }

    /// Checksums that already verify are never touched.
    #[test]
    fn a_whole_frame_is_left_unchanged(
        v6 in any::<bool>(),
        udp in any::<bool>(),
        vlan in prop::option::of(1u16..4095),
        tunnel in prop::option::of(any::<bool>()),
        seed in any::<u128>(),
        payload in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let packet = flow(v6, udp, 40000, 53, seed).packet(&payload);
        let (whole, _) = framed(&packet, vlan, tunnel);
        let mut frame = whole.clone();
        prop_assert!(!complete(&mut frame));
        prop_assert_eq!(frame, whole);
    }

    /// Any bytes at all: no panic.
    #[test]
    fn arbitrary_bytes_do_not_panic(mut frame in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = complete(&mut frame);
    }
}

#[test]
fn a_frame_cut_anywhere_is_left_as_it_is() {
    let packet = flow(false, false, 40000, 80, 7).packet(b"GET / HTTP/1.1\r\n");
    let (mut frame, at) = framed(&packet, None, None);
    let (field, partial) = partial_field(&packet);
    frame[at + field..at + field + 2].copy_from_slice(&partial);
    for len in 0..frame.len() {
        let mut cut = frame[..len].to_vec();
        assert!(!complete(&mut cut), "completed a frame cut to {len} bytes");
        assert_eq!(cut, frame[..len]);
    }
}

#[test]
fn fragments_icmp_and_arp_are_left_as_they_are() {
    let mut packet = flow(false, true, 5353, 53, 9).packet(&[1; 64]);
    let (field, partial) = partial_field(&packet);
    packet[field..field + 2].copy_from_slice(&partial);
    // A first fragment (more fragments set): its checksum covers data it lacks.
    let mut first_fragment = packet.clone();
    first_fragment[6] |= 0x20;
    // An ICMP echo request.
    let mut icmp = packet.clone();
    icmp[9] = ip_proto::ICMP;
    for (name, packet) in [("fragment", first_fragment), ("icmp", icmp)] {
        let (mut frame, _) = framed(&packet, None, None);
        let before = frame.clone();
        assert!(!complete(&mut frame), "{name}");
        assert_eq!(frame, before, "{name}");
    }
    let mut arp = ethernet_frame(ROUTER_MAC, BALANCER_MAC, None, ethertype::ARP, &[0; 28]);
    assert!(!complete(&mut arp));
}
