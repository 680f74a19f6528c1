//! `testbed run --netem` end to end (root only; prints `skipped: <reason>`
//! otherwise): the userspace link emulator between each instance and the
//! bridge. Each test owns the prefix `rrneN-` and the subnet `10.206.N.0/24`;
//! a guard runs `testbed cleanup` before and after, also on failure.

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

#[test]
fn a_delayed_link_delays_both_directions() {
    let Some(lab) = LabGuard::new(1) else {
        return;
    };
    let ping = format!("ping -c 10 -i 0.05 -q {}", lab.bridge_address());
    let output = lab.run(&["--netem", "delay 50ms", "-c", &ping]);
    let all = text(&output);
    assert!(output.status.success(), "{all}");
    // rtt min/avg/max/mdev = 100.401/108.494/137.899/14.741 ms
    let rtts = all
        .lines()
        .find_map(|line| line.split_once("rtt min/avg/max/mdev = "))
        .map_or_else(
            || panic!("no rtt line: {all}"),
            |(_, values)| values.split('/').map(str::to_owned).collect::<Vec<_>>(),
        );
    let (min, avg): (f64, f64) = (rtts[0].parse().unwrap(), rtts[1].parse().unwrap());
    assert!(min >= 100.0, "50 ms each way, min rtt {min} ms: {all}");
    assert!((100.0..1000.0).contains(&avg), "avg rtt {avg} ms: {all}");
    assert!(all.contains("netem [0]: from the instance: "), "{all}");
    lab.assert_gone();
}

#[test]
fn random_loss_drops_a_binomial_share_of_pings() {
    let Some(lab) = LabGuard::new(2) else {
        return;
    };
    let ping = format!("ping -c 300 -i 0.005 -W 1 -q {}", lab.bridge_address());
    let output = lab.run(&["--netem", "loss random 20%", "--seed", "7", "-c", &ping]);
    let all = text(&output);
    let summary = all
        .lines()
        .find(|line| line.contains("packets transmitted"))
        .unwrap_or_else(|| panic!("no ping summary: {all}"));
    assert_eq!(count_before(summary, "packets"), 300, "{summary}");
    // An echo comes back when its request and its reply both pass:
    // p = 0.8 * 0.8 = 0.64 per ping. 99.9% of binomial(300, 0.64) lies
    // within 3.29 standard deviations (8.31) of 192: 165..=219.
    let received = count_before(summary, "received");
    assert!((165..=219).contains(&received), "{received} of 300: {all}");
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
        all.contains("netem (userspace, seed 10) on rrne6-v0: delay 1ms"),
        "{all}"
    );
    assert!(
        all.contains("netem (userspace, seed 11) on rrne6-v1: loss 1%"),
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
