//! The `AF_XDP` steering program against the pipeline itself: run through
//! `BPF_PROG_TEST_RUN` (no interface, no socket) on every golden input and
//! on hostile frames built the way `robustness.rs` builds them, it must
//! redirect a frame exactly when the pipeline would not answer `ToHost`.
//! Needs root (`bpf(2)`); prints `skipped: <reason>` otherwise.
//!
//! With the balancer's IPv6 address in the program, the same comparison
//! runs against a pipeline that has it too, over the IPv6 golden frames
//! (`golden_ipv6_backends/`) and hostile GRE over IPv6.
//!
//! Without a socket in the map the redirect falls back to the code the
//! program was built with: `XDP_TX` here, a code the program never returns
//! otherwise, so that "redirected" can be told from "passed".

mod common;

use common::*;
use dataplane::forwarding::{ForwardingSpec, ForwardingTable};
use std::net::{IpAddr, Ipv6Addr};

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
    let vip6: Ipv6Addr = VIP6.parse().unwrap();
    Steering {
        lb_ipv4: LB.octets(),
        lb_ipv6: None,
        vips_v4: vec![VIP.octets()],
        vips_v6: vec![vip6.octets()],
    }
}

/// The balancer with an IPv6 address, as the program and as the pipeline.
fn steering_v6() -> Steering {
    Steering {
        lb_ipv6: Some(LB6.octets()),
        ..steering()
    }
}

fn table_v6() -> ForwardingTable {
    ForwardingTable::build(&ForwardingSpec {
        lb_ipv6: Some(LB6),
        ..spec_with(backend_specs())
    })
    .unwrap()
}

fn load_with(steering: &Steering, on_missing_socket: u32) -> LoadedSteering {
    LoadedSteering::load("test", steering, 4, on_missing_socket).unwrap_or_else(|e| panic!("{e}"))
}

fn load(steering: &Steering) -> LoadedSteering {
    load_with(steering, XDP_TX)
}

/// The input frames of the golden fixtures in `tests/<fixtures>/`.
fn golden_inputs(fixtures: &str) -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(fixtures);
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
    assert!(
        out.len() >= 10,
        "golden fixtures in {fixtures}: {}",
        out.len()
    );
    out
}

/// GRE over IPv6 with a hop-by-hop options header before GRE, to `LB6`:
/// the pipeline reads only the fixed header's next header, so this is the
/// host's.
fn gre6_after_hop_by_hop() -> Vec<u8> {
    let mut frame = gre6(&tcp4([198, 51, 100, 30], 30).packet(b"hbh"), 64);
    // Next header: hop-by-hop (0); an 8-byte header (next GRE, PadN) goes in front of GRE.
    frame[20] = 0;
    frame.splice(54..54, [47, 0, 1, 4, 0, 0, 0, 0]);
    let payload = u16::from_be_bytes([frame[18], frame[19]]) + 8;
    frame[18..20].copy_from_slice(&payload.to_be_bytes());
    frame
}

