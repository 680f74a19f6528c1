//! The balancer's lab: two clients behind a router that tunnels the VIP to
//! the balancers in GRE (`testbed tunnel encap`, with ECMP over several),
//! one or two balancers running the real `rusty_rail`, and up to four
//! servers that decapsulate (`testbed tunnel decap`, the VIP on their tun)
//! and answer clients directly (DSR) with `testbed mconnect --server`,
//! nginx and iperf3.
//!
//! ```text
//!  c1 10.N.1.2 ─┐                  ┌─ lb1 10.N.2.10, lb2 .11 (rusty_rail on eth0)
//!  c2 10.N.1.3 ─┴─ r .1 | .1 (eth1)┼─ s1 10.N.2.21, s2 .22, s3 .23, s4 .24
//!        front 10.N.1.0/24         back 10.N.2.0/24 (bridges {prefix}front, {prefix}back)
//! ```
//!
//! The lab itself is a topology file brought up by `testbed up` and taken
//! down by `testbed down` (see [`Lab::topology`]). Every namespace, process
//! and file belongs to the test that made it and goes when its `Lab` drops,
//! also when the test fails.

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use host::capability::{require, Need};
use host::offloads::{self, Offload};

pub const VIP: &str = "10.99.0.1";

/// How the router hands the balancers traffic for the VIP.
#[derive(Clone, Copy)]
enum Ingress {
    /// In GRE, spread over the balancers (`testbed tunnel encap`).
    Tunnelled,
    /// As plain IP, routed to the one balancer (which runs in VIP mode).
    Routed,
    /// No route: the router learns it from the balancers by BGP (`bgp.rs`),
    /// with BFD on its sessions or not.
    Learned { bfd: bool },
    /// No route yet: the test starts the router's tunnel itself
    /// ([`Lab::start_encap_to`]), to addresses the topology lacks.
    ByTheTest,
}

/// The lab router's AS and the balancers' (all in one, so that their
/// routes are equal for ECMP), and the sessions' hold time in seconds:
/// short, so that a silent balancer goes within a test's patience.
pub const ROUTER_AS: u32 = 65000;
pub const BALANCER_AS: u32 = 65001;
pub const BGP_HOLD_SECONDS: u64 = 3;

/// mconnect's port on every server.
pub const PORT: u16 = 5001;
/// mconnect's HTTP liveness probe on every server (`/healthz`).
pub const PROBE_PORT: u16 = 8080;

pub const RUSTY_RAIL: &str = env!("CARGO_BIN_EXE_rusty_rail");

/// The `testbed` binary, built next to `rusty_rail` by `cargo test --workspace`.
pub fn testbed() -> PathBuf {
    let path = Path::new(RUSTY_RAIL).with_file_name("testbed");
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "testbed", "--bin", "testbed"])
            .status()
            .expect("running cargo build -p testbed");
        assert!(status.success(), "cargo build -p testbed failed");
    }
    path
}

