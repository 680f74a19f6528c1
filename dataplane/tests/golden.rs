//! Golden packets: each fixture in `tests/golden/` is an input frame, the
//! verdict, and for forwarded frames the exact output frame. Katran keeps its
//! BPF tests this way; a change in any byte the balancer emits shows here.
//!
//! The inputs are built from `cases()` below; `RR_BLESS=1 cargo test --test
//! golden` rewrites the fixture files after a deliberate change (review the
//! diff before committing it).

mod common;

use common::*;
use dataplane::wire::ethertype;
use dataplane::{DropReason, Verdict};
use synth::{ethernet_frame, ClientFlow, Transport};

struct Case {
    name: &'static str,
    about: &'static str,
    frame: Vec<u8>,
}

fn gre_tcp() -> Vec<u8> {
    tunnel().encapsulate(&tcp4([198, 51, 100, 7], 40000).packet(b"GET / HTTP/1.1\r\n\r\n"))
}

/// Sets byte `at` of `frame` and repairs the outer IPv4 checksum (Ethernet
/// header untagged), so only the intended field is wrong.
fn poke(mut frame: Vec<u8>, at: usize, value: u8) -> Vec<u8> {
    frame[at] = value;
    fix_outer_checksum(&mut frame, 14);
    frame
}

fn fix_outer_checksum(frame: &mut [u8], l2: usize) {
    let header_len = usize::from(frame[l2] & 0x0f) * 4;
    frame[l2 + 10..l2 + 12].copy_from_slice(&[0, 0]);
    let sum = dataplane::wire::checksum::checksum(&frame[l2..l2 + header_len]);
    frame[l2 + 10..l2 + 12].copy_from_slice(&sum.to_be_bytes());
}

