//! End-to-end forwarding rate of the live balancer on each of its packet
//! I/O backends, next to the kernel's own IP forwarding and to what the link
//! carries with nothing in the middle: one lab, one generator, one run.
//!
//! ```text
//!  gen 10.230.0.1 ──┐
//!  lb  10.230.0.10 ─┼─ bridge (namespace rrlbf-sw)
//!  sink 10.230.0.20 ┘
//! ```
//!
//! Every path carries the same GRE frames (1024 inner UDP flows); the
//! sizes are the client's frames inside them (64 and 1400 bytes), so the
//! frames on the wire are 24 bytes longer (outer IPv4 and GRE):
//!
//! - `link`: the generator sends them straight to the sink's MAC (outer
//!   destination the sink): the ceiling, and the generator's own rate, so a
//!   path that reaches it is limited by the generator, not by itself;
//! - `kernel`: to lb's MAC with the outer destination the sink: lb's kernel
//!   routes them back out of the same interface (`ip_forward=1`, no
//!   redirects), a route lookup and a TTL decrement, as the balancer's
//!   rewrite is;
//! - `rusty_rail <io>` (`af_xdp`, `af_packet`, `netmap-emulated`): to lb's
//!   address; the balancer rewrites the outer header toward the sink, its
//!   one backend, and sends it back out of the same interface.
//!
//! The rate is what the sink's interface received per second while the
//! generator (an `AF_PACKET` TX ring, pinned to CPU 0) sends as fast as it
//! can; the balancer's worker is pinned to CPU 1, and its CPU time per
//! forwarded packet comes from the scheduler's accounting of the whole
//! process (`/proc/PID/task/*/schedstat`): its own code and the kernel work
//! done in its threads, not what the kernel does for it in softirq on the
//! other CPU (with `AF_XDP` on veth, the copy into the UMEM runs in the
//! receiving NAPI on the sender's CPU). Then the generator is paced at 80%
//! of the `AF_XDP` balancer's rate and the loss is counted.
//!
//! Each path's line also gives both CPUs' busy and softirq shares over the
//! span (the whole machine's: other work on it shows there too), which say
//! where the time went that the balancer's own accounting does not hold;
//! with `RR_BENCH_PERF_DIR=<dir>` each span is also profiled system-wide
//! (`perf record -a -g -e cpu-clock`) into `<dir>/<path>-<size>-run<n>.data`.
//!
//! Goals (issue 15), printed as ratios from this run: `AF_XDP` at least 2.5
//! times `AF_PACKET` and 3 times the kernel's forwarding, at most a quarter of
//! `AF_PACKET`'s CPU per packet, no loss at 80% of its own rate.
//!
//! Needs root and namespaces; the `AF_XDP` rows need XDP sockets (else
//! `skipped: ...` for them, the rest still measured); the `netmap-emulated`
//! rows need a `rusty_rail` that has it. `cargo bench -p benches --bench
//! lb_forwarding` (about 2 minutes here); without `--bench` (as under
//! `cargo test --benches`) one short smoke run of every path.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use benches::rusty_rail::{self, RustyRail};
use benches::stats::median;
use benches::system::{
    cpu_ticks, delete_namespaces, enter, link_counter, load_average, pin, run, rx_packets,
};
use dataplane::io::af_packet::{AfPacketConfig, AfPacketIo};
use dataplane::io::af_xdp::program::Steering;
use dataplane::io::af_xdp::{AfXdpConfig, AfXdpIo, XdpAttachment};
use dataplane::io::PacketIo;
use host::capability::{machine_lacks, Need};
use synth::{ClientFlow, Transport, Tunnel};

