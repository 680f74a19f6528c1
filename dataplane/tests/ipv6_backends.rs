//! IPv6 backends and GRE over IPv6: golden packets (bytes in, verdict, bytes
//! out, kept in `tests/golden_ipv6_backends/`), Maglev over a mixed set,
//! and hostile input through a balancer with IPv6 backends.
//!
//! `RR_BLESS=1 cargo test -p dataplane --test ipv6_backends` rewrites the
//! fixtures after a deliberate change (review the diff before committing).

mod common;

use core::net::{IpAddr, Ipv6Addr};
use std::collections::HashMap;

use common::*;
use dataplane::forwarding::{BackendSpec, ForwardingError, ForwardingSpec, ForwardingTable};
use dataplane::wire::{ethertype, ip_proto};
use dataplane::{DropReason, Verdict};
use etherparse::{NetSlice, SlicedPacket};
use proptest::prelude::*;
use synth::{ethernet_frame, ROUTER_MAC};

const BACKEND6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xb, 0, 0, 0, 0, 1);

fn backend(slot: u16, addr: IpAddr) -> BackendSpec {
    BackendSpec {
        slot,
        addr,
        weight: 1,
        mac: Some(backend_mac(usize::from(slot))),
        generation: 0,
    }
}

fn spec_v6(backends: Vec<BackendSpec>) -> ForwardingSpec {
    ForwardingSpec {
        lb_ipv6: Some(LB6),
        ..spec_with(backends)
    }
}

/// A balancer with an IPv6 address and one backend, IPv6: every flow goes there.
fn to_v6_backend() -> ForwardingTable {
    ForwardingTable::build(&spec_v6(vec![backend(0, BACKEND6.into())])).unwrap()
}

/// A balancer with an IPv6 address and one backend, IPv4.
fn to_v4_backend() -> ForwardingTable {
    ForwardingTable::build(&spec_v6(vec![backend(0, BACKENDS[0].into())])).unwrap()
}

fn gre4_tcp() -> Vec<u8> {
    tunnel().encapsulate(&tcp4([198, 51, 100, 7], 40000).packet(b"GET / HTTP/1.1\r\n\r\n"))
}

fn fix_outer_checksum(frame: &mut [u8]) {
    let header_len = usize::from(frame[14] & 0x0f) * 4;
    frame[24..26].copy_from_slice(&[0, 0]);
    let sum = dataplane::wire::checksum::checksum(&frame[14..14 + header_len]);
    frame[24..26].copy_from_slice(&sum.to_be_bytes());
}

struct Case {
    name: &'static str,
    about: &'static str,
    /// Whether the one backend is IPv6.
    v6_backend: bool,
    frame: Vec<u8>,
    verdict: Verdict,
}