fn cases() -> Vec<Case> {
    let mut t = tunnel();
    let mut out = vec![
        Case {
            name: "gre_v4_tcp",
            about: "GRE, inner IPv4 TCP: outer rewritten toward a backend",
            frame: gre_tcp(),
        },
        Case {
            name: "gre_v6_udp",
            about: "GRE, inner IPv6 UDP",
            frame: t.encapsulate(&udp6(5353).packet(b"query")),
        },
    ];
    t.key = Some(0x0102_0304);
    t.sequence = Some(7);
    out.push(Case {
        name: "gre_key_and_sequence",
        about: "RFC 2890 key and sequence words pass untouched",
        frame: t.encapsulate(&tcp4([198, 51, 100, 8], 40001).packet(b"x")),
    });
    t.key = None;
    t.sequence = None;
    t.gre_checksum = true;
    out.push(Case {
        name: "gre_checksum",
        about: "GRE checksum present: passes untouched (it covers only GRE and inner bytes)",
        frame: t.encapsulate(&tcp4([198, 51, 100, 9], 40002).packet(b"y")),
    });
    t.gre_checksum = false;
    t.vlan = Some(42);
    out.push(Case {
        name: "vlan_tagged",
        about: "one 802.1Q tag: kept as it is",
        frame: t.encapsulate(&tcp4([198, 51, 100, 10], 40003).packet(b"z")),
    });
    t.vlan = None;
    t.ttl = 2;
    out.push(Case {
        name: "ttl_2_forwarded_with_ttl_1",
        about: "TTL 2 leaves as 1",
        frame: t.encapsulate(&tcp4([198, 51, 100, 11], 40004).packet(b"")),
    });
    t.ttl = 1;
    out.push(Case {
        name: "ttl_1_expires",
        about: "TTL 1 cannot be forwarded",
        frame: t.encapsulate(&tcp4([198, 51, 100, 11], 40004).packet(b"")),
    });

    // Outer IPv4 with a 4-byte option (NOP NOP NOP EOL): IHL 6.
    let mut with_options = gre_tcp();
    with_options.splice(34..34, [1, 1, 1, 0]);
    with_options[14] = 0x46;
    let total = u16::from_be_bytes([with_options[16], with_options[17]]) + 4;
    with_options[16..18].copy_from_slice(&total.to_be_bytes());
    fix_outer_checksum(&mut with_options, 14);
    out.push(Case {
        name: "ipv4_options",
        about: "outer header with options: rewritten, options kept",
        frame: with_options,
    });

    out.push(Case {
        name: "bad_gre_version",
        about: "GRE version 1 (PPTP) is not ours",
        frame: poke(gre_tcp(), 35, 0x01),
    });
    out.push(Case {
        name: "gre_routing_bit",
        about: "RFC 1701 routing bit set",
        frame: poke(gre_tcp(), 34, 0x40),
    });
    let mut teb = gre_tcp();
    teb[36..38].copy_from_slice(&0x6558u16.to_be_bytes());
    out.push(Case {
        name: "gre_transparent_ethernet",
        about: "GRE protocol 0x6558 is not balanced",
        frame: teb,
    });
    let mut mismatch = gre_tcp();
    mismatch[36..38].copy_from_slice(&ethertype::IPV6.to_be_bytes());
    out.push(Case {
        name: "inner_version_mismatch",
        about: "GRE says IPv6, the packet is IPv4",
        frame: mismatch,
    });
    out.push(Case {
        name: "bad_outer_checksum",
        about: "outer IPv4 checksum wrong",
        frame: {
            let mut f = gre_tcp();
            f[24] ^= 0xff;
            f
        },
    });

    let full = gre_tcp();
    out.push(Case {
        name: "truncated_ethernet",
        about: "a runt frame",
        frame: full[..10].to_vec(),
    });
    out.push(Case {
        name: "truncated_vlan",
        about: "802.1Q tag cut off",
        frame: {
            let mut f = full[..16].to_vec();
            f[12..14].copy_from_slice(&[0x81, 0]);
            f
        },
    });
    out.push(Case {
        name: "truncated_outer_ipv4",
        about: "outer total length beyond the frame",
        frame: full[..40].to_vec(),
    });
    out.push(Case {
        name: "truncated_gre",
        about: "two bytes of GRE",
        frame: {
            let mut f = full[..36].to_vec();
            f[16..18].copy_from_slice(&22u16.to_be_bytes());
            fix_outer_checksum(&mut f, 14);
            f
        },
    });
    out.push(Case {
        name: "truncated_inner_ipv4",
        about: "ten bytes of inner IPv4",
        frame: {
            let mut f = full[..48].to_vec();
            f[16..18].copy_from_slice(&34u16.to_be_bytes());
            fix_outer_checksum(&mut f, 14);
            f
        },
    });
    let mut short_tcp = tcp4([198, 51, 100, 12], 40005).packet(b"");
    short_tcp.truncate(30);
    short_tcp[2..4].copy_from_slice(&30u16.to_be_bytes());
    short_tcp[10..12].copy_from_slice(&[0, 0]);
    let sum = dataplane::wire::checksum::checksum(&short_tcp[..20]);
    short_tcp[10..12].copy_from_slice(&sum.to_be_bytes());
    out.push(Case {
        name: "truncated_tcp",
        about: "inner TCP header cut to 10 bytes",
        frame: tunnel().encapsulate(&short_tcp),
    });

    let arp = ethernet_frame(
        [0x02, 0, 0, 0, 0, 0xaa],
        [0xff; 6],
        None,
        ethertype::ARP,
        &[0u8; 28],
    );
    out.push(Case {
        name: "arp_passthrough",
        about: "ARP goes to the host",
        frame: arp,
    });
    let other = ClientFlow {
        src: "10.0.0.1".parse().unwrap(),
        dst: "10.0.0.99".parse().unwrap(),
        transport: Transport::Udp,
        src_port: 1,
        dst_port: 2,
    };
    out.push(Case {
        name: "other_destination_passthrough",
        about: "IPv4 not for us goes to the host",
        frame: ethernet_frame(
            [0x02, 0, 0, 0, 0, 0xaa],
            LB_MAC,
            None,
            ethertype::IPV4,
            &other.packet(b"hi"),
        ),
    });
    let ssh = ClientFlow {
        src: "10.0.0.1".parse().unwrap(),
        dst: LB.into(),
        transport: Transport::Tcp,
        src_port: 50000,
        dst_port: 22,
    };
    out.push(Case {
        name: "lb_non_gre_passthrough",
        about: "TCP to the balancer's own address (ssh, API) goes to the host",
        frame: ethernet_frame(
            [0x02, 0, 0, 0, 0, 0xaa],
            LB_MAC,
            None,
            ethertype::IPV4,
            &ssh.packet(b""),
        ),
    });

    out.push(Case {
        name: "vip_v4_encapsulated",
        about: "VIP mode: plain IPv4 to a VIP is wrapped in IPv4+GRE",
        frame: ethernet_frame(
            [0x02, 0, 0, 0, 0, 0xaa],
            LB_MAC,
            None,
            ethertype::IPV4,
            &tcp4([198, 51, 100, 13], 40006).packet(b"hello"),
        ),
    });
    out.push(Case {
        name: "vip_v6_encapsulated",
        about: "VIP mode: IPv6 to a VIP is wrapped in IPv4+GRE (protocol 0x86DD)",
        frame: ethernet_frame(
            [0x02, 0, 0, 0, 0, 0xaa],
            LB_MAC,
            None,
            ethertype::IPV6,
            &udp6(5354).packet(b"hello"),
        ),
    });
    let big = tcp4([198, 51, 100, 14], 40007).packet(&[0u8; 1460]);
    out.push(Case {
        name: "vip_exceeds_mtu",
        about: "VIP mode: 1500-byte packet (DF) + 24 bytes of encapsulation > MTU 1500: \
                answered with ICMP fragmentation needed, MTU 1476, from the VIP",
        frame: ethernet_frame(
            [0x02, 0, 0, 0, 0, 0xaa],
            LB_MAC,
            None,
            ethertype::IPV4,
            &big,
        ),
    });
    let mut may_fragment = big.clone();
    // DF clear (offset 6 holds the flags): no ICMP, and the checksum follows.
    may_fragment[6] &= !0x40;
    may_fragment[10..12].copy_from_slice(&[0, 0]);
    let sum = dataplane::wire::checksum::checksum(&may_fragment[..20]);
    may_fragment[10..12].copy_from_slice(&sum.to_be_bytes());
    out.push(Case {
        name: "vip_exceeds_mtu_df_clear",
        about: "VIP mode: the same packet with DF clear is dropped (we do not fragment)",
        frame: ethernet_frame(
            [0x02, 0, 0, 0, 0, 0xaa],
            LB_MAC,
            None,
            ethertype::IPV4,
            &may_fragment,
        ),
    });
    out.push(Case {
        name: "vip_v6_exceeds_mtu",
        about: "VIP mode: 1500-byte IPv6 packet: answered with ICMPv6 packet too big, \
                MTU 1476, quoting the first 1232 bytes",
        frame: ethernet_frame(
            [0x02, 0, 0, 0, 0, 0xaa],
            LB_MAC,
            None,
            ethertype::IPV6,
            &udp6(5355).packet(&[7u8; 1452]),
        ),
    });
    out
}