const PREFIX: &str = "rrlbf-";
const GEN: Ipv4Addr = Ipv4Addr::new(10, 230, 0, 1);
const LB: Ipv4Addr = Ipv4Addr::new(10, 230, 0, 10);
const SINK: Ipv4Addr = Ipv4Addr::new(10, 230, 0, 20);
const VIP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
const FLOWS: u16 = 1024;
/// The client's frame sizes (Ethernet header to the end of the UDP payload).
const SIZES: [usize; 2] = [64, 1400];
/// Ethernet + IPv4 + UDP headers of the client's frame.
const CLIENT_HEADERS: usize = 14 + 20 + 8;
/// What GRE adds on the wire: the outer IPv4 header and the GRE header.
const GRE_OVERHEAD: usize = 20 + 4;
const MEASURE: Duration = Duration::from_secs(2);
const SMOKE: Duration = Duration::from_millis(200);
const RUNS: usize = 3;
/// The generator runs this long before counting starts (rings fill, flows
/// enter the connection table).
const WARM_UP: Duration = Duration::from_millis(100);
/// What is in flight when the generator stops still arrives within this.
const SETTLE: Duration = Duration::from_millis(200);
const PACED_SHARE: f64 = 0.8;

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
        // The bridge stands for a switch: no netfilter on bridged frames
        // (br_netfilter, where loaded, turns it on in every new namespace
        // and costs each path's frames a pass through the IP hooks).
        for key in ["iptables", "ip6tables", "arptables"] {
            let _ = std::process::Command::new("ip")
                .args(["netns", "exec", &sw, "sysctl", "-qw"])
                .arg(format!("net.bridge.bridge-nf-call-{key}=0"))
                .stderr(std::process::Stdio::null())
                .status();
        }
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
    let path = "/sys/class/net/eth0/address";
    let output = std::process::Command::new("ip")
        .args(["netns", "exec", space, "cat", path])
        .output()
        .unwrap_or_else(|e| panic!("{space}: cat {path}: {e}"));
    let text = String::from_utf8_lossy(&output.stdout);
    let mut mac = [0u8; 6];
    for (byte, part) in mac.iter_mut().zip(text.trim().split(':')) {
        *byte = u8::from_str_radix(part, 16).unwrap_or_else(|e| panic!("{space}: {text}: {e}"));
    }
    mac
}

/// Where the generator's frames go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// Straight to the sink.
    Link,
    /// Through lb's kernel (IP forwarding).
    Kernel,
    /// Through `rusty_rail` with this `RR_IO`.
    RustyRail(Io),
}

/// The balancer's packet I/O backends measured, in the order run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Io {
    AfXdp,
    AfPacket,
    NetmapEmulated,
}

impl Io {
    const ALL: [Io; 3] = [Io::AfXdp, Io::AfPacket, Io::NetmapEmulated];

    /// Its `RR_IO` value.
    fn setting(self) -> &'static str {
        match self {
            Io::AfXdp => "af_xdp",
            Io::AfPacket => "af_packet",
            Io::NetmapEmulated => "netmap-emulated",
        }
    }
}

impl Path {
    /// Its name in file names.
    fn file_name(self) -> String {
        match self {
            Path::Link => "link".into(),
            Path::Kernel => "kernel".into(),
            Path::RustyRail(io) => io.setting().replace('-', "_"),
        }
    }

    fn label(self) -> String {
        match self {
            Path::Link => "link (gen -> sink)".into(),
            Path::Kernel => "kernel forwarding".into(),
            Path::RustyRail(io) => format!("rusty_rail {}", io.setting()),
        }
    }
}

/// The generator's frames for `path`: GRE around client frames of `size`
/// bytes, 1024 flows.
fn frames(path: Path, size: usize, macs: &Macs) -> Vec<Vec<u8>> {
    let (eth_dst, outer_dst) = match path {
        Path::Link => (macs.sink, SINK),
        Path::Kernel => (macs.lb, SINK),
        Path::RustyRail(_) => (macs.lb, LB),
    };
    let payload = vec![0x5a; size - CLIENT_HEADERS];
    (0..FLOWS)
        .map(|i| {
            let inner = ClientFlow {
                src: IpAddr::V4(GEN),
                dst: IpAddr::V4(VIP),
                transport: Transport::Udp,
                src_port: 10_000 + i,
                dst_port: 9,
            }
            .packet(&payload);
            Tunnel {
                eth_src: macs.gen,
                eth_dst,
                ..Tunnel::new(GEN, outer_dst)
            }
            .encapsulate(&inner)
        })
        .collect()
}

