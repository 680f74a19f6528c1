//! `AfXdpIo` and its steering program on a veth pair between two
//! namespaces (needs root; prints `skipped: <reason>` otherwise). Each test
//! owns the prefix `rrxdN-`.

#[path = "af_packet_lab/mod.rs"]
mod af_packet_lab;
mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use af_packet_lab::{in_namespace, VethLab};
use common::{tcp4, tunnel, LB, VIP};
use dataplane::io::af_packet::AfPacketConfig;
use dataplane::io::af_xdp::program::Steering;
use dataplane::io::af_xdp::{AfXdpConfig, AfXdpIo, XdpAttachment};
use dataplane::io::PacketIo;
use dataplane::{DropReason, Frame, Verdict};

const DEADLINE: Duration = Duration::from_secs(10);
/// The local experimental `EtherType`: the kernel stacks ignore these frames.
const TEST_ETHERTYPE: [u8; 2] = [0x88, 0xB5];
/// Set in the child of the `kill -9` test: the interface to attach to.
const HOLD_ENV: &str = "RR_XDP_TEST_HOLD";

fn steering() -> Steering {
    Steering {
        lb_ipv4: LB.octets(),
        lb_ipv6: None,
        vips_v4: vec![VIP.octets()],
        vips_v6: Vec::new(),
    }
}

fn open_xdp(lab: &VethLab, interface: &'static str) -> (XdpAttachment, AfXdpIo) {
    in_namespace(&lab.ns_b(), move || {
        let attachment = XdpAttachment::attach(interface, &steering(), 1, None)
            .unwrap_or_else(|e| panic!("attach: {e}"));
        let io = AfXdpIo::open(&attachment, &AfXdpConfig::default())
            .unwrap_or_else(|e| panic!("open: {e}"));
        println!(
            "attached in {:?} mode, zero-copy {}, host path {:?}",
            attachment.mode(),
            io.is_zero_copy(),
            io.host_path()
        );
        (attachment, io)
    })
}

fn is_gre(frame: &[u8]) -> bool {
    let l2 = if frame.get(12..14) == Some(&[0x81, 0x00]) {
        18
    } else {
        14
    };
    frame.get(l2 - 2..l2) == Some(&[0x08, 0x00]) && frame.get(l2 + 9) == Some(&47)
}

fn other_frame(seq: u8) -> Vec<u8> {
    let mut frame = vec![0x02, 0, 0, 0, 0, 0xbb, 0x02, 0, 0, 0, 0, 0xaa];
    frame.extend_from_slice(&TEST_ETHERTYPE);
    frame.resize(60, seq);
    frame
}

#[test]
fn gre_for_the_balancer_comes_back_byte_for_byte_and_other_frames_never_reach_the_socket() {
    let Some(lab) = VethLab::start("rrxd1-") else {
        return;
    };
    let mut sender = lab.open(&lab.ns_a(), AfPacketConfig::new("a0"));
    let (_attachment, mut xdp) = open_xdp(&lab, "b0");
    let mut gre = Vec::new();
    for seq in 0..300u16 {
        let mut t = tunnel();
        if seq % 5 == 0 {
            t.vlan = Some(7);
        }
        let payload = vec![seq as u8; [10, 1400, 333, 1][usize::from(seq) % 4]];
        gre.push(t.encapsulate(&tcp4([198, 51, 100, 1], 1000 + seq).packet(&payload)));
    }
    for (i, frame) in gre.iter().enumerate() {
        while !sender.transmit_copy(frame).unwrap() {
            sender.flush().unwrap();
        }
        if i % 10 == 0 {
            sender.transmit_copy(&other_frame(i as u8)).unwrap();
        }
    }
    sender.flush().unwrap();

    let mut strangers = 0;
    let mut received = Vec::new();
    let started = Instant::now();
    while received.len() < gre.len() && started.elapsed() < DEADLINE {
        xdp.run_batch(64, |frame: &mut Frame<'_>| {
            if is_gre(frame.data()) {
                Verdict::ToWire
            } else {
                strangers += 1;
                Verdict::Drop(DropReason::NoBackend)
            }
        })
        .unwrap();
        sender
            .run_batch(64, |frame: &mut Frame<'_>| {
                if is_gre(frame.data()) {
                    received.push(frame.data().to_vec());
                }
                Verdict::Drop(DropReason::NoBackend)
            })
            .unwrap();
        xdp.wait(Duration::from_millis(1)).unwrap();
    }
    assert_eq!(
        strangers, 0,
        "frames not for the balancer reached its socket"
    );
    gre.sort();
    received.sort();
    assert_eq!(received.len(), gre.len());
    assert!(received == gre, "frames changed on the way");
    let stats = xdp.stats().unwrap();
    assert_eq!(
        (stats.kernel_dropped, stats.invalid_descs),
        (0, 0),
        "{stats:?}"
    );
}

/// The child of the `kill -9` test: attaches to the interface named in
/// `RR_XDP_TEST_HOLD`, says so, and waits to be killed. A no-op otherwise.
#[test]
fn hold_an_attachment_until_killed() {
    let Ok(interface) = std::env::var(HOLD_ENV) else {
        return;
    };
    let _attachment = XdpAttachment::attach(&interface, &steering(), 1, None).unwrap();
    println!("attached");
    std::thread::sleep(Duration::from_secs(30));
}

fn has_xdp(ns: &str, interface: &str) -> bool {
    let out = Command::new("ip")
        .args(["-n", ns, "link", "show", interface])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).contains("xdp")
}

#[test]
fn kill_9_leaves_the_interface_without_the_program() {
    let Some(lab) = VethLab::start("rrxd2-") else {
        return;
    };
    let ns = lab.ns_b();
    assert!(!has_xdp(&ns, "b0"));
    let mut child = Command::new("ip")
        .args(["netns", "exec", &ns])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "hold_an_attachment_until_killed", "--nocapture"])
        .env(HOLD_ENV, "b0")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let attached = lines.any(|line| line.is_ok_and(|l| l.contains("attached")));
    let held = attached && has_xdp(&ns, "b0");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(held, "the child did not attach");
    let started = Instant::now();
    while has_xdp(&ns, "b0") {
        assert!(
            started.elapsed() < DEADLINE,
            "the program outlived its process"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
