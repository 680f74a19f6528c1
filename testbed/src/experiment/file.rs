//! The experiment file as written (TOML, read with serde) and its checks.
//! Every refusal names the field at fault and what would be accepted, so a
//! typo costs one read of the message, not a failed hour of runs.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::lab::plan::check_prefix;
use crate::lab::Ipv4Cidr;

/// A whole experiment: the axes whose product is the matrix of runs.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentFile {
    /// Shown in the report's title.
    pub name: String,
    /// Start of every namespace and bridge name of the runs' labs.
    pub prefix: String,
    /// The /16 the labs' networks are carved from: front `x.y.1.0/24`,
    /// back `x.y.2.0/24`, the VIP `x.y.9.1`.
    pub subnet: String,
    /// Length T of each run's workload, e.g. "10s".
    pub duration: String,
    /// Runs of each combination (`--repeat` overrides it).
    #[serde(default = "one")]
    pub repeat: u32,
    /// Seeds the run order and every run's faults and workload (`--seed` overrides it).
    #[serde(default)]
    pub seed: u64,
    #[serde(rename = "system")]
    pub systems: Vec<SystemEntry>,
    #[serde(rename = "topology")]
    pub topologies: Vec<TopologyEntry>,
    #[serde(rename = "workload")]
    pub workloads: Vec<WorkloadEntry>,
    #[serde(rename = "fault")]
    pub faults: Vec<FaultEntry>,
}

fn one() -> u32 {
    1
}

/// The system under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SystemKind {
    /// Rusty Rail behind the router's GRE tunnels (ECMP over the balancers).
    RustyRail,
    /// `HAProxy` in TCP mode, a full proxy, the VIP routed to it (ECMP over several).
    Haproxy,
    /// No balancer: the clients connect straight to the first server.
    None,
}

/// `[[system]]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SystemEntry {
    pub name: String,
    pub kind: SystemKind,
    /// `rusty_rail`'s settings as its environment (`RR_IO = "af_packet"`,
    /// `RR_WORKERS = "1"`, `RR_TABLE_SIZE`, `RR_HEALTH`...).
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// The program; default: `rusty_rail` or `haproxy` next to this
    /// executable, else on PATH.
    pub binary: Option<String>,
    /// `rusty_rail`: how the VIP's packets reach it (default `gre`).
    pub mode: Option<Ingress>,
}

/// How the router hands `rusty_rail` the VIP's packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ingress {
    /// Tunnelled in GRE by the router (ECMP over the balancers); the
    /// balancer rewrites the outer header.
    Gre,
    /// Routed as plain IP (ECMP over the balancers); the balancer
    /// encapsulates (`RR_VIPS`).
    Vip,
    /// VIP mode with the routes learnt by BGP: each balancer announces the
    /// VIP through its own BIRD (`RR_BGP_*`) while it can serve, the router
    /// runs BIRD with ECMP into its kernel, and a balancer that dies is
    /// withdrawn by the routing daemons, not by the runner.
    Bgp,
}

/// `[[topology]]`: the lab of a run, by its number of each role, generated
/// or taken from a `testbed up` topology file (see [`super::topology_file`]).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TopologyEntry {
    pub name: String,
    /// Counts not written are 0 here until the file is read: then 1 for a
    /// generated lab, every host of the role for a topology file.
    #[serde(default)]
    pub clients: usize,
    #[serde(default)]
    pub balancers: usize,
    #[serde(default)]
    pub servers: usize,
    /// A `testbed up` topology file whose hosts play the roles, relative to
    /// the experiment file; the counts take its first hosts of each role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// That file, read and checked.
    #[serde(skip)]
    pub roles: Option<std::sync::Arc<super::topology_file::RoleFile>>,
}

fn one_usize() -> usize {
    1
}

/// How new connections arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Arrivals {
    /// Evenly spaced at `rate` per second.
    #[default]
    Uniform,
    /// A Poisson process of `rate` per second, seeded by the run.
    Poisson,
}

/// The clients' transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    #[default]
    Tcp,
    /// Request/response datagrams (mconnect `--udp`); not through `HAProxy`'s TCP mode.
    Udp,
}

