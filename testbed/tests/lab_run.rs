//! `testbed run`, `status` and `cleanup` end to end (root only; prints
//! `skipped: <reason>` otherwise). Each test owns the prefix `rrlrN-` and the
//! subnet `10.203.N.0/24`; a guard runs `testbed cleanup` when it ends, also
//! on failure.

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use host::capability::{self, Need};
use testbed::lab::prefixed::entries_named;

const TESTBED: &str = env!("CARGO_BIN_EXE_testbed");
const DEADLINE: Duration = Duration::from_secs(20);

/// Removes the lab of a test when dropped.
struct LabGuard {
    prefix: String,
}

impl LabGuard {
    fn new(prefix: &str) -> Option<Self> {
        host::skip_unless!(Need::Root, Need::Netns);
        let guard = Self {
            prefix: prefix.to_owned(),
        };
        guard.cleanup();
        Some(guard)
    }

    fn cleanup(&self) -> Output {
        Command::new(TESTBED)
            .args(["cleanup", "--prefix", &self.prefix])
            .output()
            .unwrap()
    }

    fn namespaces(&self) -> Vec<String> {
        entries_named("/run/netns", &self.prefix)
    }

    fn bridge_exists(&self) -> bool {
        std::path::Path::new(&format!("/sys/class/net/{}br", self.prefix)).exists()
    }

    fn state_file(&self) -> PathBuf {
        PathBuf::from(format!("/run/testbed/{}.json", self.prefix))
    }

    /// Links of the machine whose name carries the prefix.
    fn links(&self) -> Vec<String> {
        std::fs::read_dir("/sys/class/net")
            .unwrap()
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|name| name.starts_with(&self.prefix))
            .collect()
    }

    /// Everything of the lab is gone: namespaces, links, bridge, state file.
    fn assert_gone(&self) {
        assert_eq!(self.namespaces(), Vec::<String>::new());
        assert_eq!(self.links(), Vec::<String>::new());
        assert!(!self.bridge_exists(), "bridge left behind");
        assert!(!self.state_file().exists(), "state file left behind");
    }

    fn run(&self, cidr: &str, args: &[&str]) -> Output {
        Command::new(TESTBED)
            .args(["run", "--prefix", &self.prefix, "--cidr", cidr])
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for LabGuard {
    fn drop(&mut self) {
        self.cleanup();
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn run_tags_each_line_with_its_instance_and_substitutes_index_and_ip() {
    let Some(lab) = LabGuard::new("rrlr1-") else {
        return;
    };
    let output = lab.run("10.203.1.0/24", &["-n", "3", "-c", "echo hi {index} {ip}"]);
    assert!(output.status.success(), "{output:?}");
    let mut lines: Vec<_> = stdout(&output).lines().map(str::to_owned).collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "[0] hi 0 10.203.1.2",
            "[1] hi 1 10.203.1.3",
            "[2] hi 2 10.203.1.4"
        ]
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("3 hosts created in"), "{stderr}");
    assert!(stderr.contains("3 instances ready in"), "{stderr}");
    lab.assert_gone();
}

#[test]
fn each_instance_has_its_own_namespace_with_its_address_on_eth0() {
    let Some(lab) = LabGuard::new("rrlr2-") else {
        return;
    };
    let output = lab.run(
        "10.203.2.0/24",
        &[
            "-n",
            "2",
            "-c",
            "cat /proc/self/net/dev | grep -c eth0; ip -4 -o addr show dev eth0",
        ],
    );
    assert!(output.status.success(), "{output:?}");
    let text = stdout(&output);
    for (index, address) in [(0, "10.203.2.2/24"), (1, "10.203.2.3/24")] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("[{index}] ")) && l.contains(address)),
            "{text}"
        );
    }
}

#[test]
fn run_exits_with_the_code_of_the_failing_instance() {
    let Some(lab) = LabGuard::new("rrlr3-") else {
        return;
    };
    let output = lab.run("10.203.3.0/24", &["-c", "exit 0", "-c", "exit 7"]);
    assert_eq!(output.status.code(), Some(7), "{output:?}");
    lab.assert_gone();
}

