//! Frames per second through the testbed's userspace link emulator with an
//! empty spec (no impairment: the cost of the emulator itself) and with a
//! delay and a rate under load ([`LOADED_SPEC`]: every frame queued, timed
//! and sent in order), next to the same traffic forwarded by a plain veth +
//! bridge, in one run. The goal: both at least 0.7 of veth + bridge.
//!
//! Plain: namespace `ps` (`s0`) ==veth== `rrneb-xp` [bridge `rrneb-bp`]
//! `rrneb-yp` ==veth== namespace `pr` (`r0`).
//! Emulated: namespace `s` (`s0`) ==veth== `v0` [`EmulatedLink` in namespace
//! `emu`] `n0` ==veth== `rrneb-me` [bridge `rrneb-be`] `rrneb-ye` ==veth==
//! namespace `r` (`r0`): the plain path with the emulator in front, as
//! `testbed run --netem` builds it.
//! A sender in the sending namespace fills its `AF_PACKET` TX ring with
//! 64-byte frames as fast as it can; the rate is what `r0` received (its
//! `rx_packets`) over a fixed time.
//!
//! Needs root (prints `skipped: <reason>` otherwise). Plain `fn main`:
//! `cargo bench -p benches --bench emulator` measures 3 x 2 s per path;
//! without `--bench` (as under `cargo test`) one short smoke run.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use benches::stats::median;
use benches::system::{delete_namespaces, flood_sender, link_counter, run};
use host::capability::Need;
use testbed::impair::live::EmulatedLink;
use testbed::impair::NetemSpec;

const PREFIX: &str = "rrneb-";
const NAMESPACES: [&str; 5] = ["ps", "pr", "s", "emu", "r"];
const MEASURE: Duration = Duration::from_secs(2);
const SMOKE: Duration = Duration::from_millis(300);
const RUNS: usize = 3;
/// A delay and a rate that the flood keeps busy without the rate being the
/// bottleneck (10 Gbit/s is 19 M frames of 64 bytes a second): the cost of
/// queueing, timing and ordering every frame. The limit holds a millisecond
/// of the flood.
const LOADED_SPEC: &str = "delay 1ms rate 10gbit limit 16384";

fn name_of(short: &str) -> String {
    format!("{PREFIX}{short}")
}

/// The bench's namespaces and bridges, removed on drop (also on panic).
struct Lab;

impl Lab {
    fn start() -> Self {
        Self::remove_all();
        let lab = Self;
        for short in NAMESPACES {
            let space = name_of(short);
            run(&format!("ip netns add {space}"));
            run(&format!(
                "ip netns exec {space} sysctl -qw net.ipv6.conf.default.disable_ipv6=1"
            ));
        }
        let [ps, pr, s, emu, r] = NAMESPACES.map(name_of);
        for bridge in ["bp", "be"].map(name_of) {
            run(&format!("ip link add {bridge} type bridge"));
            run(&format!("sysctl -qw net.ipv6.conf.{bridge}.disable_ipv6=1"));
            run(&format!("ip link set {bridge} up"));
        }
        let (xp, yp, me, ye) = (name_of("xp"), name_of("yp"), name_of("me"), name_of("ye"));
        // Plain path.
        run(&format!(
            "ip link add s0 netns {ps} type veth peer name {xp}"
        ));
        run(&format!(
            "ip link add r0 netns {pr} type veth peer name {yp}"
        ));
        // Emulated path.
        run(&format!(
            "ip link add s0 netns {s} type veth peer name v0 netns {emu}"
        ));
        run(&format!(
            "ip link add n0 netns {emu} type veth peer name {me}"
        ));
        run(&format!(
            "ip link add r0 netns {r} type veth peer name {ye}"
        ));
        for (port, bridge) in [(&xp, "bp"), (&yp, "bp"), (&me, "be"), (&ye, "be")] {
            run(&format!("sysctl -qw net.ipv6.conf.{port}.disable_ipv6=1"));
            run(&format!("ip link set {port} master {} up", name_of(bridge)));
        }
        for (space, dev) in [
            (&ps, "s0"),
            (&pr, "r0"),
            (&s, "s0"),
            (&emu, "v0"),
            (&emu, "n0"),
            (&r, "r0"),
        ] {
            run(&format!("ip -n {space} link set {dev} up"));
        }
        lab
    }