/// `[[workload]]`: what every client does during T.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadEntry {
    pub name: String,
    /// New connections per second per client (0: none).
    #[serde(default)]
    pub rate: f64,
    #[serde(default)]
    pub arrivals: Arrivals,
    #[serde(default)]
    pub protocol: Protocol,
    /// Connections each client holds open for the whole run (`--keep`).
    #[serde(default)]
    pub hold: u64,
    /// How often a held connection asks its server's name; silence for
    /// this long is a broken connection.
    #[serde(default = "default_interval")]
    pub interval: String,
    /// iperf3 streams each client keeps running for the whole run.
    pub iperf3: Option<Iperf3Entry>,
}

fn default_interval() -> String {
    "500ms".to_owned()
}

/// A workload's `iperf3 = { streams = 2, bitrate = "10M", reverse = true }`:
/// long-lived TCP streams whose throughput the run records per 100 ms.
/// Each stream is its own iperf3 test (one data connection) on its own port.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Iperf3Entry {
    /// Streams per client.
    #[serde(default = "one_u32")]
    pub streams: u32,
    /// Each stream's target rate, iperf3's `--bitrate` ("10M", "500K", "1G").
    /// Bounded by default: the lab's tunnel endpoints and emulators are
    /// userspace programs sharing the machine's cores with the balancers.
    #[serde(default = "default_bitrate")]
    pub bitrate: String,
    /// The servers send and the clients receive (iperf3 `--reverse`): the
    /// data takes the direct path back from the servers, not the balancer.
    #[serde(default)]
    pub reverse: bool,
}

fn one_u32() -> u32 {
    1
}

fn default_bitrate() -> String {
    "10M".to_owned()
}

/// The most iperf3 streams of a run (clients x streams): each is an iperf3
/// client and one iperf3 server per server host.
pub const MAX_STREAMS: usize = 64;

/// Whether `text` is an iperf3 bitrate: a positive number, optionally
/// followed by K, M or G (iperf3's own units, bits per second).
pub fn valid_bitrate(text: &str) -> bool {
    let digits = text.trim_end_matches(['K', 'M', 'G', 'k', 'm', 'g']);
    text.len() - digits.len() <= 1
        && digits
            .parse::<f64>()
            .is_ok_and(|v| v.is_finite() && v > 0.0)
}

/// What a fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Nothing: the baseline.
    None,
    /// SIGKILL to balancer `target` at `at`; restarted at `recover` if given.
    /// The router stops sending to it `withdraw` later (its routing daemon
    /// noticing), and sends again on recovery.
    BalancerKill,
    /// SIGKILL to server `target`'s processes at `at`; restarted at `recover` if given.
    BackendKill,
    /// Server `target` is held out of the balancers' set at the start and added at `at`.
    BackendAdd,
    /// Server `target` is removed from the balancers' set at `at`.
    BackendRemove,
    /// Server `target` is drained (no new flows, held ones stay) at `at`.
    BackendDrain,
    /// The pairs in `cut` cannot reach each other from `at` to `until`
    /// (a client and a balancer: the router drops that client's flows to
    /// that balancer, see [`super::route_cut`]).
    Partition,
    /// The pairs in `cut` are cut and healed repeatedly from `at` to
    /// `until`: up for an exponential time of mean `mtbf`, then down for one
    /// of mean `mttr`, drawn from the run's seed.
    Intermittent,
    /// Host `host`'s link is impaired by the userspace link emulator,
    /// seeded by the run: `netem` on what the host sends, `netem_in` on what
    /// it receives (netem syntax: "delay 20ms 5ms loss 1%"). For the whole
    /// run when neither `at` nor `until` is written; else from `at`
    /// (default 1/3) to `until` (default: the end), the emulator switched
    /// on and off while the link stays up.
    Link,
    /// The clients reach the system through the fault proxy (`testbed
    /// proxy`, Toxiproxy's API) on the router, which gets toxic `toxic`
    /// (`latency`, `timeout`, `reset_peer`, `bandwidth`, `loss`...) with
    /// `attributes` on `stream` from `at` to `until`.
    Toxic,
}

