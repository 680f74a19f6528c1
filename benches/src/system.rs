//! What the namespace benches share: entering a namespace, pinning a
//! thread, reading an interface's counters and a thread's CPU time.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::thread;
use std::time::Duration;

/// Runs a command line (split at spaces), panicking with its error output.
pub fn run(line: &str) {
    let mut words = line.split_whitespace();
    let program = words.next().expect("a command");
    let output = Command::new(program)
        .args(words)
        .output()
        .unwrap_or_else(|e| panic!("{line}: {e}"));
    assert!(
        output.status.success(),
        "{line}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Enters namespace `name` on the calling thread.
pub fn enter(name: &str) {
    let path = format!("/var/run/netns/{name}");
    let file = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    // SAFETY: the descriptor is a namespace file open for the call; setns only
    // changes this thread's network namespace.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
}

/// Pins the calling thread to `cpu` (modulo the CPUs there are).
pub fn pin(cpu: usize) {
    let cpus = thread::available_parallelism().map_or(1, std::num::NonZero::get);
    // SAFETY: cpu_set_t is plain data; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET writes one bit inside `set`; the index is below the
    // number of CPUs, far below the set's capacity.
    unsafe { libc::CPU_SET(cpu % cpus, &mut set) };
    // SAFETY: pid 0 is the calling thread; `set` is live and its size is passed.
    let rc = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &raw const set) };
    if rc != 0 {
        eprintln!("pinning to CPU {cpu}: {}", std::io::Error::last_os_error());
    }
}

/// One counter (`"rx"` or `"tx"`, `"packets"` or `"dropped"`...) of `dev` in
/// namespace `space`.
pub fn link_counter(space: &str, dev: &str, direction: &str, counter: &str) -> u64 {
    let output = Command::new("ip")
        .args(["-n", space, "-s", "-j", "link", "show", dev])
        .output()
        .expect("ip -s link");
    let text = String::from_utf8_lossy(&output.stdout);
    let after = text
        .split(&format!("\"{direction}\":"))
        .nth(1)
        .and_then(|rx| rx.split(&format!("\"{counter}\":")).nth(1))
        .unwrap_or_else(|| panic!("no {direction} {counter} for {dev} in {space}: {text}"));
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().expect("a counter")
}

/// `rx_packets` of `dev` in namespace `space`.
pub fn rx_packets(space: &str, dev: &str) -> u64 {
    link_counter(space, dev, "rx", "packets")
}

/// CPU time of the calling thread (user and kernel, softirqs it ran included).
pub fn thread_cpu() -> Duration {
    let mut spec = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a live timespec for the kernel to fill.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &raw mut spec) };
    assert_eq!(rc, 0);
    Duration::new(
        u64::try_from(spec.tv_sec).unwrap_or(0),
        u32::try_from(spec.tv_nsec).unwrap_or(0),
    )
}

/// CPU time every thread of process `pid` has used, from the scheduler's
/// nanosecond accounting (`/proc/PID/task/*/schedstat`).
pub fn process_cpu(pid: u32) -> Duration {
    let mut total = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        total += stat
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Duration::from_nanos(total)
}

/// Deletes namespaces `{prefix}{name}` for each name, ignoring ones that
/// are not there (a bench's teardown, also after a crashed run).
pub fn delete_namespaces(prefix: &str, names: &[&str]) {
    for name in names {
        let _ = Command::new("ip")
            .args(["netns", "del", &format!("{prefix}{name}")])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// A 64-byte frame no stack takes (local experimental `EtherType`, a
/// destination MAC no interface has, so bridges flood it).
pub fn ignored_frame() -> Vec<u8> {
    let mut frame = vec![0x02, 0, 0, 0, 0, 0xbb, 0x02, 0, 0, 0, 0, 0xaa, 0x88, 0xb5];
    frame.resize(64, 0x5a);
    frame
}

/// Fills `s0`'s TX ring in namespace `space` with [`ignored_frame`]s as fast
/// as it can until `stop` (pinned to `cpu` when given); returns the frames
/// queued and the thread's CPU time.
pub fn flood_sender(
    space: String,
    cpu: Option<usize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> thread::JoinHandle<(u64, Duration)> {
    use dataplane::io::af_packet::{AfPacketConfig, AfPacketIo};
    use dataplane::io::PacketIo;
    thread::spawn(move || {
        enter(&space);
        if let Some(cpu) = cpu {
            pin(cpu);
        }
        let mut io = AfPacketIo::open(&AfPacketConfig::new("s0")).expect("a packet socket on s0");
        let frame = ignored_frame();
        let started = thread_cpu();
        let mut sent = 0u64;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            while io.transmit_copy(&frame).expect("queueing a frame") {
                sent += 1;
            }
            io.flush().expect("sending the queued frames");
        }
        (sent, thread_cpu().saturating_sub(started))
    })
}

/// The machine's load averages over 1, 5 and 15 minutes, as `/proc/loadavg`
/// gives them (`"?"` where it cannot be read): printed with every figure,
/// since other work on the machine moves them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "?".into(),
        |text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        },
    )
}

/// Time one CPU has spent since boot, in the kernel's ticks (`/proc/stat`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CpuTicks {
    /// Everything but idle and I/O wait (user, nice, system, irq, softirq, steal).
    pub busy: u64,
    /// Of which softirq: network receive and transmit done for whoever
    /// sent, not charged to a process.
    pub softirq: u64,
    /// Everything.
    pub total: u64,
}

impl CpuTicks {
    /// Busy and softirq shares of `self - before` (0 to 1).
    pub fn shares_since(self, before: Self) -> (f64, f64) {
        let total = self.total.saturating_sub(before.total).max(1) as f64;
        (
            self.busy.saturating_sub(before.busy) as f64 / total,
            self.softirq.saturating_sub(before.softirq) as f64 / total,
        )
    }
}

/// Every CPU's ticks, CPU 0 first (empty where `/proc/stat` is unreadable).
pub fn cpu_ticks() -> Vec<CpuTicks> {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    text.lines()
        .filter(|line| line.starts_with("cpu") && !line.starts_with("cpu "))
        .map(|line| {
            let fields: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .map(|n| n.parse().unwrap_or(0))
                .collect();
            let field = |i: usize| fields.get(i).copied().unwrap_or(0);
            // user nice system idle iowait irq softirq steal (guests are in user).
            let total: u64 = (0..8).map(field).sum();
            CpuTicks {
                busy: total - field(3) - field(4),
                softirq: field(6),
                total,
            }
        })
        .collect()
}
