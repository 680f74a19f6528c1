//! A run's lab: a topology file generated from the run's topology (clients
//! and the router on `front`, the router, balancers and servers on
//! `back`), brought up with `testbed up`'s code, and the processes the run
//! starts in its namespaces. Dropping a [`RunLab`] stops every process and
//! removes the lab, also when the run failed half-way or was interrupted.
//!
//! ```text
//!  c1 x.y.1.11 ─┐                   ┌─ lb1 x.y.2.11, lb2 .12 ...
//!  c2 x.y.1.12 ─┴─ r x.y.1.1 | x.y.2.1 ─┼─ s1 x.y.2.41, s2 .42 ...
//!                                   VIP x.y.9.1
//! ```

use std::fmt::Write as _;
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::lab::state::STATE_DIR;
use crate::lab::topology::up;
use crate::lab::topology::TopologyPlan;
use crate::lab::Ipv4Cidr;
use crate::partition::Node;

use super::file::TopologyEntry;
use super::topology_file::RoleAddresses;

/// The port every server's mconnect listens on.
pub const PORT: u16 = 5001;

/// Addresses of a lab carved from a /16, or those of a topology file's
/// roles (the VIP is always the /16's).
#[derive(Debug, Clone)]
pub struct Addresses {
    a: u8,
    b: u8,
    roles: Option<RoleAddresses>,
}

impl Addresses {
    pub fn new(cidr: Ipv4Cidr) -> Self {
        let [a, b, _, _] = cidr.network.octets();
        Self { a, b, roles: None }
    }

    /// The addresses of `topology`'s lab: its file's, else carved from `cidr`.
    pub fn for_topology(cidr: Ipv4Cidr, topology: &TopologyEntry) -> Self {
        Self {
            roles: topology.roles.as_ref().map(|f| f.addresses.clone()),
            ..Self::new(cidr)
        }
    }

    /// Host `n` (1-based) of a file's role, if the lab is a file's.
    fn of_file(&self, pick: fn(&RoleAddresses) -> &[Ipv4Addr], n: usize) -> Option<Ipv4Addr> {
        let roles = self.roles.as_ref()?;
        pick(roles).get(n.checked_sub(1)?).copied()
    }

    pub fn router_front(&self) -> Ipv4Addr {
        self.roles
            .as_ref()
            .map_or(Ipv4Addr::new(self.a, self.b, 1, 1), |r| r.router_front)
    }

    pub fn router_back(&self) -> Ipv4Addr {
        self.roles
            .as_ref()
            .map_or(Ipv4Addr::new(self.a, self.b, 2, 1), |r| r.router_back)
    }

    /// Client `n` (1-based).
    pub fn client(&self, n: usize) -> Ipv4Addr {
        self.of_file(|r| &r.clients, n)
            .unwrap_or(Ipv4Addr::new(self.a, self.b, 1, 10 + n as u8))
    }

    /// Balancer `n` (1-based).
    pub fn balancer(&self, n: usize) -> Ipv4Addr {
        self.of_file(|r| &r.balancers, n)
            .unwrap_or(Ipv4Addr::new(self.a, self.b, 2, 10 + n as u8))
    }

    /// Server `n` (1-based).
    pub fn server(&self, n: usize) -> Ipv4Addr {
        self.of_file(|r| &r.servers, n)
            .unwrap_or(Ipv4Addr::new(self.a, self.b, 2, 40 + n as u8))
    }

    /// The service's virtual address.
    pub fn vip(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.a, self.b, 9, 1)
    }
}

/// What a run's lab needs beyond its roles.
#[derive(Debug, Clone, Default)]
pub struct LabOptions {
    /// The VIP on the balancers' loopback (a full proxy binds it there).
    pub vip_on_balancers: bool,
    /// One host's link impaired by the link emulator: host, what it sends,
    /// what it receives (the router's: its front link).
    pub impaired: Option<(String, Option<String>, Option<String>)>,
    /// The seed of the link emulators.
    pub seed: u64,
    /// The router runs BIRD and learns the VIP from the balancers by BGP
    /// (`rusty_rail`'s `bgp` mode); with BFD on its sessions if true.
    pub router_bgp: Option<bool>,
}