/// `[[fault]]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FaultEntry {
    pub name: String,
    pub kind: FaultKind,
    /// Fraction of T when it starts (default 1/3).
    pub at: Option<f64>,
    /// Fraction of T when a killed node comes back (default: never).
    pub recover: Option<f64>,
    /// Fraction of T when a partition heals (default 2/3).
    pub until: Option<f64>,
    /// The balancer or server (1-based) a kill, add, remove or drain acts on.
    #[serde(default = "one_usize")]
    pub target: usize,
    /// Pairs of hosts (`c1`, `lb2`, `s1`...) cut from each other.
    #[serde(default)]
    pub cut: Vec<[String; 2]>,
    /// Intermittent: mean time between failures.
    pub mtbf: Option<String>,
    /// Intermittent: mean time to repair.
    pub mttr: Option<String>,
    /// Balancer kill: how long the router keeps sending to a dead balancer.
    pub withdraw: Option<String>,
    /// Link: the host whose link is impaired (`c1`, `lb1`, `s2`; `r`: its front
    /// link, in a topology file its first).
    pub host: Option<String>,
    /// Link: netem spec of what the host sends.
    pub netem: Option<String>,
    /// Link: netem spec of what the host receives.
    pub netem_in: Option<String>,
    /// Kills: how many balancers or servers, from `target` on ("n nodes
    /// killed at start": `at = 0`, `count = n`).
    #[serde(default = "one_usize")]
    pub count: usize,
    /// Toxic: its type, as Toxiproxy names it.
    pub toxic: Option<String>,
    /// Toxic: `downstream` (toward the client, the default) or `upstream`.
    pub stream: Option<String>,
    /// Toxic: its attributes, e.g. `{ latency = 100, jitter = 10 }`.
    #[serde(default)]
    pub attributes: BTreeMap<String, toml::Value>,
}

/// A file that cannot be used: which field, and what is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExperimentError {
    /// The field at fault, e.g. `fault "lb-kill" at`; empty for syntax errors.
    pub field: String,
    pub message: String,
}

impl fmt::Display for ExperimentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for ExperimentError {}

fn refuse(field: impl Into<String>, message: impl Into<String>) -> ExperimentError {
    ExperimentError {
        field: field.into(),
        message: message.into(),
    }
}

/// Reads `text` as a humantime duration for `field`.
pub fn parse_duration(field: &str, text: &str) -> Result<Duration, ExperimentError> {
    humantime::parse_duration(text).map_err(|e| {
        refuse(
            field,
            format!("`{text}` is not a duration ({e}); write e.g. \"10s\", \"500ms\" or \"1m\""),
        )
    })
}