fn cases() -> Vec<Case> {
    let case = |name, about, v6_backend, frame, verdict| Case {
        name,
        about,
        v6_backend,
        frame,
        verdict,
    };
    let mut with_options = gre4_tcp();
    with_options.splice(34..34, [1, 1, 1, 0]);
    with_options[14] = 0x46;
    let total = u16::from_be_bytes([with_options[16], with_options[17]]) + 4;
    with_options[16..18].copy_from_slice(&total.to_be_bytes());
    fix_outer_checksum(&mut with_options);
    let mut with_tos = gre4_tcp();
    with_tos[15] = 0xb9; // DSCP 46 (EF), ECN 01
    fix_outer_checksum(&mut with_tos);
    let mut padded = tunnel().encapsulate(&tcp4([198, 51, 100, 8], 40001).packet(b""));
    padded.extend_from_slice(&[0xee; 6]);
    let mut mut_tunnel = tunnel();
    mut_tunnel.vlan = Some(42);
    let vlan = mut_tunnel.encapsulate(&tcp4([198, 51, 100, 9], 40002).packet(b"v"));
    let big = tunnel().encapsulate(&tcp4([198, 51, 100, 10], 40003).packet(&[0u8; 1436]));
    let mut truncated6 = gre6(&tcp4([198, 51, 100, 11], 40004).packet(b"x"), 64);
    truncated6[18..20].copy_from_slice(&2000u16.to_be_bytes());
    let mut version4_in_v6 = gre6(&tcp4([198, 51, 100, 11], 40004).packet(b"x"), 64);
    version4_in_v6[14] = 0x40;
    let mut not_gre6 = gre6(&tcp4([198, 51, 100, 12], 40005).packet(b"ssh"), 64);
    not_gre6[20] = ip_proto::TCP;
    let vip4 = |payload: &[u8]| {
        ethernet_frame(
            ROUTER_MAC,
            LB_MAC,
            None,
            ethertype::IPV4,
            &tcp4([198, 51, 100, 13], 40006).packet(payload),
        )
    };
    let vip6 = ethernet_frame(
        ROUTER_MAC,
        LB_MAC,
        None,
        ethertype::IPV6,
        &udp6(5354).packet(b"hello"),
    );
    vec![
        case("gre4_to_v6", "GRE over IPv4, inner IPv4 TCP, to an IPv6 backend: the outer IPv4 header becomes IPv6 (hop limit = TTL - 1), GRE and inner untouched", true, gre4_tcp(), Verdict::ToWire),
        case("gre4_inner_v6_to_v6", "GRE over IPv4, inner IPv6 UDP, to an IPv6 backend", true, tunnel().encapsulate(&udp6(5353).packet(b"query")), Verdict::ToWire),
        case("gre4_options_to_v6", "outer IPv4 options are not carried into the IPv6 header", true, with_options, Verdict::ToWire),
        case("gre4_tos_to_v6", "the outer DSCP and ECN become the IPv6 traffic class", true, with_tos, Verdict::ToWire),
        case("gre4_padded_to_v6", "Ethernet padding behind the outer packet is cut, not tunnelled", true, padded, Verdict::ToWire),
        case("gre4_vlan_to_v6", "an 802.1Q tag is kept; the inner EtherType becomes IPv6", true, vlan, Verdict::ToWire),
        case("gre4_to_v6_exceeds_mtu", "a 1500-byte outer IPv4 packet would leave as 1520 bytes of IPv6: dropped", true, big, Verdict::Drop(DropReason::EncapExceedsMtu)),
        case("gre6_to_v6", "GRE over IPv6 to an IPv6 backend: addresses and hop limit rewritten in place", true, gre6(&tcp4([198, 51, 100, 14], 40007).packet(b"six"), 64), Verdict::ToWire),
        case("gre6_to_v4", "GRE over IPv6 to an IPv4 backend: the IPv6 header becomes IPv4 (DF, TTL = hop limit - 1)", false, gre6(&tcp4([198, 51, 100, 15], 40008).packet(b"four"), 64), Verdict::ToWire),
        case("gre6_inner_v6_to_v4", "GRE over IPv6, inner IPv6, to an IPv4 backend", false, gre6(&udp6(5355).packet(b"q"), 64), Verdict::ToWire),
        case("gre6_hop_limit_1", "hop limit 1 cannot be forwarded", true, gre6(&tcp4([198, 51, 100, 16], 40009).packet(b""), 1), Verdict::Drop(DropReason::TtlExpired)),
        case("gre6_truncated", "payload length past the frame", true, truncated6, Verdict::Drop(DropReason::TruncatedIpv6)),
        case("gre6_version_4", "IPv6 EtherType, version nibble 4", true, version4_in_v6, Verdict::Drop(DropReason::MalformedIpv6)),
        case("gre6_not_gre", "IPv6 to the balancer that is not GRE is the host's", true, not_gre6, Verdict::ToHost),
        case("vip4_to_v6", "VIP mode: plain IPv4 to a VIP is wrapped in IPv6 + GRE toward an IPv6 backend", true, vip4(b"hello"), Verdict::ToWire),
        case("vip6_to_v6", "VIP mode: IPv6 to a VIP is wrapped in IPv6 + GRE (protocol 0x86DD)", true, vip6, Verdict::ToWire),
        case("vip4_to_v6_too_big", "VIP mode: 1470 bytes fit IPv4 + GRE (1494) but not IPv6 + GRE (1514): ICMP fragmentation needed, MTU 1456", true, vip4(&[0u8; 1430]), Verdict::ToWire),
    ]
}

