//! `testbed up`, `down`, `status` and `cleanup` on topology files, end to
//! end (root and `ip netns` needed; prints `skipped: <reason>` otherwise).
//! Each test owns the prefix `rrtpN-` and subnets inside 10.205.0.0/16; a
//! guard runs `testbed cleanup` when the test ends, also when it fails.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use host::capability::{require, Need};
use socket2::{Domain, Protocol, Socket, Type};

const TESTBED: &str = env!("CARGO_BIN_EXE_testbed");
const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/lb-lab.toml");

/// A client and a server on two subnets, a forwarding router between them
/// (point-to-point links), the server with an address on `lo`.
const ROUTED: &str = r#"
prefix = "unused-"
[[network]]
name = "left"
cidr = "10.205.11.0/24"
[[network]]
name = "right"
cidr = "10.205.12.0/24"
[[host]]
name = "router"
forward = true
links = [ { network = "left", address = "10.205.11.1" }, { network = "right", address = "10.205.12.1" } ]
routes = [ "10.205.19.9 via 10.205.12.2" ]
[[host]]
name = "client"
links = [ { network = "left", address = "10.205.11.2" } ]
routes = [ "default via 10.205.11.1" ]
[[host]]
name = "server"
links = [ { network = "right", address = "10.205.12.2" } ]
routes = [ "10.205.11.0/24 via 10.205.12.1" ]
addresses = [ "10.205.19.9/32 dev lo" ]
"#;

/// Three hosts on one bridge, one shaped, two with a background command.
const BRIDGED: &str = r#"
prefix = "unused-"
[[network]]
name = "lan"
cidr = "10.205.21.0/24"
[[host]]
name = "a"
links = [ { network = "lan", address = "10.205.21.1", tbf = "rate 10mbit burst 32kbit latency 50ms" } ]
commands = [ "sleep 1000", "echo hello from $TESTBED_HOST" ]
[[host]]
name = "b"
links = [ { network = "lan", address = "10.205.21.2" } ]
commands = [ "sleep 1000" ]
[[host]]
name = "c"
links = [ { network = "lan", address = "10.205.21.3" } ]
"#;

/// Runs `testbed ARGS`.
fn testbed(args: &[&str]) -> Output {
    Command::new(TESTBED).args(args).output().unwrap()
}

/// Removes the test's lab (and its scratch directory) when dropped.
struct LabGuard {
    prefix: String,
    scratch: PathBuf,
}