#[test]
fn instances_reach_the_machine_at_the_bridge_address() {
    let Some(lab) = LabGuard::new("rrlr4-") else {
        return;
    };
    // The instances write to the machine through bash's /dev/tcp.
    host::skip_unless!(Need::Tool("bash"));
    let bridge = SocketAddr::from((Ipv4Addr::new(10, 203, 4, 1), 7004));
    // The machine listens on the bridge's address once the lab has given it.
    let listener = std::thread::spawn(move || {
        let started = Instant::now();
        let listener = loop {
            if let Ok(listener) = TcpListener::bind(bridge) {
                break listener;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "bridge address never appeared"
            );
            std::thread::sleep(Duration::from_millis(5));
        };
        let (mut stream, peer) = listener.accept().unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        (peer.ip(), text)
    });
    let connect = "for i in $(seq 100); do \
                   bash -c 'echo hello >/dev/tcp/10.203.4.1/7004' 2>/dev/null && exit 0; \
                   sleep 0.05; done; exit 1";
    let output = lab.run("10.203.4.0/24", &["-c", connect]);
    assert!(output.status.success(), "{output:?}");
    let (peer, text) = listener.join().unwrap();
    assert_eq!(peer, Ipv4Addr::new(10, 203, 4, 2));
    assert_eq!(text, "hello\n");
}

