//! Shared setup for the dataplane's integration tests: one balancer, three
//! backends, a router, and frames run through the real pipeline.
#![allow(dead_code)] // each test binary uses its own part of this module

pub mod golden;

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use dataplane::forwarding::{BackendSpec, ForwardingSpec, ForwardingTable};
use dataplane::io::FrameHandler;
use dataplane::pipeline::{Pipeline, WorkerConfig, WorkerState};
use dataplane::{Frame, Verdict};
use synth::{ClientFlow, Transport, Tunnel};

pub const LB: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 10);
pub const LB_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
pub const ROUTER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 80);
pub const VIP6: &str = "2001:db8::80";
/// The balancer's IPv6 address and the router's, for GRE over IPv6.
pub const LB6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10);
pub const ROUTER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
pub const SEED: u64 = 0x5eed;
pub const BACKENDS: [Ipv4Addr; 3] = [
    Ipv4Addr::new(10, 1, 0, 1),
    Ipv4Addr::new(10, 1, 0, 2),
    Ipv4Addr::new(10, 1, 0, 3),
];

/// The next-hop MAC of backend `i` (distinct per backend so tests can tell).
pub fn backend_mac(i: usize) -> [u8; 6] {
    [0x02, 0, 0, 0, 1, i as u8 + 1]
}

pub fn backend_specs() -> Vec<BackendSpec> {
    BACKENDS
        .iter()
        .enumerate()
        .map(|(i, addr)| BackendSpec {
            slot: i as u16,
            addr: IpAddr::V4(*addr),
            weight: 1,
            mac: Some(backend_mac(i)),
            generation: 0,
        })
        .collect()
}

pub fn spec_with(backends: Vec<BackendSpec>) -> ForwardingSpec {
    ForwardingSpec {
        lb_ipv4: LB,
        lb_ipv6: None,
        lb_mac: LB_MAC,
        vips: vec![IpAddr::V4(VIP), VIP6.parse().unwrap()],
        backends,
        seed: SEED,
        table_size: 65537,
        mtu: 1500,
        generation: 1,
    }
}

pub fn table() -> ForwardingTable {
    ForwardingTable::build(&spec_with(backend_specs())).unwrap()
}

pub fn state() -> WorkerState {
    WorkerState::new(WorkerConfig::default())
}

pub fn tunnel() -> Tunnel {
    Tunnel::new(ROUTER, LB)
}

pub fn tcp4(client: [u8; 4], port: u16) -> ClientFlow {
    ClientFlow {
        src: IpAddr::V4(client.into()),
        dst: IpAddr::V4(VIP),
        transport: Transport::Tcp,
        src_port: port,
        dst_port: 80,
    }
}

pub fn udp6(port: u16) -> ClientFlow {
    ClientFlow {
        src: "2001:db8:1::7".parse().unwrap(),
        dst: VIP6.parse().unwrap(),
        transport: Transport::Udp,
        src_port: port,
        dst_port: 53,
    }
}

/// `inner` in GRE over IPv6 from the router to the balancer, untagged.
pub fn gre6(inner: &[u8], hop_limit: u8) -> Vec<u8> {
    gre6_frame(LB6, None, inner, hop_limit)
}

