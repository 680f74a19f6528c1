//! Many services on one balancer, through the real pipeline: each VIP's
//! flows reach only its own backends in GRE and VIP mode, on the batched
//! fast path and the general path alike; a flow for no service is dropped
//! (GRE) or left to the host (VIP); a change to one service moves no flow
//! of another.

mod common;

use core::net::{IpAddr, Ipv4Addr};

use common::*;
use dataplane::forwarding::{
    BackendSpec, ForwardingSpec, ForwardingTable, HashFields, ServiceCounter, ServiceSpec,
};
use dataplane::pipeline::WorkerState;
use dataplane::wire::ethertype;
use dataplane::{DropReason, Verdict};
use synth::{ethernet_frame, ClientFlow, Transport, ROUTER_MAC};

/// Service `i`'s VIP, port and backends (slots `10 * i ..`).
const WEB: usize = 0;
const DNS: usize = 1;
const V6: usize = 2;

fn vip(i: usize) -> IpAddr {
    match i {
        WEB => "192.0.2.10".parse().unwrap(),
        DNS => "192.0.2.20".parse().unwrap(),
        _ => "2001:db8::30".parse().unwrap(),
    }
}

fn service_backend(service: usize, n: usize) -> BackendSpec {
    let slot = (10 * service + n) as u16;
    BackendSpec {
        slot,
        addr: Ipv4Addr::new(10, 5, service as u8, n as u8 + 1).into(),
        weight: 1,
        mac: Some([2, 0, 0, 5, service as u8, n as u8 + 1]),
        generation: 0,
    }
}

/// web: TCP port 80, three backends; dns: UDP any port, two; v6: every
/// protocol and port of an IPv6 VIP, three.
fn services() -> Vec<ServiceSpec> {
    let make = |i: usize, protocol, port, count: usize| ServiceSpec {
        name: ["web", "dns", "v6"][i].into(),
        vip: vip(i),
        protocol,
        port,
        backends: (0..count).map(|n| service_backend(i, n)).collect(),
        table_size: 1009,
        hash: HashFields::FiveTuple,
        counter: ServiceCounter {
            id: i as u16,
            generation: 0,
        },
    };
    vec![
        make(WEB, Some(6), Some(80), 3),
        make(DNS, Some(17), None, 2),
        make(V6, None, None, 3),
    ]
}

/// The balancer of the common tests without default backends or VIPs.
fn bare_spec() -> ForwardingSpec {
    ForwardingSpec {
        vips: vec![],
        ..spec_with(vec![])
    }
}

fn table_of(services: &[ServiceSpec], previous: Option<&ForwardingTable>) -> ForwardingTable {
    ForwardingTable::build_with_services(&bare_spec(), services, previous).unwrap()
}

/// The (service, backend index) a frame was forwarded to.
fn service_backend_of(out: &[u8]) -> (usize, usize) {
    let l2 = 14;
    let dst = &out[l2 + 16..l2 + 20];
    assert_eq!(
        dst[..2],
        [10, 5],
        "forwarded to {dst:?}, not a service backend"
    );
    (usize::from(dst[2]), usize::from(dst[3]) - 1)
}

fn client(service: usize, n: u32, dst_port: u16) -> ClientFlow {
    let src = if service == V6 {
        IpAddr::V6(format!("2001:db8:1::{:x}", n + 1).parse().unwrap())
    } else {
        IpAddr::V4(Ipv4Addr::new(198, 51, (n >> 8) as u8, n as u8))
    };
    ClientFlow {
        src,
        dst: vip(service),
        transport: if service == DNS {
            Transport::Udp
        } else {
            Transport::Tcp
        },
        src_port: 1024 + (n % 50_000) as u16,
        dst_port,
    }
}

fn gre(flow: &ClientFlow) -> Vec<u8> {
    tunnel().encapsulate(&flow.packet(b"hello"))
}

fn plain(flow: &ClientFlow) -> Vec<u8> {
    let (ethertype, packet) = (
        if flow.dst.is_ipv6() {
            ethertype::IPV6
        } else {
            ethertype::IPV4
        },
        flow.packet(b"hello"),
    );
    ethernet_frame(ROUTER_MAC, LB_MAC, None, ethertype, &packet)
}

