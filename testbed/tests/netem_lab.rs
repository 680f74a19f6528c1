//! `testbed run --netem` end to end (root only; prints `skipped: <reason>`
//! otherwise): the userspace link emulator between each instance and the
//! bridge, impairing what each instance sends unless `--netem-direction`
//! says otherwise, as netem inside the instance would. Each test owns the
//! prefix `rrneN-` and the subnet `10.206.N.0/24`; a guard runs `testbed
//! cleanup` before and after, also on failure.

use std::process::{Command, Output};

use host::capability::{self, Need};
use testbed::lab::prefixed::entries_named;

const TESTBED: &str = env!("CARGO_BIN_EXE_testbed");

/// Removes the lab of a test when dropped.
struct LabGuard {
    prefix: String,
    cidr: String,
}

impl LabGuard {
    fn new(n: u8) -> Option<Self> {
        host::skip_unless!(Need::Root, Need::Netns, Need::Tool("ping"));
        let guard = Self {
            prefix: format!("rrne{n}-"),
            cidr: format!("10.206.{n}.0/24"),
        };
        guard.cleanup();
        Some(guard)
    }

    fn cleanup(&self) {
        let _ = Command::new(TESTBED)
            .args(["cleanup", "--prefix", &self.prefix])
            .output();
    }

    fn bridge_address(&self) -> String {
        self.cidr.replace(".0/24", ".1")
    }

    /// The address of instance `index` (the bridge takes `.1`).
    fn instance_address(&self, index: u8) -> String {
        self.cidr.replace(".0/24", &format!(".{}", index + 2))
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(TESTBED)
            .args(["run", "--prefix", &self.prefix, "--cidr", &self.cidr])
            .args(args)
            .output()
            .unwrap()
    }

    /// Nothing of the lab is left: no namespace, no link, no state file.
    fn assert_gone(&self) {
        let named = |dir: &str| entries_named(dir, &self.prefix);
        assert_eq!(named("/run/netns"), Vec::<String>::new());
        assert_eq!(named("/sys/class/net"), Vec::<String>::new());
        assert_eq!(named("/run/testbed"), Vec::<String>::new());
    }
}