    fn remove_all() {
        delete_namespaces(PREFIX, &NAMESPACES);
        for link in ["bp", "be", "xp", "yp", "me", "ye"] {
            let _ = Command::new("ip")
                .args(["link", "del", &name_of(link)])
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        Self::remove_all();
    }
}

/// Frames per second received on `r0` of `receiver` while a sender in
/// `sending` runs for `span`, and the sender's CPU time per frame queued.
fn measure(sending: &str, receiver: &str, span: Duration) -> (f64, f64) {
    let stop = Arc::new(AtomicBool::new(false));
    let send = flood_sender(sending.to_owned(), None, Arc::clone(&stop));
    // Let the rings fill before counting.
    thread::sleep(Duration::from_millis(100));
    let before = link_counter(receiver, "r0", "rx", "packets");
    let started = Instant::now();
    thread::sleep(span);
    let after = link_counter(receiver, "r0", "rx", "packets");
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (sent, cpu) = send.join().unwrap();
    (
        (after - before) as f64 / elapsed.as_secs_f64(),
        cpu.as_nanos() as f64 / sent.max(1) as f64,
    )
}

fn main() {
    host::skip_unless!(Need::Root, Need::Netns);
    let measuring = std::env::args().any(|arg| arg == "--bench");
    let (span, runs) = if measuring {
        (MEASURE, RUNS)
    } else {
        (SMOKE, 1)
    };
    let _lab = Lab::start();
    let untouched = NetemSpec::default();
    let loaded = NetemSpec::parse(LOADED_SPEC).unwrap();
    for (name, spec) in [("empty spec", &untouched), (LOADED_SPEC, &loaded)] {
        compare(name, spec, span, runs);
    }
}

/// Measures the emulator with `spec` from A to B against veth + bridge.
fn compare(name: &str, spec: &NetemSpec, span: Duration, runs: usize) {
    let untouched = NetemSpec::default();
    let link = EmulatedLink::start(Some(&name_of("emu")), "v0", "n0", spec, &untouched, 1)
        .unwrap_or_else(|e| panic!("starting the emulator: {e}"));
    println!("emulator ({name}): 64-byte frames, {runs} x {span:?} per path, alternating");
    let (mut plain, mut emulated, mut plain_cost) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        let (p, cost) = measure(&name_of("ps"), &name_of("pr"), span);
        let (e, _) = measure(&name_of("s"), &name_of("r"), span);
        plain_cost.push(cost);
        println!(
            "  run {run}: veth + bridge {p:>9.0} frames/s   through the emulator {e:>9.0} frames/s   ({:.0}%)",
            100.0 * e / p
        );
        plain.push(p);
        emulated.push(e);
    }
    let report = link
        .stop()
        .unwrap_or_else(|e| panic!("stopping the emulator: {e}"));
    let (p, e) = (median(&plain), median(&emulated));
    println!(
        "emulator ({name}): median veth + bridge {p:.0} frames/s, through the emulator \
         {e:.0} frames/s: ratio {:.2} ({} frames in, {} out, {} over the queue limit)",
        e / p,
        report.a_to_b.received,
        report.a_to_b.sent,
        report.a_to_b.limited
    );
    // What each path would do with a CPU of its own, whatever share of one
    // it got here: the plain path's work runs in the sender's context, the
    // emulated path's downstream work in the emulator thread's.
    let plain_ns = median(&plain_cost);
    let emulator_ns = report.cpu.as_nanos() as f64 / report.a_to_b.sent.max(1) as f64;
    println!(
        "emulator ({name}): per CPU-second: veth + bridge sender {:.0} frames, emulator \
         thread {:.0} frames: ratio {:.2} (CPU per frame {plain_ns:.0} ns vs {emulator_ns:.0} ns)",
        1e9 / plain_ns,
        1e9 / emulator_ns,
        plain_ns / emulator_ns
    );
}