/// Whether the lab (root, a tun device for the tunnel endpoints, namespaces,
/// nftables for the router, curl for the API, ss for readiness) and `tools`
/// are here; reports the skip (`host::capability`) when not.
pub fn can_run(tools: &[&'static str]) -> bool {
    let lab = [
        Need::Root,
        Need::Tun,
        Need::Netns,
        Need::Tool("nft"),
        Need::Tool("curl"),
        Need::Tool("ss"),
    ];
    let needs: Vec<Need> = lab
        .into_iter()
        .chain(tools.iter().map(|&tool| Need::Tool(tool)))
        .collect();
    require(&needs).is_ok()
}

/// Returns from the calling test when the lab, or one of the tools named,
/// is missing (see [`can_run`]).
macro_rules! lab_or_skip {
    ($($tool:expr),* $(,)?) => {
        if !lab::can_run(&[$($tool),*]) {
            return;
        }
    };
}
pub(crate) use lab_or_skip;

/// A running lab.
pub struct Lab {
    pub prefix: String,
    pub net: u8,
    pub servers: usize,
    pub work: tempfile::TempDir,
    children: Vec<Child>,
}

/// One `rusty_rail` process.
pub struct Balancer {
    child: Option<Child>,
    pub log: PathBuf,
    pub out: PathBuf,
}

impl Lab {
    pub fn ns(&self, host: &str) -> String {
        format!("{}{host}", self.prefix)
    }

    pub fn front(&self, host: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, self.net, 1, host)
    }

    pub fn back(&self, host: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, self.net, 2, host)
    }

    pub fn balancer_ip(&self, index: usize) -> Ipv4Addr {
        self.back(9 + index as u8)
    }

    pub fn server_ip(&self, index: usize) -> Ipv4Addr {
        self.back(20 + index as u8)
    }

    /// The lab as a topology file for `testbed up`: `front` (router and
    /// clients) and `back` (router, balancers, servers), the router
    /// forwarding between them.
    pub fn topology(&self, balancers: usize, servers: usize) -> String {
        let mut text = format!(
            "prefix = \"{}\"\n\
             [[network]]\nname = \"front\"\ncidr = \"10.{n}.1.0/24\"\n\
             [[network]]\nname = \"back\"\ncidr = \"10.{n}.2.0/24\"\n\
             [[host]]\nname = \"r\"\nforward = true\n\
             links = [ {{ network = \"front\", address = \"{}\" }}, {{ network = \"back\", address = \"{}\" }} ]\n",
            self.prefix,
            self.front(1),
            self.back(1),
            n = self.net
        );
        let mut host = |name: String, network: &str, address: Ipv4Addr, gateway: Ipv4Addr| {
            let _ = write!(
                text,
                "[[host]]\nname = \"{name}\"\nlinks = [ {{ network = \"{network}\", address = \"{address}\" }} ]\n\
                 routes = [ \"default via {gateway}\" ]\n"
            );
        };
        for c in 1..=2u8 {
            host(format!("c{c}"), "front", self.front(1 + c), self.front(1));
        }
        for b in 1..=balancers {
            host(format!("lb{b}"), "back", self.balancer_ip(b), self.back(1));
        }
        for s in 1..=servers {
            host(format!("s{s}"), "back", self.server_ip(s), self.back(1));
        }
        text
    }

    /// Brings the lab up with `testbed up` from [`topology`](Self::topology),
    /// with `balancers` balancer hosts (not yet running `rusty_rail`) and
    /// `servers` servers, all serving; the router tunnels the VIP to the
    /// balancers (GRE mode).
    pub fn up(prefix: &str, net: u8, balancers: usize, servers: usize) -> Self {
        Self::up_with(prefix, net, balancers, servers, Ingress::Tunnelled)
    }

    /// Like [`up`](Self::up) with one balancer, to which the router routes
    /// the VIP as plain IP: the balancer runs in VIP mode and does the
    /// encapsulating.
    pub fn up_routed(prefix: &str, net: u8, servers: usize) -> Self {
        Self::up_with(prefix, net, 1, servers, Ingress::Routed)
    }

    /// Like [`up`](Self::up) with no way to the VIP yet: the balancers
    /// announce it (or their GRE address) and the router learns it with
    /// BIRD (the topology's `bgp`: ECMP into its kernel, control socket
    /// [`router_bird_socket`](Self::router_bird_socket)).
    pub fn up_unrouted(prefix: &str, net: u8, balancers: usize, servers: usize) -> Self {
        Self::up_with(
            prefix,
            net,
            balancers,
            servers,
            Ingress::Learned { bfd: false },
        )
    }

    /// Like [`up_unrouted`](Self::up_unrouted), the router running BFD on
    /// its sessions (the balancers need `RR_BGP_BFD=1`).
    pub fn up_unrouted_with_bfd(prefix: &str, net: u8, balancers: usize, servers: usize) -> Self {
        Self::up_with(
            prefix,
            net,
            balancers,
            servers,
            Ingress::Learned { bfd: true },
        )
    }

    /// Like [`up`](Self::up) without the router's tunnel: the test starts
    /// it with [`start_encap_to`](Self::start_encap_to) once the addresses
    /// it goes to exist (IPv6 ones: the topology is IPv4 only).
    pub fn up_without_tunnel(prefix: &str, net: u8, balancers: usize, servers: usize) -> Self {
        Self::up_with(prefix, net, balancers, servers, Ingress::ByTheTest)
    }

    fn up_with(prefix: &str, net: u8, balancers: usize, servers: usize, ingress: Ingress) -> Self {
        let mut lab = Self {
            prefix: prefix.to_owned(),
            net,
            servers,
            work: tempfile::tempdir().expect("work dir"),
            children: Vec::new(),
        };
        let testbed = testbed();
        let testbed = testbed.to_str().unwrap();
        // A lab a crashed earlier run left behind goes first.
        let _ = Command::new(testbed)
            .args(["cleanup", "--prefix", prefix])
            .output();
        let file = lab.work.path().join("lab.toml");
        let mut topology = lab.topology(balancers, servers);
        if let Ingress::Learned { bfd } = ingress {
            let peers: Vec<String> = (1..=balancers)
                .map(|b| format!("\"{}:{BALANCER_AS}\"", lab.balancer_ip(b)))
                .collect();
            topology = topology.replacen(
                "name = \"r\"\nforward = true\n",
                &format!(
                    "name = \"r\"\nforward = true\nbgp = {{ as = {ROUTER_AS}, peers = [ {} ], hold = {BGP_HOLD_SECONDS}, bfd = {bfd} }}\n",
                    peers.join(", ")
                ),
                1,
            );
        }
        fs::write(&file, topology).expect("topology file");
        let hosts_dir = lab.work.path().join("hosts");
        Self::run(&[
            testbed,
            "up",
            file.to_str().unwrap(),
            "--work-dir",
            hosts_dir.to_str().unwrap(),
        ]);
        match ingress {
            Ingress::Tunnelled => {
                let remotes: Vec<String> = (1..=balancers)
                    .map(|b| lab.balancer_ip(b).to_string())
                    .collect();
                lab.write_remotes(&remotes);
                let remotes_file = lab.work.path().join("remotes");
                lab.start_encap(
                    balancers,
                    &["--remotes-file", remotes_file.to_str().unwrap()],
                );
            }
            Ingress::Routed => {
                let via = lab.balancer_ip(1).to_string();
                let route = ["ip", "route", "replace", &format!("{VIP}/32"), "via", &via];
                let output = lab.exec("r", &route);
                assert!(output.status.success(), "r: {route:?}: {output:?}");
                // The router forwards the clients' packets as they left
                // them, their TCP checksums left to offload (veth). A real
                // wire carries them finished, and so must this one: under
                // AF_XDP the balancer sees only the bytes, not the skb's
                // note that the checksum is unfinished.
                lab.set_offloads_on("r", "eth1", &[(Offload::TxChecksum, false)]);
            }
            Ingress::Learned { .. } => {
                lab.set_offloads_on("r", "eth1", &[(Offload::TxChecksum, false)]);
            }
            Ingress::ByTheTest => {}
        }
        for s in 1..=servers {
            lab.start_server(s);
        }
        for s in 1..=servers {
            lab.wait_listening(&format!("s{s}"), PORT);
            lab.wait_listening(&format!("s{s}"), PROBE_PORT);
        }
        lab
    }

    /// The control socket of the router's BIRD (`up_unrouted`).
    pub fn router_bird_socket(&self) -> PathBuf {
        self.work.path().join("hosts").join("r.bird.ctl")
    }

    /// Starts the router's GRE tunnel toward balancers 1 to `balancers`,
    /// which of them in use decided by `group` (`--remotes-file FILE` or
    /// `--follow-routes`).
    /// Returns its log, where it says each ECMP group it changes to.
    pub fn start_encap(&mut self, balancers: usize, group: &[&str]) -> PathBuf {
        let remotes: Vec<String> = (1..=balancers)
            .map(|b| self.balancer_ip(b).to_string())
            .collect();
        self.start_encap_to(&remotes, group)
    }

    /// Starts the router's GRE tunnel of the VIP toward `remotes` (IPv4
    /// addresses for GRE over IPv4, IPv6 ones for GRE over IPv6), with
    /// `more` options. Returns its log.
    pub fn start_encap_to(&mut self, remotes: &[String], more: &[&str]) -> PathBuf {
        let testbed = testbed();
        let remotes = remotes.join(",");
        let mut args = vec![
            testbed.to_str().unwrap(),
            "tunnel",
            "encap",
            "--tun",
            "gre0",
            "--vip",
            VIP,
            "--remote",
            &remotes,
        ];
        args.extend_from_slice(more);
        self.spawn("r", "encap", &args)
    }

    /// The balancers the router spreads flows over (ECMP), as the router's
    /// routing daemon would learn them; the router re-reads the file.
    pub fn write_remotes(&self, remotes: &[String]) {
        let path = self.work.path().join("remotes");
        let temporary = self.work.path().join("remotes.tmp");
        fs::write(&temporary, remotes.join("\n") + "\n").expect("remotes file");
        fs::rename(&temporary, &path).expect("remotes file");
    }

    /// Starts server `s`'s GRE endpoint and mconnect server (named `s{s}`).
    pub fn start_server(&mut self, s: usize) {
        let host = format!("s{s}");
        let testbed = testbed();
        let testbed = testbed.to_str().unwrap();
        self.spawn(
            &host,
            "decap",
            &[testbed, "tunnel", "decap", "--tun", "gre0", "--vip", VIP],
        );
        let probe = format!("0.0.0.0:{PROBE_PORT}");
        let listen = format!("0.0.0.0:{PORT}");
        self.spawn_mconnect_server(&host, "mconnect", &listen, &host, Some(&probe));
    }

    /// Starts an mconnect server in `host` (its log `{host}-{log}.log`)
    /// listening on `listen`, answering with `name`, with an HTTP probe on
    /// `probe` if given.
    pub fn spawn_mconnect_server(
        &mut self,
        host: &str,
        log: &str,
        listen: &str,
        name: &str,
        probe: Option<&str>,
    ) {
        let testbed = testbed();
        let mut args = vec![
            testbed.to_str().unwrap(),
            "mconnect",
            "--server",
            "--address",
            listen,
            "--name",
            name,
        ];
        if let Some(probe) = probe {
            args.extend(["--probe", probe]);
        }
        self.spawn(host, log, &args);
    }

    /// Sends SIGHUP to the `rusty_rail` in balancer 1's namespace: reload
    /// its configuration file.
    pub fn sighup_balancer(&self) {
        let pids = pids_in(&self.ns("lb1"));
        assert!(!pids.is_empty(), "no rusty_rail in lb1");
        for pid in pids {
            // SAFETY: kill(2) with a pid read from the lab's own namespace.
            unsafe { libc::kill(pid, libc::SIGHUP) };
        }
    }

    /// Makes server `s` answer on `vip` too (the lab's servers hold only
    /// the lab's VIP): a second GRE endpoint whose tun `tun` holds `vip`.
    /// Each endpoint drops the inner packets for the other's VIP.
    pub fn serve_vip_on(&mut self, s: usize, vip: &str, tun: &str) {
        let testbed = testbed();
        let testbed = testbed.to_str().unwrap();
        let host = format!("s{s}");
        let args = [testbed, "tunnel", "decap", "--tun", tun, "--vip", vip];
        self.spawn(&host, &format!("decap-{tun}"), &args);
    }

    /// Routes `vip` from the router to balancer 1 as plain IP, as
    /// [`up_routed`](Self::up_routed) routes the lab's VIP.
    pub fn route_to_balancer(&self, vip: &str) {
        let via = self.balancer_ip(1).to_string();
        let route = ["ip", "route", "replace", &format!("{vip}/32"), "via", &via];
        let output = self.exec("r", &route);
        assert!(output.status.success(), "r: {route:?}: {output:?}");
    }

    /// Runs a command; panics (failing the test, which still cleans up) on failure.
    pub fn run(args: &[&str]) -> String {
        let output = Command::new(args[0])
            .args(&args[1..])
            .output()
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Runs a command in `host`'s namespace and returns its output, whatever its status.
    pub fn exec(&self, host: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.ns(host)])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{host}: {args:?}: {e}"))
    }

    /// Adds IPv6 `address` (with its prefix length, such as
    /// `fd00:195:2::21/64`) to `host`'s `eth0`, usable at once (no
    /// duplicate address detection). The lab's topology is IPv4 only.
    pub fn add_ipv6_address(&self, host: &str, address: &str) {
        self.add_ipv6_address_on(host, "eth0", address);
    }

    /// Like [`add_ipv6_address`](Self::add_ipv6_address) on `device` (the
    /// router's back network is `eth1`).
    pub fn add_ipv6_address_on(&self, host: &str, device: &str, address: &str) {
        let add = ["ip", "-6", "addr", "add", address, "dev", device, "nodad"];
        let output = self.exec(host, &add);
        assert!(output.status.success(), "{host}: {add:?}: {output:?}");
    }

    /// Starts a long-running process in `host`, output to `{host}-{name}.log`.
    pub fn spawn(&mut self, host: &str, name: &str, args: &[&str]) -> PathBuf {
        let log = self.work.path().join(format!("{host}-{name}.log"));
        let file = fs::File::create(&log).expect("log file");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(host)])
            .args(args)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("{host}: {args:?}: {e}"));
        self.children.push(child);
        log
    }

    /// Waits (at most 10 s) until something listens on TCP `port` in `host`.
    pub fn wait_listening(&self, host: &str, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let filter = format!("sport = :{port}");
        while Instant::now() < deadline {
            let out = self.exec(host, &["ss", "-Hltn", &filter]);
            if !out.stdout.is_empty() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{host}: nothing listens on port {port} after 10 s");
    }

    /// Starts `rusty_rail` on balancer `index` with `env` added to the lab's
    /// settings, and waits until it runs.
    pub fn start_balancer(&self, index: usize, env: &[(&str, String)]) -> Balancer {
        self.try_start_balancer(index, env)
            .unwrap_or_else(|log| panic!("rusty_rail exited early: {log}"))
    }

    /// Starts balancer `index` like [`start_balancer`](Self::start_balancer),
    /// or returns its log when it exits during start-up (a backend this
    /// machine lacks, for a test that then skips).
    pub fn try_start_balancer(
        &self,
        index: usize,
        env: &[(&str, String)],
    ) -> Result<Balancer, String> {
        let host = format!("lb{index}");
        let log = self.work.path().join(format!("{host}-rusty_rail.log"));
        let out = self.work.path().join(format!("{host}-rusty_rail.out"));
        let targets: Vec<String> = (1..=self.servers.min(3))
            .map(|s| self.server_ip(s).to_string())
            .collect();
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.ns(&host), RUSTY_RAIL])
            .env("RR_DEVICE", "eth0")
            .env("RR_TARGET_IPS", targets.join(";"))
            .env("RR_CONNTRACK_CAPACITY", "65536")
            .env("RR_LOG", "info")
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out).expect("out file"))
            .stderr(fs::File::create(&log).expect("log file"));
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().expect("starting rusty_rail");
        let mut balancer = Balancer {
            child: Some(child),
            log,
            out,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            let text = balancer.log_text();
            if text.contains("running; SIGINT or SIGTERM stops") {
                assert_backend_as_asked(env, &text);
                return Ok(balancer);
            }
            if let Some(child) = balancer.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!("({status}) {}", balancer.log_text()));
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "rusty_rail did not start within 15 s: {}",
            balancer.log_text()
        );
    }

    /// Runs `testbed mconnect` in `host` toward the VIP and returns its JSON report.
    pub fn mconnect(&self, host: &str, args: &[&str]) -> serde_json::Value {
        self.mconnect_to(host, &format!("{VIP}:{PORT}"), args)
    }

    /// Runs `testbed mconnect` in `host` toward `address` (`ip:port`, such
    /// as a VIP a test adds) and returns its JSON report.
    pub fn mconnect_to(&self, host: &str, address: &str, args: &[&str]) -> serde_json::Value {
        let testbed = testbed();
        let mut all = vec![
            testbed.to_str().unwrap(),
            "mconnect",
            "--address",
            address,
            "--output",
            "json",
        ];
        all.extend_from_slice(args);
        let output = self.exec(host, &all);
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "mconnect {args:?}: {e}: {} {}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
        })
    }

    /// Calls balancer `lb`'s HTTP API (on its namespace's loopback) and
    /// returns the status code and the JSON body.
    pub fn api(
        &self,
        lb: usize,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> (u16, serde_json::Value) {
        let url = format!("http://127.0.0.1:9700{path}");
        let mut args = vec![
            "curl",
            "-sS",
            "--max-time",
            "5",
            "-X",
            method,
            "-w",
            "\n%{http_code}",
            &url,
        ];
        if let Some(body) = body {
            args.extend_from_slice(&["-H", "content-type: application/json", "-d", body]);
        }
        let output = self.exec(&format!("lb{lb}"), &args);
        let text = String::from_utf8_lossy(&output.stdout);
        let (json, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        let code = code.trim().parse().unwrap_or_else(|_| {
            panic!(
                "curl {method} {path}: {text} {}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
        (
            code,
            serde_json::from_str(json).unwrap_or(serde_json::Value::Null),
        )
    }

    /// Balancer `lb`'s view of backend `ip` (`GET /backends`), if listed.
    pub fn backend_view(&self, lb: usize, ip: impl Into<IpAddr>) -> Option<serde_json::Value> {
        let ip: IpAddr = ip.into();
        let (code, body) = self.api(lb, "GET", "/backends", None);
        assert_eq!(code, 200, "{body}");
        let list = body.get("backends").unwrap_or(&body).as_array()?.clone();
        list.into_iter().find(|b| b["ip"] == ip.to_string())
    }

    /// Waits (at most `limit`) until `check` holds for backend `ip`; returns how long it took.
    pub fn wait_backend(
        &self,
        lb: usize,
        ip: impl Into<IpAddr>,
        limit: Duration,
        check: impl Fn(&serde_json::Value) -> bool,
    ) -> Duration {
        let ip: IpAddr = ip.into();
        let started = Instant::now();
        loop {
            if self.backend_view(lb, ip).as_ref().is_some_and(&check) {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < limit,
                "backend {ip} not as expected after {limit:?}: {:?}",
                self.backend_view(lb, ip)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills server `s`'s processes (the host stays up: a crashed service).
    pub fn kill_server(&self, s: usize) {
        for pid in pids_in(&self.ns(&format!("s{s}"))) {
            // SAFETY: kill has no memory preconditions; the pid runs in our namespace.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }

    /// nginx on server `s`, answering `nginx on s{s}` on the VIP's port 80.
    pub fn start_nginx(&mut self, s: usize) {
        let dir = self.work.path().join(format!("nginx-s{s}"));
        fs::create_dir_all(&dir).expect("nginx dir");
        let d = dir.display();
        let conf = format!(
            "pid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\nhttp {{\n access_log off;\n \
             client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;\n \
             uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n \
             server {{ listen {VIP}:80; location / {{ return 200 \"nginx on s{s}\\n\"; }} }}\n}}\n"
        );
        let path = dir.join("nginx.conf");
        fs::write(&path, conf).expect("nginx.conf");
        self.spawn(
            &format!("s{s}"),
            "nginx",
            &["nginx", "-c", path.to_str().unwrap(), "-g", "daemon off;"],
        );
        self.wait_listening(&format!("s{s}"), 80);
    }

    /// An iperf3 server on server `s`, bound to the VIP.
    pub fn start_iperf3(&mut self, s: usize) {
        self.spawn(&format!("s{s}"), "iperf3", &["iperf3", "-s", "-B", VIP]);
        self.wait_listening(&format!("s{s}"), 5201);
    }

    /// What a host's network looks like: addresses, routes, nftables rules
    /// and the offloads of `eth0`.
    pub fn host_snapshot(&self, host: &str) -> String {
        let mut text = String::new();
        for args in [
            &["ip", "-4", "-o", "addr"][..],
            &["ip", "route"],
            &["nft", "list", "ruleset"],
        ] {
            text.push_str(&String::from_utf8_lossy(&self.exec(host, args).stdout));
        }
        let offloads = in_namespace(&self.ns(host), || offloads::read("eth0"));
        let _ = writeln!(text, "{offloads:?}");
        text
    }

    /// Sets offloads of `eth0` in `host`, for good.
    pub fn set_offloads(&self, host: &str, wanted: &[(Offload, bool)]) {
        self.set_offloads_on(host, "eth0", wanted);
    }

    /// Sets offloads of `device` in `host`, for good.
    pub fn set_offloads_on(&self, host: &str, device: &'static str, wanted: &[(Offload, bool)]) {
        let wanted = wanted.to_vec();
        in_namespace(&self.ns(host), move || {
            offloads::set(device, &wanted)
                .expect("setting offloads")
                .keep();
        });
    }

    /// Starts `mconnect --keep --duration` in `host` with `n` connections,
    /// events to `events`; [`HoldRun::finish`] waits for its report.
    pub fn spawn_mconnect_hold(
        &self,
        host: &str,
        n: usize,
        duration: Duration,
        events: &Path,
    ) -> HoldRun {
        let testbed = testbed();
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns(host),
                testbed.to_str().unwrap(),
                "mconnect",
            ])
            .args([
                "--address",
                &format!("{VIP}:{PORT}"),
                "--output",
                "json",
                "--keep",
            ])
            .args([
                "--nconn",
                &n.to_string(),
                "--duration",
                &format!("{}ms", duration.as_millis()),
            ])
            .args(["--interval", "500ms", "--events", events.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mconnect --keep");
        HoldRun { child }
    }
}

/// Runs `f` on a thread inside namespace `ns` and returns its result.
pub fn in_namespace<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let netns = fs::File::open(&path).expect("namespace file");
        // SAFETY: setns on a namespace fd changes only this thread's namespace.
        let rc =
            unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&netns), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("namespace thread")
}

/// Process ids in namespace `ns`.
pub fn pids_in(ns: &str) -> Vec<i32> {
    let output = Command::new("ip").args(["netns", "pids", ns]).output();
    output
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        // `testbed down` stops what runs in the namespaces, then removes
        // them, the bridges and the state file.
        let down = Command::new(testbed())
            .args(["down", "--prefix", &self.prefix])
            .output();
        if let Some(output) = down.ok().filter(|o| !o.status.success()) {
            let _ = writeln!(
                std::io::stderr(),
                "testbed down: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        if std::thread::panicking() {
            // Keep the logs of a failed test where the failure message can point.
            let kept = self.work.path().with_extension("kept");
            let _ = fs::rename(self.work.path(), &kept);
            let _ = writeln!(std::io::stderr(), "lab logs kept in {}", kept.display());
        }
    }
}

/// A running `mconnect --keep --duration`.
pub struct HoldRun {
    child: Child,
}

impl HoldRun {
    /// Waits for the run to end and returns its JSON report.
    pub fn finish(self) -> serde_json::Value {
        let output = self.child.wait_with_output().expect("mconnect --keep");
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "mconnect --keep: {e}: {} {}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
        })
    }
}

/// A suite run with `RR_IO` set to one backend (as scripts/test.sh reruns
/// it) must run on that backend, unless a test names its own.
fn assert_backend_as_asked(env: &[(&str, String)], log: &str) {
    if env.iter().any(|(key, _)| *key == "RR_IO") {
        return;
    }
    let Ok(asked) = std::env::var("RR_IO") else {
        return;
    };
    let marker = match asked.as_str() {
        "af_packet" => "packet I/O: af_packet",
        "af_xdp" => "packet I/O: af_xdp",
        "netmap-emulated" => "packet I/O: netmap on the emulated port",
        _ => return,
    };
    assert!(log.contains(marker), "RR_IO={asked}, yet: {log}");
}

impl Balancer {
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// True when it runs on `AF_XDP` (`RR_IO=af_xdp`, or `auto` where the
    /// kernel allows): the suite runs under either backend, and the few
    /// facts that differ (what the balancer sees of the host's traffic) are
    /// asked of this.
    pub fn on_af_xdp(&self) -> bool {
        self.log_text().contains("packet I/O: af_xdp")
    }

    /// Stops it with SIGTERM and returns what it printed (the final counters).
    pub fn stop(mut self) -> String {
        let mut child = self.child.take().expect("running");
        terminate(&child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                assert!(
                    status.success(),
                    "rusty_rail exited with {status}: {}",
                    self.log_text()
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "rusty_rail ignored SIGTERM for 10 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Stops it with SIGTERM and, once its BGP grace period has begun, a
    /// second SIGTERM, which must end the grace period at once; returns
    /// what it printed.
    pub fn stop_cutting_grace(mut self) -> String {
        let mut child = self.child.take().expect("running");
        terminate(&child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.log_text().contains("more before stopping") {
            assert!(
                Instant::now() < deadline,
                "no grace period began within 10 s of SIGTERM: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        terminate(&child);
        let status = child.wait().expect("waiting for rusty_rail");
        let log = self.log_text();
        assert!(status.success(), "rusty_rail exited with {status}: {log}");
        assert!(
            log.contains("second SIGTERM during the grace period: stopping now"),
            "{log}"
        );
        fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Kills it with SIGKILL (a crashed balancer).
    pub fn kill(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&child);
            let _ = child.wait();
        }
    }
}

/// Sends SIGTERM to a child (never to a process group: pids that do not fit
/// a `pid_t` are skipped).
fn terminate(child: &Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill has no memory preconditions; the pid is our child's.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
}