impl Drop for LabGuard {
    fn drop(&mut self) {
        self.cleanup();
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The number before `word` in ping's summary (`300 packets transmitted,
/// 190 received`).
fn count_before(summary: &str, word: &str) -> u32 {
    let words: Vec<&str> = summary.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| w.trim_end_matches(',') == word)
        .unwrap_or_else(|| panic!("no {word:?} in {summary}"));
    words[at - 1].parse().unwrap()
}

/// min/avg/max of each `rtt min/avg/max/mdev = 20.4/24.1/38.9/7.2 ms` line
/// in `all`, with the instance tag before it (`[1] `, or empty).
fn rtts(all: &str) -> Vec<(String, [f64; 3])> {
    all.lines()
        .filter_map(|line| {
            let (tag, values) = line.split_once("rtt min/avg/max/mdev = ")?;
            let values: Vec<f64> = values
                .split('/')
                .take(3)
                .map(|v| v.parse().unwrap())
                .collect();
            Some((tag.trim().to_owned(), [values[0], values[1], values[2]]))
        })
        .collect()
}

#[test]
fn a_delay_applies_to_what_the_instance_sends_or_both_ways_when_asked() {
    let Some(lab) = LabGuard::new(1) else {
        return;
    };
    let ping = format!("ping -c 10 -i 0.05 -q {}", lab.bridge_address());
    let output = lab.run(&["--netem", "delay 50ms", "-c", &ping]);
    let all = text(&output);
    assert!(output.status.success(), "{all}");
    let [min, avg, _] = rtts(&all)
        .first()
        .unwrap_or_else(|| panic!("no rtt: {all}"))
        .1;
    // The request is delayed leaving the instance, the bridge's reply not.
    assert!(
        (50.0..95.0).contains(&min),
        "50 ms one way, min rtt {min} ms: {all}"
    );
    assert!(avg < 1000.0, "avg rtt {avg} ms: {all}");
    assert!(all.contains("netem [0]: from the instance: "), "{all}");
    lab.assert_gone();

    let output = lab.run(&[
        "--netem",
        "delay 50ms",
        "--netem-direction",
        "both",
        "-c",
        &ping,
    ]);
    let all = text(&output);
    assert!(output.status.success(), "{all}");
    let min = rtts(&all)
        .first()
        .unwrap_or_else(|| panic!("no rtt: {all}"))
        .1[0];
    assert!(min >= 100.0, "50 ms each way, min rtt {min} ms: {all}");
    lab.assert_gone();
}

#[test]
fn two_instances_with_delay_10ms_ping_each_other_in_20ms_as_with_netem() {
    let Some(lab) = LabGuard::new(7) else {
        return;
    };
    // The issue's command: each instance pings the other, both impaired.
    let ping = |to: u8| format!("ping -c 5 -i 0.2 -q {}", lab.instance_address(to));
    let output = lab.run(&["-c", &ping(1), "-c", &ping(0), "--netem", "delay 10ms"]);
    let all = text(&output);
    assert!(output.status.success(), "{all}");
    let rtts = rtts(&all);
    assert_eq!(rtts.len(), 2, "{all}");
    for (tag, [min, _, max]) in rtts {
        // 10 ms leaving each instance: 20 ms, not the 40 of a spec applied
        // on both ends of both links. The first echo also waits for ARP.
        assert!((19.5..35.0).contains(&min), "{tag} min rtt {min} ms: {all}");
        assert!(max < 1000.0, "{tag} max rtt {max} ms: {all}");
    }
    lab.assert_gone();
}

/// Sends 5,000 numbered UDP datagrams to argv[1]:7008, 2,500 a second,
/// after a second in which the receiver binds its port (a datagram before
/// would meet a closed port and count as lost).
const UDP_SENDER: &str = r#"
import socket, sys, time
destination = (sys.argv[1], 7008)
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
time.sleep(1)
start = time.monotonic()
for n in range(5000):
    udp.sendto(n.to_bytes(4, "big"), destination)
    wait = start + (n + 1) * 0.0004 - time.monotonic()
    if wait > 0:
        time.sleep(wait)
print("sent 5000")
"#;

/// Counts the distinct datagrams arriving on port 7008 until 2 s pass
/// without one. A 16 MiB receive buffer (`SO_RCVBUFFORCE`, as root) holds
/// the whole stream, so a receiver descheduled on a busy machine loses none.
const UDP_RECEIVER: &str = r#"
import socket
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
SO_RCVBUFFORCE = 33
udp.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20)
udp.bind(("0.0.0.0", 7008))
udp.settimeout(30)
seen = set()
try:
    while True:
        data, _ = udp.recvfrom(64)
        seen.add(data)
        udp.settimeout(2)
except socket.timeout:
    pass
print(f"received {len(seen)} of 5000")
"#;

