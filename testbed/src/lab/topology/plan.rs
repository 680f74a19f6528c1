//! A topology file checked and turned into the lab it describes: every
//! name (namespaces, bridges, interfaces) and address decided before
//! anything is created, so that the state file can hold it all.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::file::{line_column, parse, HostEntry, LinkEntry, TopologyError, TopologyFile};
use super::route::{AddressSpec, RouteSpec, ADDRESS_FORMS, ROUTE_FORMS};
use crate::impair::{LinkSpecs, NetemSpec};
use crate::lab::plan::{check_prefix, Ipv4Cidr, MAX_PREFIX};
use crate::lab::tbf::{self, TbfSpec};

/// Longest interface name (`IFNAMSIZ - 1`).
const MAX_IFNAME: usize = 15;
/// Longest host name: namespace names are file names, but they are typed.
pub const MAX_HOST_NAME: usize = 32;

/// A lab of several networks and named hosts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopologyPlan {
    pub prefix: String,
    pub networks: Vec<NetworkPlan>,
    pub hosts: Vec<HostPlan>,
}

/// A subnet and what carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkPlan {
    pub name: String,
    pub cidr: Ipv4Cidr,
    pub medium: Medium,
}

/// How a network's members are joined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Medium {
    /// A bridge `{prefix}{network}` in the machine's namespace, holding the
    /// machine's own address on the network if the file gives one.
    Bridge {
        bridge: String,
        address: Option<Ipv4Addr>,
    },
    /// Exactly two members: one veth pair between their namespaces.
    PointToPoint,
}

/// A host: its namespace and what is set up in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostPlan {
    pub name: String,
    /// `{prefix}{name}`, under `/run/netns`.
    pub namespace: String,
    pub forward: bool,
    /// `eth0`, `eth1`, ... in the order of the file's `links`.
    pub interfaces: Vec<InterfacePlan>,
    pub routes: Vec<RouteSpec>,
    pub addresses: Vec<AddressSpec>,
    pub commands: Vec<String>,
    /// A BGP router (BIRD) `up` starts in the host.
    #[serde(default)]
    pub bgp: Option<super::bgp::RouterBgp>,
}

/// One interface of a host, on one network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfacePlan {
    /// Its name inside the host: `eth{position in links}`.
    pub name: String,
    pub network: String,
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    /// The other end of its veth pair.
    pub peer: Peer,
    /// Shapes what the host sends on this interface (its egress qdisc).
    pub tbf: Option<TbfSpec>,
    /// netem specs (checked by [`NetemSpec::parse`]) for the userspace link
    /// emulator: `egress` on what the host sends (the file's `netem` or
    /// `netem_out`), `ingress` on what it receives (`netem_in`).
    #[serde(default)]
    pub netem: LinkSpecs,
    /// The emulator's seed, with `netem`: the link's `seed`, or the file's
    /// `seed` (default 1) + the link's position among the netem links.
    #[serde(default)]
    pub netem_seed: Option<u64>,
}

/// A link with a netem impairment and where its emulator goes (see
/// [`crate::lab::topology::emulate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmulatedLinkPlan {
    pub host: String,
    pub namespace: String,
    pub interface: String,
    /// The bridge the link is on and the link's end there.
    pub bridge: String,
    pub link: String,
    /// The emulator's pair: `{prefix}m{host}.{link}` on the bridge,
    /// `{prefix}n{host}.{link}` in `{prefix}emu`.
    pub far: String,
    pub near: String,
    pub specs: LinkSpecs,
    pub seed: u64,
}

/// Where an interface's veth pair ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Peer {
    /// On the network's bridge, in the machine's namespace, named
    /// `{prefix}{host index}.{interface index}`.
    Bridge { link: String },
    /// The other member's interface of a point-to-point network.
    Host { host: String, interface: String },
}

impl TopologyPlan {
    /// Reads, checks and plans a topology file's text; `prefix` (from `-p`)
    /// overrides the file's.
    pub fn from_toml(text: &str, prefix: Option<&str>) -> Result<Self, TopologyError> {
        let file = parse(text)?;
        Planner { text }.plan(&file, prefix)
    }

    /// Reads and plans the topology file at `path`; errors start with the
    /// path.
    pub fn load(path: &std::path::Path, prefix: Option<&str>) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        Self::from_toml(&text, prefix).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn host(&self, name: &str) -> Option<&HostPlan> {
        self.hosts.iter().find(|h| h.name == name)
    }