#[test]
fn every_ipv6_golden_packet_gives_its_specified_verdict_and_recorded_bytes() {
    let (v6, v4) = (to_v6_backend(), to_v4_backend());
    let mut failures = Vec::new();
    for case in cases() {
        let table = if case.v6_backend { &v6 } else { &v4 };
        let (verdict, out) = run(&case.frame, table, &mut state());
        if verdict != case.verdict {
            failures.push(format!(
                "{}: {verdict:?}, not {:?}",
                case.name, case.verdict
            ));
        }
        let result = (verdict, &out[..]);
        let dir = "golden_ipv6_backends";
        failures.extend(golden::mismatch(
            dir,
            case.name,
            case.about,
            &case.frame,
            result,
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The outer header of a forwarded frame, read by etherparse: source,
/// destination, hop limit, and the bytes after it (GRE and the inner packet).
fn outer_of(out: &[u8]) -> (IpAddr, IpAddr, u8, Vec<u8>) {
    let sliced = SlicedPacket::from_ethernet(out).expect("etherparse reads the output");
    match sliced.net {
        Some(NetSlice::Ipv4(ip)) => {
            let h = ip.header();
            let sum = dataplane::wire::checksum::checksum(h.slice());
            assert_eq!(sum, 0, "outer IPv4 checksum");
            (
                IpAddr::V4(h.source_addr()),
                IpAddr::V4(h.destination_addr()),
                h.ttl(),
                ip.payload().payload.to_vec(),
            )
        }
        Some(NetSlice::Ipv6(ip)) => {
            let h = ip.header();
            (
                IpAddr::V6(h.source_addr()),
                IpAddr::V6(h.destination_addr()),
                h.hop_limit(),
                ip.payload().payload.to_vec(),
            )
        }
        other => panic!("no outer IP header: {other:?}"),
    }
}

#[test]
fn gre_leaves_toward_the_backends_family_with_gre_and_inner_packet_unchanged() {
    let inner = tcp4([198, 51, 100, 20], 41000).packet(b"same bytes");
    let mut gre = vec![0, 0, 0x08, 0x00];
    gre.extend_from_slice(&inner);
    let (v6, v4) = (to_v6_backend(), to_v4_backend());
    let cases = [
        (
            tunnel().encapsulate(&inner),
            &v6,
            IpAddr::from(LB6),
            IpAddr::from(BACKEND6),
        ),
        (gre6(&inner, 64), &v6, LB6.into(), BACKEND6.into()),
        (gre6(&inner, 64), &v4, LB.into(), BACKENDS[0].into()),
        (
            tunnel().encapsulate(&inner),
            &v4,
            LB.into(),
            BACKENDS[0].into(),
        ),
    ];
    for (frame, table, src, dst) in cases {
        let (verdict, out) = run(&frame, table, &mut state());
        assert_eq!(verdict, Verdict::ToWire);
        assert_eq!(out[..6], backend_mac(0), "to the backend's next hop");
        let (s, d, hops, payload) = outer_of(&out);
        assert_eq!((s, d, hops), (src, dst, 63));
        assert_eq!(payload, gre);
    }
}

#[test]
fn without_headroom_the_longer_header_still_fits_by_moving_the_frame_once() {
    let frame = gre4_tcp();
    let table = to_v6_backend();
    let (_, expected) = run(&frame, &table, &mut state());
    // No headroom, 20 bytes of tailroom: the frame moves back, then grows.
    let mut buf = vec![0u8; frame.len() + 20];
    buf[..frame.len()].copy_from_slice(&frame);
    let mut f = dataplane::Frame::new(&mut buf, 0, frame.len());
    let verdict = dataplane::pipeline::Pipeline::process(&mut f, &table, &mut state());
    assert_eq!((verdict, f.data()), (Verdict::ToWire, &expected[..]));
    // Neither: dropped and counted, never sent half-built.
    let mut buf = frame.clone();
    let mut f = dataplane::Frame::whole(&mut buf);
    let mut st = state();
    let verdict = dataplane::pipeline::Pipeline::process(&mut f, &table, &mut st);
    assert_eq!(verdict, Verdict::Drop(DropReason::NoHeadroom));
    assert_eq!(st.counters.drops_for(DropReason::NoHeadroom), 1);
}

#[test]
fn one_maglev_table_spreads_flows_over_ipv4_and_ipv6_backends() {
    let backends = vec![
        backend(0, BACKENDS[0].into()),
        backend(1, BACKEND6.into()),
        backend(2, BACKENDS[1].into()),
        backend(3, Ipv6Addr::new(0x2001, 0xdb8, 0xb, 0, 0, 0, 0, 2).into()),
    ];
    let table = ForwardingTable::build(&spec_v6(backends.clone())).unwrap();
    let mut st = state();
    let mut per_backend: HashMap<IpAddr, usize> = HashMap::new();
    let flows = 4000u16;
    for port in 0..flows {
        let frame = tunnel().encapsulate(&tcp4([198, 51, 100, 30], 10_000 + port).packet(b""));
        let (verdict, out) = run(&frame, &table, &mut st);
        assert_eq!(verdict, Verdict::ToWire);
        *per_backend.entry(outer_of(&out).1).or_default() += 1;
    }
    let expected = usize::from(flows) / backends.len();
    for b in &backends {
        let got = per_backend.get(&b.addr).copied().unwrap_or(0);
        assert!(
            got.abs_diff(expected) * 10 < expected,
            "{}: {got} flows of {flows}, expected {expected} within 10%",
            b.addr
        );
    }
}

#[test]
fn an_ipv4_backend_keeps_its_maglev_entries_when_an_ipv6_backend_joins() {
    // The table is keyed by address: an IPv4 backend's key is the same
    // IPv4-mapped address whether or not IPv6 backends exist.
    let v4_only = ForwardingTable::build(&spec_v6(vec![
        backend(0, BACKENDS[0].into()),
        backend(1, BACKENDS[1].into()),
    ]))
    .unwrap();
    let mixed = ForwardingTable::build(&spec_v6(vec![
        backend(0, BACKENDS[0].into()),
        backend(1, BACKENDS[1].into()),
        backend(2, BACKEND6.into()),
    ]))
    .unwrap();
    let (mut moved_between_v4, mut to_v6) = (0, 0);
    for hash in (0..20_000u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15)) {
        let (before, _) = v4_only.pick(hash).unwrap();
        let (after, _) = mixed.pick(hash).unwrap();
        match after {
            2 => to_v6 += 1,
            _ if after != before => moved_between_v4 += 1,
            _ => {}
        }
    }
    assert!(to_v6 > 0, "the IPv6 backend takes flows");
    // Maglev's minimal disruption: few flows move between the old backends.
    assert!(moved_between_v4 * 20 < 20_000, "{moved_between_v4} moved");
}

#[test]
fn an_ipv6_backend_without_the_balancers_ipv6_address_is_refused_by_name() {
    let err = ForwardingTable::build(&spec_with(vec![backend(0, BACKEND6.into())])).unwrap_err();
    assert_eq!(err, ForwardingError::Ipv6BackendWithoutLbIpv6(BACKEND6));
    let text = err.to_string();
    assert!(
        text.contains("2001:db8:b::1") && text.contains("IPv6 address"),
        "{text}"
    );
}

#[test]
fn ipv6_to_a_balancer_without_an_ipv6_address_or_vip_goes_to_the_host() {
    let table = ForwardingTable::build(&ForwardingSpec {
        vips: vec![],
        ..spec_with(vec![backend(0, BACKENDS[0].into())])
    })
    .unwrap();
    let frame = gre6(&tcp4([198, 51, 100, 40], 1).packet(b""), 64);
    assert_eq!(run(&frame, &table, &mut state()).0, Verdict::ToHost);
}

/// Frames for the hostile test: GRE over IPv4 and IPv6 with both inner
/// families, VIP-mode packets, and the common seeds.
fn ipv6_seeds() -> Vec<Vec<u8>> {
    let mut seeds = seed_frames();
    seeds.push(gre6(&tcp4([198, 51, 100, 50], 2).packet(b"six"), 64));
    seeds.push(gre6(&udp6(3).packet(b"six-six"), 2));
    seeds.push(tunnel().encapsulate(&tcp4([198, 51, 100, 51], 4).packet(&[1; 1436])));
    seeds
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Damaged, cut or noisy frames through balancers with IPv6 backends,
    /// with and without headroom: no panic, and whatever is forwarded is a
    /// well-formed packet that etherparse reads.
    #[test]
    fn no_input_panics_and_every_forwarded_frame_is_well_formed(
        seed in 0usize..7,
        damage in proptest::collection::vec((0usize..120, any::<u8>()), 0..4),
        cut in 0usize..60,
        headroom in prop_oneof![Just(0usize), Just(20), Just(128)],
        v6_backend in any::<bool>(),
    ) {
        let seeds = ipv6_seeds();
        let mut frame = seeds[seed % seeds.len()].clone();
        for (at, value) in damage {
            if at < frame.len() {
                frame[at] = value;
            }
        }
        frame.truncate(frame.len().saturating_sub(cut));
        let table = if v6_backend { to_v6_backend() } else { to_v4_backend() };
        let mut buf = vec![0xa5u8; headroom + frame.len() + 8];
        buf[headroom..headroom + frame.len()].copy_from_slice(&frame);
        let mut f = dataplane::Frame::new(&mut buf, headroom, frame.len());
        let verdict = dataplane::pipeline::Pipeline::process(&mut f, &table, &mut state());
        if verdict == Verdict::ToWire {
            let out = f.data();
            prop_assert!(SlicedPacket::from_ethernet(out).is_ok(), "{}", golden::hex(out));
        }
    }
}
