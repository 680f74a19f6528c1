//! Hostile input: a million random and mutated frames through the pipeline.
//! Nothing may panic, and nothing malformed may ever be forwarded: every
//! `ToWire` frame is checked with etherparse, independently of our parser.

mod common;

use common::*;
use dataplane::pipeline::Pipeline;
use dataplane::wire::ethertype;
use dataplane::Verdict;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use synth::{ethernet_frame, fragment_ipv4, ClientFlow, Transport, ROUTER_MAC};

const FRAMES: usize = 1_000_000;
/// Frames decided together, as packet I/O hands them to the pipeline.
const BATCH: usize = 32;

fn seeds() -> Vec<Vec<u8>> {
    let mut out = seed_frames();
    let flow = ClientFlow {
        transport: Transport::Udp,
        ..tcp4([198, 51, 100, 4], 6)
    };
    // Too big to wrap within the MTU: answered with ICMP, not encapsulated.
    out.push(ethernet_frame(
        ROUTER_MAC,
        LB_MAC,
        None,
        ethertype::IPV4,
        &tcp4([198, 51, 100, 5], 7).packet(&[6u8; 1460]),
    ));
    out.push(ethernet_frame(
        ROUTER_MAC,
        LB_MAC,
        None,
        ethertype::IPV6,
        &udp6(8).packet(&[7u8; 1452]),
    ));
    let mut big = flow.packet(&[5u8; 300]);
    big[6] &= !0x40;
    for f in fragment_ipv4(&big, 128) {
        out.push(tunnel().encapsulate(&f));
    }
    out
}

/// A frame the pipeline has never seen: a seed with random damage, or noise.
fn hostile(rng: &mut SmallRng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut frame = seeds[rng.gen_range(0..seeds.len())].clone();
    match rng.gen_range(0..10) {
        0 => frame = noise(rng, 0..200),
        1 => frame.truncate(rng.gen_range(0..frame.len())),
        2..=7 => {
            for _ in 0..rng.gen_range(1..4) {
                let at = rng.gen_range(0..frame.len());
                frame[at] = rng.gen();
            }
        }
        _ => {
            // Damage one byte in the headers and repair the outer checksum,
            // so the damage reaches the GRE and inner parsers.
            let at = rng.gen_range(0..frame.len().min(90));
            frame[at] = rng.gen();
            if frame.len() >= 34 && frame[12..14] == [0x08, 0x00] {
                let header_len = usize::from(frame[14] & 0x0f) * 4;
                if header_len >= 20 && 14 + header_len <= frame.len() {
                    frame[24..26].copy_from_slice(&[0, 0]);
                    let sum = dataplane::wire::checksum::checksum(&frame[14..14 + header_len]);
                    frame[24..26].copy_from_slice(&sum.to_be_bytes());
                }
            }
        }
    }
    frame
}

/// RFC 1071 written out plainly (etherparse's header type forgets the
/// reserved flag bit, so its checksum of a header with that bit is not ours).
fn ones_complement_sum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0)))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// What a forwarded frame must be, checked with etherparse.
fn assert_well_formed(input: &[u8], out: &[u8]) {
    if let Ok(reply) = etherparse::SlicedPacket::from_ethernet(out) {
        if let Some(etherparse::TransportSlice::Icmpv4(_) | etherparse::TransportSlice::Icmpv6(_)) =
            reply.transport
        {
            return assert_too_big_reply(input, &reply);
        }
    }
    let eth = etherparse::LaxSlicedPacket::from_ethernet(out)
        .unwrap_or_else(|e| panic!("unparseable output {e:?}\n in: {input:02x?}\nout: {out:02x?}"));
    let Some(etherparse::LaxNetSlice::Ipv4(outer)) = eth.net else {
        panic!("output is not IPv4\n in: {input:02x?}");
    };
    let header = outer.header();
    assert!(
        eth.stop_err.is_none(),
        "output has an error: {:?}\n in: {input:02x?}",
        eth.stop_err
    );
    assert_eq!(
        ones_complement_sum(header.slice()),
        0xffff,
        "outer checksum\n in: {input:02x?}"
    );
    assert_eq!(header.protocol(), etherparse::IpNumber(47));
    assert_eq!(header.source(), LB.octets());
    assert!(BACKENDS.iter().any(|b| b.octets() == header.destination()));
    assert!(header.ttl() >= 1);
    assert!(!header.more_fragments() && header.fragments_offset().value() == 0);
    let gre = outer.payload().payload;
    assert!(gre.len() >= 4);
    assert_eq!(gre[1] & 0x07, 0, "GRE version 0");
    assert_eq!(gre[0] & 0x40, 0, "no GRE routing");
    let header_len = 4 + 4 * ((gre[0] >> 7) + ((gre[0] >> 5) & 1) + ((gre[0] >> 4) & 1)) as usize;
    let inner = &gre[header_len..];
    let version = match u16::from_be_bytes([gre[2], gre[3]]) {
        0x0800 => 4,
        0x86dd => 6,
        other => panic!("GRE protocol {other:#x} forwarded\n in: {input:02x?}"),
    };
    assert_eq!(inner[0] >> 4, version);
    assert_inner_well_formed(input, inner);
}

