//! What the `AF_XDP` steering program costs per frame, by kind of frame, as
//! the kernel times it (`BPF_PROG_TEST_RUN` with a repeat count: the mean
//! time of one run, without the system call's), beside a program that only
//! returns `XDP_PASS` (the floor every XDP program pays), in the same run.
//!
//! The VIPs live in BPF hash maps, so a frame that is not GRE to the
//! balancer costs a map lookup; this prints what that lookup adds, with one
//! VIP and with 1,000.
//!
//! ```sh
//! sudo cargo run --release -p benches --example xdp_steering_cost
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use benches::stats::median;
use dataplane::io::af_xdp::asm::{bits_i32, Asm, R0};
use dataplane::io::af_xdp::bpf::Program;
use dataplane::io::af_xdp::loaded::LoadedSteering;
use dataplane::io::af_xdp::program::{Steering, XDP_PASS};
use dataplane::wire::ethertype;
use synth::{ethernet_frame, ClientFlow, Transport, Tunnel, BALANCER_MAC, ROUTER_MAC};

/// Runs the kernel makes of each frame per measurement.
const REPEAT: u32 = 1_000_000;
/// Measurements per frame; the median is printed.
const ROUNDS: usize = 7;

const LB: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const VIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

fn tcp(dst: IpAddr, src: IpAddr) -> Vec<u8> {
    ClientFlow {
        src,
        dst,
        transport: Transport::Tcp,
        src_port: 40_000,
        dst_port: 80,
    }
    .packet(b"GET / HTTP/1.1\r\n\r\n")
}

/// The frames measured: what each kind of traffic meets.
fn frames() -> Vec<(&'static str, Vec<u8>)> {
    let client4 = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
    let client6 = IpAddr::V6("2001:db8:1::7".parse::<Ipv6Addr>().unwrap());
    let other6 = IpAddr::V6("2001:db8::99".parse::<Ipv6Addr>().unwrap());
    let plain =
        |packet: &[u8], kind: u16| ethernet_frame(ROUTER_MAC, BALANCER_MAC, None, kind, packet);
    let arp = {
        let mut body = vec![0, 1, 8, 0, 6, 4, 0, 1];
        body.extend_from_slice(&ROUTER_MAC);
        body.extend_from_slice(&[192, 0, 2, 1]);
        body.extend_from_slice(&[0; 6]);
        body.extend_from_slice(&LB.octets());
        plain(&body, 0x0806)
    };
    vec![
        (
            "GRE to the balancer (redirect)",
            Tunnel::new(Ipv4Addr::new(192, 0, 2, 1), LB)
                .encapsulate(&tcp(IpAddr::V4(VIP), client4)),
        ),
        (
            "IPv4 to a VIP (lookup hit, redirect)",
            plain(&tcp(IpAddr::V4(VIP), client4), ethertype::IPV4),
        ),
        (
            "IPv4 TCP to the balancer's address (pass)",
            plain(&tcp(IpAddr::V4(LB), client4), ethertype::IPV4),
        ),
        (
            "IPv4 to another address (lookup miss, pass)",
            plain(
                &tcp(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 77)), client4),
                ethertype::IPV4,
            ),
        ),
        (
            "IPv6 to another address (lookup miss, pass)",
            plain(&tcp(other6, client6), ethertype::IPV6),
        ),
        ("ARP (pass)", arp),
    ]
}

/// The median over [`ROUNDS`] of the kernel's ns per run of `program`.
fn ns_per_run(program: &Program, frame: &[u8]) -> f64 {
    let runs: Vec<f64> = (0..ROUNDS)
        .map(|_| match program.test_run_repeated(frame, REPEAT) {
            Ok((_, ns)) => f64::from(ns),
            Err(e) => panic!("BPF_PROG_TEST_RUN: {e} (run as root on a kernel with BPF)"),
        })
        .collect();
    median(&runs)
}

/// The floor: `r0 = XDP_PASS; exit`.
fn pass_only() -> Program {
    let mut asm = Asm::new();
    asm.mov_imm(R0, bits_i32(XDP_PASS));
    asm.exit();
    let insns = asm.finish().expect("two instructions assemble");
    Program::load(&insns).unwrap_or_else(|e| panic!("loading XDP_PASS: {:?}", e.error))
}

fn steering(vips: usize) -> Steering {
    let mut vips_v4 = vec![VIP.octets()];
    vips_v4.extend((1..vips).map(|i| Ipv4Addr::from(0x0a63_0000 + i as u32).octets()));
    Steering {
        lb_ipv4: LB.octets(),
        lb_ipv6: Some("2001:db8::10".parse::<Ipv6Addr>().unwrap().octets()),
        vips_v4,
        vips_v6: vec!["2001:db8:ffff::1".parse::<Ipv6Addr>().unwrap().octets()],
    }
}

fn main() {
    if let Some(reason) = host::capability::Need::Root.unmet() {
        println!("skipped: {reason}");
        return;
    }
    let floor = pass_only();
    let one = LoadedSteering::load("bench", &steering(1), 1, XDP_PASS).expect("load");
    let many = LoadedSteering::load("bench", &steering(1000), 1, XDP_PASS).expect("load");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "ns per frame, kernel's mean over {REPEAT} runs, median of {ROUNDS}; load {}",
        load.trim()
    );
    println!(
        "{:<44} {:>8} {:>10} {:>12}",
        "frame", "floor", "1 VIP", "1,000 VIPs"
    );
    for (name, frame) in frames() {
        let base = ns_per_run(&floor, &frame);
        let with_one = ns_per_run(&one.program, &frame);
        let with_many = ns_per_run(&many.program, &frame);
        println!("{name:<44} {base:>8.1} {with_one:>10.1} {with_many:>12.1}");
    }
}