impl ExperimentFile {
    /// Reads and checks the file at `path`; topology files are found
    /// relative to its folder.
    pub fn load(path: &Path) -> Result<Self, ExperimentError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| refuse("", format!("reading {}: {e}", path.display())))?;
        Self::parse_in(&text, path.parent().unwrap_or(Path::new(".")))
    }

    /// Parses and checks an experiment file's text (topology files relative
    /// to the working directory).
    pub fn parse(text: &str) -> Result<Self, ExperimentError> {
        Self::parse_in(text, Path::new("."))
    }

    /// Parses and checks an experiment file's text, with topology files
    /// relative to `base`.
    pub fn parse_in(text: &str, base: &Path) -> Result<Self, ExperimentError> {
        let mut file: Self = toml::from_str(text).map_err(|e| {
            let place = e
                .span()
                .map(|s| {
                    let (line, column) = crate::lab::topology::file::line_column(text, s.start);
                    format!("line {line}, column {column}: ")
                })
                .unwrap_or_default();
            refuse("", format!("{place}{}", e.message().trim()))
        })?;
        for topology in &mut file.topologies {
            topology.resolve(base)?;
        }
        file.check()?;
        Ok(file)
    }

    /// T.
    pub fn run_duration(&self) -> Duration {
        // Checked by `check`, so the fallback is never taken.
        humantime::parse_duration(&self.duration).unwrap_or(Duration::from_secs(1))
    }

    /// The labs' /16.
    pub fn cidr(&self) -> Ipv4Cidr {
        self.subnet
            .parse()
            .unwrap_or_else(|_| "10.160.0.0/16".parse().expect("a valid CIDR"))
    }

    /// Every rule a file must keep.
    pub fn check(&self) -> Result<(), ExperimentError> {
        check_prefix(&self.prefix).map_err(|e| refuse("prefix", e.to_string()))?;
        // The longest host name is "lb99"/"c99"/"s99" plus a bridge's "front".
        if self.prefix.len() > 9 {
            return Err(refuse(
                "prefix",
                format!(
                    "`{}` is {} characters; at most 9 leave room for the lab's names (\"{}front\")",
                    self.prefix,
                    self.prefix.len(),
                    self.prefix
                ),
            ));
        }
        let cidr: Ipv4Cidr = self.subnet.parse().map_err(|e| {
            refuse(
                "subnet",
                format!(
                    "`{}`: {e}; write a /16 such as \"10.160.0.0/16\"",
                    self.subnet
                ),
            )
        })?;
        if cidr.prefix_len != 16 {
            return Err(refuse(
                "subnet",
                format!(
                    "`{}` is not a /16; write e.g. \"10.160.0.0/16\"",
                    self.subnet
                ),
            ));
        }
        let t = parse_duration("duration", &self.duration)?;
        if t < Duration::from_secs(1) || t > Duration::from_secs(3600) {
            return Err(refuse(
                "duration",
                format!("`{}`: a run lasts from 1s to 1h", self.duration),
            ));
        }
        if self.repeat == 0 || self.repeat > 1000 {
            return Err(refuse(
                "repeat",
                format!("{}: accepted 1 to 1000", self.repeat),
            ));
        }
        check_names("system", self.systems.iter().map(|s| s.name.as_str()))?;
        check_names("topology", self.topologies.iter().map(|t| t.name.as_str()))?;
        check_names("workload", self.workloads.iter().map(|w| w.name.as_str()))?;
        check_names("fault", self.faults.iter().map(|f| f.name.as_str()))?;
        for system in &self.systems {
            if system.mode.is_some() && system.kind != SystemKind::RustyRail {
                return Err(refuse(
                    format!("system {:?} mode", system.name),
                    "mode (gre, vip or bgp) is rusty_rail's, for kind = \"rusty_rail\" only",
                ));
            }
            for key in system.settings.keys() {
                if !key.starts_with("RR_") || system.kind != SystemKind::RustyRail {
                    return Err(refuse(
                        format!("system {:?} settings.{key}", system.name),
                        "settings are rusty_rail's RR_* environment variables (RR_IO, RR_WORKERS, RR_TABLE_SIZE...), for kind = \"rusty_rail\" only",
                    ));
                }
            }
        }
        for topology in &self.topologies {
            let field = |what: &str| format!("topology {:?} {what}", topology.name);
            for (what, n) in [
                ("clients", topology.clients),
                ("balancers", topology.balancers),
                ("servers", topology.servers),
            ] {
                if !(1..=20).contains(&n) {
                    return Err(refuse(field(what), format!("{n}: accepted 1 to 20")));
                }
            }
        }
        for workload in &self.workloads {
            let field = |what: &str| format!("workload {:?} {what}", workload.name);
            if !(workload.rate.is_finite() && (0.0..=10_000.0).contains(&workload.rate)) {
                return Err(refuse(
                    field("rate"),
                    format!(
                        "{}: accepted 0 to 10000 connections per second",
                        workload.rate
                    ),
                ));
            }
            if workload.hold > 10_000 {
                return Err(refuse(
                    field("hold"),
                    format!("{}: accepted 0 to 10000 held connections", workload.hold),
                ));
            }
            if workload.rate == 0.0 && workload.hold == 0 && workload.iperf3.is_none() {
                return Err(refuse(
                    field("rate"),
                    "the workload does nothing; give rate > 0, hold > 0 or iperf3 streams",
                ));
            }
            if let Some(iperf3) = &workload.iperf3 {
                let clients = self.topologies.iter().map(|t| t.clients).max().unwrap_or(1);
                let most = MAX_STREAMS / clients;
                if iperf3.streams == 0 || iperf3.streams as usize > most {
                    return Err(refuse(
                        field("iperf3.streams"),
                        format!(
                            "{}: accepted 1 to {most} per client ({MAX_STREAMS} streams in a run, \
                             the largest topology has {clients} clients)",
                            iperf3.streams
                        ),
                    ));
                }
                if !valid_bitrate(&iperf3.bitrate) {
                    return Err(refuse(
                        field("iperf3.bitrate"),
                        format!(
                            "`{}`: write iperf3's bits per second, e.g. \"10M\", \"500K\" or \"1G\"",
                            iperf3.bitrate
                        ),
                    ));
                }
            }
            let interval = parse_duration(&field("interval"), &workload.interval)?;
            if interval < Duration::from_millis(50) || interval > t {
                return Err(refuse(
                    field("interval"),
                    format!(
                        "`{}`: accepted 50ms up to the run's duration",
                        workload.interval
                    ),
                ));
            }
        }
        for fault in &self.faults {
            self.check_fault(fault)?;
        }
        Ok(())
    }

    fn check_fault(&self, fault: &FaultEntry) -> Result<(), ExperimentError> {
        let field = |what: &str| format!("fault {:?} {what}", fault.name);
        for (what, value) in [
            ("at", fault.at),
            ("recover", fault.recover),
            ("until", fault.until),
        ] {
            if let Some(value) = value {
                if !(0.0..=1.0).contains(&value) {
                    return Err(refuse(
                        field(what),
                        format!("{value}: a fraction of the run's duration, 0 to 1"),
                    ));
                }
            }
        }
        let at = fault.at.unwrap_or(1.0 / 3.0);
        if let Some(recover) = fault.recover {
            if recover <= at {
                return Err(refuse(
                    field("recover"),
                    format!("{recover}: must come after at = {at}"),
                ));
            }
        }
        if let Some(until) = fault.until {
            if until <= at {
                return Err(refuse(
                    field("until"),
                    format!("{until}: must come after at = {at}"),
                ));
            }
        }
        let kills = matches!(fault.kind, FaultKind::BalancerKill | FaultKind::BackendKill);
        if fault.recover.is_some() && !kills {
            return Err(refuse(
                field("recover"),
                "only balancer_kill and backend_kill recover",
            ));
        }
        let balancers = self
            .topologies
            .iter()
            .map(|t| t.balancers)
            .min()
            .unwrap_or(1);
        let servers = self.topologies.iter().map(|t| t.servers).min().unwrap_or(1);
        if fault.count == 0 || (fault.count > 1 && !kills) {
            return Err(refuse(
                field("count"),
                format!(
                    "{}: balancer_kill and backend_kill take a count of 1 or more; other faults act on one",
                    fault.count
                ),
            ));
        }
        // The last node a kill reaches.
        let last = fault.target + fault.count - 1;
        match fault.kind {
            FaultKind::BalancerKill if fault.target == 0 || last > balancers => {
                return Err(refuse(
                    field("target"),
                    format!(
                        "{} to {last}: every topology has balancers 1 to {balancers}",
                        fault.target
                    ),
                ));
            }
            FaultKind::BackendKill
            | FaultKind::BackendAdd
            | FaultKind::BackendRemove
            | FaultKind::BackendDrain
                if fault.target == 0 || last > servers =>
            {
                return Err(refuse(
                    field("target"),
                    format!(
                        "{} to {last}: every topology has servers 1 to {servers}",
                        fault.target
                    ),
                ));
            }
            FaultKind::Partition | FaultKind::Intermittent if fault.cut.is_empty() => {
                return Err(refuse(
                    field("cut"),
                    "a partition needs pairs of hosts, e.g. cut = [[\"lb1\", \"s1\"]]",
                ));
            }
            _ => {}
        }
        for pair in &fault.cut {
            for host in pair {
                if !valid_host(host) {
                    return Err(refuse(
                        field("cut"),
                        format!("`{host}`: hosts are r, c1.., lb1.., s1.."),
                    ));
                }
            }
        }
        if fault.kind == FaultKind::Intermittent {
            for (what, value) in [("mtbf", &fault.mtbf), ("mttr", &fault.mttr)] {
                let Some(text) = value else {
                    return Err(refuse(
                        field(what),
                        "intermittent partitions need mtbf and mttr, e.g. \"1s\"",
                    ));
                };
                let mean = parse_duration(&field(what), text)?;
                if mean < Duration::from_millis(10) {
                    return Err(refuse(field(what), format!("`{text}`: at least 10ms")));
                }
            }
        }
        if let Some(text) = &fault.withdraw {
            parse_duration(&field("withdraw"), text)?;
        }
        if fault.kind == FaultKind::Link {
            match &fault.host {
                Some(host) if valid_host(host) && self.in_every_topology(host) => {}
                Some(host) if valid_host(host) => {
                    return Err(refuse(
                        field("host"),
                        format!(
                        "`{host}` is not in every topology; the link fault would impair nothing"
                    ),
                    ))
                }
                Some(host) => {
                    return Err(refuse(
                        field("host"),
                        format!("`{host}`: hosts are r, c1.., lb1.., s1.."),
                    ))
                }
                None => {
                    return Err(refuse(
                        field("host"),
                        "a link fault names its host, e.g. host = \"c1\"",
                    ))
                }
            }
            if fault.netem.is_none() && fault.netem_in.is_none() {
                return Err(refuse(
                    field("netem"),
                    "a link fault needs netem (what the host sends) or netem_in, e.g. netem = \"delay 20ms 5ms loss 1%\"",
                ));
            }
            for (what, spec) in [("netem", &fault.netem), ("netem_in", &fault.netem_in)] {
                if let Some(spec) = spec {
                    crate::impair::spec::NetemSpec::parse(spec)
                        .map_err(|e| refuse(field(what), format!("`{spec}`: {e}")))?;
                }
            }
        } else if fault.kind == FaultKind::Toxic {
            let Some(toxic) = &fault.toxic else {
                return Err(refuse(
                    field("toxic"),
                    "a toxic fault names its toxic, e.g. toxic = \"latency\" with attributes = { latency = 100 }",
                ));
            };
            crate::proxy::toxics::ToxicKind::from_json(toxic, toxic_attributes(fault))
                .map_err(|e| refuse(field("toxic"), e.to_string()))?;
            if let Some(stream) = &fault.stream {
                if stream != "downstream" && stream != "upstream" {
                    return Err(refuse(
                        field("stream"),
                        format!("`{stream}`: accepted downstream or upstream"),
                    ));
                }
            }
        } else if fault.host.is_some() || fault.netem.is_some() || fault.netem_in.is_some() {
            return Err(refuse(
                field("host"),
                "host, netem and netem_in belong to kind = \"link\"",
            ));
        }
        Ok(())
    }
}