impl LabGuard {
    /// The guard of lab `prefix`, or `None` (after reporting the skip) when
    /// the test cannot run here: it needs root, `ip netns` and `tools`.
    fn new(prefix: &str, tools: &[&'static str]) -> Option<Self> {
        let needs: Vec<Need> = [Need::Root, Need::Netns]
            .into_iter()
            .chain(tools.iter().map(|&tool| Need::Tool(tool)))
            .collect();
        require(&needs).ok()?;
        let scratch = std::env::temp_dir().join(format!("{prefix}{}", std::process::id()));
        std::fs::create_dir_all(&scratch).unwrap();
        let guard = Self {
            prefix: prefix.to_owned(),
            scratch,
        };
        testbed(&["cleanup", "--prefix", prefix]);
        Some(guard)
    }

    /// `testbed up` of `topology` (a file's text) with the test's prefix;
    /// the lab must come up.
    fn up(&self, topology: &str) {
        let file = self.scratch.join("lab.toml");
        std::fs::write(&file, topology).unwrap();
        self.up_file(&file);
    }

    fn up_file(&self, file: &Path) {
        let work = self.scratch.join("work");
        let output = testbed(&[
            "up",
            file.to_str().unwrap(),
            "-p",
            &self.prefix,
            "--work-dir",
            work.to_str().unwrap(),
        ]);
        assert!(
            output.status.success(),
            "testbed up: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn namespace(&self, host: &str) -> String {
        format!("{}{host}", self.prefix)
    }

    fn state_file(&self) -> PathBuf {
        PathBuf::from(format!("/run/testbed/{}.json", self.prefix))
    }

    fn status(&self) -> serde_json::Value {
        let output = testbed(&["status", "--prefix", &self.prefix, "--json"]);
        assert!(output.status.success(), "{output:?}");
        serde_json::from_slice(&output.stdout).unwrap()
    }

    fn namespaces(&self) -> Vec<String> {
        testbed::lab::netns::list(&self.prefix)
    }

    fn links(&self) -> Vec<String> {
        std::fs::read_dir("/sys/class/net")
            .unwrap()
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|name| name.starts_with(&self.prefix))
            .collect()
    }

    /// Nothing of the lab is left: namespaces, links, bridges, state file.
    fn assert_gone(&self) {
        assert_eq!(self.namespaces(), Vec::<String>::new());
        assert_eq!(self.links(), Vec::<String>::new());
        assert!(!self.state_file().exists(), "state file left behind");
    }
}

impl Drop for LabGuard {
    fn drop(&mut self) {
        testbed(&["cleanup", "--prefix", &self.prefix]);
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

/// The Internet checksum of `bytes`.
fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Whether an ICMP echo from namespace `from` to `to` is answered (three
/// tries of one second; the first may wait for ARP).
fn ping(from: &str, to: Ipv4Addr) -> bool {
    let path = testbed::lab::netns::path(from);
    std::thread::spawn(move || {
        let namespace = std::fs::File::open(&path).unwrap();
        // SAFETY: a live namespace descriptor; setns changes only this
        // thread's network namespace.
        let rc = unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {}", path.display());
        let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let id = (std::process::id() & 0xffff) as u16;
        for sequence in 0..3u16 {
            let mut request = vec![8, 0, 0, 0];
            request.extend_from_slice(&id.to_be_bytes());
            request.extend_from_slice(&sequence.to_be_bytes());
            request.extend_from_slice(b"rusty rail topology ping");
            let sum = checksum(&request);
            request[2..4].copy_from_slice(&sum.to_be_bytes());
            let target = SocketAddr::V4(SocketAddrV4::new(to, 0));
            socket.send_to(&request, &target.into()).unwrap();
            let deadline = Instant::now() + Duration::from_secs(1);
            while Instant::now() < deadline {
                let mut buffer = [std::mem::MaybeUninit::<u8>::uninit(); 1500];
                let Ok((length, _)) = socket.recv_from(&mut buffer) else {
                    continue;
                };
                // SAFETY: recv_from initialised the first `length` bytes.
                let packet: Vec<u8> = buffer[..length]
                    .iter()
                    .map(|b| unsafe { b.assume_init() })
                    .collect();
                let header = usize::from(packet[0] & 0x0f) * 4;
                let Some(icmp) = packet.get(header..header + 8) else {
                    continue;
                };
                let source = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
                if source == to && icmp[0] == 0 && icmp[4..6] == id.to_be_bytes() {
                    return true;
                }
            }
        }
        false
    })
    .join()
    .unwrap()
}

/// The pids of the lab's background processes, from its state.
fn recorded_pids(state: &serde_json::Value) -> Vec<i32> {
    state["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| i32::try_from(p["pid"].as_i64().unwrap()).unwrap())
        .collect()
}

fn running(pid: i32) -> bool {
    testbed::lab::topology::processes::start_time(pid).is_some()
}

#[test]
fn a_forwarding_router_joins_two_subnets_and_down_removes_the_lab() {
    let Some(lab) = LabGuard::new("rrtp1-", &[]) else {
        return;
    };
    lab.up(ROUTED);
    let client = lab.namespace("client");
    assert!(
        ping(&client, "10.205.11.1".parse().unwrap()),
        "router, same subnet"
    );
    assert!(
        ping(&client, "10.205.12.2".parse().unwrap()),
        "server, through the router"
    );
    assert!(
        ping(&client, "10.205.19.9".parse().unwrap()),
        "server's lo address"
    );
    // The lab's namespaces have no route to anything else.
    assert!(!ping(&client, "10.205.99.1".parse().unwrap()));
    let output = testbed(&["down", "-p", &lab.prefix]);
    assert!(output.status.success(), "{output:?}");
    lab.assert_gone();
}

#[test]
fn the_lb_lab_example_lets_clients_reach_servers_and_balancers_through_the_router() {
    let Some(lab) = LabGuard::new("rrtp2-", &[]) else {
        return;
    };
    lab.up_file(Path::new(EXAMPLE));
    let state = lab.status();
    let hosts: Vec<&str> = state["topology"]["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        hosts,
        ["router", "client1", "client2", "lb1", "lb2", "server1", "server2", "server3"]
    );
    for (client, target) in [
        ("client1", "10.205.2.31"),
        ("client1", "10.205.2.32"),
        ("client2", "10.205.2.33"),
        ("client2", "10.205.2.21"),
        ("client1", "10.205.2.22"),
    ] {
        assert!(
            ping(&lab.namespace(client), target.parse().unwrap()),
            "{client} -> {target}"
        );
    }
    let output = testbed(&["down", EXAMPLE, "-p", &lab.prefix]);
    assert!(output.status.success(), "{output:?}");
    lab.assert_gone();
}

#[test]
fn down_removes_every_namespace_link_bridge_and_background_process() {
    let Some(lab) = LabGuard::new("rrtp3-", &["tc"]) else {
        return;
    };
    lab.up(BRIDGED);
    let state = lab.status();
    let pids = recorded_pids(&state);
    assert_eq!(pids.len(), 3);
    let sleepers: Vec<i32> = state["processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["command"] == "sleep 1000")
        .map(|p| i32::try_from(p["pid"].as_i64().unwrap()).unwrap())
        .collect();
    assert!(sleepers.iter().all(|&pid| running(pid)), "{sleepers:?}");
    assert!(lab.links().contains(&"rrtp3-lan".to_owned()));
    // The echo's output went to its file in the work directory.
    let echoed = lab.scratch.join("work").join("a.1.stdout");
    let started = Instant::now();
    while std::fs::read_to_string(&echoed)
        .unwrap_or_default()
        .is_empty()
        && started.elapsed() < Duration::from_secs(5)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(std::fs::read_to_string(&echoed).unwrap(), "hello from a\n");
    assert!(ping(&lab.namespace("c"), "10.205.21.1".parse().unwrap()));

    let output = testbed(&["down", "-p", &lab.prefix]);
    assert!(output.status.success(), "{output:?}");
    lab.assert_gone();
    assert!(pids.iter().all(|&pid| !running(pid)), "{pids:?}");
}

#[test]
fn cleanup_removes_a_lab_made_by_up_processes_included() {
    let Some(lab) = LabGuard::new("rrtp4-", &["tc"]) else {
        return;
    };
    lab.up(BRIDGED);
    let pids = recorded_pids(&lab.status());
    assert!(pids.iter().any(|&pid| running(pid)));
    let output = testbed(&["cleanup", "--prefix", &lab.prefix]);
    assert!(output.status.success(), "{output:?}");
    lab.assert_gone();
    assert!(pids.iter().all(|&pid| !running(pid)), "{pids:?}");
}

#[test]
fn a_tbf_link_has_its_qdisc_on_the_hosts_interface() {
    let Some(lab) = LabGuard::new("rrtp5-", &["tc"]) else {
        return;
    };
    lab.up(BRIDGED);
    let qdiscs = |host: &str| {
        let output = Command::new("tc")
            .args(["-n", &lab.namespace(host), "qdisc", "show", "dev", "eth0"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let shaped = qdiscs("a");
    assert!(shaped.contains("qdisc tbf"), "{shaped}");
    assert!(shaped.contains("rate 10Mbit"), "{shaped}");
    assert!(!qdiscs("b").contains("tbf"));
}

#[test]
fn status_json_lists_hosts_impairments_and_the_partition_in_force() {
    let Some(lab) = LabGuard::new("rrtp6-", &["tc", "nft"]) else {
        return;
    };
    lab.up(BRIDGED);
    let state = lab.status();
    let topology = &state["topology"];
    assert_eq!(topology["prefix"], "rrtp6-");
    let a = &topology["hosts"][0];
    assert_eq!(a["name"], "a");
    assert_eq!(a["namespace"], "rrtp6-a");
    assert_eq!(a["interfaces"][0]["name"], "eth0");
    assert_eq!(a["interfaces"][0]["address"], "10.205.21.1");
    assert_eq!(
        a["interfaces"][0]["tbf"],
        "rate 10mbit burst 32kbit latency 50ms"
    );
    assert_eq!(state["partition"], serde_json::Value::Null);

    let output = testbed(&["partition", "-p", &lab.prefix, "a|c"]);
    assert!(output.status.success(), "{output:?}");
    assert!(!ping(&lab.namespace("c"), "10.205.21.1".parse().unwrap()));
    assert!(ping(&lab.namespace("c"), "10.205.21.2".parse().unwrap()));
    let state = lab.status();
    assert_eq!(state["partition"]["spec"], "a|c");
    assert_eq!(
        state["partition"]["drops"],
        serde_json::json!([{"node": "a", "drops": ["c"]}, {"node": "c", "drops": ["a"]}])
    );
    let text = testbed(&["status", "-p", &lab.prefix]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("partition \"a|c\""), "{text}");
    assert!(text.contains("a drops c; c drops a"), "{text}");
    assert!(
        text.contains("eth0 10.205.21.1/24 on lan (bridge end rrtp6-0.0), tbf rate 10mbit"),
        "{text}"
    );

    let output = testbed(&["partition", "-p", &lab.prefix, "heal"]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(lab.status()["partition"], serde_json::Value::Null);
    assert!(ping(&lab.namespace("c"), "10.205.21.1".parse().unwrap()));
}

#[test]
fn cleanup_removes_a_lab_whose_up_was_killed_once_its_state_existed() {
    let Some(lab) = LabGuard::new("rrtp9-", &["tc"]) else {
        return;
    };
    let file = lab.scratch.join("lab.toml");
    std::fs::write(&file, BRIDGED).unwrap();
    let mut up = Command::new(TESTBED)
        .args(["up", file.to_str().unwrap(), "-p", &lab.prefix])
        .args(["--work-dir", lab.scratch.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed as soon as its state file exists: wherever the build was then,
    // cleanup must find and remove all of it.
    let started = Instant::now();
    while !lab.state_file().exists() && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(1));
    }
    up.kill().unwrap();
    up.wait().unwrap();
    assert!(lab.state_file().exists(), "up never wrote its state file");
    let output = testbed(&["cleanup", "--prefix", &lab.prefix]);
    assert!(output.status.success(), "{output:?}");
    lab.assert_gone();
}

#[test]
fn a_failed_up_removes_what_it_made() {
    let Some(lab) = LabGuard::new("rrtp7-", &[]) else {
        return;
    };
    // A namespace already named like the lab's last host: building stops
    // there, after the others and the state file were made.
    testbed::lab::netns::create("rrtp7-server").unwrap();
    let file = lab.scratch.join("lab.toml");
    std::fs::write(&file, ROUTED).unwrap();
    let output = testbed(&["up", file.to_str().unwrap(), "-p", &lab.prefix]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("rrtp7-server"), "{stderr}");
    lab.assert_gone();
}

#[test]
fn a_second_up_with_the_same_prefix_is_refused_and_leaves_the_first() {
    let Some(lab) = LabGuard::new("rrtp8-", &[]) else {
        return;
    };
    lab.up(ROUTED);
    let file = lab.scratch.join("lab.toml");
    let output = testbed(&["up", file.to_str().unwrap(), "-p", &lab.prefix]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("a lab with prefix \"rrtp8-\" exists"),
        "{stderr}"
    );
    assert!(ping(
        &lab.namespace("client"),
        "10.205.12.2".parse().unwrap()
    ));
}

#[test]
fn a_bad_file_is_refused_with_its_name_line_and_what_is_accepted() {
    // No root needed: the file is refused before anything is made.
    let dir = std::env::temp_dir().join(format!("rrtp-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    let wrong = "{ network = \"rigth\", address = \"10.205.12.2\" }";
    let text = ROUTED.replace("{ network = \"right\", address = \"10.205.12.2\" }", wrong);
    std::fs::write(&file, &text).unwrap();
    let line = text.lines().position(|l| l.contains(wrong)).unwrap() + 1;
    let column = text
        .lines()
        .nth(line - 1)
        .unwrap()
        .find("\"rigth\"")
        .unwrap()
        + 1;
    let output = Command::new(TESTBED)
        .args(["up", file.to_str().unwrap(), "-p", "rrtp9-"])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "{}: line {line}, column {column}: host \"server\" links[0].network: unknown network \
             \"rigth\"; the [[network]] names are: left, right",
            file.display()
        )),
        "{stderr}"
    );
}
