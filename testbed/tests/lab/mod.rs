//! A two-namespace lab for the mconnect tests: a client namespace and a server
//! namespace joined by one veth pair, each test with its own name prefix and subnets
//! (`10.201.N.0/24`, `fd00:201:N::/64`) so tests run in parallel. Everything is removed
//! on drop, also when the test fails; leftovers of the same prefix are removed first.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use host::capability::Need;

pub const TESTBED: &str = env!("CARGO_BIN_EXE_testbed");
const READY_WAIT: Duration = Duration::from_secs(10);

/// The lab of one test. Client namespace `{prefix}c`, server namespace `{prefix}s`.
pub struct Lab {
    prefix: String,
    pub subnet: u8,
    servers: Vec<Child>,
    scratch: PathBuf,
}

/// Runs a setup command line (split at spaces); panics, failing the test (which still
/// cleans up), when it fails.
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

impl Lab {
    /// Builds the lab, or reports the skip (`host::capability`) and returns
    /// `None` where it cannot run.
    pub fn start(prefix: &str, subnet: u8, needs_nft: bool) -> Option<Self> {
        host::skip_unless!(Need::Root, Need::Netns);
        if needs_nft {
            host::skip_unless!(Need::Tool("nft"));
        }
        let scratch = std::env::temp_dir().join(format!("{prefix}{}", std::process::id()));
        std::fs::create_dir_all(&scratch).unwrap();
        let lab = Self {
            prefix: prefix.to_owned(),
            subnet,
            servers: Vec::new(),
            scratch,
        };
        lab.remove_namespaces();
        let (c, s) = (lab.client_ns(), lab.server_ns());
        for ns in [&c, &s] {
            run(&format!("ip netns add {ns}"));
            run(&format!("ip -n {ns} link set lo up"));
            // Addresses usable at once: no duplicate address detection.
            run(&format!(
                "ip netns exec {ns} sysctl -qw net.ipv6.conf.all.accept_dad=0"
            ));
            run(&format!(
                "ip netns exec {ns} sysctl -qw net.ipv6.conf.default.accept_dad=0"
            ));
        }
        run(&format!(
            "ip link add c0 netns {c} type veth peer name s0 netns {s}"
        ));
        lab.addr(&c, &lab.v4(1), 24);
        lab.addr(&c, &lab.v6(1), 64);
        lab.addr(&s, &lab.v4(2), 24);
        lab.addr(&s, &lab.v6(2), 64);
        run(&format!("ip -n {c} link set c0 up"));
        run(&format!("ip -n {s} link set s0 up"));
        Some(lab)
    }

    pub fn client_ns(&self) -> String {
        format!("{}c", self.prefix)
    }

    pub fn server_ns(&self) -> String {
        format!("{}s", self.prefix)
    }

    /// `10.201.N.host`
    pub fn v4(&self, host: u8) -> String {
        format!("10.201.{}.{host}", self.subnet)
    }

    /// `fd00:201:N::host` (host written in hex digits as given)
    pub fn v6(&self, host: u8) -> String {
        format!("fd00:201:{}::{host}", self.subnet)
    }

    /// Adds `address/len` on the namespace's veth.
    pub fn addr(&self, ns: &str, address: &str, len: u8) {
        let dev = if ns == self.client_ns() { "c0" } else { "s0" };
        run(&format!("ip -n {ns} addr add {address}/{len} dev {dev}"));
    }