impl TopologyEntry {
    /// Reads and checks its topology file, if any, and fills the counts not
    /// written: 1 for a generated lab, the file's for a topology file.
    fn resolve(&mut self, base: &Path) -> Result<(), ExperimentError> {
        let field = |what: &str| format!("topology {:?} {what}", self.name);
        let Some(file) = &self.file else {
            for count in [&mut self.clients, &mut self.balancers, &mut self.servers] {
                if *count == 0 {
                    *count = 1;
                }
            }
            return Ok(());
        };
        let roles = super::topology_file::RoleFile::load(&base.join(file))
            .map_err(|e| refuse(field("file"), e))?;
        for (what, count, has) in [
            ("clients", &mut self.clients, roles.clients),
            ("balancers", &mut self.balancers, roles.balancers),
            ("servers", &mut self.servers, roles.servers),
        ] {
            if *count == 0 {
                *count = has;
            } else if *count > has {
                return Err(refuse(
                    field(what),
                    format!("{count}: the topology file {file} has {has}; accepted 1 to {has}"),
                ));
            }
        }
        self.roles = Some(std::sync::Arc::new(roles));
        Ok(())
    }
}

impl ExperimentFile {
    /// Whether every topology has host `name` (`r`, `c2`, `lb1`, `s3`).
    fn in_every_topology(&self, name: &str) -> bool {
        let digits = name.trim_start_matches(|c: char| c.is_ascii_lowercase());
        let n: usize = digits.parse().unwrap_or(0);
        self.topologies
            .iter()
            .all(|t| match &name[..name.len() - digits.len()] {
                "r" => true,
                "c" => n <= t.clients,
                "lb" => n <= t.balancers,
                "s" => n <= t.servers,
                _ => false,
            })
    }
}

