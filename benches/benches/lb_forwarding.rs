//! End-to-end forwarding rate of the live balancer next to the kernel's
//! plain IP forwarding, same generator, same topology, one run.
//!
//! ```text
//!  gen 10.230.0.1 ──┐
//!  lb  10.230.0.10 ─┼─ bridge (namespace rrlbf-sw)
//!  sink 10.230.0.20 ┘
//! ```
//! - `rusty_rail`: the generator sends GRE (outer gen -> lb, inner UDP to a VIP,
//!   1024 flows) to the balancer, which rewrites the outer header toward
//!   the sink, its one backend, and sends it back out of the same interface.
//! - kernel: the generator sends the inner UDP packets themselves to the
//!   sink through lb's MAC; lb's kernel routes them back out of the same
//!   interface (`ip_forward=1`, no redirects).
//!
//! The rate is what the sink's interface received per second while the
//! generator (pinned to CPU 0) sends as fast as it can. `rusty_rail`'s worker
//! is pinned to CPU 1; its CPU per packet comes from the scheduler's
//! accounting of the process. Then the generator is paced at 80% of
//! `rusty_rail`'s rate and the loss is counted (goal: none).
//!
//! Needs root and a built `rusty_rail` (found next to this bench's target
//! directory, else built with cargo). `cargo bench -p benches --bench
//! lb_forwarding`; without `--bench`, one short smoke run.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use benches::stats::median;
use benches::system::{delete_namespaces, enter, link_counter, pin, process_cpu, run, rx_packets};
use dataplane::io::af_packet::{AfPacketConfig, AfPacketIo};
use dataplane::io::PacketIo;
use host::capability::Need;
use synth::{ClientFlow, Transport, Tunnel};

const PREFIX: &str = "rrlbf-";
const GEN: Ipv4Addr = Ipv4Addr::new(10, 230, 0, 1);
const LB: Ipv4Addr = Ipv4Addr::new(10, 230, 0, 10);
const SINK: Ipv4Addr = Ipv4Addr::new(10, 230, 0, 20);
const VIP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
const FLOWS: u16 = 1024;
const MEASURE: Duration = Duration::from_secs(3);
const SMOKE: Duration = Duration::from_millis(300);
const RUNS: usize = 3;

fn ns(name: &str) -> String {
    format!("{PREFIX}{name}")
}

/// The lab, removed on drop (also on panic).
struct Lab;

impl Lab {
    fn start() -> Self {
        Self::remove_all();
        let lab = Self;
        for name in ["sw", "gen", "lb", "sink"] {
            run(&format!("ip netns add {}", ns(name)));
            run(&format!(
                "ip netns exec {} sysctl -qw net.ipv6.conf.all.disable_ipv6=1",
                ns(name)
            ));
        }
        let sw = ns("sw");
        run(&format!("ip -n {sw} link add br0 type bridge"));
        run(&format!("ip -n {sw} link set br0 up"));
        for (name, addr) in [("gen", GEN), ("lb", LB), ("sink", SINK)] {
            let space = ns(name);
            run(&format!(
                "ip -n {sw} link add p-{name} type veth peer name eth0 netns {space}"
            ));
            run(&format!("ip -n {sw} link set p-{name} master br0 up"));
            run(&format!("ip -n {space} addr add {addr}/24 dev eth0"));
            run(&format!("ip -n {space} link set eth0 up"));
            run(&format!("ip -n {space} link set lo up"));
        }
        let lb = ns("lb");
        for key in [
            "net.ipv4.ip_forward=1",
            "net.ipv4.conf.all.send_redirects=0",
            "net.ipv4.conf.eth0.send_redirects=0",
        ] {
            run(&format!("ip netns exec {lb} sysctl -qw {key}"));
        }
        // Neighbours resolved once, so no run waits on ARP.
        run(&format!("ip netns exec {} ping -c 1 -W 2 {LB}", ns("gen")));
        run(&format!("ip netns exec {lb} ping -c 1 -W 2 {SINK}"));
        // The sink counts what arrives (rx_packets) and answers nothing.
        let sink = ns("sink");
        run(&format!("ip netns exec {sink} nft add table inet sink"));
        run(&format!(
            "ip netns exec {sink} nft add chain inet sink pre {{ type filter hook prerouting priority -300 ; policy drop ; }}"
        ));
        lab
    }

    fn remove_all() {
        delete_namespaces(PREFIX, &["sw", "gen", "lb", "sink"]);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        Self::remove_all();
    }
}