struct Macs {
    gen: [u8; 6],
    lb: [u8; 6],
    sink: [u8; 6],
}

/// Sends `frames` round-robin from gen's `eth0` until `stop`, at most
/// `rate` frames per second when given.
fn generator(
    frames: Vec<Vec<u8>>,
    rate: Option<f64>,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        enter(&ns("gen"));
        pin(0);
        let mut io =
            AfPacketIo::open(&AfPacketConfig::new("eth0")).expect("the generator's socket");
        let started = Instant::now();
        let mut queued = 0u64;
        let mut next = 0usize;
        while !stop.load(Ordering::Relaxed) {
            let allowed = rate.map_or(u64::MAX, |r| frames_due(started.elapsed(), r));
            let mut batch = 0;
            while queued < allowed
                && batch < 64
                && io.transmit_copy(&frames[next]).expect("queueing a frame")
            {
                queued += 1;
                batch += 1;
                next = (next + 1) % frames.len();
            }
            io.flush().expect("sending the queued frames");
            if batch == 0 && rate.is_some() {
                thread::sleep(Duration::from_micros(50));
            }
        }
    })
}

/// Frames a paced generator may have queued after `elapsed` at `rate` per second.
// Rates are positive and far below 2^53: the conversion is exact enough.
#[allow(clippy::cast_sign_loss, clippy::cast_possible_truncation)]
fn frames_due(elapsed: Duration, rate: f64) -> u64 {
    (elapsed.as_secs_f64() * rate).max(0.0) as u64
}

/// One measured span of one path.
#[derive(Debug, Clone, Copy)]
struct Measured {
    /// Frames the sink received per second while counting.
    pps: f64,
    /// The balancer's CPU time per frame the sink received while counting.
    cpu_ns: Option<f64>,
    /// Frames gen's interface sent from the generator's start to its stop.
    sent: u64,
    /// Frames the sink received from the generator's start until
    /// [`SETTLE`] after its stop.
    received: u64,
    /// Each CPU's busy and softirq shares while counting (the whole
    /// machine's, other work included).
    cpus: [(f64, f64); 2],
}

/// Runs the generator on `frames` (paced at `rate` when given) and counts
/// what the sink receives over `span`, with `balancer`'s CPU time; `name`
/// names the profile when [`PERF_DIR`] asks for one.
fn measure(
    name: &str,
    frames: Vec<Vec<u8>>,
    rate: Option<f64>,
    span: Duration,
    balancer: Option<&RustyRail>,
) -> Measured {
    let (gen, sink) = (ns("gen"), ns("sink"));
    let sent_before = link_counter(&gen, "eth0", "tx", "packets");
    let received_before = rx_packets(&sink, "eth0");
    let stop = Arc::new(AtomicBool::new(false));
    let sender = generator(frames, rate, Arc::clone(&stop));
    thread::sleep(WARM_UP);
    let counted_before = rx_packets(&sink, "eth0");
    let profile = Profile::start(name);
    let cpu_before = balancer.map(RustyRail::cpu);
    let ticks_before = cpu_ticks();
    let started = Instant::now();
    thread::sleep(span);
    let counted = rx_packets(&sink, "eth0") - counted_before;
    let cpu = balancer.map(RustyRail::cpu);
    let ticks = cpu_ticks();
    let elapsed = started.elapsed();
    drop(profile);
    let mut cpus = [(0.0, 0.0); 2];
    for (share, (after, before)) in cpus.iter_mut().zip(ticks.iter().zip(&ticks_before)) {
        *share = after.shares_since(*before);
    }
    stop.store(true, Ordering::Relaxed);
    sender.join().expect("the generator");
    thread::sleep(SETTLE);
    let cpu_ns = cpu.zip(cpu_before).map(|(after, before)| {
        after.saturating_sub(before).as_nanos() as f64 / counted.max(1) as f64
    });
    Measured {
        pps: counted as f64 / elapsed.as_secs_f64(),
        cpu_ns,
        sent: link_counter(&gen, "eth0", "tx", "packets") - sent_before,
        received: rx_packets(&sink, "eth0") - received_before,
        cpus,
    }
}

