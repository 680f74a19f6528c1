//! Behaviour of the pipeline across packets: flows stay on their backend,
//! fragments follow their datagram, ICMP errors follow their flow, backends
//! come and go without moving other flows.

mod common;

use common::*;
use dataplane::conntrack::ConnTableConfig;
use dataplane::forwarding::ForwardingTable;
use dataplane::pipeline::{Pipeline, WorkerConfig};
use dataplane::wire::ethertype;
use dataplane::{DropReason, Verdict};
use synth::{ethernet_frame, fragment_ipv4, fragment_ipv6, ClientFlow, Transport, ROUTER_MAC};

fn forward(
    frame: &[u8],
    table: &ForwardingTable,
    state: &mut dataplane::pipeline::WorkerState,
) -> usize {
    let (verdict, out) = run(frame, table, state);
    assert_eq!(verdict, Verdict::ToWire);
    backend_of(&out).unwrap()
}

/// The three common backends and 10.1.0.4 in slot 3.
fn with_a_fourth_backend() -> ForwardingTable {
    let mut specs = backend_specs();
    specs.push(dataplane::forwarding::BackendSpec {
        slot: 3,
        addr: "10.1.0.4".parse().unwrap(),
        weight: 1,
        mac: Some([2, 0, 0, 0, 1, 4]),
        generation: 0,
    });
    ForwardingTable::build(&spec_with(specs)).unwrap()
}

#[test]
fn every_packet_of_a_flow_goes_to_one_backend_and_flows_spread_over_all() {
    let table = table();
    let mut state = state();
    let mut per_backend = [0usize; 3];
    for client in 0..3000u32 {
        let flow = tcp4(
            [198, 51, (client >> 8) as u8, client as u8],
            1024 + client as u16,
        );
        let first = forward(
            &tunnel().encapsulate(&flow.packet(b"a")),
            &table,
            &mut state,
        );
        for _ in 0..3 {
            assert_eq!(
                forward(
                    &tunnel().encapsulate(&flow.packet(b"b")),
                    &table,
                    &mut state
                ),
                first
            );
        }
        per_backend[first] += 1;
    }
    for n in per_backend {
        assert!((800..1200).contains(&n), "uneven split {per_backend:?}");
    }
}

#[test]
fn two_balancers_with_the_same_seed_choose_the_same_backend() {
    let (a, b) = (table(), table());
    let (mut sa, mut sb) = (state(), state());
    for port in 0..500 {
        let frame = tunnel().encapsulate(&tcp4([198, 51, 100, 1], port).packet(b""));
        assert_eq!(forward(&frame, &a, &mut sa), forward(&frame, &b, &mut sb));
    }
}

#[test]
fn ipv4_fragments_in_order_follow_the_first_fragment_to_the_flow_s_backend() {
    let table = table();
    let mut state = state();
    let flow = ClientFlow {
        transport: Transport::Udp,
        ..tcp4([198, 51, 100, 20], 5000)
    };
    let whole = forward(
        &tunnel().encapsulate(&flow.packet(b"small")),
        &table,
        &mut state,
    );
    let mut packet = flow.packet(&[7u8; 3000]);
    packet[6] &= !0x40; // clear DF so it may be fragmented
    let fragments = fragment_ipv4(&packet, 1000);
    assert_eq!(fragments.len(), 4);
    for fragment in fragments {
        assert_eq!(
            forward(&tunnel().encapsulate(&fragment), &table, &mut state),
            whole
        );
    }
}

#[test]
fn ipv4_fragments_before_their_first_are_held_then_released_to_the_same_backend() {
    let table = table();
    let mut state = state();
    let flow = ClientFlow {
        transport: Transport::Udp,
        ..tcp4([198, 51, 100, 21], 5001)
    };
    let mut packet = flow.packet(&[9u8; 2500]);
    packet[6] &= !0x40;
    let fragments: Vec<_> = fragment_ipv4(&packet, 1000)
        .iter()
        .map(|f| tunnel().encapsulate(f))
        .collect();
    for late in &fragments[1..] {
        assert_eq!(run(late, &table, &mut state).0, Verdict::Held);
    }
    let first = forward(&fragments[0], &table, &mut state);
    let mut released = Vec::new();
    Pipeline::release_held(&table, &mut state, |bytes| {
        released.push(bytes.to_vec());
        true
    });
    assert_eq!(released.len(), 2);
    for frame in released {
        assert_eq!(backend_of(&frame), Some(first));
    }
    assert_eq!(state.counters.held.packets.get(), 2);
    assert_eq!(state.counters.to_wire.packets.get(), 3);
}

