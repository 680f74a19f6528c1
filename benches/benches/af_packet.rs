//! Packets per second through an `AF_PACKET` forwarding loop, next to a plain
//! veth in the same run: the ceiling of the testbed's userspace link emulator
//! (goal: at least 70% of the plain veth).
//!
//! Plain: namespace `S` (`s0`) and `R` (`r0`) joined by one veth pair.
//! Forwarded: `S` (`s0`) -- `E` (`e0`, `e1`) -- `R` (`r0`), with a worker in
//! `E` taking each frame from `e0`'s RX ring and copying it into `e1`'s TX
//! ring (what `ToWire` does, across two interfaces).
//! In both, a sender in `S` fills its TX ring with 64-byte frames as fast as
//! it can (`PACKET_QDISC_BYPASS`), and the rate is what `r0` received
//! (its `rx_packets`), over a fixed time.
//!
//! The sender is pinned to CPU 0 and the forwarder to CPU 1. On a shared
//! machine the forwarder's share of its CPU sets the forwarded rate, so the
//! CPU time per frame of each thread is printed too: it does not depend on
//! how much of a CPU a thread got.
//!
//! Needs root (prints `skipped: <reason>` otherwise). Plain `fn main`: the
//! figures are printed. `cargo bench -p benches --bench af_packet`; without
//! `--bench` (as under `cargo test`) one short smoke run.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use benches::stats::median;
use benches::system::{delete_namespaces, enter, flood_sender, pin, run, rx_packets, thread_cpu};
use dataplane::io::af_packet::{AfPacketConfig, AfPacketIo};
use dataplane::io::PacketIo;
use dataplane::{DropReason, Frame, Verdict};
use host::capability::Need;

const PREFIX: &str = "rrapb-";
const MEASURE: Duration = Duration::from_secs(3);
const SMOKE: Duration = Duration::from_millis(300);
const RUNS: usize = 3;
const GOAL_SHARE: f64 = 0.70;

/// The namespaces of the bench, removed on drop (also on panic).
struct Lab;

fn ns(name: &str) -> String {
    format!("{PREFIX}{name}")
}

impl Lab {
    fn start() -> Self {
        let lab = Self;
        Self::remove_all();
        for name in ["s", "e", "r", "ps", "pr"] {
            run(&format!("ip netns add {}", ns(name)));
            run(&format!(
                "ip netns exec {} sysctl -qw net.ipv6.conf.default.disable_ipv6=1",
                ns(name)
            ));
        }
        // Forwarded path.
        let (s, e, r) = (ns("s"), ns("e"), ns("r"));
        run(&format!(
            "ip link add s0 netns {s} type veth peer name e0 netns {e}"
        ));
        run(&format!(
            "ip link add e1 netns {e} type veth peer name r0 netns {r}"
        ));
        // Plain path.
        let (ps, pr) = (ns("ps"), ns("pr"));
        run(&format!(
            "ip link add s0 netns {ps} type veth peer name r0 netns {pr}"
        ));
        for (space, dev) in [
            (&s, "s0"),
            (&e, "e0"),
            (&e, "e1"),
            (&r, "r0"),
            (&ps, "s0"),
            (&pr, "r0"),
        ] {
            run(&format!("ip -n {space} link set {dev} up"));
        }
        lab
    }

    fn remove_all() {
        delete_namespaces(PREFIX, &["s", "e", "r", "ps", "pr"]);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        Self::remove_all();
    }
}

/// Frames a thread handled, the CPU time it took, and (forwarder) the frames
/// the kernel dropped because its RX ring was full.
#[derive(Debug, Clone, Copy)]
struct Work {
    frames: u64,
    cpu: Duration,
    ring_full_drops: u64,
}

impl Work {
    fn ns_per_frame(self) -> f64 {
        self.cpu.as_nanos() as f64 / self.frames.max(1) as f64
    }
}

