//! Partitions through real traffic: four hosts on a bridge, each in its own
//! namespace; a partitioned pair cannot exchange a single packet in the cut
//! direction, every other pair still can, and after healing every pair can.
//! Hosts use `10.202.N.0/24`; namespaces carry the prefix `rrpt{N}-`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use host::capability::Need;
use testbed::partition::{self, Grudge, Node, PartitionSpec};

const HOSTS: usize = 4;
const PORT: u16 = 9999;

/// Receives UDP datagrams until its standard input closes (at most 30 s),
/// then prints each distinct source once. Waiting on stdin, not a clock,
/// keeps the test right however slowly a loaded machine starts the senders.
const RECEIVER: &str = r#"
import select, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
print("ready", flush=True)
seen = set()
end = time.time() + 30
while time.time() < end:
    ready, _, _ = select.select([s, sys.stdin], [], [], 0.2)
    if s in ready:
        _, (addr, _) = s.recvfrom(64)
        seen.add(addr)
    if sys.stdin in ready and not sys.stdin.read(1):
        break
print(" ".join(sorted(seen)), flush=True)
"#;

/// Sends three datagrams to each address given.
const SENDER: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(3):
    for a in sys.argv[2:]:
        s.sendto(b"x", (a, int(sys.argv[1])))
"#;

struct Lab {
    prefix: String,
    subnet: u8,
}

fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Lab {
    fn start(n: u8) -> Option<Self> {
        host::skip_unless!(
            Need::Root,
            Need::Netns,
            Need::Tool("nft"),
            Need::Tool("python3")
        );
        let lab = Self {
            prefix: format!("rrpt{n}-"),
            subnet: n,
        };
        lab.remove();
        let sw = lab.ns("sw");
        sh(&["ip", "netns", "add", &sw]);
        sh(&["ip", "-n", &sw, "link", "add", "br0", "type", "bridge"]);
        sh(&["ip", "-n", &sw, "link", "set", "br0", "up"]);
        for i in 0..HOSTS {
            let host = lab.host(i);
            sh(&["ip", "netns", "add", &host]);
            sh(&["ip", "-n", &host, "link", "set", "lo", "up"]);
            sh(&[
                "ip",
                "link",
                "add",
                "eth0",
                "netns",
                &host,
                "type",
                "veth",
                "peer",
                "name",
                &format!("p{i}"),
                "netns",
                &sw,
            ]);
            sh(&[
                "ip",
                "-n",
                &sw,
                "link",
                "set",
                &format!("p{i}"),
                "master",
                "br0",
                "up",
            ]);
            sh(&[
                "ip",
                "-n",
                &host,
                "addr",
                "add",
                &format!("{}/24", lab.addr(i)),
                "dev",
                "eth0",
            ]);
            sh(&["ip", "-n", &host, "link", "set", "eth0", "up"]);
        }
        Some(lab)
    }

    fn ns(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn host(&self, i: usize) -> String {
        self.ns(&format!("h{i}"))
    }

    fn addr(&self, i: usize) -> String {
        format!("10.202.{}.{}", self.subnet, i + 1)
    }

    fn nodes(&self) -> Vec<Node> {
        (0..HOSTS)
            .map(|i| Node {
                name: format!("h{i}"),
                namespace: self.host(i),
                addrs: vec![self.addr(i).parse().unwrap()],
            })
            .collect()
    }

    /// `reach[s][r]`: whether host `s`'s datagrams reached host `r`.
    fn reachability(&self) -> Vec<Vec<bool>> {
        let mut receivers: Vec<Child> = (0..HOSTS)
            .map(|i| {
                Command::new("ip")
                    .args([
                        "netns",
                        "exec",
                        &self.host(i),
                        "python3",
                        "-c",
                        RECEIVER,
                        &PORT.to_string(),
                    ])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut outputs: Vec<BufReader<_>> = receivers
            .iter_mut()
            .map(|c| BufReader::new(c.stdout.take().unwrap()))
            .collect();
        for out in &mut outputs {
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            assert_eq!(line.trim(), "ready");
        }
        for s in 0..HOSTS {
            let targets: Vec<String> = (0..HOSTS)
                .filter(|r| *r != s)
                .map(|r| self.addr(r))
                .collect();
            let mut args = vec![
                "netns".to_string(),
                "exec".into(),
                self.host(s),
                "python3".into(),
                "-c".into(),
                SENDER.into(),
                PORT.to_string(),
            ];
            args.extend(targets);
            sh(&std::iter::once("ip")
                .chain(args.iter().map(String::as_str))
                .collect::<Vec<_>>());
        }
        // Datagrams on a bridge arrive within microseconds; then the
        // receivers are told to report by closing their standard input.
        std::thread::sleep(std::time::Duration::from_millis(300));
        for receiver in &mut receivers {
            drop(receiver.stdin.take());
        }
        let mut reach = vec![vec![false; HOSTS]; HOSTS];
        for (r, out) in outputs.iter_mut().enumerate() {
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            for source in line.split_whitespace() {
                let s = (0..HOSTS)
                    .find(|s| self.addr(*s) == source)
                    .expect("a lab address");
                reach[s][r] = true;
            }
        }
        for mut c in receivers {
            let _ = c.wait();
        }
        reach
    }

    fn remove(&self) {
        for name in testbed::lab::netns::list(&self.prefix) {
            let _ = testbed::lab::netns::delete(&name);
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.remove();
    }
}

fn expect_reach(lab: &Lab, grudge: &Grudge) {
    let reach = lab.reachability();
    for s in 0..HOSTS {
        for r in (0..HOSTS).filter(|r| *r != s) {
            assert_eq!(
                reach[s][r],
                !grudge.drops(s, r),
                "h{s} -> h{r} in {reach:?}"
            );
        }
    }
}

#[test]
fn halves_cut_exactly_the_pairs_across_and_healing_restores_them() {
    let Some(lab) = Lab::start(1) else { return };
    let nodes = lab.nodes();
    let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    let everyone = Grudge::none(HOSTS);
    expect_reach(&lab, &everyone);
    let grudge = Grudge::from_spec(&PartitionSpec::parse("halves").unwrap(), &names, 1).unwrap();
    partition::apply(&nodes, &grudge).unwrap();
    expect_reach(&lab, &grudge);
    partition::heal(&nodes).unwrap();
    expect_reach(&lab, &everyone);
}

#[test]
fn a_one_way_cut_drops_one_direction_only() {
    let Some(lab) = Lab::start(2) else { return };
    let nodes = lab.nodes();
    let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    let grudge =
        Grudge::from_spec(&PartitionSpec::parse("h0->h1; h2->h3").unwrap(), &names, 1).unwrap();
    partition::apply(&nodes, &grudge).unwrap();
    expect_reach(&lab, &grudge);
    // Replacing a partition is one transaction per namespace: the new
    // grudge holds, nothing of the old one remains.
    let bridge = Grudge::from_spec(&PartitionSpec::parse("bridge").unwrap(), &names, 1).unwrap();
    partition::apply(&nodes, &bridge).unwrap();
    expect_reach(&lab, &bridge);
}

/// A `testbed run` lab in the background, torn down on drop.
struct RunningLab {
    prefix: &'static str,
    run: Child,
}

impl RunningLab {
    fn start(prefix: &'static str, cidr: &str, hosts: usize) -> Self {
        let mut run = Command::new(env!("CARGO_BIN_EXE_testbed"))
            .args([
                "run",
                "--prefix",
                prefix,
                "--cidr",
                cidr,
                "-n",
                &hosts.to_string(),
                "-c",
                "sleep 60",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The state file is written before the lab is built: wait for the
        // run to say its instances are ready, not for the file.
        let stderr = BufReader::new(run.stderr.take().unwrap());
        let lab = Self { prefix, run };
        let (lines, ready) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        loop {
            match ready.recv_timeout(std::time::Duration::from_secs(30)) {
                Ok(line) if line.contains("instances ready") => return lab,
                Ok(_) => {}
                Err(e) => panic!("lab {prefix} did not come up: {e}"),
            }
        }
    }

    fn testbed(args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_testbed"))
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for RunningLab {
    fn drop(&mut self) {
        let _ = self.run.kill();
        let _ = self.run.wait();
        let _ = Self::testbed(&["cleanup", "--prefix", self.prefix]);
    }
}

#[test]
fn testbed_partition_cuts_a_running_lab_and_heals_it() {
    host::skip_unless!(Need::Root, Need::Netns, Need::Tool("nft"));
    let _lab = RunningLab::start("rrpt3-", "10.204.3.0/24", 4);
    let host0 = testbed::lab::netns::list("rrpt3-")
        .into_iter()
        .next()
        .expect("a host namespace");
    let out = RunningLab::testbed(&["partition", "--prefix", "rrpt3-", "halves"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("drops"),
        "{out:?}"
    );
    let rules = Command::new("ip")
        .args([
            "netns",
            "exec",
            &host0,
            "nft",
            "list",
            "table",
            "inet",
            "testbed_partition",
        ])
        .output()
        .unwrap();
    assert!(
        rules.status.success() && String::from_utf8_lossy(&rules.stdout).contains("drop"),
        "{rules:?}"
    );
    let out = RunningLab::testbed(&["partition", "--prefix", "rrpt3-", "heal"]);
    assert!(out.status.success(), "{out:?}");
    let rules = Command::new("ip")
        .args([
            "netns",
            "exec",
            &host0,
            "nft",
            "list",
            "table",
            "inet",
            "testbed_partition",
        ])
        .output()
        .unwrap();
    assert!(!rules.status.success(), "the table is gone after healing");
    let bad = RunningLab::testbed(&["partition", "--prefix", "rrpt3-", "halfs"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("accepted: halves"));
    let missing = RunningLab::testbed(&["partition", "--prefix", "rrnone-", "halves"]);
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn testbed_run_partition_is_in_place_before_the_instances_start() {
    host::skip_unless!(Need::Root, Need::Netns, Need::Tool("nft"));
    let out = Command::new(env!("CARGO_BIN_EXE_testbed"))
        .args([
            "run",
            "--prefix",
            "rrpt4-",
            "--cidr",
            "10.204.4.0/24",
            "-n",
            "2",
        ])
        .args([
            "--partition",
            "halves",
            "-c",
            "nft list table inet testbed_partition; cat /run/testbed/rrpt4-.json",
        ])
        .output()
        .unwrap();
    let _ = Command::new(env!("CARGO_BIN_EXE_testbed"))
        .args(["cleanup", "--prefix", "rrpt4-"])
        .output();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    // Hosts are .2 and .3: each drops the other.
    assert!(
        stdout.contains("ip saddr 10.204.4.3 drop")
            || stdout.contains("ip saddr { 10.204.4.3 } drop"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ip saddr 10.204.4.2 drop")
            || stdout.contains("ip saddr { 10.204.4.2 } drop"),
        "{stdout}"
    );
    // The lab's state (what `testbed status` shows) names the partition in force.
    assert!(stdout.contains("\"spec\": \"halves\""), "{stdout}");
    let bad = Command::new(env!("CARGO_BIN_EXE_testbed"))
        .args([
            "run",
            "--prefix",
            "rrpt5-",
            "--cidr",
            "10.204.5.0/24",
            "--partition",
            "halfs",
            "-c",
            "true",
        ])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("accepted: halves"));
}