    /// Runs `nft -f -` with `rules` in the server namespace.
    pub fn nft(&self, rules: &str) {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.server_ns(), "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), rules.as_bytes()).unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "nft: {}\n{rules}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Starts `testbed mconnect --server ARGS` (split at spaces) in the server namespace
    /// and waits until it listens. Its stdout goes to the returned file. Returns its
    /// index for `stop_server`.
    pub fn start_server(&mut self, args: &str) -> (usize, PathBuf) {
        let index = self.servers.len();
        let stdout_path = self.scratch.join(format!("server{index}.out"));
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.server_ns(),
                TESTBED,
                "mconnect",
                "--server",
            ])
            .args(args.split_whitespace())
            .stdout(File::create(&stdout_path).unwrap())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        self.servers.push(child);
        let (lines, ready) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        loop {
            match ready.recv_timeout(READY_WAIT) {
                Ok(line) if line.contains("listening") => return (index, stdout_path),
                Ok(line) => eprintln!("server: {line}"),
                Err(error) => {
                    panic!("server `{args}` did not start within {READY_WAIT:?}: {error}")
                }
            }
        }
    }

    /// Kills a server at once (SIGKILL: its connections are closed by the kernel).
    pub fn stop_server(&mut self, index: usize) {
        let child = &mut self.servers[index];
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Runs `testbed mconnect ARGS` (split at spaces) in the client namespace, killed
    /// after `limit`.
    pub fn client(&self, args: &str, limit: Duration) -> Output {
        self.spawn_client(args).finish(limit)
    }

    /// Starts `testbed mconnect ARGS` in the client namespace; see [`ClientRun::finish`].
    pub fn spawn_client(&self, args: &str) -> ClientRun {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.client_ns(), TESTBED, "mconnect"])
            .args(args.split_whitespace())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        ClientRun {
            child: Some(child),
            args: args.to_owned(),
        }
    }

    /// A file in the test's scratch directory.
    pub fn scratch_file(&self, name: &str) -> PathBuf {
        self.scratch.join(name)
    }

    fn remove_namespaces(&self) {
        for name in testbed::lab::netns::list(&self.prefix) {
            let _ = testbed::lab::netns::delete(&name);
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.servers {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.remove_namespaces();
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

/// A client started in the background.
pub struct ClientRun {
    child: Option<Child>,
    args: String,
}

impl ClientRun {
    /// Waits for the client's end, killing it (and failing) after `limit`.
    pub fn finish(mut self, limit: Duration) -> Output {
        let child = self.child.take().unwrap();
        let pid = child.id();
        let (done, result) = mpsc::channel();
        thread::spawn(move || {
            let _ = done.send(child.wait_with_output());
        });
        let Ok(output) = result.recv_timeout(limit) else {
            let pid = libc::pid_t::try_from(pid).unwrap();
            // SAFETY: kill has no memory effects; pid is our child, not yet reaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("client `{}` still running after {limit:?}", self.args);
        };
        output.unwrap()
    }
}

impl Drop for ClientRun {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `work` on a thread that has entered the network namespace `ns`.
pub fn in_namespace<T: Send + 'static>(ns: &str, work: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/var/run/netns/{ns}");
    thread::spawn(move || {
        let file = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: the descriptor is a namespace file that stays open for the call;
        // setns only changes this thread's network namespace.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        work()
    })
    .join()
    .unwrap()
}

/// A listener in `ns` that accepts connections and never writes: returns its address
/// and a sender that stops it when dropped or sent to.
pub fn silent_server(ns: &str, address: SocketAddr) -> mpsc::Sender<()> {
    let (stop, stopped) = mpsc::channel::<()>();
    let (bound, is_bound) = mpsc::channel();
    let path = format!("/var/run/netns/{ns}");
    thread::spawn(move || {
        let file = File::open(&path).unwrap();
        // SAFETY: as in `in_namespace`.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0);
        let listener = TcpListener::bind(address).unwrap();
        listener.set_nonblocking(true).unwrap();
        bound.send(()).unwrap();
        let mut held = Vec::new();
        // Bounded: the test stops it, and it gives up after 60 s on its own.
        for _ in 0..6_000 {
            if let Ok((stream, _)) = listener.accept() {
                held.push(stream);
            }
            match stopped.recv_timeout(Duration::from_millis(10)) {
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                _ => return,
            }
        }
    });
    is_bound.recv_timeout(READY_WAIT).unwrap();
    stop
}

/// Parses the peers of `accepted PEER` lines of a server started with `--log-connections`.
pub fn accepted_peers(log: &std::path::Path) -> Vec<IpAddr> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .filter_map(|line| line.strip_prefix("accepted "))
        .map(|peer| peer.parse::<SocketAddr>().unwrap().ip())
        .collect()
}
