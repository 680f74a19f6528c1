//! The system under test in a run's lab: how each kind is started, where
//! clients send, and what each fault action means for it.
//!
//! - `rusty_rail`: the router tunnels the VIP in GRE to the balancers
//!   (`testbed tunnel encap`, ECMP over a remotes file its "routing daemon"
//!   rewrites), each balancer runs `rusty_rail` on `eth0`, the servers
//!   decapsulate (`testbed tunnel decap`) and answer directly (DSR).
//!   Backend changes go through its HTTP API with a per-run token.
//! - `haproxy`: the router routes the VIP (ECMP with an L4 hash over
//!   several) to balancers holding it on `lo`, each running `HAProxy` in TCP
//!   mode with the servers as a backend (`retries 3`, `option redispatch`:
//!   what a production configuration sets); changes go through its runtime
//!   API socket. Its servers carry `check inter 1s fall 3 rise 2` (`rusty_rail`'s
//!   `RR_HEALTH_*` defaults; give `rusty_rail` `RR_HEALTH` to compare alike).
//! - `none`: clients connect straight to server 1; balancer and backend-set
//!   actions do not apply and are recorded as skipped.
//!
//! With iperf3 streams every server also runs an iperf3 server per stream
//! port (restarted with it), and `HAProxy` carries those ports too, balancing
//! by source address: iperf3's control and data connections must meet on
//! one server, and round robin alternates them over the servers.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::file::{Ingress, SystemEntry, SystemKind};
use super::lab::{RunLab, PORT};
use super::schedule::Action;

/// How long a balancer may take to start.
const START_LIMIT: Duration = Duration::from_secs(15);
/// How long BGP balancers may take until the router routes to them all
/// (BIRD's connect retry is 1 s on the router, the session then opens).
const BGP_START_LIMIT: Duration = Duration::from_secs(20);
/// The line `rusty_rail` logs once it forwards.
const RUSTY_RAIL_READY: &str = "running; SIGINT or SIGTERM stops";

/// A started system and what it needs to act on itself.
#[derive(Debug)]
pub struct System {
    pub entry: SystemEntry,
    /// The `testbed` program (tunnel endpoints, mconnect).
    testbed: PathBuf,
    /// `rusty_rail` or `haproxy`.
    program: PathBuf,
    /// The run folder (configs, runtime sockets' names).
    dir: PathBuf,
    /// The API token of this run's balancers.
    token: String,
    /// The balancers the router sends to.
    announced: Vec<usize>,
    /// The servers in the balancers' set at start.
    initial_set: Vec<usize>,
    /// Balancers killed and not restarted.
    killed_balancers: Vec<usize>,
    /// With a `toxic` fault: the API body that adds its toxic.
    pub toxic: Option<String>,
    /// A link fault switched on at its time (its emulator held until then).
    pub timed_link: bool,
    /// BGP mode: how long after its kill the router stopped routing to each
    /// killed balancer.
    withdrawn_after: BTreeMap<usize, Duration>,
    /// `HAProxy`'s runtime sockets, removed with the system.
    sockets: Vec<PathBuf>,
    /// The iperf3 streams' ports (see [`super::streams`]).
    stream_ports: Vec<u16>,
}

impl Drop for System {
    fn drop(&mut self) {
        for socket in &self.sockets {
            let _ = std::fs::remove_file(socket);
        }
    }
}

/// What an action did: applied, or skipped because it means nothing for
/// this system (no balancer to kill in a run without one).
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    Done,
    Skipped(String),
}

/// Finds `name` next to `testbed`, else on PATH.
pub fn find_program(
    name: &str,
    configured: Option<&str>,
    testbed: &Path,
) -> Result<PathBuf, String> {
    if let Some(path) = configured {
        return Ok(PathBuf::from(path));
    }
    let sibling = testbed.with_file_name(name);
    if sibling.is_file() {
        return Ok(sibling);
    }
    host::capability::on_path(name).ok_or_else(|| {
        format!(
            "`{name}` is neither next to {} nor on PATH; build it (cargo build -p control) \
             or install it (scripts/ensure-tools.sh), or set the system's `binary`",
            testbed.display()
        )
    })
}