/// Names a directory: each measured span is profiled into it with
/// `perf record -a -g -e cpu-clock` (`<path>-<size>-run<n>.data`), to see
/// where every CPU's time goes (`perf report --sort cpu,comm,sym`).
const PERF_DIR: &str = "RR_BENCH_PERF_DIR";

/// A system-wide `perf record` for one span, stopped (SIGINT) on drop.
struct Profile(Option<std::process::Child>);

impl Profile {
    fn start(name: &str) -> Self {
        let Some(dir) = std::env::var_os(PERF_DIR) else {
            return Self(None);
        };
        let file = std::path::Path::new(&dir).join(format!("{name}.data"));
        let child = std::process::Command::new("perf")
            .args(["record", "-q", "-a", "-g", "-e", "cpu-clock", "-o"])
            .arg(&file)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| eprintln!("perf record into {}: {e}", file.display()))
            .ok();
        // perf needs a moment to set up its buffers before the span counts.
        thread::sleep(Duration::from_millis(300));
        Self(child)
    }
}

impl Drop for Profile {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            if let Ok(pid) = i32::try_from(child.id()) {
                // SAFETY: kill has no memory preconditions; the pid is our
                // child's, not yet reaped.
                unsafe { libc::kill(pid, libc::SIGINT) };
            }
            let _ = child.wait();
        }
    }
}

/// Why `AF_XDP` cannot run on lb's interface here, if it cannot: the same
/// program load, attach and socket the balancer would make.
fn af_xdp_unavailable() -> Option<String> {
    thread::spawn(|| {
        enter(&ns("lb"));
        let steering = Steering {
            lb_ipv4: LB.octets(),
            lb_ipv6: None,
            vips_v4: Vec::new(),
            vips_v6: Vec::new(),
        };
        let attachment = XdpAttachment::attach("eth0", &steering, 1, None).err_text()?;
        let config = AfXdpConfig {
            host_path: false,
            ..AfXdpConfig::default()
        };
        AfXdpIo::open(&attachment, &config).err_text().map(drop)
    })
    .join()
    .expect("the AF_XDP probe")
    .err()
}

trait ErrText<T> {
    fn err_text(self) -> Result<T, String>;
}

impl<T, E: std::fmt::Display> ErrText<T> for Result<T, E> {
    fn err_text(self) -> Result<T, String> {
        self.map_err(|e| e.to_string())
    }
}

/// Starts the balancer on `io`; `None` (said why) for a backend this
/// build or machine does not have.
fn start_balancer(io: Io, binary: &std::path::Path) -> Option<RustyRail> {
    let env = [
        ("RR_IO", io.setting().to_owned()),
        ("RR_DEVICE", "eth0".to_owned()),
        ("RR_TARGET_IPS", SINK.to_string()),
        ("RR_CORES", "1".to_owned()),
        ("RR_API", "none".to_owned()),
    ];
    match RustyRail::start(binary, &ns("lb"), &env) {
        Ok(balancer) => Some(balancer),
        Err(log) if io == Io::NetmapEmulated => {
            println!(
                "  rusty_rail {}: did not start, its rows are left out (a rusty_rail without it? \
                 rebuild: cargo build --release -p control): {}",
                io.setting(),
                log.lines().last().unwrap_or_default()
            );
            None
        }
        Err(log) => panic!("rusty_rail with RR_IO={}: {log}", io.setting()),
    }
}

/// Every measurement of a run, by path and size.
#[derive(Default)]
struct Results(Vec<(Path, usize, Measured)>);

impl Results {
    fn of(&self, path: Path, size: usize) -> Vec<Measured> {
        self.0
            .iter()
            .filter(|(p, s, _)| *p == path && *s == size)
            .map(|(_, _, m)| *m)
            .collect()
    }

