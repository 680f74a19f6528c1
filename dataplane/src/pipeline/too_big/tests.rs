//! The ICMP errors `reply` writes, read back with etherparse; and the
//! packets it must not answer.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{
    icmpv4::DestUnreachableHeader, Icmpv4Type, Icmpv6Type, NetSlice, SlicedPacket, TransportSlice,
};

use super::{reply, ReplyBudget, Sender, BURST};
use crate::wire::{checksum, ethertype};
use synth::{ethernet_frame, ClientFlow, Transport, BALANCER_MAC, ROUTER_MAC};

const MTU: u16 = 1500;
const VIP4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 80);
const CLIENT4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x80);
const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 7);

fn packet(src: IpAddr, dst: IpAddr, payload_len: usize) -> Vec<u8> {
    ClientFlow {
        src,
        dst,
        transport: Transport::Tcp,
        src_port: 40000,
        dst_port: 80,
    }
    .packet(&vec![0x5a; payload_len])
}

/// `reply` from a balancer with MTU 1500 and a full error budget.
fn answer(frame: &mut [u8], l2: usize, ip_len: usize, is_ipv6: bool) -> Option<usize> {
    let sender = Sender {
        mtu: MTU,
        lb_mac: BALANCER_MAC,
        budget: &mut ReplyBudget::default(),
        now_ms: 0,
    };
    reply(frame, l2, ip_len, is_ipv6, sender)
}

fn frame(packet: &[u8]) -> Vec<u8> {
    let kind = if packet[0] >> 4 == 4 {
        ethertype::IPV4
    } else {
        ethertype::IPV6
    };
    ethernet_frame(ROUTER_MAC, BALANCER_MAC, None, kind, packet)
}

/// Refixes the IPv4 header checksum after a test changed the header.
fn refix(packet: &mut [u8]) {
    packet[10..12].copy_from_slice(&[0, 0]);
    let sum = checksum::checksum(&packet[..20]);
    packet[10..12].copy_from_slice(&sum.to_be_bytes());
}

#[test]
fn an_ipv4_packet_with_df_gets_fragmentation_needed_from_the_vip() {
    let original = packet(CLIENT4.into(), VIP4.into(), 1460);
    let mut bytes = frame(&original);
    let len = answer(&mut bytes, 14, original.len(), false).expect("an error is sent");
    let bytes = &bytes[..len];
    assert_eq!(len, 14 + 576, "the error fills RFC 1812's 576 bytes");
    assert_eq!(
        (&bytes[..6], &bytes[6..12]),
        (&ROUTER_MAC[..], &BALANCER_MAC[..])
    );
    let sliced = SlicedPacket::from_ethernet(bytes).expect("etherparse reads it");
    let Some(NetSlice::Ipv4(ip)) = sliced.net else {
        panic!("not IPv4: {:?}", sliced.net);
    };
    let header = ip.header().to_header();
    assert_eq!(
        (header.source, header.destination),
        (VIP4.octets(), CLIENT4.octets())
    );
    assert_eq!(header.header_checksum, header.calc_header_checksum());
    let Some(TransportSlice::Icmpv4(icmp)) = sliced.transport else {
        panic!("not ICMPv4: {:?}", sliced.transport);
    };
    let kind = icmp.icmp_type();
    assert_eq!(
        kind,
        Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::FragmentationNeeded {
            next_hop_mtu: 1476
        })
    );
    assert_eq!(icmp.checksum(), kind.calc_checksum(icmp.payload()));
    assert_eq!(
        icmp.payload(),
        &original[..548],
        "quotes the packet from its start"
    );
}

#[test]
fn an_ipv6_packet_gets_packet_too_big_from_the_vip() {
    let original = packet(CLIENT6.into(), VIP6.into(), 1440);
    let mut bytes = frame(&original);
    let len = answer(&mut bytes, 14, original.len(), true).expect("an error is sent");
    let bytes = &bytes[..len];
    assert_eq!(len, 14 + 1280, "the error fills the minimum IPv6 MTU");
    assert_eq!(
        (&bytes[..6], &bytes[6..12]),
        (&ROUTER_MAC[..], &BALANCER_MAC[..])
    );
    let sliced = SlicedPacket::from_ethernet(bytes).expect("etherparse reads it");
    let Some(NetSlice::Ipv6(ip)) = sliced.net else {
        panic!("not IPv6: {:?}", sliced.net);
    };
    let header = ip.header().to_header();
    assert_eq!(
        (header.source, header.destination),
        (VIP6.octets(), CLIENT6.octets())
    );
    let Some(TransportSlice::Icmpv6(icmp)) = sliced.transport else {
        panic!("not ICMPv6: {:?}", sliced.transport);
    };
    let kind = icmp.icmp_type();
    assert_eq!(kind, Icmpv6Type::PacketTooBig { mtu: 1476 });
    let expected = kind
        .calc_checksum(VIP6.octets(), CLIENT6.octets(), icmp.payload())
        .unwrap();
    assert_eq!(icmp.checksum(), expected);
    assert_eq!(icmp.payload(), &original[..1232]);
}