#[test]
fn loss_random_10_percent_drops_a_tenth_of_a_one_way_udp_stream() {
    let Some(lab) = LabGuard::new(8) else {
        return;
    };
    host::skip_unless!(Need::Tool("python3"));
    let scratch = std::env::temp_dir().join(format!("rrne8-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let (sender, receiver) = (scratch.join("send.py"), scratch.join("receive.py"));
    std::fs::write(&sender, UDP_SENDER).unwrap();
    std::fs::write(&receiver, UDP_RECEIVER).unwrap();
    let peer = lab.instance_address(1);
    // Instance 0 resolves its peer's address with pings first (lossy too),
    // so that no datagram waits on ARP, then streams to instance 1.
    let send = format!(
        "for i in $(seq 20); do ping -c 1 -W 1 -q {peer} >/dev/null && break; done; \
         python3 {} {peer}",
        sender.display()
    );
    let receive = format!("python3 {}", receiver.display());
    let output = lab.run(&[
        "-c",
        &send,
        "-c",
        &receive,
        "--netem",
        "loss random 10%",
        "--seed",
        "3",
    ]);
    let _ = std::fs::remove_dir_all(&scratch);
    let all = text(&output);
    assert!(output.status.success(), "{all}");
    let received: u32 = all
        .lines()
        .find_map(|line| line.strip_prefix("[1] received "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no count from the receiver: {all}"))
        .parse()
        .unwrap();
    // Lost only leaving instance 0: binomial(5000, 0.1), mean 500, standard
    // deviation 21.2; 99.9% within 3.29 of them: 431..=569 lost. A spec on
    // both ends of both links would lose 19% (950).
    let lost = 5000 - received;
    assert!((431..=569).contains(&lost), "{lost} of 5000 lost: {all}");
    lab.assert_gone();
}

#[test]
fn random_loss_drops_a_binomial_share_of_pings() {
    let Some(lab) = LabGuard::new(2) else {
        return;
    };
    // Resolved first: a lost ARP request would hold the pings back a
    // second, and the kernel keeps only so many waiting.
    let bridge = lab.bridge_address();
    let ping = format!(
        "for i in $(seq 20); do ping -c 1 -W 1 -q {bridge} >/dev/null && break; done; \
         ping -c 300 -i 0.005 -W 1 -q {bridge}"
    );
    let output = lab.run(&["--netem", "loss random 20%", "--seed", "7", "-c", &ping]);
    let all = text(&output);
    let summary = all
        .lines()
        .find(|line| line.contains("packets transmitted"))
        .unwrap_or_else(|| panic!("no ping summary: {all}"));
    assert_eq!(count_before(summary, "packets"), 300, "{summary}");
    // Only the requests leave the instance, so an echo comes back with
    // p = 0.8. 99.9% of binomial(300, 0.8) lies within 3.29 standard
    // deviations (6.93) of 240: 218..=262.
    let received = count_before(summary, "received");
    assert!((218..=262).contains(&received), "{received} of 300: {all}");
    lab.assert_gone();
}

/// The ICMP sequence numbers that came back, in order.
fn replies(lab: &LabGuard, seed: &str) -> Vec<u32> {
    let ping = format!("ping -c 150 -i 0.005 -W 1 {}", lab.bridge_address());
    let output = lab.run(&["--netem", "loss random 20%", "--seed", seed, "-c", &ping]);
    let all = text(&output);
    assert!(all.contains("150 packets transmitted"), "{all}");
    let mut sequence: Vec<u32> = all
        .split_whitespace()
        .filter_map(|word| word.strip_prefix("icmp_seq="))
        .map(|n| n.parse().unwrap())
        .collect();
    sequence.sort_unstable();
    sequence
}

#[test]
fn the_same_seed_drops_the_same_pings_and_another_seed_others() {
    let Some(lab) = LabGuard::new(3) else {
        return;
    };
    let first = replies(&lab, "42");
    let second = replies(&lab, "42");
    assert!(first.len() > 50 && first.len() < 150, "{first:?}");
    assert_eq!(first, second, "same seed, same offered pings");
    let other = replies(&lab, "43");
    assert_ne!(first, other, "another seed drops other pings");
    lab.assert_gone();
}

#[test]
fn tcp_crosses_two_impaired_links_intact() {
    let Some(lab) = LabGuard::new(4) else {
        return;
    };
    host::skip_unless!(Need::Tool("socat"));
    // Instance 0 receives and hashes, instance 1 sends 2 MB of random bytes
    // and hashes what it sent; both cross their own lossy, delayed link.
    let scratch = std::env::temp_dir().join(format!("rrne4-{}.bin", std::process::id()));
    let file = scratch.display();
    let command = format!(
        "if [ {{index}} = 0 ]; then \
           timeout 30 socat -u TCP-LISTEN:7004,reuseaddr SYSTEM:sha256sum; \
         else \
           head -c 2000000 /dev/urandom > {file}; sha256sum < {file}; \
           for i in $(seq 50); do socat -u FILE:{file} TCP:10.206.4.2:7004 2>/dev/null && exit 0; \
           sleep 0.1; done; exit 1; \
         fi"
    );
    let output = lab.run(&[
        "--netem",
        "delay 2ms loss random 1%",
        "-n",
        "2",
        "-c",
        &command,
    ]);
    let _ = std::fs::remove_file(&scratch);
    let all = text(&output);
    assert!(output.status.success(), "{all}");
    // `[0] <sha256>  -`: what instance 0 received, `[1] ...` what 1 sent.
    let hash = |tag: &str| {
        all.lines()
            .filter_map(|line| line.strip_prefix(tag))
            .map(|rest| rest.split_whitespace().next().unwrap_or("").to_owned())
            .find(|word| word.len() == 64)
            .unwrap_or_else(|| panic!("no hash from {tag}: {all}"))
    };
    assert_eq!(hash("[0] "), hash("[1] "), "{all}");
    // The links did drop: TCP recovered.
    assert!(all.contains("netem [1]: from the instance: "), "{all}");
    lab.assert_gone();
}

#[test]
fn kernel_impairment_without_sch_netem_is_refused_with_the_alternative() {
    let Some(lab) = LabGuard::new(5) else {
        return;
    };
    let output = lab.run(&["--netem", "delay 5ms", "--impair", "kernel", "-c", "true"]);
    if output.status.success() {
        let _ = capability::machine_lacks(
            "the refusal needs a kernel without sch_netem; this one has it",
        );
        return;
    }
    let all = text(&output);
    assert_eq!(output.status.code(), Some(2), "{all}");
    assert!(all.contains("sch_netem"), "{all}");
    assert!(all.contains("--impair userspace"), "{all}");
    lab.assert_gone();
}

#[test]
fn the_kernel_mode_gives_two_instances_the_same_20ms_as_the_emulator() {
    let Some(lab) = LabGuard::new(9) else {
        return;
    };
    let ping = |to: u8| format!("ping -c 5 -i 0.2 -q {}", lab.instance_address(to));
    let output = lab.run(&[
        "-c",
        &ping(1),
        "-c",
        &ping(0),
        "--netem",
        "delay 10ms",
        "--impair",
        "kernel",
    ]);
    let all = text(&output);
    if output.status.code() == Some(2) && all.contains("sch_netem") {
        let _ = capability::machine_lacks("this kernel has no sch_netem (--impair kernel)");
        return;
    }
    assert!(output.status.success(), "{all}");
    let rtts = rtts(&all);
    assert_eq!(rtts.len(), 2, "{all}");
    for (tag, [min, _, _]) in rtts {
        assert!((19.5..35.0).contains(&min), "{tag} min rtt {min} ms: {all}");
    }
    lab.assert_gone();
}

#[test]
fn status_shows_each_link_s_spec_and_bad_spec_counts_are_refused() {
    let Some(lab) = LabGuard::new(6) else {
        return;
    };
    let status =
        format!("{TESTBED} status --prefix rrne6-; {TESTBED} status --prefix rrne6- --json");
    let output = lab.run(&[
        "-n",
        "2",
        "--netem",
        "delay 1ms",
        "--netem",
        "loss 1%",
        "--seed",
        "10",
        "-c",
        &format!("[ {{index}} = 0 ] && {status} || true"),
    ]);
    let all = text(&output);
    assert!(output.status.success(), "{all}");
    assert!(
        all.contains("netem (userspace, seed 10) on rrne6-v0: egress delay 1ms"),
        "{all}"
    );
    assert!(
        all.contains("netem (userspace, seed 11) on rrne6-v1: egress loss 1%"),
        "{all}"
    );
    assert!(all.contains("\"netem\": ["), "{all}");
    lab.assert_gone();

    let output = lab.run(&[
        "-n",
        "3",
        "--netem",
        "delay 1ms",
        "--netem",
        "loss 1%",
        "-c",
        "true",
    ]);
    let all = text(&output);
    assert_eq!(output.status.code(), Some(2), "{all}");
    assert!(all.contains("2 --netem specs for 3 instances"), "{all}");
    let output = lab.run(&["--netem", "delay soon", "-c", "true"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    lab.assert_gone();
}
