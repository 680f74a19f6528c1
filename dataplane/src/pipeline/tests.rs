//! The fast path must decide exactly as the general path does.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::{fast_path, Pipeline, WorkerConfig, WorkerState};
use crate::flow::FlowHasher;
use crate::forwarding::{BackendSpec, ForwardingSpec, ForwardingTable};
use crate::frame::Frame;
use crate::Verdict;
use synth::{ClientFlow, Transport, Tunnel};

const LB: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 10);

fn table() -> ForwardingTable {
    table_of(|i| Ipv4Addr::new(10, 1, 0, i as u8 + 1).into())
}

/// Three backends at `addr_of(slot)` behind a balancer with an IPv4 and an
/// IPv6 address.
fn table_of(addr_of: impl Fn(u16) -> IpAddr) -> ForwardingTable {
    let backends = (0..3)
        .map(|i| BackendSpec {
            slot: i,
            addr: addr_of(i),
            weight: 1,
            mac: Some([2, 0, 0, 0, 1, i as u8]),
            generation: 0,
        })
        .collect();
    ForwardingTable::build(&ForwardingSpec {
        lb_ipv4: LB,
        lb_ipv6: Some(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10)),
        lb_mac: [2, 0, 0, 0, 0, 1],
        vips: vec![],
        backends,
        seed: 9,
        table_size: 251,
        mtu: 1500,
        generation: 1,
    })
    .unwrap()
}

/// leave.
fn run(frame: &[u8], table: &ForwardingTable, general: bool) -> (Verdict, Vec<u8>) {
    let mut state = WorkerState::new(WorkerConfig::default());
    let mut buf = vec![0u8; 128 + frame.len()];
    buf[128..].copy_from_slice(frame);
    let mut f = Frame::new(&mut buf, 128, frame.len());
    let verdict = if general {
        Pipeline::decide_general(&mut f, table, &mut state)
    } else {
        Pipeline::decide(&mut f, table, &mut state)
    };
    (verdict, f.data().to_vec())
}

/// A GRE frame from the router to the balancer carrying a TCP or UDP packet.
fn gre_frame(udp: bool, client: [u8; 4], ports: (u16, u16), payload: &[u8]) -> Vec<u8> {
    let flow = ClientFlow {
        src: IpAddr::V4(client.into()),
        dst: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        transport: if udp { Transport::Udp } else { Transport::Tcp },
        src_port: ports.0,
        dst_port: ports.1,
    };
    Tunnel::new(Ipv4Addr::new(10, 0, 0, 1), LB).encapsulate(&flow.packet(payload))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_fast_path_decides_every_frame_as_the_general_path_does(
        udp in any::<bool>(),
        client in any::<[u8; 4]>(),
        ports in any::<(u16, u16)>(),
        payload in proptest::collection::vec(any::<u8>(), 0..64),
        damage in proptest::collection::vec((0usize..80, any::<u8>()), 0..3),
        cut in 0usize..8,
    ) {
        let mut frame = gre_frame(udp, client, ports, &payload);
        for (at, value) in damage {
            if at < frame.len() {
                frame[at] = value;
            }
        }
        frame.truncate(frame.len() - cut.min(frame.len()));
        let table = table();
        let fast = run(&frame, &table, false);
        let general = run(&frame, &table, true);
        prop_assert_eq!(&fast, &general);
        if fast_path::classify(&frame, &table).is_some() {
            prop_assert_eq!(fast.0, Verdict::ToWire);
        }
    }
}

