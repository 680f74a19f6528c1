//! `netem = "..."` on topology links, end to end: `testbed up` puts a
//! detached `testbed link-emulator` between the link and its bridge, which
//! impairs what the host sends (`netem`, `netem_out`) and what it receives
//! (`netem_in`), and `down` stops it and removes everything. Root and `ip netns` needed
//! (prints `skipped: <reason>` otherwise). Each test owns the prefix
//! `rrtqN-` and the subnet `10.208.N.0/24`; a guard runs `testbed cleanup`
//! when the test ends, also when it fails.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use host::capability::Need;
use testbed::lab::prefixed::entries_named;

const TESTBED: &str = env!("CARGO_BIN_EXE_testbed");

fn text(output: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Two hosts `a` (10.208.N.1) and `b` (10.208.N.2) on one network, `a`'s
/// link impaired by `netem = "{netem}"`, `b` running `command`.
fn two_hosts(n: u8, netem: &str, command: &str) -> String {
    two_hosts_with(n, &format!("netem = \"{netem}\""), command)
}

/// The same with `a`'s link impaired by `fields` as written.
fn two_hosts_with(n: u8, fields: &str, command: &str) -> String {
    format!(
        r#"
prefix = "unused-"
seed = 5
[[network]]
name = "lan"
cidr = "10.208.{n}.0/24"
[[host]]
name = "a"
links = [ {{ network = "lan", address = "10.208.{n}.1", {fields} }} ]
[[host]]
name = "b"
links = [ {{ network = "lan", address = "10.208.{n}.2" }} ]
commands = [ "{command}" ]
"#
    )
}

/// A test's lab; removed when dropped.
struct Lab {
    prefix: String,
    scratch: PathBuf,
}

impl Lab {
    fn new(n: u8) -> Option<Self> {
        host::skip_unless!(Need::Root, Need::Netns);
        let lab = Self {
            prefix: format!("rrtq{n}-"),
            scratch: std::env::temp_dir().join(format!("rrtq{n}-{}", std::process::id())),
        };
        lab.cleanup();
        std::fs::create_dir_all(&lab.scratch).unwrap();
        Some(lab)
    }

    fn cleanup(&self) {
        let _ = Command::new(TESTBED)
            .args(["cleanup", "--prefix", &self.prefix])
            .output();
    }

    fn up(&self, topology: &str) {
        let file = self.scratch.join("lab.toml");
        std::fs::write(&file, topology).unwrap();
        let output = Command::new(TESTBED)
            .arg("up")
            .arg(&file)
            .args(["-p", &self.prefix, "--work-dir"])
            .arg(self.scratch.join("work"))
            .output()
            .unwrap();
        assert!(output.status.success(), "testbed up: {}", text(&output));
    }

    fn down(&self) {
        let output = Command::new(TESTBED)
            .args(["down", "-p", &self.prefix])
            .output()
            .unwrap();
        assert!(output.status.success(), "testbed down: {}", text(&output));
    }

    /// `COMMAND...` run in host `host`'s namespace.
    fn in_host(&self, host: &str, command: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &format!("{}{host}", self.prefix)])
            .args(command)
            .output()
            .unwrap()
    }

    fn status_json(&self) -> serde_json::Value {
        let output = Command::new(TESTBED)
            .args(["status", "-p", &self.prefix, "--json"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output));
        serde_json::from_slice(&output.stdout).unwrap()
    }

    /// The pids of running processes whose command line names the prefix.
    fn processes_naming_the_prefix(&self) -> Vec<String> {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let pid = entry.file_name().into_string().ok()?;
                pid.parse::<u32>().ok()?;
                let line = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
                let line = String::from_utf8_lossy(&line).replace('\0', " ");
                (line.contains("link-emulator") && line.contains(&self.prefix))
                    .then(|| format!("{pid}: {line}"))
            })
            .collect()
    }

    /// Nothing of the lab is left: no namespace (the emulators' included),
    /// no link, no state file, no emulator process.
    fn assert_gone(&self) {
        let named = |dir: &str| entries_named(dir, &self.prefix);
        assert_eq!(named("/run/netns"), Vec::<String>::new());
        assert_eq!(named("/sys/class/net"), Vec::<String>::new());
        assert_eq!(named("/run/testbed"), Vec::<String>::new());
        assert_eq!(self.processes_naming_the_prefix(), Vec::<String>::new());
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.cleanup();
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

impl Lab {
    /// min/avg/max of `a` pinging `b` (10.208.N.2) five times.
    fn ping_b(&self, n: u8) -> [f64; 3] {
        let ping = self.in_host(
            "a",
            &[
                "ping",
                "-c",
                "5",
                "-i",
                "0.2",
                "-W",
                "2",
                "-q",
                &format!("10.208.{n}.2"),
            ],
        );
        let all = text(&ping);
        assert!(ping.status.success(), "{all}");
        // rtt min/avg/max/mdev = 100.401/108.494/137.899/14.741 ms
        let rtts: Vec<f64> = all
            .lines()
            .find_map(|line| line.split_once("rtt min/avg/max/mdev = "))
            .map_or_else(
                || panic!("no rtt line: {all}"),
                |(_, values)| {
                    values
                        .split('/')
                        .take(3)
                        .map(|v| v.parse().unwrap())
                        .collect()
                },
            );
        [rtts[0], rtts[1], rtts[2]]
    }

    fn status_text(&self) -> String {
        let shown = Command::new(TESTBED)
            .args(["status", "-p", &self.prefix])
            .output()
            .unwrap();
        text(&shown)
    }
}

#[test]
fn a_delayed_topology_link_delays_what_the_host_sends_and_down_leaves_nothing() {
    let Some(lab) = Lab::new(1) else {
        return;
    };
    lab.up(&two_hosts(1, "delay 50ms", "sleep 1000"));
    let state = lab.status_json();
    let link = &state["topology"]["hosts"][0]["interfaces"][0];
    assert_eq!(link["netem"]["egress"], "delay 50ms", "{state}");
    assert_eq!(link["netem"]["ingress"], serde_json::Value::Null, "{state}");
    assert_eq!(link["netem_seed"], 5, "{state}");
    let emulators = state["processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["command"].as_str().unwrap().contains("link-emulator"))
        .count();
    assert_eq!(emulators, 1, "{state}");
    let shown = lab.status_text();
    assert!(
        shown.contains("netem egress delay 50ms (seed 5)"),
        "{shown}"
    );
    // a's requests wait 50 ms leaving a; b's replies are not delayed.
    let [min, _, max] = lab.ping_b(1);
    assert!((50.0..95.0).contains(&min), "50 ms one way, min rtt {min}");
    assert!(max < 1000.0, "max rtt {max}");
    lab.down();
    lab.assert_gone();
}

#[test]
fn netem_in_and_netem_out_impair_each_direction_of_a_topology_link() {
    let Some(lab) = Lab::new(3) else {
        return;
    };
    let fields = "netem = { out = \"delay 10ms\", in = \"delay 40ms\" }";
    lab.up(&two_hosts_with(3, fields, "sleep 1000"));
    let shown = lab.status_text();
    assert!(
        shown.contains("netem egress delay 10ms, ingress delay 40ms (seed 5)"),
        "{shown}"
    );
    let state = lab.status_json();
    let emulator = state["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|p| {
            p["command"]
                .as_str()
                .filter(|c| c.contains("link-emulator"))
        })
        .unwrap_or_else(|| panic!("no emulator: {state}"))
        .to_owned();
    assert!(
        emulator.contains("--spec delay 10ms --spec-back delay 40ms"),
        "{emulator}"
    );
    // 10 ms leaving a, 40 ms reaching it: 50 ms a round trip.
    let [min, _, max] = lab.ping_b(3);
    assert!((50.0..95.0).contains(&min), "min rtt {min}");
    assert!(max < 1000.0, "max rtt {max}");
    lab.down();
    lab.assert_gone();
}

#[test]
fn a_tcp_transfer_through_a_lossy_topology_link_arrives_intact() {
    let Some(lab) = Lab::new(2) else {
        return;
    };
    host::skip_unless!(Need::Tool("socat"));
    let received = lab.scratch.join("received.bin");
    let sent = lab.scratch.join("sent.bin");
    let bytes: Vec<u8> = (0..2_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&sent, &bytes).unwrap();
    let receiver = format!(
        "timeout 60 socat -u TCP-LISTEN:7002,reuseaddr CREATE:{}",
        received.display()
    );
    lab.up(&two_hosts(2, "delay 2ms loss random 1%", &receiver));
    let sender = format!("FILE:{}", sent.display());
    let started = Instant::now();
    // The listener may not be up yet: a bounded number of tries.
    let mut last = None;
    for _ in 0..50 {
        let output = lab.in_host("a", &["socat", "-u", &sender, "TCP:10.208.2.2:7002"]);
        if output.status.success() {
            last = None;
            break;
        }
        last = Some(text(&output));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(last, None, "the sender never connected");
    // The receiver closes its file when the sender's end has arrived.
    while std::fs::metadata(&received).map_or(0, |m| m.len()) < bytes.len() as u64
        && started.elapsed() < Duration::from_secs(60)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    let got = std::fs::read(&received).unwrap();
    assert_eq!(got.len(), bytes.len());
    assert!(got == bytes, "the received bytes differ from those sent");
    lab.down();
    lab.assert_gone();
}