    /// Median busy and softirq shares of each CPU.
    fn cpu_shares(&self, path: Path, size: usize) -> [(f64, f64); 2] {
        let runs = self.of(path, size);
        let mut shares = [(0.0, 0.0); 2];
        for (cpu, share) in shares.iter_mut().enumerate() {
            let busy: Vec<f64> = runs.iter().map(|m| m.cpus[cpu].0).collect();
            let softirq: Vec<f64> = runs.iter().map(|m| m.cpus[cpu].1).collect();
            *share = (median(&busy), median(&softirq));
        }
        shares
    }

    /// Median pps and median CPU ns per packet, when measured.
    fn median(&self, path: Path, size: usize) -> Option<(f64, Option<f64>)> {
        let runs = self.of(path, size);
        if runs.is_empty() {
            return None;
        }
        let pps: Vec<f64> = runs.iter().map(|m| m.pps).collect();
        let cpu: Vec<f64> = runs.iter().filter_map(|m| m.cpu_ns).collect();
        Some((median(&pps), (!cpu.is_empty()).then(|| median(&cpu))))
    }
}

fn goal(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "NOT met"
    }
}

/// The medians per path and the issue's ratios, for frames of `size`.
fn summarise(results: &Results, size: usize, paths: &[Path]) {
    println!(
        "lb_forwarding: {size}-byte client frames ({} on the wire), medians:",
        size + GRE_OVERHEAD
    );
    let link = results.median(Path::Link, size).map(|(pps, _)| pps);
    for &path in paths {
        let Some((pps, cpu)) = results.median(path, size) else {
            continue;
        };
        let mut line = format!("  {:<28}{pps:>10.0} pps", path.label());
        if let Some(link) = link {
            let _ = write!(line, "  {:>4.0}% of the link", 100.0 * pps / link);
        }
        if let Some(cpu) = cpu {
            let _ = write!(line, "  balancer CPU {cpu:>6.0} ns/packet");
        }
        for (n, (busy, softirq)) in results.cpu_shares(path, size).into_iter().enumerate() {
            let _ = write!(
                line,
                "  cpu{n} {:>3.0}% busy ({:>3.0}% softirq)",
                100.0 * busy,
                100.0 * softirq
            );
        }
        println!("{line}");
    }
    let xdp = results.median(Path::RustyRail(Io::AfXdp), size);
    let packet = results.median(Path::RustyRail(Io::AfPacket), size);
    let kernel = results.median(Path::Kernel, size);
    if let (Some((x, xc)), Some((p, pc))) = (xdp, packet) {
        println!(
            "  AF_XDP / AF_PACKET: {:.2}x the packets per second (goal >= 2.5: {})",
            x / p,
            goal(x / p >= 2.5)
        );
        if let (Some(xc), Some(pc)) = (xc, pc) {
            println!(
                "  AF_XDP / AF_PACKET: {:.2} of the CPU per packet (goal <= 0.25: {})",
                xc / pc,
                goal(xc / pc <= 0.25)
            );
        }
    }
    if let (Some((x, _)), Some((k, _))) = (xdp, kernel) {
        println!(
            "  AF_XDP / kernel forwarding: {:.2}x (goal >= 3: {})",
            x / k,
            goal(x / k >= 3.0)
        );
    }
    if let (Some((n, _)), Some((p, _))) = (
        results.median(Path::RustyRail(Io::NetmapEmulated), size),
        packet,
    ) {
        println!("  netmap-emulated / AF_PACKET: {:.2}x", n / p);
    }
    if let (Some((x, _)), Some(link)) = (xdp, link) {
        if x >= 0.9 * link {
            println!(
                "  the generator limits AF_XDP here (it reaches {:.0}% of what the generator \
                 sends straight to the sink): its ratios are lower bounds",
                100.0 * x / link
            );
        }
    }
}

