//! The `AF_XDP` steering program against the pipeline itself: run through
//! `BPF_PROG_TEST_RUN` (no interface, no socket) on every golden input and
//! on hostile frames built the way `robustness.rs` builds them, it must
//! redirect a frame exactly when the pipeline would not answer `ToHost`.
//! Needs root (`bpf(2)`); prints `skipped: <reason>` otherwise.
//!
//! Without a socket in the map the redirect falls back to the code the
//! program was built with: `XDP_TX` here, a code the program never returns
//! otherwise, so that "redirected" can be told from "passed".

mod common;

use common::*;
use dataplane::forwarding::ForwardingTable;
use std::net::IpAddr;

use dataplane::io::af_xdp::bpf::Program;
use dataplane::io::af_xdp::loaded::LoadedSteering;
use dataplane::io::af_xdp::program::{Steering, XDP_PASS, XDP_TX};
use dataplane::pipeline::WorkerState;
use dataplane::wire::ethertype;
use dataplane::Verdict;
use host::capability::Need;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use synth::{ethernet_frame, fragment_ipv4, ROUTER_MAC};

const HOSTILE_FRAMES: usize = 20_000;
/// `BPF_PROG_TEST_RUN` refuses XDP input shorter than an Ethernet header;
/// no interface delivers such a frame to XDP either.
const SHORTEST_RUNNABLE: usize = 14;

fn steering() -> Steering {
    let vip6: std::net::Ipv6Addr = VIP6.parse().unwrap();
    Steering {
        lb_ipv4: LB.octets(),
        vips_v4: vec![VIP.octets()],
        vips_v6: vec![vip6.octets()],
    }
}

fn load_with(steering: &Steering, on_missing_socket: u32) -> LoadedSteering {
    LoadedSteering::load("test", steering, 4, on_missing_socket).unwrap_or_else(|e| panic!("{e}"))
}

fn load(steering: &Steering) -> LoadedSteering {
    load_with(steering, XDP_TX)
}

fn golden_inputs() -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines() {
            if let Some(hex) = line.strip_prefix("in: ") {
                let bytes = (0..hex.len() / 2)
                    .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
                    .collect();
                out.push((
                    path.file_name().unwrap().to_string_lossy().into_owned(),
                    bytes,
                ));
            }
        }
    }
    assert!(out.len() >= 20, "golden fixtures: {}", out.len());
    out
}

fn seeds() -> Vec<Vec<u8>> {
    let mut out = seed_frames();
    out.push(ethernet_frame(
        ROUTER_MAC,
        LB_MAC,
        Some(9),
        ethertype::IPV4,
        &tcp4([198, 51, 100, 2], 3).packet(b"vip"),
    ));
    let mut big = tcp4([198, 51, 100, 4], 6).packet(&[5u8; 300]);
    big[6] &= !0x40;
    for f in fragment_ipv4(&big, 128) {
        out.push(tunnel().encapsulate(&f));
    }
    out
}

/// A seed with random damage, or noise that claims to be GRE for us.
fn hostile(rng: &mut SmallRng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut frame = seeds[rng.gen_range(0..seeds.len())].clone();
    match rng.gen_range(0..8) {
        // BPF_PROG_TEST_RUN refuses frames shorter than an Ethernet header.
        0 => frame = noise(rng, 14..200),
        1 => frame.truncate(rng.gen_range(0..frame.len())),
        // Damage where the program looks: EtherType, tag, IPv4 header, addresses.
        _ => {
            for _ in 0..rng.gen_range(1..3) {
                let at = rng.gen_range(0..frame.len().min(60));
                frame[at] = rng.gen();
            }
        }
    }
    frame
}

/// Runs `frame` through both; returns a description when they disagree.
fn disagreement(
    program: &Program,
    frame: &[u8],
    table: &ForwardingTable,
    state: &mut WorkerState,
) -> Option<String> {
    let (verdict, _) = run(frame, table, state);
    let code = program.test_run(frame).expect("BPF_PROG_TEST_RUN");
    assert!(code == XDP_TX || code == XDP_PASS, "verdict {code}");
    let redirected = code == XDP_TX;
    (redirected == (verdict == Verdict::ToHost)).then(|| {
        format!(
            "pipeline {verdict:?}, program {}",
            if redirected { "redirect" } else { "pass" }
        )
    })
}