#[test]
fn cleanup_removes_a_lab_whose_run_was_killed_and_status_shows_it_before() {
    let Some(lab) = LabGuard::new("rrlr5-") else {
        return;
    };
    let mut run = Command::new(TESTBED)
        .args(["run", "--prefix", "rrlr5-", "--cidr", "10.203.5.0/24"])
        .args(["-n", "2", "-c", "sleep 60"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while lab.namespaces().len() < 2 || !lab.state_file().exists() {
        assert!(started.elapsed() < DEADLINE, "lab did not come up");
        std::thread::sleep(Duration::from_millis(10));
    }
    let status = Command::new(TESTBED)
        .args(["status", "--prefix", "rrlr5-", "--json"])
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    let state: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let addresses: Vec<_> = state["plan"]["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["address"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(addresses, ["10.203.5.2", "10.203.5.3"]);
    let all = Command::new(TESTBED)
        .args(["status", "--json"])
        .output()
        .unwrap();
    let labs: serde_json::Value = serde_json::from_slice(&all.stdout).unwrap();
    assert!(
        labs.as_array()
            .unwrap()
            .iter()
            .any(|lab| lab["plan"]["prefix"] == "rrlr5-"),
        "{labs}"
    );

    run.kill().unwrap(); // SIGKILL: no teardown of its own.
    run.wait().unwrap();
    assert!(lab.state_file().exists());
    let cleanup = lab.cleanup();
    assert!(cleanup.status.success(), "{cleanup:?}");
    lab.assert_gone();
}

#[test]
fn sigterm_tears_the_lab_down() {
    let Some(lab) = LabGuard::new("rrlr6-") else {
        return;
    };
    let run = Command::new(TESTBED)
        .args(["run", "--prefix", "rrlr6-", "--cidr", "10.203.6.0/24"])
        .args(["-n", "2", "-c", "sleep 60"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while lab.namespaces().len() < 2 {
        assert!(started.elapsed() < DEADLINE, "lab did not come up");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Let the instances start before the signal.
    std::thread::sleep(Duration::from_millis(200));
    let pid = libc::pid_t::try_from(run.id()).unwrap();
    // SAFETY: kill has no memory effects; pid is our child, not yet reaped.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let output = run.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130));
    lab.assert_gone();
}

#[test]
fn redirect_writes_each_instance_output_to_files_in_the_work_dir() {
    let Some(lab) = LabGuard::new("rrlr7-") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("rrlr7-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let work_dir = dir.to_str().unwrap();
    let output = lab.run(
        "10.203.7.0/24",
        &[
            "--redirect",
            "--work-dir",
            work_dir,
            "-n",
            "2",
            "-c",
            "echo out {index}; echo err {index} >&2; pwd",
        ],
    );
    assert!(output.status.success(), "{output:?}");
    assert_eq!(stdout(&output), "", "output went to the files");
    for index in 0..2 {
        let out = std::fs::read_to_string(dir.join(format!("rrlr7-{index}.stdout"))).unwrap();
        assert_eq!(out, format!("out {index}\n{work_dir}\n"));
        let err = std::fs::read_to_string(dir.join(format!("rrlr7-{index}.stderr"))).unwrap();
        assert_eq!(err, format!("err {index}\n"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn no_revert_keeps_the_lab_and_cleanup_restores_the_raised_neighbour_thresholds() {
    let Some(lab) = LabGuard::new("rrlr8-") else {
        return;
    };
    let thresh1 = "/proc/sys/net/ipv4/neigh/default/gc_thresh1";
    let before: usize = std::fs::read_to_string(thresh1)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let hosts = before + 1;
    if hosts > 250 {
        let _ = capability::machine_lacks(format!(
            "gc_thresh1 is {before}; a lab above it would need a /23"
        ));
        return;
    }
    let output = lab.run(
        "10.203.8.0/24",
        &["--no-revert", "-n", &hosts.to_string(), "-c", "true"],
    );
    assert!(output.status.success(), "{output:?}");
    assert_eq!(lab.namespaces().len(), hosts);
    assert!(lab.bridge_exists());
    let raised: usize = std::fs::read_to_string(thresh1)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(raised, hosts);
    let cleanup = lab.cleanup();
    assert!(cleanup.status.success(), "{cleanup:?}");
    lab.assert_gone();
    let restored: usize = std::fs::read_to_string(thresh1)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(restored, before);
}

#[test]
fn a_lab_can_be_built_again_with_the_same_prefix_right_after_its_teardown() {
    let Some(lab) = LabGuard::new("rrlr9-") else {
        return;
    };
    for round in 0..3 {
        let output = lab.run("10.203.9.0/24", &["-n", "20", "-c", "true"]);
        assert!(output.status.success(), "round {round}: {output:?}");
        lab.assert_gone();
    }
}

#[test]
fn tbf_shapes_each_instance_link_with_its_own_spec() {
    let Some(lab) = LabGuard::new("rrlr10-") else {
        return;
    };
    let output = lab.run(
        "10.203.10.0/24",
        &[
            "--no-revert",
            "-n",
            "2",
            "-c",
            "true",
            "--tbf",
            "rate 1mbit burst 32kbit latency 400ms",
            "--tbf",
            "rate 2mbit burst 32kbit latency 400ms",
        ],
    );
    assert!(output.status.success(), "{output:?}");
    for (index, rate) in [(0, "1Mbit"), (1, "2Mbit")] {
        let shown = Command::new("tc")
            .args(["qdisc", "show", "dev", &format!("rrlr10-v{index}")])
            .output()
            .unwrap();
        let text = stdout(&shown);
        assert!(text.contains("tbf") && text.contains(rate), "{text}");
    }
    assert!(lab.cleanup().status.success());
    lab.assert_gone();
}

#[test]
fn a_bad_tbf_spec_is_refused_before_anything_is_built() {
    let Some(lab) = LabGuard::new("rrlr11-") else {
        return;
    };
    let output = lab.run(
        "10.203.11.0/24",
        &["-c", "true", "--tbf", "rate 1mbit latency 1ms"],
    );
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("burst is missing"));
    lab.assert_gone();
}

#[test]
fn instances_on_chained_bridges_all_reach_the_first_bridge_address() {
    let Some(lab) = LabGuard::new("rrlr12-") else {
        return;
    };
    // The instances write to the machine through bash's /dev/tcp.
    host::skip_unless!(Need::Tool("bash"));
    let bridge = SocketAddr::from((Ipv4Addr::new(10, 203, 12, 1), 7012));
    let instances = 5;
    let listener = std::thread::spawn(move || {
        let started = Instant::now();
        let listener = loop {
            if let Ok(listener) = TcpListener::bind(bridge) {
                break listener;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "bridge address never appeared"
            );
            std::thread::sleep(Duration::from_millis(5));
        };
        let mut peers: Vec<_> = (0..instances)
            .map(|_| listener.accept().unwrap().1.ip())
            .collect();
        peers.sort();
        peers
    });
    let connect = "for i in $(seq 100); do \
                   bash -c 'echo hello >/dev/tcp/10.203.12.1/7012' 2>/dev/null && exit 0; \
                   sleep 0.05; done; exit 1";
    let output = lab.run(
        "10.203.12.0/24",
        &[
            "--instances-per-bridge",
            "2",
            "-n",
            &instances.to_string(),
            "-c",
            connect,
        ],
    );
    assert!(output.status.success(), "{output:?}");
    let peers = listener.join().unwrap();
    let expected: Vec<_> = (2..7)
        .map(|host| std::net::IpAddr::from(Ipv4Addr::new(10, 203, 12, host)))
        .collect();
    assert_eq!(peers, expected);
    lab.assert_gone();
}