fn main() {
    host::skip_unless!(Need::Root, Need::Netns, Need::Tool("nft"));
    let measuring = std::env::args().any(|arg| arg == "--bench");
    let (span, runs) = if measuring {
        (MEASURE, RUNS)
    } else {
        (SMOKE, 1)
    };
    let binary = rusty_rail::binary();
    let _lab = Lab::start();
    let macs = Macs {
        gen: mac_of(&ns("gen")),
        lb: mac_of(&ns("lb")),
        sink: mac_of(&ns("sink")),
    };
    let xdp_missing = af_xdp_unavailable();
    if let Some(reason) = &xdp_missing {
        let _ = machine_lacks(format!(
            "the AF_XDP rows: XDP sockets unavailable here ({reason})"
        ));
    }
    let ios: Vec<Io> = Io::ALL
        .into_iter()
        .filter(|io| *io != Io::AfXdp || xdp_missing.is_none())
        .collect();
    println!(
        "lb_forwarding: {FLOWS} UDP flows in GRE, client frames of {SIZES:?} bytes, \
         {runs} x {span:?} per path and size, paths alternating; load average {}",
        load_average()
    );
    let mut paths = vec![Path::Link, Path::Kernel];
    let mut results = Results::default();
    for run in 0..runs {
        for size in SIZES {
            for path in [Path::Link, Path::Kernel] {
                let name = format!("{}-{size}-run{run}", path.file_name());
                let m = measure(&name, frames(path, size, &macs), None, span, None);
                results.0.push((path, size, m));
            }
        }
        for &io in &ios {
            let Some(balancer) = start_balancer(io, &binary) else {
                continue;
            };
            if run == 0 {
                println!("  rusty_rail {}: {}", io.setting(), balancer.io_line());
                paths.push(Path::RustyRail(io));
            }
            let path = Path::RustyRail(io);
            for size in SIZES {
                let name = format!("{}-{size}-run{run}", path.file_name());
                let m = measure(
                    &name,
                    frames(path, size, &macs),
                    None,
                    span,
                    Some(&balancer),
                );
                results.0.push((path, size, m));
            }
        }
        let mut line = format!("  run {run}:");
        for size in SIZES {
            for &path in &paths {
                if let Some(m) = results.of(path, size).last() {
                    let _ = write!(line, " {}/{size} {:.0}k", path.label(), m.pps / 1e3);
                }
            }
        }
        println!("{line}");
    }
    for size in SIZES {
        summarise(&results, size, &paths);
    }
    // Loss at 80% of the fastest backend's own rate (AF_XDP's where it runs).
    let paced_io = if ios.contains(&Io::AfXdp) {
        Io::AfXdp
    } else {
        Io::AfPacket
    };
    if let Some(balancer) = start_balancer(paced_io, &binary) {
        let received_before = rx_packets(&ns("lb"), "eth0");
        let path = Path::RustyRail(paced_io);
        for size in SIZES {
            let Some((max, _)) = results.median(path, size) else {
                continue;
            };
            let rate = PACED_SHARE * max;
            let name = format!("{}-{size}-paced", path.file_name());
            let m = measure(
                &name,
                frames(path, size, &macs),
                Some(rate),
                span,
                Some(&balancer),
            );
            let lost = m.sent.saturating_sub(m.received);
            println!(
                "lb_forwarding: {} at {:.0}% of its rate ({rate:.0} pps), {size}-byte client frames: \
                 {lost} of {} lost between gen and the sink ({:.3}%; goal none: {})",
                path.label(),
                100.0 * PACED_SHARE,
                m.sent,
                100.0 * lost as f64 / m.sent.max(1) as f64,
                goal(lost == 0)
            );
        }
        // What the balancer itself saw over both paced spans: its worker's
        // verdicts, against what lb's interface received (a difference is
        // lost before the worker, in the kernel's receive ring).
        let received = rx_packets(&ns("lb"), "eth0") - received_before;
        let log = balancer.stop();
        let verdicts: Vec<&str> = log
            .lines()
            .filter(|line| {
                ["to_wire", "dropped", "  "]
                    .iter()
                    .any(|p| line.starts_with(p))
            })
            .collect();
        println!(
            "lb_forwarding: the paced spans: lb's eth0 received {received} frames; the worker's \
             counters at its stop: {}",
            verdicts.join(" | ")
        );
    }
    println!("lb_forwarding: load average at the end {}", load_average());
}