impl System {
    /// Starts `entry` in `lab`: router side, servers, balancers; server
    /// `held_out` (a `backend_add` fault's) starts outside the set; the
    /// servers serve iperf3 on `stream_ports`.
    pub fn start(
        entry: &SystemEntry,
        lab: &mut RunLab,
        testbed: &Path,
        dir: &Path,
        token: String,
        held_out: Option<usize>,
        stream_ports: &[u16],
    ) -> Result<Self, String> {
        let program = match entry.kind {
            SystemKind::RustyRail => find_program("rusty_rail", entry.binary.as_deref(), testbed)?,
            SystemKind::Haproxy => find_program("haproxy", entry.binary.as_deref(), testbed)?,
            SystemKind::None => PathBuf::new(),
        };
        let balancers = match entry.kind {
            SystemKind::None => Vec::new(),
            _ => (1..=lab.topology.balancers).collect(),
        };
        let mut system = Self {
            entry: entry.clone(),
            testbed: testbed.to_owned(),
            program,
            dir: dir.to_owned(),
            token,
            announced: Vec::new(),
            initial_set: (1..=lab.topology.servers)
                .filter(|&s| Some(s) != held_out)
                .collect(),
            killed_balancers: Vec::new(),
            toxic: None,
            stream_ports: stream_ports.to_vec(),
            timed_link: false,
            withdrawn_after: BTreeMap::new(),
            sockets: Vec::new(),
        };
        for s in 1..=lab.topology.servers {
            system.start_server(lab, s)?;
        }
        for s in 1..=lab.topology.servers {
            system.wait_server(lab, s)?;
        }
        if system.tunnelled() {
            system.write_remotes(lab, &balancers)?;
            let vip = lab.addresses.vip().to_string();
            let remotes: Vec<String> = balancers
                .iter()
                .map(|&b| lab.addresses.balancer(b).to_string())
                .collect();
            let file = system.remotes_file();
            let testbed = system.testbed.to_string_lossy().into_owned();
            lab.spawn(
                "r",
                "encap",
                &[
                    &testbed,
                    "tunnel",
                    "encap",
                    "--tun",
                    "gre0",
                    "--vip",
                    &vip,
                    "--remote",
                    &remotes.join(","),
                    "--remotes-file",
                    &file.to_string_lossy(),
                ],
                &[],
            )?;
        }
        if system.routed() {
            // Flows of one client spread over the balancers by their ports too,
            // hashed from the 5-tuple itself (policy 3, fields: addresses,
            // protocol, ports): policy 1 takes a forwarded packet's own L4
            // hash when it has one, and across veths that is the sender's
            // socket hash, which TCP draws anew at each retransmission
            // timeout, so a flow would hop to another balancer whenever its
            // packets are lost, as no router on a wire would let it.
            lab.exec_ok(
                "r",
                &[
                    "sysctl",
                    "-qw",
                    "net.ipv4.fib_multipath_hash_policy=3",
                    "net.ipv4.fib_multipath_hash_fields=0x0037",
                ],
            )?;
        }
        if entry.kind == SystemKind::RustyRail && system.routed() {
            // The router forwards the clients' segments with their checksums
            // left to offload; a balancer reading raw frames (AF_XDP) would
            // see them unfinished, as a real wire never carries them.
            lab.exec_ok("r", &["ethtool", "-K", "eth1", "tx", "off"])?;
        }
        for &b in &balancers {
            system.start_balancer(lab, b)?;
        }
        if system.bgp() {
            // Their BIRDs announce the VIP once they are ready.
            wait_routed(lab, &balancers, BGP_START_LIMIT)?;
        } else if system.routed() {
            system.write_remotes(lab, &balancers)?;
        }
        Ok(system)
    }

    /// Whether the balancers announce the VIP by BGP (`rusty_rail`'s BGP mode).
    fn bgp(&self) -> bool {
        self.entry.kind == SystemKind::RustyRail && self.entry.mode == Some(Ingress::Bgp)
    }

    /// Whether the router tunnels the VIP to the balancers (`rusty_rail`'s GRE mode).
    fn tunnelled(&self) -> bool {
        self.entry.kind == SystemKind::RustyRail
            && matches!(self.entry.mode, None | Some(Ingress::Gre))
    }