    pub fn network(&self, name: &str) -> Option<&NetworkPlan> {
        self.networks.iter().find(|n| n.name == name)
    }

    /// The bridges of the lab, in file order.
    pub fn bridges(&self) -> impl Iterator<Item = &str> {
        self.networks.iter().filter_map(|n| match &n.medium {
            Medium::Bridge { bridge, .. } => Some(bridge.as_str()),
            Medium::PointToPoint => None,
        })
    }

    /// Every link with a netem impairment, in file order. Such links are
    /// always on a bridge (see `decide_media`).
    pub fn emulated_links(&self) -> Vec<EmulatedLinkPlan> {
        let mut links = Vec::new();
        for (h, host) in self.hosts.iter().enumerate() {
            for (i, interface) in host.interfaces.iter().enumerate() {
                let Peer::Bridge { link } = &interface.peer else {
                    continue;
                };
                if interface.netem.is_empty() {
                    continue;
                }
                let Some(Medium::Bridge { bridge, .. }) =
                    self.network(&interface.network).map(|n| &n.medium)
                else {
                    continue;
                };
                links.push(EmulatedLinkPlan {
                    host: host.name.clone(),
                    namespace: host.namespace.clone(),
                    interface: interface.name.clone(),
                    bridge: bridge.clone(),
                    link: link.clone(),
                    far: emulator_far_end(&self.prefix, h, i),
                    near: emulator_near_end(&self.prefix, h, i),
                    specs: interface.netem.clone(),
                    seed: interface.netem_seed.unwrap_or(DEFAULT_SEED),
                });
            }
        }
        links
    }
}

/// The seed of the first netem link without its own, when the file has no
/// `seed` (as `testbed run --seed`'s default).
pub const DEFAULT_SEED: u64 = 1;

/// The bridge-side end of the emulator pair of host `h`'s link `i`.
pub fn emulator_far_end(prefix: &str, h: usize, i: usize) -> String {
    format!("{prefix}m{h}.{i}")
}

/// The emulator-side end of that pair.
pub fn emulator_near_end(prefix: &str, h: usize, i: usize) -> String {
    format!("{prefix}n{h}.{i}")
}

/// Turns the file into a plan, with the text at hand to place errors.
struct Planner<'a> {
    text: &'a str,
}