/// `inner` in GRE over IPv6 from the router to `dst`, with an 802.1Q tag
/// when `vlan` names one.
pub fn gre6_frame(dst: Ipv6Addr, vlan: Option<u16>, inner: &[u8], hop_limit: u8) -> Vec<u8> {
    use dataplane::wire::{ethertype, ip_proto};
    let protocol = if inner.first().map(|b| b >> 4) == Some(6) {
        ethertype::IPV6
    } else {
        ethertype::IPV4
    };
    let mut ip = Vec::with_capacity(44 + inner.len());
    ip.extend_from_slice(&[0x60, 0, 0, 0]);
    ip.extend_from_slice(&((4 + inner.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&[ip_proto::GRE, hop_limit]);
    ip.extend_from_slice(&ROUTER6.octets());
    ip.extend_from_slice(&dst.octets());
    ip.extend_from_slice(&[0, 0]);
    ip.extend_from_slice(&protocol.to_be_bytes());
    ip.extend_from_slice(inner);
    synth::ethernet_frame(synth::ROUTER_MAC, LB_MAC, vlan, ethertype::IPV6, &ip)
}

/// Headroom the test buffers leave in front of a frame, like the I/O backends.
pub const HEADROOM: usize = 128;

/// Runs one frame through the pipeline in a buffer with headroom; returns the
/// verdict and the frame as it left.
pub fn run(frame: &[u8], table: &ForwardingTable, state: &mut WorkerState) -> (Verdict, Vec<u8>) {
    let mut buf = vec![0xa5u8; HEADROOM + frame.len() + 64];
    buf[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
    let mut f = Frame::new(&mut buf, HEADROOM, frame.len());
    let verdict = Pipeline::process(&mut f, table, state);
    (verdict, f.data().to_vec())
}

/// Frames decided together, each with headroom, as a backend hands a batch
/// to the pipeline: every verdict and resulting frame, in order.
pub fn run_batch(
    frames: &[Vec<u8>],
    table: &ForwardingTable,
    state: &mut WorkerState,
) -> Vec<(Verdict, Vec<u8>)> {
    let mut bufs: Vec<Vec<u8>> = frames
        .iter()
        .map(|frame| {
            let mut buf = vec![0xa5u8; HEADROOM + frame.len() + 64];
            buf[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
            buf
        })
        .collect();
    let mut views: Vec<Frame<'_>> = bufs
        .iter_mut()
        .zip(frames)
        .map(|(buf, frame)| Frame::new(buf, HEADROOM, frame.len()))
        .collect();
    let mut verdicts = vec![Verdict::ToHost; views.len()];
    Pipeline::handler(table, state).decide_all(&mut views, &mut verdicts);
    verdicts
        .into_iter()
        .zip(&views)
        .map(|(verdict, view)| (verdict, view.data().to_vec()))
        .collect()
}

/// Which backend a forwarded frame was sent to (by outer destination).
pub fn backend_of(out: &[u8]) -> Option<usize> {
    let l2 = if out[12..14] == [0x81, 0x00] { 18 } else { 14 };
    let dst = Ipv4Addr::new(out[l2 + 16], out[l2 + 17], out[l2 + 18], out[l2 + 19]);
    BACKENDS.iter().position(|b| *b == dst)
}

/// Random bytes of a length in `len`; half the time dressed as IPv4 GRE to
/// the balancer (`EtherType`, version and length, protocol, destination), so
/// that the deep parsing paths see noise too, not only the first check.
pub fn noise(rng: &mut rand::rngs::SmallRng, len: core::ops::Range<usize>) -> Vec<u8> {
    use rand::Rng;
    let len = rng.gen_range(len);
    let mut frame: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
    if rng.gen_bool(0.5) && frame.len() >= 34 {
        frame[12..14].copy_from_slice(&[0x08, 0x00]);
        frame[14] = 0x45;
        frame[23] = 47;
        frame[30..34].copy_from_slice(&LB.octets());
    }
    frame
}

/// Well-formed frames of every kind the balancer handles, for hostile tests
/// to damage: GRE with TCP/IPv4 and UDP/IPv6 inside, VIP-mode IPv4 and
/// IPv6, and GRE with a key, a sequence number, a checksum and a VLAN tag.
pub fn seed_frames() -> Vec<Vec<u8>> {
    use synth::{ethernet_frame, ROUTER_MAC};
    let mut t = tunnel();
    let mut out = vec![
        t.encapsulate(&tcp4([198, 51, 100, 1], 1).packet(b"hello")),
        t.encapsulate(&udp6(2).packet(b"hello")),
        ethernet_frame(
            ROUTER_MAC,
            LB_MAC,
            None,
            dataplane::wire::ethertype::IPV4,
            &tcp4([198, 51, 100, 2], 3).packet(b"vip"),
        ),
        ethernet_frame(
            ROUTER_MAC,
            LB_MAC,
            None,
            dataplane::wire::ethertype::IPV6,
            &udp6(4).packet(b"vip6"),
        ),
    ];
    t.key = Some(1);
    t.sequence = Some(2);
    t.gre_checksum = true;
    t.vlan = Some(7);
    out.push(t.encapsulate(&tcp4([198, 51, 100, 3], 5).packet(b"options")));
    out
}