    /// Whether the router routes the VIP to the balancers as plain IP
    /// (`HAProxy`, `rusty_rail`'s VIP mode).
    fn routed(&self) -> bool {
        self.entry.kind == SystemKind::Haproxy
            || (self.entry.kind == SystemKind::RustyRail
                && matches!(self.entry.mode, Some(Ingress::Vip | Ingress::Bgp)))
    }

    /// Where clients connect.
    pub fn target(&self, lab: &RunLab) -> SocketAddr {
        match self.entry.kind {
            SystemKind::None => SocketAddr::from((lab.addresses.server(1), PORT)),
            _ => SocketAddr::from((lab.addresses.vip(), PORT)),
        }
    }

    fn remotes_file(&self) -> PathBuf {
        self.dir.join("remotes")
    }

    /// Makes the router send to `balancers` only: the remotes file the
    /// GRE encapsulator re-reads, or the VIP's multipath route.
    fn write_remotes(&mut self, lab: &RunLab, balancers: &[usize]) -> Result<(), String> {
        self.announced = balancers.to_vec();
        match self.entry.kind {
            SystemKind::RustyRail if self.tunnelled() => {
                let mut text = String::new();
                for &b in balancers {
                    let _ = writeln!(text, "{}", lab.addresses.balancer(b));
                }
                let path = self.remotes_file();
                let temporary = path.with_extension("tmp");
                std::fs::write(&temporary, text)
                    .and_then(|()| std::fs::rename(&temporary, &path))
                    .map_err(|e| format!("writing {}: {e}", path.display()))
            }
            SystemKind::RustyRail | SystemKind::Haproxy => {
                let vip = format!("{}/32", lab.addresses.vip());
                let mut args = vec!["ip".to_owned(), "route".into(), "replace".into(), vip];
                for &b in balancers {
                    args.extend([
                        "nexthop".into(),
                        "via".into(),
                        lab.addresses.balancer(b).to_string(),
                    ]);
                }
                if balancers.is_empty() {
                    args = vec![
                        "ip".into(),
                        "route".into(),
                        "replace".into(),
                        "blackhole".into(),
                        format!("{}/32", lab.addresses.vip()),
                    ];
                }
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                lab.exec_ok("r", &args).map(drop)
            }
            SystemKind::None => Ok(()),
        }
    }

    fn start_server(&self, lab: &mut RunLab, s: usize) -> Result<(), String> {
        let host = format!("s{s}");
        let testbed = self.testbed.to_string_lossy().into_owned();
        if self.entry.kind == SystemKind::RustyRail {
            let vip = lab.addresses.vip().to_string();
            lab.spawn(
                &host,
                "decap",
                &[&testbed, "tunnel", "decap", "--tun", "gre0", "--vip", &vip],
                &[],
            )?;
        }
        let listen = format!("0.0.0.0:{PORT}");
        lab.spawn(
            &host,
            "mconnect",
            &[
                &testbed,
                "mconnect",
                "--server",
                "--udp",
                "--address",
                &listen,
                "--name",
                &host,
            ],
            &[],
        )?;
        for &port in &self.stream_ports {
            super::streams::start_server(lab, &host, port)?;
        }
        Ok(())
    }

    /// Waits until server `s` listens on every port it serves.
    fn wait_server(&self, lab: &RunLab, s: usize) -> Result<(), String> {
        let host = format!("s{s}");
        for port in std::iter::once(PORT).chain(self.stream_ports.iter().copied()) {
            lab.wait_listening(&host, port, START_LIMIT)?;
        }
        Ok(())
    }