/// `a-z` first, then `a-z`, `0-9`, `-`.
fn is_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl Planner<'_> {
    fn error<T>(&self, at: &Spanned<T>, field: &str, message: String) -> TopologyError {
        let (line, column) = line_column(self.text, at.span().start);
        TopologyError {
            line,
            column,
            field: field.to_owned(),
            message,
        }
    }

    fn plan(
        &self,
        file: &TopologyFile,
        prefix: Option<&str>,
    ) -> Result<TopologyPlan, TopologyError> {
        let prefix = self.prefix(file, prefix)?;
        let networks = self.networks(file, &prefix)?;
        let mut hosts = Vec::with_capacity(file.hosts.len());
        let mut host_names = BTreeSet::new();
        let mut link_addresses: BTreeMap<Ipv4Addr, String> = networks
            .iter()
            .filter_map(|n| match &n.medium {
                Medium::Bridge {
                    address: Some(a), ..
                } => Some((*a, format!("network {:?} (the machine)", n.name))),
                _ => None,
            })
            .collect();
        for (index, entry) in file.hosts.iter().enumerate() {
            let name = entry.name.get_ref();
            let field = "host.name";
            if !is_name(name) || name.len() > MAX_HOST_NAME {
                return Err(self.error(
                    &entry.name,
                    field,
                    format!(
                        "{name:?} is not usable; expected 1 to {MAX_HOST_NAME} characters from \
                         a-z, 0-9 and '-', starting with a letter"
                    ),
                ));
            }
            if !host_names.insert(name.clone()) {
                return Err(self.error(&entry.name, field, format!("{name:?} is given twice")));
            }
            hosts.push(self.host(&prefix, index, entry, &networks, &mut link_addresses)?);
        }
        let mut plan = TopologyPlan {
            prefix,
            networks,
            hosts,
        };
        Self::decide_media(file, &mut plan);
        Self::seed_netem_links(file, &mut plan);
        for (index, entry) in file.hosts.iter().enumerate() {
            let (routes, addresses) = self.extras(entry, &plan.hosts[index], &link_addresses)?;
            plan.hosts[index].routes = routes;
            plan.hosts[index].addresses = addresses;
        }
        Ok(plan)
    }

    fn prefix(&self, file: &TopologyFile, given: Option<&str>) -> Result<String, TopologyError> {
        let (prefix, at) = match (given, &file.prefix) {
            (Some(prefix), _) => (prefix.to_owned(), None),
            (None, Some(prefix)) => (prefix.get_ref().clone(), Some(prefix)),
            (None, None) => {
                return Err(TopologyError {
                    line: 0,
                    column: 0,
                    field: "prefix".into(),
                    message: "missing; give `prefix = \"lab-\"` in the file or -p PREFIX".into(),
                })
            }
        };
        check_prefix(&prefix).map_err(|_| {
            let message = format!(
                "{prefix:?} is not usable; expected 1 to {MAX_PREFIX} characters from a-z, 0-9 \
                 and '-' (every name in the lab starts with it)"
            );
            match at {
                Some(at) => self.error(at, "prefix", message),
                None => TopologyError {
                    line: 0,
                    column: 0,
                    field: "-p".into(),
                    message,
                },
            }
        })?;
        Ok(prefix)
    }

    fn networks(
        &self,
        file: &TopologyFile,
        prefix: &str,
    ) -> Result<Vec<NetworkPlan>, TopologyError> {
        let mut networks: Vec<NetworkPlan> = Vec::with_capacity(file.networks.len());
        for entry in &file.networks {
            let name = entry.name.get_ref();
            let bridge = format!("{prefix}{name}");
            if !is_name(name) || bridge.len() > MAX_IFNAME {
                return Err(self.error(
                    &entry.name,
                    "network.name",
                    format!(
                        "{name:?} is not usable; expected a-z, 0-9 and '-', starting with a \
                         letter, and at most {} characters with prefix {prefix:?} (the bridge \
                         {bridge:?} must fit an interface name, {MAX_IFNAME} characters)",
                        MAX_IFNAME.saturating_sub(prefix.len())
                    ),
                ));
            }
            if networks.iter().any(|n| &n.name == name) {
                return Err(self.error(
                    &entry.name,
                    "network.name",
                    format!("{name:?} is given twice"),
                ));
            }
            let field = format!("network {name:?} cidr");
            let cidr: Ipv4Cidr = entry.cidr.get_ref().parse().map_err(|_| {
                self.error(
                    &entry.cidr,
                    &field,
                    format!(
                        "{:?} is not usable; expected a subnet such as 10.0.1.0/24 (prefix \
                         length 8 to 30, no host bits set)",
                        entry.cidr.get_ref()
                    ),
                )
            })?;
            if let Some(other) = networks.iter().find(|n| overlap(n.cidr, cidr)) {
                return Err(self.error(
                    &entry.cidr,
                    &field,
                    format!("{cidr} overlaps network {:?} ({})", other.name, other.cidr),
                ));
            }
            let address = match &entry.address {
                Some(text) => Some(self.host_address(
                    text,
                    &format!("network {name:?} address"),
                    cidr,
                    name,
                )?),
                None => None,
            };
            networks.push(NetworkPlan {
                name: name.clone(),
                cidr,
                medium: Medium::Bridge { bridge, address },
            });
        }
        Ok(networks)
    }

    /// `A.B.C.D` (or `A.B.C.D/LEN` with the network's LEN), a host address
    /// of `cidr`.
    fn host_address(
        &self,
        text: &Spanned<String>,
        field: &str,
        cidr: Ipv4Cidr,
        network: &str,
    ) -> Result<Ipv4Addr, TopologyError> {
        let value = text.get_ref();
        let (address, len) = value.split_once('/').unwrap_or((value, ""));
        let fail = |why: String| self.error(text, field, why);
        let address: Ipv4Addr = address.parse().map_err(|_| {
            fail(format!(
                "{value:?} is not an IPv4 address; expected e.g. {}",
                cidr.host(1).unwrap_or(cidr.network)
            ))
        })?;
        if !len.is_empty() && len != cidr.prefix_len.to_string() {
            return Err(fail(format!(
                "{value:?} has another prefix length than network {network:?} ({cidr}); \
                 give the address alone"
            )));
        }
        let offset = u64::from(u32::from(address).wrapping_sub(u32::from(cidr.network)));
        if cidr.host(offset) != Some(address) {
            return Err(fail(format!(
                "{address} is outside network {network:?} ({cidr}); expected one of {} to {}",
                cidr.host(1).unwrap_or(cidr.network),
                cidr.host(cidr.hosts()).unwrap_or(cidr.network)
            )));
        }
        Ok(address)
    }

    fn host(
        &self,
        prefix: &str,
        index: usize,
        entry: &HostEntry,
        networks: &[NetworkPlan],
        link_addresses: &mut BTreeMap<Ipv4Addr, String>,
    ) -> Result<HostPlan, TopologyError> {
        let name = entry.name.get_ref();
        let mut interfaces: Vec<InterfacePlan> = Vec::with_capacity(entry.links.len());
        for (position, link) in entry.links.iter().enumerate() {
            let field = |what: &str| format!("host {name:?} links[{position}].{what}");
            let wanted = link.network.get_ref();
            let network = networks.iter().find(|n| &n.name == wanted).ok_or_else(|| {
                let known: Vec<&str> = networks.iter().map(|n| n.name.as_str()).collect();
                self.error(
                    &link.network,
                    &field("network"),
                    format!(
                        "unknown network {wanted:?}; the [[network]] names are: {}",
                        if known.is_empty() {
                            "(none)".to_owned()
                        } else {
                            known.join(", ")
                        }
                    ),
                )
            })?;
            if interfaces.iter().any(|i| &i.network == wanted) {
                return Err(self.error(
                    &link.network,
                    &field("network"),
                    format!("host {name:?} links to network {wanted:?} twice"),
                ));
            }
            let address =
                self.host_address(&link.address, &field("address"), network.cidr, wanted)?;
            if let Some(owner) = link_addresses.insert(address, format!("host {name:?}")) {
                return Err(self.error(
                    &link.address,
                    &field("address"),
                    format!("{address} is already the address of {owner}"),
                ));
            }
            let tbf = match &link.tbf {
                Some(text) => Some(text.get_ref().parse::<TbfSpec>().map_err(|e| {
                    self.error(
                        text,
                        &field("tbf"),
                        format!("{:?}: {}; {}", e.spec, e.reason, tbf::ACCEPTED),
                    )
                })?),
                None => None,
            };
            let netem = self.netem(link, &field)?;
            let interface = format!("eth{position}");
            let link_name = format!("{prefix}{index}.{position}");
            let emulator_end = emulator_far_end(prefix, index, position);
            if !netem.is_empty() && emulator_end.len() > MAX_IFNAME {
                return Err(self.error(
                    &link.network,
                    &field("netem"),
                    format!(
                        "too many hosts or links for prefix {prefix:?} with netem: the \
                         emulator's end {emulator_end:?} would not fit an interface name \
                         ({MAX_IFNAME} characters); use a shorter prefix"
                    ),
                ));
            }
            if let (Some(seed), true) = (&link.seed, netem.is_empty()) {
                return Err(self.error(
                    seed,
                    &field("seed"),
                    "a seed without netem; it seeds the link's emulator, give `netem` too".into(),
                ));
            }
            if link_name.len() > MAX_IFNAME {
                return Err(self.error(
                    &link.network,
                    &field("network"),
                    format!(
                        "too many hosts or links for prefix {prefix:?}: the bridge end \
                         {link_name:?} would not fit an interface name ({MAX_IFNAME} characters)"
                    ),
                ));
            }
            interfaces.push(InterfacePlan {
                name: interface,
                network: wanted.clone(),
                address,
                prefix_len: network.cidr.prefix_len,
                peer: Peer::Bridge { link: link_name },
                tbf,
                netem,
                netem_seed: link.seed.as_ref().map(|seed| *seed.get_ref()),
            });
        }
        let commands = entry
            .commands
            .iter()
            .map(|command| {
                if command.get_ref().trim().is_empty() {
                    Err(self.error(
                        command,
                        &format!("host {name:?} commands"),
                        "an empty command; expected a shell command line".into(),
                    ))
                } else {
                    Ok(command.get_ref().clone())
                }
            })
            .collect::<Result<_, _>>()?;
        let bgp = match &entry.bgp {
            Some(bgp) => Some(
                super::bgp::RouterBgp::plan(bgp, interfaces.first().map(|i| i.address)).map_err(
                    |(peer, message)| match peer.and_then(|i| bgp.peers.get(i)) {
                        Some(at) => self.error(at, &format!("host {name:?} bgp.peers"), message),
                        None => self.error(&entry.name, &format!("host {name:?} bgp"), message),
                    },
                )?,
            ),
            None => None,
        };
        Ok(HostPlan {
            name: name.clone(),
            namespace: format!("{prefix}{name}"),
            forward: entry.forward,
            interfaces,
            routes: Vec::new(),
            addresses: Vec::new(),
            commands,
            bgp,
        })
    }

    /// A link's netem specs by direction: `netem = SPEC` or `netem_out` for
    /// what the host sends, `netem_in` for what it receives, or `netem = {
    /// out = SPEC, in = SPEC }`; each direction given once, each spec
    /// checked.
    fn netem(
        &self,
        link: &LinkEntry,
        field: &dyn Fn(&str) -> String,
    ) -> Result<LinkSpecs, TopologyError> {
        let check = |text: &str, at: &dyn Fn(String) -> TopologyError| {
            NetemSpec::parse(text)
                .map(|_| text.split_whitespace().collect::<Vec<_>>().join(" "))
                .map_err(|e| at(e.to_string()))
        };
        let mut specs = LinkSpecs::default();
        if let Some(entry) = &link.netem {
            let at = |message: String| self.error(entry, &field("netem"), message);
            let value = entry.get_ref();
            specs.egress = value.out.as_deref().map(|t| check(t, &at)).transpose()?;
            specs.ingress = value.r#in.as_deref().map(|t| check(t, &at)).transpose()?;
        }
        for (name, given, slot) in [
            ("netem_out", &link.netem_out, &mut specs.egress),
            ("netem_in", &link.netem_in, &mut specs.ingress),
        ] {
            let Some(text) = given else { continue };
            let at = |message: String| self.error(text, &field(name), message);
            if slot.is_some() {
                return Err(at(format!(
                    "{name} and netem both give this direction's spec; give it once"
                )));
            }
            *slot = Some(check(text.get_ref(), &at)?);
        }
        Ok(specs)
    }

    /// The netem links without a seed of their own get the file's `seed`
    /// (default [`DEFAULT_SEED`]) + their position among the netem links.
    fn seed_netem_links(file: &TopologyFile, plan: &mut TopologyPlan) {
        let base = file.seed.unwrap_or(DEFAULT_SEED);
        let interfaces = plan.hosts.iter_mut().flat_map(|h| h.interfaces.iter_mut());
        for (n, interface) in interfaces.filter(|i| !i.netem.is_empty()).enumerate() {
            if interface.netem_seed.is_none() {
                interface.netem_seed = Some(base.wrapping_add(n as u64));
            }
        }
    }

    /// Networks with exactly two members (and no machine address, not
    /// `bridge = true`, and no netem link: the emulator sits between a
    /// link and its bridge) become point-to-point.
    fn decide_media(file: &TopologyFile, plan: &mut TopologyPlan) {
        for (entry, network) in file.networks.iter().zip(plan.networks.iter_mut()) {
            let members: Vec<(usize, usize)> = plan
                .hosts
                .iter()
                .enumerate()
                .flat_map(|(h, host)| {
                    host.interfaces
                        .iter()
                        .enumerate()
                        .filter(|(_, i)| i.network == network.name)
                        .map(move |(i, _)| (h, i))
                })
                .collect();
            let machine = matches!(
                network.medium,
                Medium::Bridge {
                    address: Some(_),
                    ..
                }
            );
            let emulated = members
                .iter()
                .any(|&(h, i)| !plan.hosts[h].interfaces[i].netem.is_empty());
            if let [(a, ai), (b, bi)] = members[..] {
                if !machine && !entry.bridge && !emulated {
                    network.medium = Medium::PointToPoint;
                    let (a_name, a_if) = (
                        plan.hosts[a].name.clone(),
                        plan.hosts[a].interfaces[ai].name.clone(),
                    );
                    let (b_name, b_if) = (
                        plan.hosts[b].name.clone(),
                        plan.hosts[b].interfaces[bi].name.clone(),
                    );
                    plan.hosts[a].interfaces[ai].peer = Peer::Host {
                        host: b_name,
                        interface: b_if,
                    };
                    plan.hosts[b].interfaces[bi].peer = Peer::Host {
                        host: a_name,
                        interface: a_if,
                    };
                }
            }
        }
    }

    /// Routes and extra addresses, once every interface is known.
    fn extras(
        &self,
        entry: &HostEntry,
        host: &HostPlan,
        link_addresses: &BTreeMap<Ipv4Addr, String>,
    ) -> Result<(Vec<RouteSpec>, Vec<AddressSpec>), TopologyError> {
        let name = &host.name;
        let devices = || {
            let mut names: Vec<String> = host
                .interfaces
                .iter()
                .map(|i| format!("{} (on {})", i.name, i.network))
                .collect();
            names.push("lo".into());
            names.join(", ")
        };
        let has_device =
            |device: &str| device == "lo" || host.interfaces.iter().any(|i| i.name == device);
        let mut routes: Vec<RouteSpec> = Vec::with_capacity(entry.routes.len());
        for (position, text) in entry.routes.iter().enumerate() {
            let field = format!("host {name:?} routes[{position}]");
            let fail = |why: String| self.error(text, &field, why);
            let route: RouteSpec = text.get_ref().parse().map_err(|why| {
                fail(format!(
                    "{:?}: {why}; accepted: {ROUTE_FORMS}",
                    text.get_ref()
                ))
            })?;
            if let Some(device) = &route.device {
                if !has_device(device) {
                    return Err(fail(format!(
                        "dev {device:?} is not an interface of host {name:?}; its interfaces \
                         are {}",
                        devices()
                    )));
                }
            }
            if let Some(gateway) = route.gateway {
                let on = host.interfaces.iter().find(|i| {
                    route.device.as_ref().is_none_or(|d| d == &i.name)
                        && overlap(
                            Ipv4Cidr {
                                network: gateway,
                                prefix_len: 32,
                            },
                            cidr_of(i),
                        )
                });
                match on {
                    None => {
                        let reachable: Vec<String> = host
                            .interfaces
                            .iter()
                            .map(|i| format!("{} {}", i.network, cidr_of(i)))
                            .collect();
                        return Err(fail(format!(
                            "gateway {gateway} is not on a network of host {name:?}{}; a \
                             gateway must be a neighbour, on one of: {}",
                            route
                                .device
                                .as_ref()
                                .map(|d| format!(" reached through {d}"))
                                .unwrap_or_default(),
                            if reachable.is_empty() {
                                "(no links)".to_owned()
                            } else {
                                reachable.join(", ")
                            }
                        )));
                    }
                    Some(interface) if interface.address == gateway => {
                        return Err(fail(format!(
                            "gateway {gateway} is host {name:?}'s own address on {}",
                            interface.name
                        )));
                    }
                    Some(_) => {}
                }
            }
            if let Some(interface) = host.interfaces.iter().find(|i| {
                cidr_of(i).network == route.destination && cidr_of(i).prefix_len == route.prefix_len
            }) {
                return Err(fail(format!(
                    "{}/{} is network {:?}, which host {name:?} is on already (the kernel \
                     routes it through {})",
                    route.destination, route.prefix_len, interface.network, interface.name
                )));
            }
            if routes
                .iter()
                .any(|r| (r.destination, r.prefix_len) == (route.destination, route.prefix_len))
            {
                return Err(fail(format!(
                    "a route to {}/{} is given twice",
                    route.destination, route.prefix_len
                )));
            }
            routes.push(route);
        }
        let mut addresses: Vec<AddressSpec> = Vec::with_capacity(entry.addresses.len());
        for (position, text) in entry.addresses.iter().enumerate() {
            let field = format!("host {name:?} addresses[{position}]");
            let fail = |why: String| self.error(text, &field, why);
            let address: AddressSpec = text.get_ref().parse().map_err(|why| {
                fail(format!(
                    "{:?}: {why}; accepted: {ADDRESS_FORMS}",
                    text.get_ref()
                ))
            })?;
            if !has_device(&address.device) {
                return Err(fail(format!(
                    "dev {:?} is not an interface of host {name:?}; its interfaces are {}",
                    address.device,
                    devices()
                )));
            }
            if let Some(owner) = link_addresses.get(&address.address) {
                return Err(fail(format!(
                    "{} is already the link address of {owner}",
                    address.address
                )));
            }
            if addresses.iter().any(|a| a.address == address.address) {
                return Err(fail(format!("{} is given twice", address.address)));
            }
            addresses.push(address);
        }
        Ok((routes, addresses))
    }
}

/// The subnet an interface is on.
fn cidr_of(interface: &InterfacePlan) -> Ipv4Cidr {
    let mask = u32::MAX << (32 - u32::from(interface.prefix_len));
    Ipv4Cidr {
        network: Ipv4Addr::from(u32::from(interface.address) & mask),
        prefix_len: interface.prefix_len,
    }
}

/// Whether two subnets share an address.
fn overlap(a: Ipv4Cidr, b: Ipv4Cidr) -> bool {
    let len = a.prefix_len.min(b.prefix_len);
    let mask = u32::MAX << (32 - u32::from(len));
    u32::from(a.network) & mask == u32::from(b.network) & mask
}