/// Sends 300 flows of each service, in batches (the batched fast path
/// for GRE over IPv4) and one by one (the general path): every flow reaches
/// a backend of its own service, and every backend of a service gets some.
fn each_service_reaches_only_its_own_backends(frame_of: fn(&ClientFlow) -> Vec<u8>) {
    let table = table_of(&services(), None);
    for service in [WEB, DNS, V6] {
        let port = if service == DNS { 53 } else { 80 };
        let frames: Vec<Vec<u8>> = (0..300)
            .map(|n| frame_of(&client(service, n, port)))
            .collect();
        let mut per_backend = [0usize; 3];
        let mut batched_state = state();
        let batched: Vec<_> = frames
            .chunks(32)
            .flat_map(|chunk| run_batch(chunk, &table, &mut batched_state))
            .collect();
        let mut one_by_one = state();
        for (frame, (verdict, out)) in frames.iter().zip(&batched) {
            assert_eq!(*verdict, Verdict::ToWire, "service {service}");
            let (to_service, backend) = service_backend_of(out);
            assert_eq!(to_service, service);
            per_backend[backend] += 1;
            assert_eq!(
                &run(frame, &table, &mut one_by_one),
                &(*verdict, out.clone())
            );
        }
        let count = services()[service].backends.len();
        assert!(
            per_backend[..count].iter().all(|&n| n > 30),
            "service {service}: {per_backend:?}"
        );
        // Each path counted every packet, its bytes and its new flow to the
        // slot of the backend it went to: what a service's counters sum.
        let bytes: usize = frames.iter().map(Vec::len).sum();
        for counted in [&batched_state, &one_by_one] {
            let slots: Vec<usize> = services()[service]
                .backends
                .iter()
                .map(|b| usize::from(b.slot))
                .collect();
            let sum = |by_slot: &[dataplane::counters::Counter]| -> u64 {
                slots.iter().map(|&slot| by_slot[slot].get()).sum()
            };
            let c = &counted.counters;
            assert_eq!(sum(&c.backend_packets[..]), 300, "service {service}");
            assert_eq!(sum(&c.backend_new_flows[..]), 300, "service {service}");
            assert_eq!(sum(&c.backend_bytes[..]), bytes as u64, "service {service}");
        }
    }
}

#[test]
fn gre_flows_reach_only_the_backends_of_their_inner_destination_s_service() {
    each_service_reaches_only_its_own_backends(gre);
}

#[test]
fn vip_packets_reach_only_the_backends_of_their_destination_s_service() {
    each_service_reaches_only_its_own_backends(plain);
}

#[test]
fn gre_for_no_service_is_dropped_and_counted_as_no_service() {
    let table = table_of(&services(), None);
    let mut state = state();
    // The web VIP on another port, and an address no service has.
    let other_port = client(WEB, 1, 8080);
    let elsewhere = ClientFlow {
        dst: "192.0.2.99".parse().unwrap(),
        ..client(WEB, 1, 80)
    };
    for flow in [other_port, elsewhere] {
        let frames = vec![gre(&flow)];
        let (verdict, _) = run_batch(&frames, &table, &mut state)[0].clone();
        assert_eq!(verdict, Verdict::Drop(DropReason::NoService), "{flow:?}");
        let (verdict, _) = run(&frames[0], &table, &mut state);
        assert_eq!(verdict, Verdict::Drop(DropReason::NoService), "{flow:?}");
    }
    assert_eq!(state.counters.drops_for(DropReason::NoService), 4);
}

#[test]
fn a_plain_packet_to_a_vip_port_no_service_takes_goes_to_the_host_untouched() {
    let table = table_of(&services(), None);
    let mut state = state();
    let frame = plain(&client(WEB, 1, 22));
    let (verdict, out) = run(&frame, &table, &mut state);
    assert_eq!(verdict, Verdict::ToHost);
    assert_eq!(out, frame);
}

#[test]
fn a_service_s_forwarded_frame_is_byte_for_byte_what_the_one_service_balancer_sends() {
    // The same backend, in the same slot, as the one default backend.
    let backend = service_backend(DNS, 1);
    let one = ForwardingTable::build(&ForwardingSpec {
        vips: vec![vip(DNS)],
        ..spec_with(vec![backend])
    })
    .unwrap();
    let only_dns = ServiceSpec {
        backends: vec![backend],
        ..services().remove(DNS)
    };
    let many = table_of(&[only_dns], None);
    for frame in [gre(&client(DNS, 7, 53)), plain(&client(DNS, 7, 53))] {
        let (v1, out1) = run(&frame, &one, &mut state());
        let (v2, out2) = run(&frame, &many, &mut state());
        assert_eq!(v1, Verdict::ToWire);
        assert_eq!((v1, &out1), (v2, &out2));
    }
}

/// Where each of `flows` goes, decided by `state` (which remembers them).
fn destinations(
    flows: &[ClientFlow],
    table: &ForwardingTable,
    state: &mut WorkerState,
) -> Vec<(usize, usize)> {
    flows
        .iter()
        .map(|flow| {
            let (verdict, out) = run(&gre(flow), table, state);
            assert_eq!(verdict, Verdict::ToWire);
            service_backend_of(&out)
        })
        .collect()
}