    fn start_balancer(&mut self, lab: &mut RunLab, b: usize) -> Result<(), String> {
        let host = format!("lb{b}");
        match self.entry.kind {
            SystemKind::RustyRail => {
                let targets: Vec<String> = self
                    .initial_set
                    .iter()
                    .map(|&s| lab.addresses.server(s).to_string())
                    .collect();
                let mut env: Vec<(String, String)> = vec![
                    ("RR_DEVICE".into(), "eth0".into()),
                    ("RR_TARGET_IPS".into(), targets.join(";")),
                    ("RR_CONNTRACK_CAPACITY".into(), "65536".into()),
                    ("RR_API_TOKEN".into(), self.token.clone()),
                    ("RR_LOG".into(), "info".into()),
                ];
                if self.routed() {
                    env.push(("RR_VIPS".into(), lab.addresses.vip().to_string()));
                }
                if self.bgp() {
                    env.extend(bgp_env(lab));
                }
                env.extend(
                    self.entry
                        .settings
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone())),
                );
                let program = self.program.to_string_lossy().into_owned();
                let log = lab.spawn(&host, "rusty_rail", &[&program], &env)?;
                let key = format!("{host}-rusty_rail");
                let deadline = Instant::now() + START_LIMIT;
                loop {
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    if text.contains(RUSTY_RAIL_READY) {
                        return Ok(());
                    }
                    if let Some(status) = lab.exited(&key) {
                        return Err(format!(
                            "{host}: rusty_rail exited at start ({status}): {}",
                            tail(&text)
                        ));
                    }
                    if Instant::now() > deadline {
                        return Err(format!(
                            "{host}: rusty_rail not running after {START_LIMIT:?}: {}",
                            tail(&text)
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            SystemKind::Haproxy => {
                let config = self.dir.join(format!("haproxy-{host}.cfg"));
                let socket = Self::haproxy_socket(lab, b);
                if !self.sockets.contains(&socket) {
                    self.sockets.push(socket);
                }
                std::fs::write(&config, self.haproxy_config(lab, b))
                    .map_err(|e| format!("writing {}: {e}", config.display()))?;
                let program = self.program.to_string_lossy().into_owned();
                lab.spawn(
                    &host,
                    "haproxy",
                    &[&program, "-db", "-f", &config.to_string_lossy()],
                    &[],
                )?;
                lab.wait_listening(&host, PORT, START_LIMIT)
            }
            SystemKind::None => Ok(()),
        }
    }

    /// The runtime API socket of `HAProxy` on balancer `b` (short: a unix
    /// socket's path has 107 bytes at most, and run folders can be deep).
    fn haproxy_socket(lab: &RunLab, b: usize) -> PathBuf {
        std::env::temp_dir().join(format!("{}lb{b}.haproxy.sock", lab.prefix))
    }

    fn haproxy_config(&self, lab: &RunLab, b: usize) -> String {
        let socket = Self::haproxy_socket(lab, b);
        let _ = std::fs::remove_file(&socket);
        let mut text = format!(
            "global\n  maxconn 4000\n  stats socket {} mode 600 level admin\n\
             defaults\n  mode tcp\n  retries 3\n  option redispatch\n  timeout connect 2s\n  timeout client 1h\n  timeout server 1h\n\
             frontend vip\n  bind {}:{PORT}\n{}  default_backend servers\n\
             backend servers\n  balance {}\n",
            socket.display(),
            lab.addresses.vip(),
            self.stream_binds(lab),
            if self.stream_ports.is_empty() {
                "roundrobin"
            } else {
                "source"
            },
        );
        // Without a port a server is reached on the port the client asked
        // for (the streams' ports too), checked on mconnect's.
        let port = if self.stream_ports.is_empty() {
            format!(":{PORT}")
        } else {
            String::new()
        };
        for s in 1..=lab.topology.servers {
            let disabled = if self.initial_set.contains(&s) {
                ""
            } else {
                " disabled"
            };
            let _ = writeln!(
                text,
                "  server s{s} {}{port} check port {PORT} inter 1s fall 3 rise 2{disabled}",
                lab.addresses.server(s)
            );
        }
        text
    }

    /// `HAProxy`'s `bind` lines of the streams' ports.
    fn stream_binds(&self, lab: &RunLab) -> String {
        match (
            self.stream_ports.iter().min(),
            self.stream_ports.iter().max(),
        ) {
            (Some(first), Some(last)) => {
                format!("  bind {}:{first}-{last}\n", lab.addresses.vip())
            }
            _ => String::new(),
        }
    }

    /// Sends `command` to `HAProxy`'s runtime API on balancer `b`.
    fn haproxy_command(lab: &RunLab, b: usize, command: &str) -> Result<String, String> {
        let path = Self::haproxy_socket(lab, b);
        let mut stream = UnixStream::connect(&path)
            .map_err(|e| format!("lb{b}: HAProxy's runtime API {}: {e}", path.display()))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(3)))
            .map_err(|e| e.to_string())?;
        stream
            .write_all(format!("{command}\n").as_bytes())
            .map_err(|e| format!("lb{b}: {command}: {e}"))?;
        let mut answer = String::new();
        // Bounded: HAProxy closes after one command; the timeout ends a stall.
        let _ = stream.take(16 << 20).read_to_string(&mut answer);
        Ok(answer)
    }

    /// Calls `rusty_rail`'s API on balancer `b` with curl in its namespace.
    fn api(
        &self,
        lab: &RunLab,
        b: usize,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<String, String> {
        let url = format!("http://127.0.0.1:9700{path}");
        let auth = format!("authorization: Bearer {}", self.token);
        lab.http(&format!("lb{b}"), method, &url, Some(&auth), body)
    }

    /// The balancers still running (not killed), for backend changes.
    fn running_balancers(&self, lab: &RunLab) -> Vec<usize> {
        (1..=lab.topology.balancers)
            .filter(|b| !self.killed_balancers.contains(b))
            .collect()
    }

    /// Applies one fault action.
    pub fn apply(&mut self, lab: &mut RunLab, action: &Action) -> Result<Applied, String> {
        let kind = self.entry.kind;
        let no_balancer = || Ok(Applied::Skipped("no balancer in this system".to_owned()));
        match action {
            Action::KillBalancer { n } => {
                if kind == SystemKind::None {
                    return no_balancer();
                }
                lab.kill(&format!("lb{n}-"));
                self.killed_balancers.push(*n);
                if self.bgp() {
                    // Watched from the kill on: the routing daemons withdraw it.
                    let after = wait_withdrawn(lab, *n)?;
                    self.withdrawn_after.insert(*n, after);
                }
            }
            Action::WithdrawBalancer { n } if self.bgp() => {
                // The routing daemons did it, watched since the kill.
                let after = match self.withdrawn_after.remove(n) {
                    Some(after) => after,
                    None => wait_withdrawn(lab, *n)?,
                };
                return Ok(Applied::Skipped(format!(
                    "withdrawn by the router's BIRD, not the runner: lb{n} left the VIP's \
                     routes {:.3} s after its kill",
                    after.as_secs_f64()
                )));
            }
            Action::WithdrawBalancer { n } => {
                if kind == SystemKind::None {
                    return no_balancer();
                }
                let left: Vec<usize> = self.announced.iter().copied().filter(|b| b != n).collect();
                self.write_remotes(lab, &left)?;
            }
            Action::RestartBalancer { n } => {
                if kind == SystemKind::None {
                    return no_balancer();
                }
                self.start_balancer(lab, *n)?;
                self.killed_balancers.retain(|b| b != n);
                if self.bgp() {
                    // Back in the routes when its BIRD announces again.
                    let mut back = self.running_balancers(lab);
                    back.sort_unstable();
                    wait_routed(lab, &back, BGP_START_LIMIT)?;
                    return Ok(Applied::Done);
                }
                let mut back = self.announced.clone();
                if !back.contains(n) {
                    back.push(*n);
                    back.sort_unstable();
                }
                self.write_remotes(lab, &back)?;
            }
            Action::KillServer { n } => {
                lab.kill(&format!("s{n}-"));
            }
            Action::RestartServer { n } => {
                self.start_server(lab, *n)?;
                self.wait_server(lab, *n)?;
            }
            Action::AddBackend { n } | Action::RemoveBackend { n } | Action::DrainBackend { n } => {
                if kind == SystemKind::None {
                    return no_balancer();
                }
                let ip = lab.addresses.server(*n);
                for b in self.running_balancers(lab) {
                    match (kind, action) {
                        (SystemKind::RustyRail, Action::AddBackend { .. }) => {
                            self.api(
                                lab,
                                b,
                                "POST",
                                "/backends",
                                Some(&format!(r#"{{"ip":"{ip}"}}"#)),
                            )?;
                        }
                        (SystemKind::RustyRail, Action::RemoveBackend { .. }) => {
                            self.api(lab, b, "DELETE", &format!("/backends/{ip}"), None)?;
                        }
                        (SystemKind::RustyRail, _) => {
                            self.api(
                                lab,
                                b,
                                "PATCH",
                                &format!("/backends/{ip}"),
                                Some(r#"{"drain":true}"#),
                            )?;
                        }
                        (_, Action::AddBackend { .. }) => {
                            Self::haproxy_command(
                                lab,
                                b,
                                &format!("set server servers/s{n} state ready"),
                            )?;
                        }
                        (_, Action::RemoveBackend { .. }) => {
                            Self::haproxy_command(
                                lab,
                                b,
                                &format!("set server servers/s{n} state maint"),
                            )?;
                            Self::haproxy_command(
                                lab,
                                b,
                                &format!("shutdown sessions server servers/s{n}"),
                            )?;
                        }
                        _ => {
                            Self::haproxy_command(
                                lab,
                                b,
                                &format!("set server servers/s{n} state drain"),
                            )?;
                        }
                    }
                }
            }
            Action::Cut { pairs } => {
                let nodes = lab.nodes();
                let index = |name: &str| nodes.iter().position(|n| n.name == name);
                let mut grudge = crate::partition::Grudge::none(nodes.len());
                for [a, b] in pairs {
                    let (Some(a), Some(b)) = (index(a), index(b)) else {
                        return Ok(Applied::Skipped(format!(
                            "{a} or {b} is not in this topology"
                        )));
                    };
                    grudge.cut(a, b);
                    grudge.cut(b, a);
                }
                crate::partition::apply(&nodes, &grudge)?;
                cut_paths_at_router(lab, pairs)?;
            }
            Action::Heal => {
                crate::partition::heal(&lab.nodes())?;
                crate::partition::nft::load(&lab.ns("r"), &super::route_cut::heal())?;
            }
            // A whole-run impairment is built into the lab (its emulator
            // runs from the start); a timed one is switched on and off.
            Action::Impair { host } if self.timed_link => lab.switch_impairment(host, true)?,
            Action::Impair { .. } => {}
            Action::Unimpair { host } => lab.switch_impairment(host, false)?,
            Action::AddToxic => {
                let Some(body) = &self.toxic else {
                    return Err("no fault proxy in this run".to_owned());
                };
                super::fault_proxy::add(lab, body)?;
            }
            Action::RemoveToxic => super::fault_proxy::remove(lab)?,
        }
        Ok(Applied::Done)
    }

    /// Saves each running balancer's counters in the run folder:
    /// `rusty_rail`'s `/stats` as `stats-lbN.json`, `HAProxy`'s `show stat`
    /// as `stats-lbN.csv`.
    pub fn save_stats(&self, lab: &RunLab) -> Vec<String> {
        let mut problems = Vec::new();
        for b in self.running_balancers(lab) {
            let (name, result) = match self.entry.kind {
                SystemKind::RustyRail => (
                    format!("stats-lb{b}.json"),
                    self.api(lab, b, "GET", "/stats", None),
                ),
                SystemKind::Haproxy => (
                    format!("stats-lb{b}.csv"),
                    Self::haproxy_command(lab, b, "show stat"),
                ),
                SystemKind::None => continue,
            };
            match result {
                Ok(text) => {
                    if let Err(e) = std::fs::write(self.dir.join(&name), text) {
                        problems.push(format!("writing {name}: {e}"));
                    }
                }
                Err(e) => problems.push(e),
            }
        }
        problems
    }
}

/// Packets each server got from the balancers, summed over the
/// `stats-lbN.json` files in `dir` (`rusty_rail`'s `/stats`,
/// `total.backend_packets`, by backend address), keyed by server name;
/// addresses that are no server of the lab are left out.
pub fn packets_per_backend(dir: &Path, lab: &RunLab) -> BTreeMap<String, u64> {
    let mut total = BTreeMap::new();
    for b in 1..=lab.topology.balancers {
        let Ok(text) = std::fs::read_to_string(dir.join(format!("stats-lb{b}.json"))) else {
            continue;
        };
        let Ok(stats) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        let Some(counts) = stats["total"]["backend_packets"].as_object() else {
            continue;
        };
        for s in 1..=lab.topology.servers {
            let ip = lab.addresses.server(s).to_string();
            if let Some(n) = counts.get(&ip).and_then(serde_json::Value::as_u64) {
                *total.entry(format!("s{s}")).or_insert(0) += n;
            }
        }
    }
    total
}

/// The balancers the router's kernel routes the VIP to now.
fn vip_next_hops(lab: &RunLab) -> Result<Vec<Ipv4Addr>, String> {
    let exact = format!("{}/32", lab.addresses.vip());
    let text = lab.exec_ok("r", &["ip", "-j", "route", "show", "exact", &exact])?;
    let routes: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let mut hops = Vec::new();
    for route in routes.as_array().into_iter().flatten() {
        let gateways = route["nexthops"].as_array().map_or_else(
            || vec![&route["gateway"]],
            |list| list.iter().map(|h| &h["gateway"]).collect(),
        );
        hops.extend(
            gateways
                .into_iter()
                .filter_map(|g| g.as_str()?.parse::<Ipv4Addr>().ok()),
        );
    }
    hops.sort_unstable();
    Ok(hops)
}

/// Waits (at most `limit`, 50 ms polls) until the router routes the VIP to
/// exactly `balancers`.
fn wait_routed(lab: &RunLab, balancers: &[usize], limit: Duration) -> Result<(), String> {
    let mut want: Vec<Ipv4Addr> = balancers
        .iter()
        .map(|&b| lab.addresses.balancer(b))
        .collect();
    want.sort_unstable();
    let deadline = Instant::now() + limit;
    loop {
        let now = vip_next_hops(lab)?;
        if now == want {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the router routes the VIP to {now:?}, not {want:?}, after {limit:?} \
                 (see logs/hosts/r.bird.* and the balancers' logs)"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits (at most the hold time and a second) until the router no longer
/// routes the VIP to balancer `n`; how long it took from the call.
fn wait_withdrawn(lab: &RunLab, n: usize) -> Result<Duration, String> {
    let balancer = lab.addresses.balancer(n);
    let limit = Duration::from_secs(super::lab::BGP_HOLD_SECONDS + 1);
    let started = Instant::now();
    loop {
        if !vip_next_hops(lab)?.contains(&balancer) {
            return Ok(started.elapsed());
        }
        if started.elapsed() > limit {
            return Err(format!(
                "the router still routes the VIP to lb{n} {limit:?} later"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A balancer's BGP settings in a run's lab: announce the VIP to the
/// router, whose hold time it shares, and stop at once when told (the run
/// is over; a graceful stop is measured by its own fault, not here).
fn bgp_env(lab: &RunLab) -> Vec<(String, String)> {
    use super::lab::{BALANCER_AS, BGP_HOLD_SECONDS, ROUTER_AS};
    vec![
        ("RR_BGP_LOCAL_AS".into(), BALANCER_AS.to_string()),
        (
            "RR_BGP_PEERS".into(),
            format!("{}:{ROUTER_AS}", lab.addresses.router_back()),
        ),
        ("RR_BGP_HOLD".into(), format!("{BGP_HOLD_SECONDS}s")),
        ("RR_BGP_GRACE".into(), "0s".into()),
    ]
}

/// Makes the router drop what goes between the clients and balancers
/// cut in `pairs` (see [`super::route_cut`]).
fn cut_paths_at_router(lab: &RunLab, pairs: &[[String; 2]]) -> Result<(), String> {
    let mut paths = Vec::new();
    for (c, b) in super::route_cut::client_balancer_pairs(pairs) {
        let mac = lab
            .exec_ok(&format!("lb{b}"), &["cat", "/sys/class/net/eth0/address"])
            .ok()
            .map(|text| text.trim().to_owned())
            .filter(|mac| mac.len() == 17);
        paths.push(super::route_cut::CutPath {
            client: lab.addresses.client(c),
            balancer: lab.addresses.balancer(b),
            balancer_mac: mac,
        });
    }
    if paths.is_empty() {
        return Ok(());
    }
    crate::partition::nft::load(&lab.ns("r"), &super::route_cut::ruleset(&paths))
}

/// The last lines of a log, for an error message.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}