/// A toxic fault's attributes as the proxy's API takes them (JSON).
pub fn toxic_attributes(fault: &FaultEntry) -> serde_json::Value {
    serde_json::to_value(&fault.attributes).unwrap_or_default()
}

/// `r`, or a role letter and a 1-based number: `c2`, `lb1`, `s3`.
fn valid_host(name: &str) -> bool {
    if name == "r" {
        return true;
    }
    let digits = name.trim_start_matches(|c: char| c.is_ascii_lowercase());
    let role = &name[..name.len() - digits.len()];
    matches!(role, "c" | "lb" | "s")
        && !digits.is_empty()
        && digits.parse::<u32>().is_ok_and(|n| n > 0)
}

/// Names of one axis: present, unique, usable in a folder name.
fn check_names<'a>(
    axis: &str,
    names: impl Iterator<Item = &'a str>,
) -> Result<(), ExperimentError> {
    let mut seen = std::collections::BTreeSet::new();
    for name in names {
        let usable = !name.is_empty()
            && name.len() <= 40
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
        if !usable {
            return Err(refuse(
                format!("{axis} name"),
                format!(
                    "`{name}`: 1 to 40 of a-z, A-Z, 0-9, '-', '_', '.' (it names the run folders)"
                ),
            ));
        }
        if !seen.insert(name) {
            return Err(refuse(
                format!("{axis} name"),
                format!("`{name}` is used twice"),
            ));
        }
    }
    if seen.is_empty() {
        return Err(refuse(
            axis,
            format!("no [[{axis}]]; the matrix needs at least one"),
        ));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub const SMALL: &str = r#"
name = "small"
prefix = "rrex0-"
subnet = "10.160.0.0/16"
duration = "3s"
[[system]]
name = "rr"
kind = "rusty_rail"
settings = { RR_IO = "af_packet" }
[[system]]
name = "direct"
kind = "none"
[[topology]]
name = "one"
servers = 2
[[workload]]
name = "connects"
rate = 20
hold = 4
[[fault]]
name = "none"
kind = "none"
[[fault]]
name = "kill"
kind = "backend_kill"
target = 2
"#;

    fn refused(from: &str, to: &str) -> ExperimentError {
        assert!(SMALL.contains(from), "{from}");
        ExperimentFile::parse(&SMALL.replacen(from, to, 1)).unwrap_err()
    }

    #[test]
    fn a_valid_file_reads_with_its_defaults() {
        let file = ExperimentFile::parse(SMALL).unwrap();
        assert_eq!(file.repeat, 1);
        assert_eq!(file.run_duration(), Duration::from_secs(3));
        assert_eq!(file.topologies[0].clients, 1);
        assert_eq!(file.workloads[0].interval, "500ms");
    }

    #[test]
    fn refusals_name_the_field_and_what_is_accepted() {
        let e = refused("duration = \"3s\"", "duration = \"3 parsecs\"");
        assert_eq!(e.field, "duration");
        assert!(e.message.contains("\"10s\""), "{e}");
        let e = refused("target = 2", "target = 3");
        assert_eq!(e.field, "fault \"kill\" target");
        assert!(e.message.contains("servers 1 to 2"), "{e}");
        let e = refused(
            "kind = \"none\"\n[[topology]]",
            "kind = \"nginx\"\n[[topology]]",
        );
        assert!(
            e.message.contains("rusty_rail") && e.message.contains("haproxy"),
            "{e}"
        );
        let e = refused("rate = 20", "rate = -1");
        assert_eq!(e.field, "workload \"connects\" rate");
        let e = refused("subnet = \"10.160.0.0/16\"", "subnet = \"10.160.0.0/24\"");
        assert_eq!(e.field, "subnet");
        let e = refused("name = \"direct\"", "name = \"rr\"");
        assert!(e.message.contains("twice"), "{e}");
        let e = refused(
            "kind = \"none\"\n[[topology]]",
            "kind = \"none\"\nmode = \"vip\"\n[[topology]]",
        );
        assert_eq!(e.field, "system \"direct\" mode");
        let e = refused(
            "kind = \"rusty_rail\"",
            "kind = \"rusty_rail\"\nmode = \"dsr\"",
        );
        assert!(
            e.message.contains("gre") && e.message.contains("vip"),
            "{e}"
        );
        let e = refused("RR_IO", "IO");
        assert!(e.field.contains("settings.IO"), "{e}");
        let e = refused("target = 2", "target = 1\nat = 0.5\nrecover = 0.4");
        assert_eq!(e.field, "fault \"kill\" recover");
        let e = refused("prefix = \"rrex0-\"", "prefix = \"rrex0-toolong-\"");
        assert_eq!(e.field, "prefix");
    }

    #[test]
    fn unknown_fields_are_refused_with_their_line() {
        let e = refused("hold = 4", "hold = 4\nhodl = 5");
        assert!(e.message.contains("unknown field `hodl`"), "{e}");
        assert!(e.message.starts_with("line "), "{e}");
    }

    #[test]
    fn iperf3_streams_read_with_their_defaults_and_bounds() {
        let with =
            |table: &str| SMALL.replacen("hold = 4", &format!("hold = 4\niperf3 = {table}"), 1);
        let file = ExperimentFile::parse(&with("{ streams = 3 }")).unwrap();
        let iperf3 = file.workloads[0].iperf3.as_ref().unwrap();
        assert_eq!(
            (iperf3.streams, iperf3.bitrate.as_str(), iperf3.reverse),
            (3, "10M", false)
        );
        let e = ExperimentFile::parse(&with("{ streams = 0 }")).unwrap_err();
        assert_eq!(e.field, "workload \"connects\" iperf3.streams");
        assert!(e.message.contains("1 to 64"), "{e}");
        let e = ExperimentFile::parse(&with("{ streams = 65 }")).unwrap_err();
        assert!(e.message.contains("65"), "{e}");
        let e = ExperimentFile::parse(&with("{ bitrate = \"fast\" }")).unwrap_err();
        assert_eq!(e.field, "workload \"connects\" iperf3.bitrate");
        let e = ExperimentFile::parse(&with("{ streems = 2 }")).unwrap_err();
        assert!(e.message.contains("unknown field `streems`"), "{e}");
        // Streams alone are a workload.
        let alone = SMALL.replacen(
            "rate = 20\nhold = 4",
            "iperf3 = { streams = 1, reverse = true }",
            1,
        );
        let file = ExperimentFile::parse(&alone).unwrap();
        assert!(file.workloads[0].iperf3.as_ref().unwrap().reverse);
        let e = ExperimentFile::parse(&SMALL.replacen("rate = 20\nhold = 4", "", 1)).unwrap_err();
        assert!(e.message.contains("iperf3"), "{e}");
        assert!(valid_bitrate("10M") && valid_bitrate("0.5G") && valid_bitrate("800"));
        assert!(!valid_bitrate("10MM") && !valid_bitrate("-1M") && !valid_bitrate("M"));
    }

    #[test]
    fn link_faults_need_a_host_and_a_netem_spec_that_parses() {
        let link = |extra: &str| format!("kind = \"link\"\n{extra}");
        let e = refused("kind = \"backend_kill\"", &link("netem = \"delay 5ms\""));
        assert_eq!(e.field, "fault \"kill\" host");
        let e = refused(
            "kind = \"backend_kill\"",
            &link("host = \"s3\"\nnetem = \"delay 5ms\""),
        );
        assert!(e.message.contains("not in every topology"), "{e}");
        let e = refused("kind = \"backend_kill\"", &link("host = \"c1\""));
        assert!(e.message.contains("delay 20ms"), "{e}");
        let e = refused(
            "kind = \"backend_kill\"",
            &link("host = \"c1\"\nnetem = \"delay soon\""),
        );
        assert!(
            e.field.ends_with("netem") && e.message.contains("`delay soon`"),
            "{e}"
        );
        let good = SMALL.replacen(
            "kind = \"backend_kill\"",
            &link("host = \"c1\"\nnetem_in = \"loss 1%\""),
            1,
        );
        ExperimentFile::parse(&good).unwrap();
        let e = refused("target = 2", "target = 2\nnetem = \"delay 1ms\"");
        assert!(e.message.contains("kind = \"link\""), "{e}");
    }

    #[test]
    fn toxic_faults_take_the_proxy_s_toxics_and_attributes() {
        let toxic = |extra: &str| format!("kind = \"toxic\"\n{extra}");
        let e = refused("kind = \"backend_kill\"", &toxic(""));
        assert_eq!(e.field, "fault \"kill\" toxic");
        let e = refused("kind = \"backend_kill\"", &toxic("toxic = \"lag\""));
        assert!(e.message.contains("lag"), "{e}");
        let e = refused(
            "kind = \"backend_kill\"",
            &toxic("toxic = \"latency\"\nattributes = { latency = \"slow\" }"),
        );
        assert!(e.message.contains("latency"), "{e}");
        let good = SMALL.replacen(
            "kind = \"backend_kill\"",
            &toxic("toxic = \"latency\"\nattributes = { latency = 100 }"),
            1,
        );
        ExperimentFile::parse(&good).unwrap();
    }

    #[test]
    fn kills_reach_count_nodes_that_every_topology_has() {
        let e = refused("target = 2", "target = 1\ncount = 3");
        assert!(
            e.message.contains("1 to 3") && e.message.contains("servers 1 to 2"),
            "{e}"
        );
        ExperimentFile::parse(&SMALL.replacen("target = 2", "target = 1\ncount = 2\nat = 0.0", 1))
            .unwrap();
        let e = refused(
            "name = \"none\"\nkind = \"none\"",
            "name = \"none\"\nkind = \"none\"\ncount = 2",
        );
        assert_eq!(e.field, "fault \"none\" count");
    }

    #[test]
    fn partitions_need_pairs_of_known_hosts() {
        let e = refused("kind = \"backend_kill\"", "kind = \"partition\"");
        assert_eq!(e.field, "fault \"kill\" cut");
        let e = refused(
            "kind = \"backend_kill\"",
            "kind = \"partition\"\ncut = [[\"lb1\", \"db1\"]]",
        );
        assert!(e.message.contains("`db1`"), "{e}");
        let e = refused(
            "kind = \"backend_kill\"",
            "kind = \"intermittent\"\ncut = [[\"lb1\", \"s1\"]]",
        );
        assert!(e.message.contains("mtbf"), "{e}");
        assert!(valid_host("lb12") && valid_host("r") && !valid_host("lb0") && !valid_host("x1"));
    }
}