/// Three backends, the second IPv6.
fn mixed_family_table() -> ForwardingTable {
    table_of(|i| {
        if i == 1 {
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0xb, 0, 0, 0, 0, 1))
        } else {
            Ipv4Addr::new(10, 1, 0, i as u8 + 1).into()
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// With IPv6 backends among IPv4 ones, a fast-path frame balanced to an
    /// IPv6 backend leaves exactly as the general path sends it.
    #[test]
    fn the_fast_path_decides_as_the_general_path_with_ipv6_backends(
        udp in any::<bool>(),
        client in any::<[u8; 4]>(),
        ports in any::<(u16, u16)>(),
        tos in any::<u8>(),
        payload in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut frame = gre_frame(udp, client, ports, &payload);
        frame[15] = tos;
        frame[24..26].copy_from_slice(&[0, 0]);
        let sum = crate::wire::checksum::checksum(&frame[14..34]);
        frame[24..26].copy_from_slice(&sum.to_be_bytes());
        let table = mixed_family_table();
        prop_assert!(fast_path::classify(&frame, &table).is_some());
        let fast = run(&frame, &table, false);
        let general = run(&frame, &table, true);
        prop_assert_eq!(fast.0, Verdict::ToWire);
        prop_assert_eq!(&fast, &general);
    }
}

#[test]
fn undamaged_gre_tcp_and_udp_take_the_fast_path_with_the_flows_hash_words() {
    let table = table();
    for (transport, protocol) in [(Transport::Tcp, 6), (Transport::Udp, 17)] {
        let flow = ClientFlow {
            src: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            transport,
            src_port: 40001,
            dst_port: 443,
        };
        let frame = Tunnel::new(Ipv4Addr::new(10, 0, 0, 1), LB).encapsulate(&flow.packet(b"x"));
        let fast = fast_path::classify(&frame, &table);
        // The protocol is among the words: comparing them compares it too.
        let words = FlowHasher::ipv4_words([198, 51, 100, 1], [192, 0, 2, 1], protocol, 40001, 443);
        assert_eq!(fast.map(|f| f.words), Some(words), "{transport:?}");
    }
}

/// A frame of flow `i`: mostly fast-path GRE, every fifth one with a VLAN
/// tag (general path) and every seventh addressed elsewhere (to the host).
fn mixed_frame(i: u16) -> Vec<u8> {
    let flow = ClientFlow {
        src: IpAddr::V4(Ipv4Addr::new(198, 51, (i >> 8) as u8, i as u8)),
        dst: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        transport: if i.is_multiple_of(3) {
            Transport::Udp
        } else {
            Transport::Tcp
        },
        src_port: 1000 + i,
        dst_port: 80,
    };
    let to = if i % 7 == 6 {
        Ipv4Addr::new(10, 0, 0, 99)
    } else {
        LB
    };
    let mut frame = Tunnel::new(Ipv4Addr::new(10, 0, 0, 1), to).encapsulate(&flow.packet(b"x"));
    if i % 5 == 4 {
        frame.splice(12..12, [0x81, 0x00, 0x00, 0x07]);
    }
    frame
}

#[test]
fn batches_of_every_size_decide_each_frame_as_one_at_a_time_does() {
    use crate::io::memory::{MemoryIo, MemoryIoConfig};
    use crate::io::PacketIo;

    let table = table();
    // 1..=70 covers partial groups of lanes and batches beyond one chunk.
    for batch in 1..=70u16 {
        let frames: Vec<Vec<u8>> = (0..batch).map(mixed_frame).collect();
        let mut expected = Vec::new();
        let mut state = WorkerState::new(WorkerConfig::default());
        for frame in &frames {
            let mut buf = frame.clone();
            let mut f = Frame::whole(&mut buf);
            let verdict = Pipeline::process(&mut f, &table, &mut state);
            if verdict == Verdict::ToWire {
                expected.push(f.data().to_vec());
            }
        }
        let mut io = MemoryIo::new(MemoryIoConfig::default()).unwrap();
        for frame in &frames {
            assert!(io.push_from_wire(frame));
        }
        let mut batch_state = WorkerState::new(WorkerConfig::default());
        io.run_batch(
            usize::from(batch),
            Pipeline::handler(&table, &mut batch_state),
        )
        .unwrap();
        let mut sent = Vec::new();
        io.drain_wire_tx(|f| sent.push(f.to_vec()));
        assert_eq!(sent, expected, "batch of {batch}");
        // Counted alike, too.
        let counts = |s: &WorkerState| {
            let c = &s.counters;
            [
                c.to_wire.packets.get(),
                c.to_wire.bytes.get(),
                c.to_host.packets.get(),
                c.to_host.bytes.get(),
                c.dropped.packets.get(),
                c.conntrack_hits.get(),
                c.conntrack_misses.get(),
            ]
        };
        assert_eq!(counts(&batch_state), counts(&state), "batch of {batch}");
    }
}