#[test]
fn every_golden_packet_gives_its_recorded_verdict_and_bytes() {
    let table = table();
    let mut failures = Vec::new();
    for case in cases() {
        let mut state = state();
        let (verdict, out) = run(&case.frame, &table, &mut state);
        let result = (verdict, &out[..]);
        failures.extend(golden::mismatch(
            "golden",
            case.name,
            case.about,
            &case.frame,
            result,
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn golden_verdicts_are_the_specified_ones() {
    // The fixtures pin bytes; this pins intent, independently of them.
    let expected = [
        ("gre_v4_tcp", Verdict::ToWire),
        ("gre_v6_udp", Verdict::ToWire),
        ("gre_key_and_sequence", Verdict::ToWire),
        ("gre_checksum", Verdict::ToWire),
        ("vlan_tagged", Verdict::ToWire),
        ("ttl_2_forwarded_with_ttl_1", Verdict::ToWire),
        ("ttl_1_expires", Verdict::Drop(DropReason::TtlExpired)),
        ("ipv4_options", Verdict::ToWire),
        ("bad_gre_version", Verdict::Drop(DropReason::BadGreVersion)),
        ("gre_routing_bit", Verdict::Drop(DropReason::BadGreFlags)),
        (
            "gre_transparent_ethernet",
            Verdict::Drop(DropReason::UnsupportedGreProtocol),
        ),
        (
            "inner_version_mismatch",
            Verdict::Drop(DropReason::InnerVersionMismatch),
        ),
        (
            "bad_outer_checksum",
            Verdict::Drop(DropReason::BadIpv4Checksum),
        ),
        (
            "truncated_ethernet",
            Verdict::Drop(DropReason::TruncatedEthernet),
        ),
        (
            "truncated_vlan",
            Verdict::Drop(DropReason::TruncatedEthernet),
        ),
        (
            "truncated_outer_ipv4",
            Verdict::Drop(DropReason::TruncatedIpv4),
        ),
        ("truncated_gre", Verdict::Drop(DropReason::TruncatedGre)),
        (
            "truncated_inner_ipv4",
            Verdict::Drop(DropReason::TruncatedInnerIpv4),
        ),
        (
            "truncated_tcp",
            Verdict::Drop(DropReason::TruncatedTransport),
        ),
        ("arp_passthrough", Verdict::ToHost),
        ("other_destination_passthrough", Verdict::ToHost),
        ("lb_non_gre_passthrough", Verdict::ToHost),
        ("vip_v4_encapsulated", Verdict::ToWire),
        ("vip_v6_encapsulated", Verdict::ToWire),
        ("vip_exceeds_mtu", Verdict::ToWire),
        (
            "vip_exceeds_mtu_df_clear",
            Verdict::Drop(DropReason::EncapExceedsMtu),
        ),
        ("vip_v6_exceeds_mtu", Verdict::ToWire),
    ];
    let cases = cases();
    assert_eq!(
        cases.len(),
        expected.len(),
        "every case has a specified verdict"
    );
    let table = table();
    for (case, (name, verdict)) in cases.iter().zip(expected) {
        assert_eq!(case.name, name);
        let (actual, _) = run(&case.frame, &table, &mut state());
        assert_eq!(actual, verdict, "{name}: {}", case.about);
    }
}

#[test]
fn gre_mode_changes_only_the_outer_addresses_ttl_checksum_and_macs() {
    let table = table();
    for case in cases() {
        let (verdict, out) = run(&case.frame, &table, &mut state());
        if verdict != Verdict::ToWire || case.name.starts_with("vip_") {
            continue;
        }
        let l2 = if case.frame[12..14] == [0x81, 0x00] {
            18
        } else {
            14
        };
        assert_eq!(out.len(), case.frame.len(), "{}", case.name);
        let backend = backend_of(&out).expect("sent to a configured backend");
        assert_eq!(
            &out[0..6],
            &backend_mac(backend),
            "{}: next-hop MAC",
            case.name
        );
        assert_eq!(&out[6..12], &LB_MAC, "{}: our MAC", case.name);
        assert_eq!(
            &out[12..l2],
            &case.frame[12..l2],
            "{}: EtherType / VLAN",
            case.name
        );
        assert_eq!(
            out[l2 + 8],
            case.frame[l2 + 8] - 1,
            "{}: TTL decremented",
            case.name
        );
        assert_eq!(
            &out[l2 + 12..l2 + 16],
            &LB.octets(),
            "{}: outer source is the balancer",
            case.name
        );
        let header_len = usize::from(out[l2] & 0x0f) * 4;
        assert_eq!(
            dataplane::wire::checksum::checksum(&out[l2..l2 + header_len]),
            0,
            "{}: outer checksum",
            case.name
        );
        let untouched = |r: core::ops::Range<usize>| (&out[r.clone()], &case.frame[r]);
        let (a, b) = untouched(l2..l2 + 8);
        assert_eq!(a, b, "{}", case.name);
        let (a, b) = untouched(l2 + 9..l2 + 10);
        assert_eq!(a, b, "{}", case.name);
        let (a, b) = untouched(l2 + 20..out.len());
        assert_eq!(
            a, b,
            "{}: options, GRE and inner bytes untouched",
            case.name
        );
    }
}