#[test]
fn removing_a_backend_of_one_service_moves_no_flow_of_the_others() {
    let before = table_of(&services(), None);
    let flows: Vec<ClientFlow> = (0..200)
        .flat_map(|n| [client(WEB, n, 80), client(DNS, n, 53), client(V6, n, 80)])
        .collect();
    let mut state = state();
    let was = destinations(&flows, &before, &mut state);
    let mut changed = services();
    changed[WEB].backends.remove(0);
    let after = table_of(&changed, Some(&before));
    // The same worker (its connection table): only the removed backend's
    // flows move. A fresh worker (Maglev alone): no other service's flow moves.
    let kept = destinations(&flows, &after, &mut state);
    let fresh = destinations(&flows, &after, &mut common::state());
    for (((flow, was), kept), fresh) in flows.iter().zip(&was).zip(&kept).zip(&fresh) {
        // The removed backend was web's first (10.5.0.1); the rest renumber
        // nothing, since backends keep their addresses.
        if *was == (WEB, 0) {
            assert_eq!(kept.0, WEB);
            assert_ne!(kept.1, 0, "{flow:?} still on the removed backend");
        } else {
            assert_eq!(was, kept, "{flow:?} moved");
        }
        if was.0 != WEB {
            assert_eq!(was, fresh, "{flow:?} moved");
        }
    }
}

/// A named service's drops by reason as its worker counted them.
fn no_backend_drops_of(state: &WorkerState, service: &ServiceSpec) -> u64 {
    state
        .counters
        .service_drops_for(service.counter)
        .into_iter()
        .find(|&(reason, _)| reason == DropReason::NoBackend)
        .map_or(0, |(_, n)| n)
}

/// [`services`] with every web backend at weight 0: web has no backend
/// in rotation.
fn web_without_backends() -> Vec<ServiceSpec> {
    let mut specs = services();
    for b in &mut specs[WEB].backends {
        b.weight = 0;
    }
    specs
}

#[test]
fn a_service_without_backends_in_rotation_counts_its_no_backend_drops_to_itself_only() {
    let specs = web_without_backends();
    let table = table_of(&specs, None);
    let mut state = state();
    for n in 0..3 {
        let frames = vec![gre(&client(WEB, n, 80))];
        let (verdict, _) = run_batch(&frames, &table, &mut state)[0].clone();
        assert_eq!(verdict, Verdict::Drop(DropReason::NoBackend));
        let (verdict, _) = run(&plain(&client(WEB, n + 100, 80)), &table, &mut state);
        assert_eq!(verdict, Verdict::Drop(DropReason::NoBackend));
    }
    // DNS still forwards, and a flow no service takes is not web's either.
    let (verdict, _) = run(&gre(&client(DNS, 1, 53)), &table, &mut state);
    assert_eq!(verdict, Verdict::ToWire);
    let (verdict, _) = run(&gre(&client(WEB, 1, 8080)), &table, &mut state);
    assert_eq!(verdict, Verdict::Drop(DropReason::NoService));
    assert_eq!(no_backend_drops_of(&state, &specs[WEB]), 6);
    assert_eq!(no_backend_drops_of(&state, &specs[DNS]), 0);
    assert_eq!(no_backend_drops_of(&state, &specs[V6]), 0);
    assert_eq!(state.counters.drops_for(DropReason::NoBackend), 6);
}

#[test]
fn a_reused_counter_id_does_not_carry_the_removed_service_s_drops() {
    let mut specs = web_without_backends();
    let table = table_of(&specs, None);
    let mut state = state();
    let (verdict, _) = run(&gre(&client(WEB, 1, 80)), &table, &mut state);
    assert_eq!(verdict, Verdict::Drop(DropReason::NoBackend));
    assert_eq!(no_backend_drops_of(&state, &specs[WEB]), 1);
    // Web removed; a new service at the same address takes web's id
    // at the next generation, as control hands a freed id out again.
    let mut reused = specs.remove(WEB);
    reused.name = "web2".into();
    reused.counter.generation += 1;
    specs.push(reused.clone());
    let table = table_of(&specs, Some(&table));
    assert_eq!(no_backend_drops_of(&state, &reused), 0, "starts at zero");
    let (verdict, _) = run(&gre(&client(WEB, 2, 80)), &table, &mut state);
    assert_eq!(verdict, Verdict::Drop(DropReason::NoBackend));
    assert_eq!(no_backend_drops_of(&state, &reused), 1);
}

#[test]
fn a_later_fragment_whose_backend_left_counts_its_no_backend_drop_to_the_service() {
    let specs = services();
    let table = table_of(&specs, None);
    let mut state = state();
    let mut packet = client(WEB, 1, 80).packet(&[7u8; 3000]);
    packet[6] &= !0x40; // clear DF so it may be fragmented
    let fragments = synth::fragment_ipv4(&packet, 1000);
    let (verdict, _) = run(&tunnel().encapsulate(&fragments[0]), &table, &mut state);
    assert_eq!(verdict, Verdict::ToWire);
    // Every web backend replaced (a new generation in each slot): the
    // datagram's backend has left before its later fragments arrive.
    let mut replaced = specs.clone();
    for b in &mut replaced[WEB].backends {
        b.generation += 1;
    }
    let table = table_of(&replaced, Some(&table));
    let (verdict, _) = run(&tunnel().encapsulate(&fragments[1]), &table, &mut state);
    assert_eq!(verdict, Verdict::Drop(DropReason::NoBackend));
    assert_eq!(no_backend_drops_of(&state, &specs[WEB]), 1);
    assert_eq!(no_backend_drops_of(&state, &specs[DNS]), 0);
}