/// Copies every frame from `e0` to `e1` until `stop`; returns frames moved.
fn forwarder(
    stop: Arc<AtomicBool>,
    ready: std::sync::mpsc::Sender<()>,
) -> thread::JoinHandle<Work> {
    thread::spawn(move || {
        enter(&ns("e"));
        pin(1);
        let mut rx = AfPacketIo::open(&AfPacketConfig::new("e0")).unwrap();
        let mut tx = AfPacketIo::open(&AfPacketConfig::new("e1")).unwrap();
        ready.send(()).unwrap();
        let mut moved = 0u64;
        let cpu = thread_cpu();
        while !stop.load(Ordering::Relaxed) {
            let counts = rx
                .run_batch(256, |frame: &mut Frame<'_>| {
                    if tx.transmit_copy(frame.data()).unwrap_or(false) {
                        moved += 1;
                    }
                    // The copy is on its way; this socket sends nothing.
                    Verdict::Drop(DropReason::TransmitRingFull)
                })
                .unwrap();
            tx.flush().unwrap();
            if counts.from_wire == 0 {
                rx.wait(Duration::from_millis(1)).unwrap();
            }
        }
        Work {
            frames: moved,
            cpu: thread_cpu().saturating_sub(cpu),
            ring_full_drops: rx.stats().unwrap().ring_full_drops,
        }
    })
}

/// One measured span of one path.
struct Measured {
    pps: f64,
    sender: Work,
    forwarder: Option<Work>,
}

/// Packets per second received on `r0` of `receiver_ns` while a sender in
/// `sender_ns` runs for `span` (and a forwarder, if `forwarded`).
fn measure(sender_ns: &str, receiver_ns: &str, forwarded: bool, span: Duration) -> Measured {
    let stop = Arc::new(AtomicBool::new(false));
    let worker = forwarded.then(|| {
        let (ready, is_ready) = std::sync::mpsc::channel();
        let handle = forwarder(Arc::clone(&stop), ready);
        is_ready.recv().unwrap();
        handle
    });
    let send = flood_sender(sender_ns.to_owned(), Some(0), Arc::clone(&stop));
    // Let the rings fill before counting.
    thread::sleep(Duration::from_millis(100));
    let before = rx_packets(receiver_ns, "r0");
    let started = Instant::now();
    thread::sleep(span);
    let after = rx_packets(receiver_ns, "r0");
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (frames, cpu) = send.join().unwrap();
    let sender = Work {
        frames,
        cpu,
        ring_full_drops: 0,
    };
    let forwarder = worker.map(|worker| worker.join().unwrap());
    Measured {
        pps: (after - before) as f64 / elapsed.as_secs_f64(),
        sender,
        forwarder,
    }
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
    println!("af_packet: 64-byte frames, {runs} x {span:?} per path, alternating");
    let (mut plain, mut emulated) = (Vec::new(), Vec::new());
    let (mut plain_cost, mut forwarder_cost) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let plain_run = measure(&ns("ps"), &ns("pr"), false, span);
        let forwarded_run = measure(&ns("s"), &ns("r"), true, span);
        let (p, f) = (plain_run.pps, forwarded_run.pps);
        let forwarder = forwarded_run
            .forwarder
            .expect("forwarded runs have a forwarder");
        println!(
            "  run {run}: plain veth {p:>9.0} pps   AF_PACKET forwarded {f:>9.0} pps   ({:.0}%)   \
             CPU per frame: plain sender {:.0} ns, forwarded sender {:.0} ns, forwarder {:.0} ns \
             ({:.2} s CPU over {span:?}, {} frames lost to a full RX ring)",
            100.0 * f / p,
            plain_run.sender.ns_per_frame(),
            forwarded_run.sender.ns_per_frame(),
            forwarder.ns_per_frame(),
            forwarder.cpu.as_secs_f64(),
            forwarder.ring_full_drops,
        );
        plain.push(p);
        emulated.push(f);
        plain_cost.push(plain_run.sender.ns_per_frame());
        forwarder_cost.push(forwarder.ns_per_frame());
    }
    let (p, f) = (median(&plain), median(&emulated));
    let share = f / p;
    println!(
        "af_packet: median plain veth {p:.0} pps, forwarded {f:.0} pps: {:.0}% of plain (goal {:.0}%): {}",
        100.0 * share,
        100.0 * GOAL_SHARE,
        if share >= GOAL_SHARE { "met" } else { "NOT met" }
    );
    // What each path would do with a CPU of its own: frames per CPU-second
    // of the thread that limits it (the sender, the forwarder).
    let (pc, fc) = (median(&plain_cost), median(&forwarder_cost));
    println!(
        "af_packet: per CPU-second: plain veth sender {:.0} frames, forwarder {:.0} frames: {:.0}% \
         (median CPU per frame {pc:.0} ns vs {fc:.0} ns)",
        1e9 / pc,
        1e9 / fc,
        100.0 * pc / fc
    );
}