/// An ICMP error the balancer sent for a VIP packet too big to wrap: from
/// the VIP, "fragmentation needed" or "packet too big" with the MTU left
/// after 24 bytes of encapsulation, a correct checksum, quoting the start
/// of the packet it answers.
fn assert_too_big_reply(input: &[u8], reply: &etherparse::SlicedPacket<'_>) {
    use etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded;
    use etherparse::{Icmpv4Type, Icmpv6Type, NetSlice, TransportSlice};
    let quoted = match (&reply.net, &reply.transport) {
        (Some(NetSlice::Ipv4(ip)), Some(TransportSlice::Icmpv4(icmp))) => {
            assert_eq!(ip.header().source(), VIP.octets(), "\n in: {input:02x?}");
            let kind = icmp.icmp_type();
            assert_eq!(
                kind,
                Icmpv4Type::DestinationUnreachable(FragmentationNeeded { next_hop_mtu: 1476 }),
                "\n in: {input:02x?}"
            );
            assert_eq!(icmp.checksum(), kind.calc_checksum(icmp.payload()));
            icmp.payload()
        }
        (Some(NetSlice::Ipv6(ip)), Some(TransportSlice::Icmpv6(icmp))) => {
            let header = ip.header();
            let vip6: std::net::Ipv6Addr = VIP6.parse().unwrap();
            assert_eq!(header.source(), vip6.octets(), "\n in: {input:02x?}");
            let kind = icmp.icmp_type();
            assert_eq!(
                kind,
                Icmpv6Type::PacketTooBig { mtu: 1476 },
                "\n in: {input:02x?}"
            );
            let sum = kind.calc_checksum(header.source(), header.destination(), icmp.payload());
            assert_eq!(Ok(icmp.checksum()), sum.map_err(|e| e.to_string()));
            icmp.payload()
        }
        other => panic!("an ICMP reply that is not too-big: {other:?}\n in: {input:02x?}"),
    };
    let l2 = if input.get(12..14) == Some(&[0x81, 0x00]) {
        18
    } else {
        14
    };
    assert!(input.len() >= l2 + quoted.len() && input[l2..l2 + quoted.len()] == *quoted);
}

fn fail(input: &[u8], what: &dyn core::fmt::Debug) -> ! {
    panic!("inner packet malformed: {what:?}\n in: {input:02x?}")
}

/// The balancer reads the inner IP header and, for TCP and UDP, the
/// transport header; those must be whole and consistent. What lies behind
/// (payload, other protocols' headers) is the backend's business.
fn assert_inner_well_formed(input: &[u8], inner: &[u8]) {
    let (protocol, l4, whole) = if inner[0] >> 4 == 4 {
        let ip = etherparse::Ipv4HeaderSlice::from_slice(inner).unwrap_or_else(|e| fail(input, &e));
        let total = usize::from(ip.total_len());
        if total > inner.len() || total < ip.slice().len() {
            fail(input, &"total length");
        }
        let whole = !ip.more_fragments() && ip.fragments_offset().value() == 0;
        (ip.protocol(), &inner[ip.slice().len()..total], whole)
    } else {
        let ip = etherparse::Ipv6Slice::from_slice(inner).unwrap_or_else(|e| fail(input, &e));
        let whole = !ip.is_payload_fragmented();
        (ip.payload().ip_number, ip.payload().payload, whole)
    };
    if whole && protocol == etherparse::IpNumber::TCP {
        etherparse::TcpHeaderSlice::from_slice(l4).unwrap_or_else(|e| fail(input, &e));
    }
    if whole && protocol == etherparse::IpNumber::UDP {
        let udp = etherparse::UdpHeaderSlice::from_slice(l4).unwrap_or_else(|e| fail(input, &e));
        if usize::from(udp.length()) > l4.len() || udp.length() < 8 {
            fail(input, &"UDP length");
        }
    }
}

#[test]
fn a_million_hostile_frames_never_panic_and_never_forward_malformed_packets() {
    let table = table();
    let mut state = state();
    let seeds = seeds();
    let mut rng = SmallRng::seed_from_u64(0xbad_f00d);
    let mut forwarded = 0;
    for batch in 0..FRAMES / BATCH {
        let frames: Vec<Vec<u8>> = (0..BATCH).map(|_| hostile(&mut rng, &seeds)).collect();
        state.set_now_ms((batch * BATCH) as u64 / 100);
        // Every other batch is decided whole, as packet I/O hands it over
        // (the vector fast path where the CPU has one), the rest a frame at
        // a time.
        let decided = if batch % 2 == 0 {
            run_batch(&frames, &table, &mut state)
        } else {
            frames.iter().map(|f| run(f, &table, &mut state)).collect()
        };
        for (frame, (verdict, out)) in frames.iter().zip(&decided) {
            if *verdict == Verdict::ToWire {
                forwarded += 1;
                assert_well_formed(frame, out);
            }
        }
        if batch % 32 == 0 {
            Pipeline::release_held(&table, &mut state, |bytes| {
                assert_well_formed(&[], bytes);
                true
            });
        }
    }
    let dropped = state.counters.dropped.packets.get();
    // The mix must exercise both sides, or the test proves nothing.
    assert!(forwarded > FRAMES / 20, "only {forwarded} forwarded");
    assert!(dropped > FRAMES as u64 / 20, "only {dropped} dropped");
    // Replies are rate-limited (1000 a second of the test's clock, which
    // covers 10 s): a few thousand at most, and they must be there.
    let too_big = state.counters.icmp_too_big.get();
    assert!(
        too_big > FRAMES as u64 / 1000,
        "only {too_big} ICMP too-big replies"
    );
}