fn mac_of(space: &str) -> [u8; 6] {
    let output = Command::new("ip")
        .args(["netns", "exec", space, "cat", "/sys/class/net/eth0/address"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    let mut mac = [0u8; 6];
    for (byte, part) in mac.iter_mut().zip(text.trim().split(':')) {
        *byte = u8::from_str_radix(part, 16).unwrap();
    }
    mac
}

/// The generator's frames: GRE toward the balancer, or plain UDP toward the
/// sink through lb's MAC.
fn frames(gre: bool) -> Vec<Vec<u8>> {
    let gen_mac = mac_of(&ns("gen"));
    let lb_mac = mac_of(&ns("lb"));
    (0..FLOWS)
        .map(|i| {
            let inner = ClientFlow {
                src: IpAddr::V4(GEN),
                dst: IpAddr::V4(if gre { VIP } else { SINK }),
                transport: Transport::Udp,
                src_port: 10_000 + i,
                dst_port: 9,
            }
            .packet(&[0x5a; 18]);
            if gre {
                Tunnel {
                    eth_src: gen_mac,
                    eth_dst: lb_mac,
                    ..Tunnel::new(GEN, LB)
                }
                .encapsulate(&inner)
            } else {
                synth::ethernet_frame(gen_mac, lb_mac, None, 0x0800, &inner)
            }
        })
        .collect()
}

/// Sends `frames` round-robin from gen's `eth0` until `stop`, at most
/// `rate` frames per second when given.
fn generator(
    frames: Vec<Vec<u8>>,
    rate: Option<f64>,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<u64> {
    thread::spawn(move || {
        enter(&ns("gen"));
        pin(0);
        let mut io = AfPacketIo::open(&AfPacketConfig::new("eth0")).unwrap();
        let started = Instant::now();
        let mut queued = 0u64;
        let mut next = 0usize;
        while !stop.load(Ordering::Relaxed) {
            let allowed = rate.map_or(u64::MAX, |r| frames_due(started.elapsed(), r));
            let mut batch = 0;
            while queued < allowed && batch < 64 && io.transmit_copy(&frames[next]).unwrap() {
                queued += 1;
                batch += 1;
                next = (next + 1) % frames.len();
            }
            io.flush().unwrap();
            if batch == 0 && rate.is_some() {
                thread::sleep(Duration::from_micros(50));
            }
        }
        queued
    })
}

/// Frames a paced generator may have queued after `elapsed` at `rate` per second.
// Rates are positive and far below 2^53: the conversion is exact enough.
#[allow(clippy::cast_sign_loss, clippy::cast_possible_truncation)]
fn frames_due(elapsed: Duration, rate: f64) -> u64 {
    (elapsed.as_secs_f64() * rate).max(0.0) as u64
}

/// The sink's received rate while the generator runs for `span`; also the
/// frames gen's interface sent and the sink received in that span.
fn measure(gre: bool, rate: Option<f64>, span: Duration) -> (f64, u64, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let sender = generator(frames(gre), rate, Arc::clone(&stop));
    thread::sleep(Duration::from_millis(100));
    let (gen, sink) = (ns("gen"), ns("sink"));
    let sent_before = link_counter(&gen, "eth0", "tx", "packets");
    let before = rx_packets(&sink, "eth0");
    let started = Instant::now();
    thread::sleep(span);
    let sent = link_counter(&gen, "eth0", "tx", "packets") - sent_before;
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    // What was in flight when counting stopped still arrives.
    thread::sleep(Duration::from_millis(200));
    let received_total = rx_packets(&sink, "eth0") - before;
    let received = received_total.min(sent);
    (
        received as f64 / elapsed.as_secs_f64(),
        sent,
        received_total,
    )
}

fn rusty_rail_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/lb_forwarding-* -> target/<profile>/rusty_rail
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("rusty_rail");
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let release = exe.to_string_lossy().contains("/release/");
        let mut build = Command::new(cargo);
        build.args(["build", "-p", "control", "--bin", "rusty_rail"]);
        if release {
            build.arg("--release");
        }
        assert!(build.status().unwrap().success(), "building rusty_rail");
    }
    path
}

// The child is handed back to be stopped; on panic the lab's teardown kills it.
#[allow(clippy::zombie_processes)]
fn start_rusty_rail() -> Child {
    let mut child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns("lb"),
            rusty_rail_binary().to_str().unwrap(),
        ])
        .env("RR_DEVICE", "eth0")
        .env("RR_TARGET_IPS", SINK.to_string())
        .env("RR_CORES", "1")
        .env("RR_API", "none")
        .env("RR_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("rusty_rail");
    // Started when its nftables table exists.
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let out = Command::new("ip")
            .args(["netns", "exec", &ns("lb"), "nft", "list", "tables"])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&out.stdout).contains("rusty_rail_eth0") {
            thread::sleep(Duration::from_millis(300));
            return child;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("rusty_rail exited: {status}");
        }
        thread::sleep(Duration::from_millis(50));
    }
    panic!("rusty_rail did not start");
}

fn stop(mut child: Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill has no memory preconditions; the pid is our child's.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    let _ = child.wait();
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
    println!("lb_forwarding: 1024 UDP flows, 60-byte inner packets, {runs} x {span:?} per path, alternating");
    let (mut kernel, mut balancer, mut cpu_ns) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        let (k, _, _) = measure(false, None, span);
        let child = start_rusty_rail();
        let cpu_before = process_cpu(child.id());
        let (r, _, received) = measure(true, None, span);
        let cpu = process_cpu(child.id()).saturating_sub(cpu_before);
        stop(child);
        let per_packet = cpu.as_nanos() as f64 / received.max(1) as f64;
        println!(
            "  run {run}: kernel forwarding {k:>9.0} pps   rusty_rail {r:>9.0} pps   ratio {:.2}   rusty_rail CPU {per_packet:.0} ns/packet",
            r / k
        );
        kernel.push(k);
        balancer.push(r);
        cpu_ns.push(per_packet);
    }
    let (k, r, c) = (median(&kernel), median(&balancer), median(&cpu_ns));
    println!(
        "lb_forwarding: median kernel {k:.0} pps, rusty_rail {r:.0} pps: ratio {:.2} (goal >= 1.00: {}), rusty_rail CPU {c:.0} ns/packet",
        r / k,
        if r >= k { "met" } else { "NOT met" }
    );
    let child = start_rusty_rail();
    let (_, sent, received) = measure(true, Some(0.8 * r), span);
    stop(child);
    let lost = sent.saturating_sub(received);
    println!(
        "lb_forwarding: at 80% of that rate ({:.0} pps): {lost} of {sent} lost ({:.3}%, goal 0: {})",
        0.8 * r,
        100.0 * lost as f64 / sent.max(1) as f64,
        if lost == 0 { "met" } else { "NOT met" }
    );
}