#[test]
fn the_program_redirects_exactly_the_golden_frames_the_pipeline_does_not_leave_to_the_host() {
    host::skip_unless!(Need::Root);
    let loaded = load(&steering());
    let program = &loaded.program;
    let mut state = state();
    let table = table();
    let mut kinds = [0usize; 2];
    for (name, frame) in golden_inputs() {
        if frame.len() < SHORTEST_RUNNABLE {
            continue;
        }
        if let Some(why) = disagreement(program, &frame, &table, &mut state) {
            panic!("{name}: {why}: {frame:02x?}");
        }
        kinds[usize::from(program.test_run(&frame).unwrap() == XDP_TX)] += 1;
    }
    assert!(
        kinds[0] >= 2 && kinds[1] >= 10,
        "passed, redirected: {kinds:?}"
    );
}

#[test]
fn the_program_agrees_with_the_pipeline_on_hostile_frames() {
    host::skip_unless!(Need::Root);
    let loaded = load(&steering());
    let program = &loaded.program;
    let seeds = seeds();
    let mut rng = SmallRng::seed_from_u64(0x0a5d_f00d);
    let mut state = state();
    let table = table();
    let mut redirected = 0;
    for _ in 0..HOSTILE_FRAMES {
        let frame = hostile(&mut rng, &seeds);
        if frame.len() < SHORTEST_RUNNABLE {
            continue;
        }
        if let Some(why) = disagreement(program, &frame, &table, &mut state) {
            panic!("{why}: {frame:02x?}");
        }
        redirected += usize::from(program.test_run(&frame).unwrap() == XDP_TX);
    }
    assert!(redirected > HOSTILE_FRAMES / 4, "{redirected} redirected");
}

#[test]
fn without_ipv6_vips_ipv6_stays_with_the_kernel() {
    host::skip_unless!(Need::Root);
    let steering = Steering {
        vips_v6: Vec::new(),
        ..steering()
    };
    let loaded = load(&steering);
    let frame = ethernet_frame(
        ROUTER_MAC,
        LB_MAC,
        None,
        ethertype::IPV6,
        &udp6(4).packet(b"vip6"),
    );
    assert_eq!(loaded.program.test_run(&frame).unwrap(), XDP_PASS);
}

#[test]
fn a_missing_socket_leaves_the_frame_to_the_kernel() {
    host::skip_unless!(Need::Root);
    let loaded = load_with(&steering(), XDP_PASS);
    let gre = tunnel().encapsulate(&tcp4([198, 51, 100, 1], 1).packet(b"hello"));
    assert_eq!(loaded.program.test_run(&gre).unwrap(), XDP_PASS);
}

/// A plain frame to `vip` (UDP, IPv4 or IPv6) as it arrives from the router.
fn to_vip(vip: IpAddr) -> Vec<u8> {
    let (ethertype, flow) = match vip {
        IpAddr::V4(_) => (ethertype::IPV4, tcp4([198, 51, 100, 7], 7)),
        IpAddr::V6(_) => (ethertype::IPV6, udp6(7)),
    };
    let flow = synth::ClientFlow { dst: vip, ..flow };
    ethernet_frame(
        ROUTER_MAC,
        LB_MAC,
        None,
        ethertype,
        &flow.packet(b"to a vip"),
    )
}

#[test]
fn a_vip_added_to_the_running_program_s_maps_is_redirected_and_a_removed_one_passed() {
    host::skip_unless!(Need::Root);
    let loaded = load(&steering());
    let added: [IpAddr; 2] = [
        "10.197.0.1".parse().unwrap(),
        "2001:db8::77".parse().unwrap(),
    ];
    for vip in added {
        let frame = to_vip(vip);
        assert_eq!(
            loaded.program.test_run(&frame).unwrap(),
            XDP_PASS,
            "{vip} before"
        );
        assert!(!loaded.vips.contains(vip).unwrap());
        loaded.vips.insert(vip).unwrap();
        assert_eq!(
            loaded.program.test_run(&frame).unwrap(),
            XDP_TX,
            "{vip} added"
        );
        assert!(loaded.vips.remove(vip).unwrap());
        assert!(!loaded.vips.remove(vip).unwrap(), "{vip} removed twice");
        assert_eq!(
            loaded.program.test_run(&frame).unwrap(),
            XDP_PASS,
            "{vip} removed"
        );
    }
    // The VIPs at start stay, a handle from another thread changes the same maps.
    let start_vip: IpAddr = IpAddr::V4(VIP);
    assert_eq!(loaded.program.test_run(&to_vip(start_vip)).unwrap(), XDP_TX);
    let handle = loaded.vips.try_clone().unwrap();
    std::thread::spawn(move || assert!(handle.remove(start_vip).unwrap()))
        .join()
        .unwrap();
    assert_eq!(
        loaded.program.test_run(&to_vip(start_vip)).unwrap(),
        XDP_PASS
    );
}