#[test]
fn packets_that_must_not_be_answered_are_left_untouched() {
    let mut may_fragment = packet(CLIENT4.into(), VIP4.into(), 1460);
    may_fragment[6] &= !0x40;
    refix(&mut may_fragment);
    let mut later_fragment = packet(CLIENT4.into(), VIP4.into(), 1460);
    later_fragment[7] = 0x10;
    refix(&mut later_fragment);
    let mut icmp_error = packet(CLIENT4.into(), VIP4.into(), 1460);
    icmp_error[9] = 1;
    icmp_error[20] = 3;
    refix(&mut icmp_error);
    let multicast_source = packet(Ipv4Addr::new(224, 0, 0, 5).into(), VIP4.into(), 1460);
    let loopback_source = packet(Ipv4Addr::LOCALHOST.into(), VIP4.into(), 1460);
    let v6_multicast_source = packet(
        Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1).into(),
        VIP6.into(),
        1440,
    );
    let mut v6_icmp_error = packet(CLIENT6.into(), VIP6.into(), 1440);
    v6_icmp_error[6] = 58;
    v6_icmp_error[40] = 1;
    // The same behind an 8-byte destination options header.
    let mut behind_options = v6_icmp_error.clone();
    behind_options[6] = 60;
    behind_options[40..48].copy_from_slice(&[58, 0, 1, 4, 0, 0, 0, 0]);
    behind_options[48] = 1;
    for (name, original) in [
        ("DF clear", may_fragment),
        ("non-first fragment", later_fragment),
        ("ICMP error", icmp_error),
        ("multicast source", multicast_source),
        ("loopback source", loopback_source),
        ("IPv6 multicast source", v6_multicast_source),
        ("ICMPv6 error", v6_icmp_error),
        ("ICMPv6 error behind extension headers", behind_options),
    ] {
        let mut bytes = frame(&original);
        let before = bytes.clone();
        let is_ipv6 = original[0] >> 4 == 6;
        assert_eq!(
            answer(&mut bytes, 14, original.len(), is_ipv6),
            None,
            "{name}"
        );
        assert_eq!(bytes, before, "{name}");
    }
}

#[test]
fn lengths_beyond_the_frame_are_refused_not_read() {
    let original = packet(CLIENT4.into(), VIP4.into(), 1460);
    let mut bytes = frame(&original);
    assert_eq!(answer(&mut bytes, 14, original.len() + 1, false), None);
    assert_eq!(answer(&mut bytes, usize::MAX, 10, false), None);
    assert_eq!(answer(&mut bytes[..30], 14, 16, false), None);
}

#[test]
fn broadcast_and_multicast_frames_are_not_answered() {
    let original = packet(CLIENT4.into(), VIP4.into(), 1460);
    for dst in [
        [0xff; 6],
        [0x01, 0x00, 0x5e, 0, 0, 1],
        [0x33, 0x33, 0, 0, 0, 1],
    ] {
        let mut bytes = ethernet_frame(ROUTER_MAC, dst, None, ethertype::IPV4, &original);
        assert_eq!(
            answer(&mut bytes, 14, original.len(), false),
            None,
            "{dst:02x?}"
        );
    }
}

#[test]
fn a_tagged_frame_is_answered_on_its_vlan_from_the_balancer_mac() {
    let original = packet(CLIENT4.into(), VIP4.into(), 1460);
    let stranger = [0x02, 0, 0, 0, 0, 0x77];
    let mut bytes = ethernet_frame(ROUTER_MAC, stranger, Some(7), ethertype::IPV4, &original);
    let tag = bytes[12..18].to_vec();
    let len = answer(&mut bytes, 18, original.len(), false).expect("an error is sent");
    assert_eq!(len, 18 + 576);
    assert_eq!(
        (&bytes[..6], &bytes[6..12]),
        (&ROUTER_MAC[..], &BALANCER_MAC[..])
    );
    assert_eq!(bytes[12..18], tag[..], "the 802.1Q tag and EtherType stay");
    assert_eq!(
        bytes[18 + 12..18 + 20],
        [VIP4.octets(), CLIENT4.octets()].concat()
    );
}

#[test]
fn an_mtu_the_sender_must_ignore_is_not_sent() {
    // 1300 less 24 is below IPv6's 1280: hosts would ignore the error.
    let original = packet(CLIENT6.into(), VIP6.into(), 1440);
    let mut bytes = frame(&original);
    let sender = Sender {
        mtu: 1300,
        lb_mac: BALANCER_MAC,
        budget: &mut ReplyBudget::default(),
        now_ms: 0,
    };
    assert_eq!(reply(&mut bytes, 14, original.len(), true, sender), None);
}

#[test]
fn errors_are_limited_to_a_burst_then_a_thousand_a_second() {
    let original = packet(CLIENT4.into(), VIP4.into(), 1460);
    let mut budget = ReplyBudget::default();
    let sent_at = |now_ms: u64, budget: &mut ReplyBudget| {
        let mut bytes = frame(&original);
        let sender = Sender {
            mtu: MTU,
            lb_mac: BALANCER_MAC,
            budget,
            now_ms,
        };
        reply(&mut bytes, 14, original.len(), false, sender).is_some()
    };
    let burst = (0..200).filter(|_| sent_at(0, &mut budget)).count();
    assert_eq!(burst as u64, BURST);
    // 10 ms later, 10 more.
    let later = (0..200).filter(|_| sent_at(10, &mut budget)).count();
    assert_eq!(later, 10);
    // A long quiet spell refills only up to the burst.
    let after_quiet = (0..200).filter(|_| sent_at(60_000, &mut budget)).count();
    assert_eq!(after_quiet as u64, BURST);
}
