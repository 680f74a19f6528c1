//! Start-up that is refused leaves the host as it was, through the real
//! binary.
//!
//! - The API's access settings are checked before anything else is done
//!   (no root needed): an API other machines can reach needs a token, and
//!   the token file is read at start.
//! - A connection-table capacity the process cannot get the memory for is
//!   refused with exit code 2 and a message naming `RR_CONNTRACK_CAPACITY`,
//!   and the host's nftables ruleset and offloads are as before. This runs
//!   in a fresh network namespace `rrst-<pid>` holding a veth pair on
//!   10.241.0.0/24, under an address-space limit the table does not fit in,
//!   and needs root, `ip netns` and `nft` (skipped without them).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::{Command, Output};

use host::capability::Need;
use host::offloads::{self, Offload, Offloads};

const BIN: &str = env!("CARGO_BIN_EXE_rusty_rail");
const TOKEN: &str = "3f8a61c0d2b94e7aa5c1d0e9f7b26a44";

/// `command` with no `RR_*` variable but `env`.
fn with_env(mut command: Command, env: &[(&str, &str)]) -> Command {
    for (key, _) in std::env::vars() {
        if key.starts_with("RR_") {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().copied());
    command
}

fn assert_refused(output: &Output, expected: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    for part in expected {
        assert!(stderr.contains(part), "{part:?} missing from: {stderr}");
    }
}

fn rusty_rail(env: &[(&str, &str)]) -> Output {
    let base = [("RR_DEVICE", "lo"), ("RR_TARGET_IPS", "10.1.0.1")];
    let env: Vec<_> = base.iter().chain(env).copied().collect();
    with_env(Command::new(BIN), &env)
        .output()
        .expect("running rusty_rail")
}

#[test]
fn an_api_other_machines_can_reach_is_refused_without_a_token() {
    let output = rusty_rail(&[("RR_API", "0.0.0.0:0")]);
    assert_refused(
        &output,
        &[
            "RR_API: 0.0.0.0:0 can be reached from other machines",
            "set RR_API_TOKEN_FILE (or RR_API_TOKEN)",
        ],
    );
}

#[test]
fn the_token_file_is_read_at_start_and_named_when_it_cannot_be() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-token");
    let output = rusty_rail(&[
        ("RR_API", "0.0.0.0:0"),
        ("RR_API_TOKEN_FILE", missing.to_str().unwrap()),
    ]);
    assert_refused(
        &output,
        &[&format!(
            "RR_API_TOKEN_FILE: cannot read {}",
            missing.display()
        )],
    );
    let both = rusty_rail(&[
        ("RR_API_TOKEN", TOKEN),
        ("RR_API_TOKEN_FILE", missing.to_str().unwrap()),
    ]);
    assert_refused(
        &both,
        &["RR_API_TOKEN and RR_API_TOKEN_FILE are both given"],
    );
    let weak = rusty_rail(&[("RR_API_TOKEN", "secret")]);
    assert_refused(&weak, &["RR_API_TOKEN: the token has 6 characters"]);
}

#[test]
fn the_token_is_not_shown_in_help() {
    let output = with_env(Command::new(BIN), &[("RR_API_TOKEN", TOKEN)])
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("RR_API_TOKEN"), "{help}");
    assert!(!help.contains(TOKEN), "{help}");
}

/// A network namespace, deleted (with its links) on drop, also when the
/// test fails.
struct Namespace(String);

impl Namespace {
    fn new(name: &str) -> Self {
        let _ = Command::new("ip").args(["netns", "del", name]).output();
        ip(&["netns", "add", name]);
        Self(name.to_owned())
    }

    /// Runs `args` in the namespace, asserting success.
    fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", &self.0];
        all.extend_from_slice(args);
        ip(&all);
    }

    /// `nft list ruleset` in the namespace.
    fn ruleset(&self) -> String {
        let output = Command::new("ip")
            .args(["netns", "exec", &self.0, "nft", "list", "ruleset"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Runs `f` on a thread inside the namespace.
    fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let file = File::open(format!("/run/netns/{}", self.0)).unwrap();
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    // SAFETY: the descriptor is a live namespace file; setns
                    // changes only this thread's network namespace.
                    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
                    f()
                })
                .join()
                .unwrap()
        })
    }

    fn offloads(&self, interface: &str) -> Offloads {
        self.enter(|| offloads::read(interface).unwrap())
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

fn ip(args: &[&str]) {
    let output = Command::new("ip").args(args).output().unwrap();
    assert!(output.status.success(), "ip {args:?}: {output:?}");
}

#[test]
fn a_connection_table_too_large_for_memory_is_refused_before_the_host_changes() {
    host::skip_unless!(Need::Root, Need::Netns, Need::Tool("nft"));
    let ns = Namespace::new(&format!("rrst-{}", std::process::id()));
    ns.ip(&[
        "link", "add", "rrst0", "type", "veth", "peer", "name", "rrst1",
    ]);
    ns.ip(&["addr", "add", "10.241.0.1/24", "dev", "rrst0"]);
    ns.ip(&["link", "set", "rrst0", "up"]);
    ns.ip(&["link", "set", "rrst1", "up"]);
    // GRO on, so that a balancer that got as far as its offloads would
    // have something to turn off.
    ns.enter(|| {
        offloads::set("rrst0", &[(Offload::Gro, true)])
            .unwrap()
            .keep();
    });
    let offloads_before = ns.offloads("rrst0");
    assert_eq!(offloads_before.gro, Some(true));
    let ruleset_before = ns.ruleset();

    // 2^28 entries of 16 bytes (4 GiB) cannot be mapped under a 3 GiB
    // address-space limit, whatever the machine's memory.
    let mut command = Command::new("ip");
    command.args([
        "netns",
        "exec",
        &ns.0,
        "sh",
        "-c",
        "ulimit -v 3145728 && exec \"$0\"",
        BIN,
    ]);
    let output = with_env(
        command,
        &[
            ("RR_DEVICE", "rrst0"),
            ("RR_TARGET_IPS", "10.241.0.2"),
            ("RR_CONNTRACK_CAPACITY", "268435456"),
            ("RR_WORKERS", "1"),
            ("RR_API", "none"),
            ("RR_LOG", "info"),
        ],
    )
    .output()
    .unwrap();
    assert_refused(
        &output,
        &[
            "RR_CONNTRACK_CAPACITY: ",
            "lower the capacity or free memory",
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("offload changed"), "{stderr}");
    assert!(!stderr.contains("nftables:"), "{stderr}");
    assert_eq!(ns.ruleset(), ruleset_before, "the nftables ruleset changed");
    assert_eq!(ns.offloads("rrst0"), offloads_before, "offloads changed");
}