#[test]
fn ipv6_fragments_out_of_order_reach_the_flow_s_backend() {
    let table = table();
    let mut state = state();
    let flow = udp6(6000);
    let whole = forward(
        &tunnel().encapsulate(&flow.packet(b"small")),
        &table,
        &mut state,
    );
    let fragments = fragment_ipv6(&flow.packet(&[3u8; 2000]), 1200, 0xabcd);
    let frames: Vec<_> = fragments.iter().map(|f| tunnel().encapsulate(f)).collect();
    assert_eq!(run(&frames[1], &table, &mut state).0, Verdict::Held);
    assert_eq!(forward(&frames[0], &table, &mut state), whole);
    let mut released = 0;
    Pipeline::release_held(&table, &mut state, |bytes| {
        assert_eq!(backend_of(bytes), Some(whole));
        released += 1;
        true
    });
    assert_eq!(released, 1);
}

#[test]
fn an_early_fragment_whose_first_never_comes_is_dropped_after_the_hold_time() {
    let table = table();
    let mut state = state();
    let flow = ClientFlow {
        transport: Transport::Udp,
        ..tcp4([198, 51, 100, 22], 5002)
    };
    let mut packet = flow.packet(&[1u8; 2500]);
    packet[6] &= !0x40;
    let late = tunnel().encapsulate(&fragment_ipv4(&packet, 1000)[2]);
    assert_eq!(run(&late, &table, &mut state).0, Verdict::Held);
    state.set_now_ms(50);
    Pipeline::release_held(&table, &mut state, |_| panic!("nothing to release"));
    assert_eq!(state.counters.drops_for(DropReason::FragmentTimeout), 0);
    state.set_now_ms(100);
    Pipeline::release_held(&table, &mut state, |_| panic!("nothing to release"));
    assert_eq!(state.counters.drops_for(DropReason::FragmentTimeout), 1);
}

#[test]
fn an_icmp_error_about_a_flow_reaches_the_flow_s_backend() {
    let table = table();
    let mut state = state();
    for port in 0..200u16 {
        let flow = tcp4([198, 51, 100, 30], 30000 + port);
        let backend = forward(&tunnel().encapsulate(&flow.packet(b"")), &table, &mut state);
        // A router on the return path could not deliver the backend's reply
        // (VIP -> client) and tells the VIP, quoting that reply.
        let reply = ClientFlow {
            src: flow.dst,
            dst: flow.src,
            transport: Transport::Tcp,
            src_port: 80,
            dst_port: flow.src_port,
        }
        .packet(b"");
        let mut icmp = vec![3, 4, 0, 0, 0, 0, 0x05, 0x78];
        icmp.extend_from_slice(&reply[..28]);
        let sum = dataplane::wire::checksum::checksum(&icmp);
        icmp[2..4].copy_from_slice(&sum.to_be_bytes());
        let error = etherparse::PacketBuilder::ipv4([203, 0, 113, 1], VIP.octets(), 64);
        let mut packet = Vec::new();
        error
            .write(&mut packet, etherparse::IpNumber(1), &icmp)
            .unwrap();
        assert_eq!(
            forward(&tunnel().encapsulate(&packet), &table, &mut state),
            backend,
            "port {port}"
        );
    }
}

#[test]
fn adding_a_backend_leaves_established_flows_where_they_are() {
    let mut state = state();
    let three = table();
    let flows: Vec<_> = (0..1000u16)
        .map(|p| tunnel().encapsulate(&tcp4([198, 51, 100, 40], p).packet(b"")))
        .collect();
    let before: Vec<_> = flows
        .iter()
        .map(|f| forward(f, &three, &mut state))
        .collect();
    let four = with_a_fourth_backend();
    for (frame, backend) in flows.iter().zip(&before) {
        assert_eq!(forward(frame, &four, &mut state), *backend);
    }
    // New flows use the fourth backend too.
    let mut fresh = common::state();
    let to_fourth = flows
        .iter()
        .filter(|f| run(f, &four, &mut fresh).1[33] == 4)
        .count();
    assert!(
        to_fourth > 150,
        "{to_fourth} of 1000 new flows on the new backend"
    );
}

