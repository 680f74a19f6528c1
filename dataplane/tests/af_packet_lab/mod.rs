//! A veth pair between two fresh network namespaces, for the `AF_PACKET`
//! tests: namespace `{prefix}a` holds `a0`, namespace `{prefix}b` holds `b0`.
//! Each test has its own prefix (`rrap1-`, `rrap2-`, ...); leftovers of the
//! prefix are removed first, and everything is removed on drop, also when the
//! test fails (deleting a namespace deletes its end of the pair, and with it
//! the pair).

#![allow(dead_code)] // Each test binary uses its own part of the lab.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::thread;

use dataplane::io::af_packet::{AfPacketConfig, AfPacketIo};
use host::capability::Need;

/// The lab of one test.
pub struct VethLab {
    prefix: String,
}

/// Runs a setup command line (split at spaces); panics, failing the test
/// (which still cleans up), when it fails.
pub fn run(line: &str) {
    let mut words = line.split_whitespace();
    let program = words.next().unwrap();
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

impl VethLab {
    /// Builds the lab, or reports the skip (`host::capability`) and returns
    /// `None` where it cannot run.
    pub fn start(prefix: &str) -> Option<Self> {
        host::skip_unless!(Need::Root, Need::Netns);
        let lab = Self {
            prefix: prefix.to_owned(),
        };
        lab.remove();
        let (a, b) = (lab.ns_a(), lab.ns_b());
        for ns in [&a, &b] {
            run(&format!("ip netns add {ns}"));
            // No IPv6 chatter (router solicitations, MLD) on the test link.
            run(&format!(
                "ip netns exec {ns} sysctl -qw net.ipv6.conf.default.disable_ipv6=1"
            ));
        }
        run(&format!(
            "ip link add a0 netns {a} type veth peer name b0 netns {b}"
        ));
        run(&format!("ip -n {a} link set a0 up"));
        run(&format!("ip -n {b} link set b0 up"));
        Some(lab)
    }

    pub fn ns_a(&self) -> String {
        format!("{}a", self.prefix)
    }

    pub fn ns_b(&self) -> String {
        format!("{}b", self.prefix)
    }

    /// Opens `config` on a thread inside namespace `ns`: the socket belongs to
    /// the namespace it was created in, wherever it is used afterwards.
    pub fn open(&self, ns: &str, config: AfPacketConfig) -> AfPacketIo {
        assert!(ns.starts_with(&self.prefix), "{ns} is not this lab's");
        in_namespace(ns, move || AfPacketIo::open(&config))
            .unwrap_or_else(|e| panic!("open in {ns}: {e}"))
    }

    fn remove(&self) {
        for ns in [self.ns_a(), self.ns_b()] {
            let _ = Command::new("ip")
                .args(["netns", "del", &ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for VethLab {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Runs `work` on a thread that has entered the network namespace `ns`.
pub fn in_namespace<T: Send + 'static>(ns: &str, work: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/var/run/netns/{ns}");
    thread::spawn(move || {
        let file = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: the descriptor is a namespace file that stays open for the
        // call; setns only changes this thread's network namespace.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        drop(file);
        work()
    })
    .join()
    .unwrap()
}