/// Well-formed GRE over IPv6 of each kind, for hostile frames to damage:
/// inner IPv4 and IPv6, tagged, to another address, behind a hop-by-hop header.
fn seeds_v6() -> Vec<Vec<u8>> {
    let other: Ipv6Addr = "2001:db8::99".parse().unwrap();
    let mut out = seeds();
    out.extend([
        gre6(&tcp4([198, 51, 100, 31], 31).packet(b"six"), 64),
        gre6(&udp6(32).packet(b"six in six"), 64),
        gre6_frame(
            LB6,
            Some(9),
            &tcp4([198, 51, 100, 33], 33).packet(b"tag"),
            64,
        ),
        gre6_frame(
            other,
            None,
            &tcp4([198, 51, 100, 34], 34).packet(b"not us"),
            64,
        ),
        gre6_after_hop_by_hop(),
    ]);
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

/// Each golden input of `fixtures` through the program built from
/// `steering` and the pipeline over `table`: panics at the first frame
/// they disagree on, and returns each fixture's name with whether the
/// program redirected it.
fn golden_redirects(
    steering: &Steering,
    table: &ForwardingTable,
    fixtures: &[&str],
) -> Vec<(String, bool)> {
    let loaded = load(steering);
    let program = &loaded.program;
    let mut state = state();
    let mut out = Vec::new();
    for (name, frame) in fixtures.iter().flat_map(|f| golden_inputs(f)) {
        if frame.len() < SHORTEST_RUNNABLE {
            continue;
        }
        if let Some(why) = disagreement(program, &frame, table, &mut state) {
            panic!("{name}: {why}: {frame:02x?}");
        }
        out.push((name, program.test_run(&frame).unwrap() == XDP_TX));
    }
    out
}

#[test]
fn the_program_redirects_exactly_the_golden_frames_the_pipeline_does_not_leave_to_the_host() {
    host::skip_unless!(Need::Root);
    let mut kinds = [0usize; 2];
    for (_, redirected) in golden_redirects(&steering(), &table(), &["golden"]) {
        kinds[usize::from(redirected)] += 1;
    }
    assert!(
        kinds[0] >= 2 && kinds[1] >= 10,
        "passed, redirected: {kinds:?}"
    );
}

/// Damaged `seeds` (seeded by `rng_seed`) through the program built from
/// `steering` and the pipeline over `table`: panics at the first frame
/// they disagree on, and returns the frames the program redirected.
fn redirected_hostile(
    steering: &Steering,
    table: &ForwardingTable,
    seeds: &[Vec<u8>],
    rng_seed: u64,
) -> Vec<Vec<u8>> {
    let loaded = load(steering);
    let program = &loaded.program;
    let mut rng = SmallRng::seed_from_u64(rng_seed);
    let mut state = state();
    let mut redirected = Vec::new();
    for _ in 0..HOSTILE_FRAMES {
        let frame = hostile(&mut rng, seeds);
        if frame.len() < SHORTEST_RUNNABLE {
            continue;
        }
        if let Some(why) = disagreement(program, &frame, table, &mut state) {
            panic!("{why}: {frame:02x?}");
        }
        if program.test_run(&frame).unwrap() == XDP_TX {
            redirected.push(frame);
        }
    }
    redirected
}

#[test]
fn the_program_agrees_with_the_pipeline_on_hostile_frames() {
    host::skip_unless!(Need::Root);
    let redirected = redirected_hostile(&steering(), &table(), &seeds(), 0x0a5d_f00d).len();
    assert!(redirected > HOSTILE_FRAMES / 4, "{redirected} redirected");
}

#[test]
fn with_an_ipv6_address_the_program_redirects_exactly_the_golden_frames_the_pipeline_does_not_leave_to_the_host(
) {
    host::skip_unless!(Need::Root);
    let fixtures = ["golden", "golden_ipv6_backends"];
    let gre6_redirected = golden_redirects(&steering_v6(), &table_v6(), &fixtures)
        .into_iter()
        .filter(|(name, redirected)| name.starts_with("gre6_") && *redirected)
        .count();
    // gre6_to_v6, _to_v4, _inner_v6_to_v4, _hop_limit_1, _truncated,
    // _version_4: all but the one that is not GRE.
    assert_eq!(gre6_redirected, 6);
}

#[test]
fn gre_over_ipv6_is_redirected_only_to_the_balancer_s_ipv6_address_and_only_right_after_the_fixed_header(
) {
    host::skip_unless!(Need::Root);
    let other: Ipv6Addr = "2001:db8::99".parse().unwrap();
    let inner = tcp4([198, 51, 100, 35], 35).packet(b"gre6");
    let mut not_gre = gre6(&inner, 64);
    not_gre[20] = 6; // TCP
                     // Payload length 0 before a hop-by-hop header: a jumbogram, which the
                     // pipeline drops as malformed IPv6.
    let mut jumbogram = gre6(&inner, 64);
    jumbogram[18..21].copy_from_slice(&[0, 0, 0]);
    let cases = [
        ("untagged", gre6(&inner, 64), true),
        ("tagged", gre6_frame(LB6, Some(42), &inner, 64), true),
        ("inner IPv6", gre6(&udp6(36).packet(b"q"), 64), true),
        (
            "to another address",
            gre6_frame(other, None, &inner, 64),
            false,
        ),
        ("not GRE", not_gre, false),
        (
            "GRE behind a hop-by-hop header",
            gre6_after_hop_by_hop(),
            false,
        ),
        ("a jumbogram (dropped as malformed)", jumbogram, true),
    ];
    let with = load(&steering_v6());
    let without = load(&steering());
    let (table_with, table_without) = (table_v6(), table());
    let mut state = state();
    for (what, frame, redirected) in cases {
        let expected = if redirected { XDP_TX } else { XDP_PASS };
        assert_eq!(with.program.test_run(&frame).unwrap(), expected, "{what}");
        assert_eq!(
            disagreement(&with.program, &frame, &table_with, &mut state),
            None,
            "{what}"
        );
        // Without an IPv6 address the balancer takes no GRE over IPv6.
        assert_eq!(
            without.program.test_run(&frame).unwrap(),
            XDP_PASS,
            "{what} without lb_ipv6"
        );
        assert_eq!(
            disagreement(&without.program, &frame, &table_without, &mut state),
            None,
            "{what} without lb_ipv6"
        );
    }
}

#[test]
fn with_an_ipv6_address_the_program_agrees_with_the_pipeline_on_hostile_frames() {
    host::skip_unless!(Need::Root);
    let redirected = redirected_hostile(&steering_v6(), &table_v6(), &seeds_v6(), 0x6a5d_f00d);
    let ipv6 = redirected
        .iter()
        .filter(|frame| frame.get(12..14) == Some(&[0x86, 0xdd]))
        .count();
    assert!(ipv6 > HOSTILE_FRAMES / 20, "{ipv6} IPv6 redirected");
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