#[test]
fn established_flows_keep_their_backend_through_a_flood_of_new_flows_and_a_new_backend() {
    // A table of 256 Ki entries; no cap on new flows, so the flood is
    // limited by nothing but the table itself.
    let mut state = dataplane::pipeline::WorkerState::new(WorkerConfig {
        conntrack: ConnTableConfig {
            capacity: 1 << 18,
            max_new_per_sec: u32::MAX,
            ..ConnTableConfig::default()
        },
        ..WorkerConfig::default()
    });
    let three = table();
    let established: Vec<_> = (0..10_000u32)
        .map(|n| {
            let [_, _, hi, lo] = n.to_be_bytes();
            tunnel().encapsulate(&tcp4([198, 51, hi, lo], 40_000).packet(b""))
        })
        .collect();
    // Two packets each (the handshake's SYN and ACK): established.
    let before: Vec<_> = established
        .iter()
        .map(|f| {
            let first = forward(f, &three, &mut state);
            assert_eq!(forward(f, &three, &mut state), first);
            first
        })
        .collect();
    // Four times the table's capacity in single-packet flows from elsewhere.
    let mut frame = tunnel().encapsulate(&tcp4([203, 0, 113, 0], 0).packet(b""));
    let inner_src = frame.len() - 20 - 20 + 12;
    for n in 0..4 * (1u32 << 18) {
        let [_, a, b, c] = n.to_be_bytes();
        frame[inner_src + 1..inner_src + 4].copy_from_slice(&[a, b, c]);
        forward(&frame, &three, &mut state);
    }
    let four = with_a_fourth_backend();
    let moved = established
        .iter()
        .zip(&before)
        .filter(|(frame, backend)| forward(frame, &four, &mut state) != **backend)
        .count();
    assert_eq!(moved, 0, "established flows moved by the flood");
    assert!(
        state.counters.conntrack_evictions.get() > 0,
        "the flood filled the table"
    );
}

#[test]
fn removing_a_backend_moves_only_its_flows_and_draining_keeps_them() {
    let mut state = state();
    let three = table();
    let flows: Vec<_> = (0..1000u16)
        .map(|p| tunnel().encapsulate(&tcp4([198, 51, 100, 41], p).packet(b"")))
        .collect();
    let before: Vec<_> = flows
        .iter()
        .map(|f| forward(f, &three, &mut state))
        .collect();

    // Drain backend 0: weight 0, same generation: its flows stay.
    let mut drained = backend_specs();
    drained[0].weight = 0;
    let drained = ForwardingTable::build(&spec_with(drained)).unwrap();
    for (frame, backend) in flows.iter().zip(&before) {
        assert_eq!(forward(frame, &drained, &mut state), *backend);
    }
    let mut fresh = common::state();
    assert!(
        flows
            .iter()
            .all(|f| backend_of(&run(f, &drained, &mut fresh).1) != Some(0)),
        "no new flow to a drained backend"
    );

    // Remove backend 0: new generation, its flows re-balance, the others stay.
    let mut removed = backend_specs();
    removed[0].generation = 1;
    removed[0].weight = 0;
    let removed = ForwardingTable::build(&spec_with(removed)).unwrap();
    for (frame, backend) in flows.iter().zip(&before) {
        let now = forward(frame, &removed, &mut state);
        if *backend == 0 {
            assert_ne!(now, 0);
        } else {
            assert_eq!(now, *backend);
        }
    }
}

#[test]
fn with_no_backend_in_service_packets_are_dropped_as_no_backend() {
    let mut specs = backend_specs();
    for s in &mut specs {
        s.mac = None;
    }
    let table = ForwardingTable::build(&spec_with(specs)).unwrap();
    let frame = tunnel().encapsulate(&tcp4([198, 51, 100, 50], 1).packet(b""));
    assert_eq!(
        run(&frame, &table, &mut state()).0,
        Verdict::Drop(DropReason::NoBackend)
    );
}

#[test]
fn vip_mode_encapsulation_carries_the_packet_unchanged() {
    let table = table();
    for (flow, ethertype) in [
        (tcp4([198, 51, 100, 60], 7), ethertype::IPV4),
        (udp6(8), ethertype::IPV6),
    ] {
        let packet = flow.packet(b"payload");
        let mut frame = ethernet_frame(ROUTER_MAC, LB_MAC, None, ethertype, &packet);
        frame.extend_from_slice(&[0; 6]); // Ethernet padding must not be tunnelled
        let (verdict, out) = run(&frame, &table, &mut state());
        assert_eq!(verdict, Verdict::ToWire);
        assert_eq!(&out[12..14], &[0x08, 0x00]);
        let outer = etherparse::Ipv4HeaderSlice::from_slice(&out[14..]).unwrap();
        assert_eq!(outer.protocol(), etherparse::IpNumber(47));
        assert_eq!(outer.source(), LB.octets());
        assert_eq!(
            outer.to_header().calc_header_checksum(),
            outer.header_checksum()
        );
        assert_eq!(usize::from(outer.total_len()), 24 + packet.len());
        assert_eq!(&out[36..38], &ethertype.to_be_bytes(), "GRE protocol");
        assert_eq!(&out[38..], &packet[..]);
        assert!(backend_of(&out).is_some());
    }
}