/// The router's AS in a run's lab, and the balancers'.
pub const ROUTER_AS: u32 = 65000;
pub const BALANCER_AS: u32 = 65001;
/// The hold time of the router's BGP sessions, seconds (the least BGP allows).
pub const BGP_HOLD_SECONDS: u64 = 3;

impl LabOptions {
    /// The router's `bgp = { ... }`, peering with balancers 1 to `balancers`.
    fn router_bgp(&self, addresses: &Addresses, balancers: usize) -> Option<String> {
        let bfd = self.router_bgp?;
        let peers: Vec<String> = (1..=balancers)
            .map(|b| format!("\"{}:{BALANCER_AS}\"", addresses.balancer(b)))
            .collect();
        Some(format!(
            "{{ as = {ROUTER_AS}, peers = [ {} ], hold = {BGP_HOLD_SECONDS}, bfd = {bfd} }}",
            peers.join(", ")
        ))
    }
}

impl LabOptions {
    /// The `netem` part of `host`'s link entry, if it is the impaired one.
    fn netem(&self, host: &str) -> String {
        let Some((impaired, out, r#in)) = &self.impaired else {
            return String::new();
        };
        if impaired != host {
            return String::new();
        }
        let quote = |s: &str| s.replace(['\\', '"'], "");
        let mut parts = Vec::new();
        if let Some(out) = out {
            parts.push(format!("out = \"{}\"", quote(out)));
        }
        if let Some(r#in) = r#in {
            parts.push(format!("in = \"{}\"", quote(r#in)));
        }
        format!(", netem = {{ {} }}", parts.join(", "))
    }
}

/// A topology file's lab for a run: the file with the run's prefix, seed,
/// counts and additions (the VIP on the balancers, the impaired link).
fn file_topology_text(
    prefix: &str,
    addresses: &Addresses,
    topology: &TopologyEntry,
    options: &LabOptions,
    roles: &super::topology_file::RoleFile,
) -> Result<String, String> {
    let vip = format!("{}/32 dev lo", addresses.vip());
    let bgp: Option<toml::Value> = options
        .router_bgp(addresses, topology.balancers)
        .map(|text| {
            format!("bgp = {text}")
                .parse::<toml::Table>()
                .map(|mut t| t.remove("bgp").unwrap_or(toml::Value::Boolean(false)))
        })
        .transpose()
        .map_err(|e| format!("the router's bgp: {e}"))?;
    let edit = |name: &str, host: &mut toml::Table| {
        if let (Some(bgp), "r") = (&bgp, name) {
            host.insert("bgp".into(), bgp.clone());
        }
        if options.vip_on_balancers && name.starts_with("lb") {
            let list = host
                .entry("addresses")
                .or_insert_with(|| toml::Value::Array(Vec::new()));
            if let toml::Value::Array(list) = list {
                list.push(vip.clone().into());
            }
        }
        if let Some((impaired, out, r#in)) = &options.impaired {
            // The router's impaired link is its first (the clients').
            let link = host
                .get_mut("links")
                .and_then(toml::Value::as_array_mut)
                .and_then(|links| links.first_mut())
                .and_then(toml::Value::as_table_mut);
            if let (true, Some(link)) = (impaired == name, link) {
                let mut netem = toml::Table::new();
                if let Some(out) = out {
                    netem.insert("out".into(), out.clone().into());
                }
                if let Some(r#in) = r#in {
                    netem.insert("in".into(), r#in.clone().into());
                }
                link.remove("netem_out");
                link.remove("netem_in");
                link.insert("netem".into(), netem.into());
            }
        }
    };
    roles.for_run(
        prefix,
        options.seed,
        (topology.clients, topology.balancers, topology.servers),
        &edit,
    )
}

/// The topology file of a run.
pub fn topology_text(
    prefix: &str,
    addresses: &Addresses,
    topology: &TopologyEntry,
    options: &LabOptions,
) -> String {
    let cidr = |third: u8| {
        let [a, b, _, _] = addresses.router_front().octets();
        format!("{a}.{b}.{third}.0/24")
    };
    let mut text = format!(
        "prefix = \"{prefix}\"\nseed = {}\n\n[[network]]\nname = \"front\"\ncidr = \"{}\"\nbridge = true\n\n\
         [[network]]\nname = \"back\"\ncidr = \"{}\"\nbridge = true\n\n\
         [[host]]\nname = \"r\"\nforward = true\n\
         links = [ {{ network = \"front\", address = \"{}\"{} }}, {{ network = \"back\", address = \"{}\" }} ]\n",
        // TOML integers are signed: the top bit goes.
        options.seed >> 1,
        cidr(1),
        cidr(2),
        addresses.router_front(),
        options.netem("r"),
        addresses.router_back(),
    );
    if let Some(bgp) = options.router_bgp(addresses, topology.balancers) {
        let _ = writeln!(text, "bgp = {bgp}");
    }
    let mut host = |name: String, network: &str, address: Ipv4Addr, extra: &str| {
        let gateway = if network == "front" {
            addresses.router_front()
        } else {
            addresses.router_back()
        };
        let netem = options.netem(&name);
        let _ = write!(
            text,
            "\n[[host]]\nname = \"{name}\"\nlinks = [ {{ network = \"{network}\", address = \"{address}\"{netem} }} ]\n\
             routes = [ \"default via {gateway}\" ]\n{extra}"
        );
    };
    for n in 1..=topology.clients {
        host(format!("c{n}"), "front", addresses.client(n), "");
    }
    let vip = if options.vip_on_balancers {
        format!("addresses = [ \"{}/32 dev lo\" ]\n", addresses.vip())
    } else {
        String::new()
    };
    for n in 1..=topology.balancers {
        host(format!("lb{n}"), "back", addresses.balancer(n), &vip);
    }
    for n in 1..=topology.servers {
        host(format!("s{n}"), "back", addresses.server(n), "");
    }
    text
}

/// A process the run started in one of its namespaces.
#[derive(Debug)]
struct Started {
    /// `{host}-{role}`, e.g. `lb1-rusty_rail`: its log is `logs/{key}.log`.
    key: String,
    child: Child,
}

/// A run's lab and processes; see the module docs.
#[derive(Debug)]
pub struct RunLab {
    pub prefix: String,
    pub addresses: Addresses,
    pub topology: TopologyEntry,
    /// Where the processes' logs go.
    pub logs: PathBuf,
    started: Vec<Started>,
}

impl RunLab {
    /// Writes the topology to `dir/topology.toml` and brings it up
    /// (removing first what a crashed run left with the same prefix).
    pub fn up(
        prefix: &str,
        addresses: &Addresses,
        topology: &TopologyEntry,
        options: &LabOptions,
        dir: &Path,
        testbed: &Path,
    ) -> Result<Self, String> {
        let state_dir = Path::new(STATE_DIR);
        for problem in crate::lab::teardown::remove_lab(state_dir, prefix) {
            eprintln!("testbed experiment: clearing an old lab {prefix}: {problem}");
        }
        let file = dir.join("topology.toml");
        let text = match &topology.roles {
            Some(roles) => file_topology_text(prefix, addresses, topology, options, roles)?,
            None => topology_text(prefix, addresses, topology, options),
        };
        fs::write(&file, text).map_err(|e| format!("writing {}: {e}", file.display()))?;
        let plan = TopologyPlan::load(&file, None)?;
        let logs = dir.join("logs");
        fs::create_dir_all(&logs).map_err(|e| format!("creating {}: {e}", logs.display()))?;
        // From here on the lab exists: the guard removes it on any failure.
        let lab = Self {
            prefix: prefix.to_owned(),
            addresses: addresses.clone(),
            topology: topology.clone(),
            logs: logs.clone(),
            started: Vec::new(),
        };
        up::up_with(&plan, &logs.join("hosts"), state_dir, testbed)?;
        Ok(lab)
    }

    /// The namespace of `host` (`r`, `c1`, `lb2`, `s3`).
    pub fn ns(&self, host: &str) -> String {
        format!("{}{host}", self.prefix)
    }

    /// Every host as a partition node.
    pub fn nodes(&self) -> Vec<Node> {
        let mut nodes = vec![self.node(
            "r",
            vec![self.addresses.router_front(), self.addresses.router_back()],
        )];
        for n in 1..=self.topology.clients {
            nodes.push(self.node(&format!("c{n}"), vec![self.addresses.client(n)]));
        }
        for n in 1..=self.topology.balancers {
            nodes.push(self.node(&format!("lb{n}"), vec![self.addresses.balancer(n)]));
        }
        for n in 1..=self.topology.servers {
            nodes.push(self.node(&format!("s{n}"), vec![self.addresses.server(n)]));
        }
        nodes
    }

    fn node(&self, name: &str, addrs: Vec<Ipv4Addr>) -> Node {
        Node {
            name: name.to_owned(),
            namespace: self.ns(name),
            addrs: addrs.into_iter().map(Into::into).collect(),
        }
    }

    /// Runs a command in `host`'s namespace to its end.
    pub fn exec(&self, host: &str, args: &[&str]) -> Result<Output, String> {
        Command::new("ip")
            .args(["netns", "exec", &self.ns(host)])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{host}: {}: {e}", args.join(" ")))
    }

    /// Like [`exec`](Self::exec), failing unless the command succeeds.
    pub fn exec_ok(&self, host: &str, args: &[&str]) -> Result<String, String> {
        let output = self.exec(host, args)?;
        if !output.status.success() {
            return Err(format!(
                "{host}: `{}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Calls an HTTP API in `host`'s namespace (curl, 3 s at most), with a
    /// JSON `body` and one extra `header` when given; the answer's body,
    /// or an error with it unless the status is 2xx.
    pub fn http(
        &self,
        host: &str,
        method: &str,
        url: &str,
        header: Option<&str>,
        body: Option<&str>,
    ) -> Result<String, String> {
        let mut args = vec![
            "curl",
            "-sS",
            "--fail-with-body",
            "--max-time",
            "3",
            "-X",
            method,
            url,
        ];
        if let Some(header) = header {
            args.extend(["-H", header]);
        }
        if let Some(body) = body {
            args.extend(["-H", "content-type: application/json", "-d", body]);
        }
        self.exec_ok(host, &args)
    }

    /// Starts a long-running process in `host` as `{host}-{role}`, its
    /// output appended to `logs/{host}-{role}.log`.
    pub fn spawn(
        &mut self,
        host: &str,
        role: &str,
        args: &[&str],
        env: &[(String, String)],
    ) -> Result<PathBuf, String> {
        self.spawn_to(host, role, args, env, None)
    }

    /// [`spawn`](Self::spawn), standard output to `stdout` when given.
    pub fn spawn_to(
        &mut self,
        host: &str,
        role: &str,
        args: &[&str],
        env: &[(String, String)],
        stdout: Option<&Path>,
    ) -> Result<PathBuf, String> {
        let key = format!("{host}-{role}");
        let log = self.logs.join(format!("{key}.log"));
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| format!("opening {}: {e}", log.display()))?;
        let out = match stdout {
            Some(path) => fs::File::create(path),
            None => file.try_clone(),
        }
        .map_err(|e| format!("opening the output of {key}: {e}"))?;
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(host)])
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(file)
            .spawn()
            .map_err(|e| format!("{host}: starting `{}`: {e}", args.join(" ")))?;
        self.started.push(Started { key, child });
        Ok(log)
    }

    /// Kills (SIGKILL) and reaps the processes whose key starts with `key`;
    /// returns how many there were.
    pub fn kill(&mut self, key: &str) -> usize {
        let (killed, kept): (Vec<Started>, Vec<Started>) = std::mem::take(&mut self.started)
            .into_iter()
            .partition(|s| s.key.starts_with(key));
        self.started = kept;
        let count = killed.len();
        for mut process in killed {
            let _ = process.child.kill();
            let _ = process.child.wait();
        }
        count
    }

    /// Whether the process `key` has exited; its status if so.
    pub fn exited(&mut self, key: &str) -> Option<std::process::ExitStatus> {
        self.started
            .iter_mut()
            .find(|s| s.key == key)
            .and_then(|s| s.child.try_wait().ok().flatten())
    }

    /// Switches the impairment of `host`'s link emulator on or off (SIGUSR1,
    /// SIGUSR2; see [`crate::lab::link_emulator`]) and waits (2 s at most)
    /// until the emulator says it did.
    pub fn switch_impairment(&self, host: &str, on: bool) -> Result<(), String> {
        let state = crate::lab::state::LabState::load_in(Path::new(STATE_DIR), &self.prefix)
            .map_err(|e| format!("reading the state of lab {}: {e}", self.prefix))?
            .ok_or_else(|| format!("lab {} has no state file", self.prefix))?;
        let emulator = state
            .processes
            .iter()
            .find(|p| p.host == host && p.command.contains(" link-emulator ") && p.is_running())
            .ok_or_else(|| format!("{host}: no link emulator runs on its link"))?;
        let signal = if on { libc::SIGUSR1 } else { libc::SIGUSR2 };
        // SAFETY: kill has no memory effects; the pid was just checked to
        // name the emulator this lab started.
        if unsafe { libc::kill(emulator.pid, signal) } != 0 {
            return Err(format!(
                "{host}: signalling its link emulator: {}",
                std::io::Error::last_os_error()
            ));
        }
        let wanted = if on {
            "impairment on"
        } else {
            "impairment off"
        };
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let said = fs::read_to_string(&emulator.stdout).unwrap_or_default();
            let last = said.lines().rev().find(|l| l.starts_with("impairment "));
            if last == Some(wanted) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{host}: its link emulator did not say \"{wanted}\" within 2 s"
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits (at most `limit`, in 50 ms polls) until something listens on
    /// TCP `port` in `host`.
    pub fn wait_listening(&self, host: &str, port: u16, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        let filter = format!("sport = :{port}");
        while Instant::now() < deadline {
            let out = self.exec(host, &["ss", "-Hltn", &filter])?;
            if !out.stdout.is_empty() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "{host}: nothing listens on TCP port {port} after {limit:?}"
        ))
    }
}

impl Drop for RunLab {
    fn drop(&mut self) {
        for process in &mut self.started {
            // SIGTERM first so the balancers release their devices, then SIGKILL.
            if let Ok(pid) = i32::try_from(process.child.id()) {
                // SAFETY: kill has no memory preconditions; the pid is our child's.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        for process in &mut self.started {
            while Instant::now() < deadline && matches!(process.child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = process.child.kill();
            let _ = process.child.wait();
        }
        for problem in crate::lab::teardown::remove_lab(Path::new(STATE_DIR), &self.prefix) {
            eprintln!(
                "testbed experiment: removing lab {}: {problem}",
                self.prefix
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_topology_is_a_valid_lab_with_every_role() {
        let topology = TopologyEntry {
            name: "t".into(),
            clients: 2,
            balancers: 2,
            servers: 3,
            file: None,
            roles: None,
        };
        let addresses = Addresses::new("10.161.0.0/16".parse().unwrap());
        let options = LabOptions {
            vip_on_balancers: true,
            impaired: Some(("c2".into(), Some("delay 5ms".into()), None)),
            seed: 9,
            router_bgp: Some(true),
        };
        let text = topology_text("rrex0-", &addresses, &topology, &options);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.toml");
        fs::write(&file, &text).unwrap();
        let plan = TopologyPlan::load(&file, None).unwrap();
        let names: Vec<&str> = plan.hosts.iter().map(|h| h.namespace.as_str()).collect();
        assert_eq!(
            names,
            [
                "rrex0-r",
                "rrex0-c1",
                "rrex0-c2",
                "rrex0-lb1",
                "rrex0-lb2",
                "rrex0-s1",
                "rrex0-s2",
                "rrex0-s3"
            ]
        );
        assert!(text.contains("10.161.2.43"), "{text}");
        assert_eq!(text.matches("10.161.9.1/32 dev lo").count(), 2, "{text}");
        let link = &plan.hosts[2].interfaces[0];
        assert_eq!(link.netem.egress.as_deref(), Some("delay 5ms"), "{text}");
        assert!(plan.hosts[1].interfaces[0].netem.is_empty());
        let bgp = plan.hosts[0].bgp.as_ref().expect("the router runs BIRD");
        assert_eq!(bgp.peers.len(), 2, "{text}");
        assert_eq!(bgp.peers[1].addr, addresses.balancer(2));
        assert!(bgp.bfd && bgp.hold == BGP_HOLD_SECONDS);
        let plain = topology_text("rrex0-", &addresses, &topology, &LabOptions::default());
        assert!(
            !plain.contains("10.161.9.1") && !plain.contains("netem"),
            "{plain}"
        );
    }

    #[test]
    fn a_topology_file_s_lab_gets_the_run_s_additions_and_its_own_addresses() {
        use crate::experiment::topology_file::{tests::GOOD, RoleFile};
        let roles = RoleFile::check(Path::new("lab.toml"), GOOD.to_owned()).unwrap();
        let topology = TopologyEntry {
            name: "t".into(),
            clients: 1,
            balancers: 2,
            servers: 1,
            file: Some("lab.toml".into()),
            roles: Some(std::sync::Arc::new(roles.clone())),
        };
        let addresses = Addresses::for_topology("10.187.0.0/16".parse().unwrap(), &topology);
        assert_eq!(addresses.balancer(2), Ipv4Addr::new(10, 186, 2, 12));
        assert_eq!(addresses.router_back(), Ipv4Addr::new(10, 186, 2, 1));
        assert_eq!(
            addresses.vip(),
            Ipv4Addr::new(10, 187, 9, 1),
            "the VIP is the experiment's"
        );
        let options = LabOptions {
            vip_on_balancers: true,
            impaired: Some(("lb1".into(), None, Some("loss 1%".into()))),
            seed: 4,
            router_bgp: Some(false),
        };
        let text = file_topology_text("rrex7-", &addresses, &topology, &options, &roles).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.toml");
        fs::write(&file, &text).unwrap();
        let plan = TopologyPlan::load(&file, None).unwrap();
        assert_eq!(plan.prefix, "rrex7-");
        let bgp = plan.hosts[0].bgp.as_ref().expect("the router runs BIRD");
        let peers: Vec<Ipv4Addr> = bgp.peers.iter().map(|p| p.addr).collect();
        assert_eq!(
            peers,
            [Ipv4Addr::new(10, 186, 2, 11), Ipv4Addr::new(10, 186, 2, 12)]
        );
        let lb1 = plan.host("lb1").unwrap();
        assert_eq!(lb1.interfaces[0].netem.ingress.as_deref(), Some("loss 1%"));
        assert_eq!(lb1.addresses.len(), 1, "{text}");
        assert_eq!(plan.host("lb2").unwrap().addresses.len(), 1, "{text}");
        assert!(plan.host("c1").unwrap().addresses.is_empty(), "{text}");
    }
}
