//! What a star lab is made of, computed before anything is created: the names
//! of its namespaces, links and bridge, and every address, all derived from
//! the prefix and the subnet so that `cleanup` can find them again.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::multihost::{HostShare, VxlanPlan};

/// Longest interface name the kernel accepts (`IFNAMSIZ - 1`).
const MAX_IFNAME: usize = 15;

/// An IPv4 subnet such as `10.0.0.0/16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ipv4Cidr {
    pub network: Ipv4Addr,
    pub prefix_len: u8,
}

impl Ipv4Cidr {
    /// Usable host addresses (network and broadcast excluded).
    pub fn hosts(self) -> u64 {
        (1u64 << (32 - u32::from(self.prefix_len))).saturating_sub(2)
    }

    /// The `n`th host address (1 is the first), if the subnet has it.
    pub fn host(self, n: u64) -> Option<Ipv4Addr> {
        if n == 0 || n > self.hosts() {
            return None;
        }
        let base = u64::from(u32::from(self.network));
        u32::try_from(base + n).ok().map(Ipv4Addr::from)
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

impl FromStr for Ipv4Cidr {
    type Err = PlanError;

    fn from_str(text: &str) -> Result<Self, PlanError> {
        let bad = || PlanError::Cidr(text.to_owned());
        let (address, len) = text.split_once('/').ok_or_else(bad)?;
        let address: Ipv4Addr = address.parse().map_err(|_| bad())?;
        let prefix_len: u8 = len.parse().map_err(|_| bad())?;
        if !(8..=30).contains(&prefix_len) {
            return Err(bad());
        }
        let mask = u32::MAX << (32 - u32::from(prefix_len));
        let network = Ipv4Addr::from(u32::from(address) & mask);
        if network != address {
            return Err(bad());
        }
        Ok(Self {
            network,
            prefix_len,
        })
    }
}

/// Why a lab cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    /// Not `A.B.C.D/LEN` with LEN from 8 to 30 and no host bits set.
    Cidr(String),
    /// The prefix has characters other than `a-z`, `0-9`, `-`, or is too long.
    Prefix(String),
    /// More instances than the subnet has addresses (after the bridge's).
    TooManyHosts { hosts: usize, cidr: Ipv4Cidr },
    /// No command given.
    NoCommands,
    /// `--instances-per-bridge` is 0 or leaves no port for the joins.
    InstancesPerBridge(usize),
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cidr(text) => write!(
                f,
                "--cidr {text:?} is not usable; expected a subnet such as 10.0.0.0/16 \
                 (prefix length 8 to 30, no host bits set)"
            ),
            Self::Prefix(prefix) => write!(
                f,
                "--prefix {prefix:?} is not usable; expected 1 to {MAX_PREFIX} characters \
                 from a-z, 0-9 and '-' (every interface name starts with it)"
            ),
            Self::TooManyHosts { hosts, cidr } => write!(
                f,
                "{hosts} instances do not fit {cidr} ({} addresses after the bridge's); \
                 use a larger --cidr",
                cidr.hosts().saturating_sub(1)
            ),
            Self::NoCommands => write!(f, "no command; give at least one -c CMD"),
            Self::InstancesPerBridge(n) => write!(
                f,
                "--instances-per-bridge {n} is not usable; expected 1 to {MAX_PER_BRIDGE} \
                 (a Linux bridge has 1024 ports, two go to the joins)"
            ),
        }
    }
}

impl std::error::Error for PlanError {}

/// Longest prefix: the longest name built from it, `{prefix}v{index}` with a
/// 6-digit index, must fit an interface name.
pub const MAX_PREFIX: usize = MAX_IFNAME - 7;

/// One instance: its namespace, link, address and command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    pub index: usize,
    /// Network namespace name (also under `/run/netns`).
    pub namespace: String,
    /// The veth end on the bridge, in the machine's namespace.
    pub link: String,
    /// The bridge `link` is on: 0 is [`LabPlan::bridge`], `k` is
    /// `LabPlan::extra_bridges[k - 1]`.
    #[serde(default)]
    pub bridge_index: usize,
    /// The veth end inside the namespace.
    pub inner_link: String,
    pub address: Ipv4Addr,
    /// The command with `{index}` and `{ip}` substituted.
    pub command: String,
}

/// A star: every host on one bridge in one subnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabPlan {
    pub prefix: String,
    pub cidr: Ipv4Cidr,
    pub bridge: String,
    pub bridge_address: Ipv4Addr,
    /// Bridges after the first when the hosts exceed `--instances-per-bridge`,
    /// each joined to the one before by a veth pair (a chain keeps every
    /// bridge under the kernel's 1024 ports).
    #[serde(default)]
    pub extra_bridges: Vec<Join>,
    /// This machine's hosts only: the whole lab's when `share` is `None`.
    pub hosts: Vec<Host>,
    /// The share of the instances this machine runs (`-h i/N`), when the lab
    /// spans machines.
    #[serde(default)]
    pub share: Option<HostShare>,
    /// The VXLAN joining this machine's bridge to the others'.
    #[serde(default)]
    pub vxlan: Option<VxlanPlan>,
}

/// An extra bridge and the veth pair joining it to the bridge before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Join {
    pub bridge: String,
    /// The veth end on this bridge.
    pub link: String,
    /// The veth end on the bridge before.
    pub peer: String,
}

/// Hosts per bridge by default, and at most (1024 ports, two for joins).
pub const DEFAULT_PER_BRIDGE: usize = 1000;
pub const MAX_PER_BRIDGE: usize = 1022;

/// The name of the veth end inside every namespace.
pub const INNER_LINK: &str = "eth0";

impl LabPlan {
    /// Plans `count` instances of each command, in order: instance indices run
    /// on across commands (`-c A -n 2 -c B -n 1` gives A0, A1, B2).
    pub fn new(
        prefix: &str,
        cidr: Ipv4Cidr,
        commands: &[(String, usize)],
    ) -> Result<Self, PlanError> {
        check_prefix(prefix)?;
        if commands.is_empty() {
            return Err(PlanError::NoCommands);
        }
        let total: usize = commands.iter().map(|(_, n)| n).sum();
        // The bridge takes the first address; 6 digits keep names short enough.
        if total as u64 > cidr.hosts().saturating_sub(1) || total > 999_999 {
            return Err(PlanError::TooManyHosts { hosts: total, cidr });
        }
        let bridge_address = cidr
            .host(1)
            .ok_or(PlanError::TooManyHosts { hosts: total, cidr })?;
        let mut hosts = Vec::with_capacity(total);
        for (template, count) in commands {
            for _ in 0..*count {
                let index = hosts.len();
                let address = cidr
                    .host(index as u64 + 2)
                    .ok_or(PlanError::TooManyHosts { hosts: total, cidr })?;
                hosts.push(Host {
                    index,
                    namespace: format!("{prefix}h{index}"),
                    link: format!("{prefix}v{index}"),
                    bridge_index: 0,
                    inner_link: INNER_LINK.to_owned(),
                    address,
                    command: substitute(template, index, address),
                });
            }
        }
        Ok(Self {
            prefix: prefix.to_owned(),
            cidr,
            bridge: bridge_name(prefix),
            bridge_address,
            extra_bridges: Vec::new(),
            hosts,
            share: None,
            vxlan: None,
        })
        .and_then(|plan| plan.with_instances_per_bridge(DEFAULT_PER_BRIDGE))
    }

    /// Spreads the hosts over bridges of at most `per_bridge` hosts each.
    pub fn with_instances_per_bridge(mut self, per_bridge: usize) -> Result<Self, PlanError> {
        if per_bridge == 0 || per_bridge > MAX_PER_BRIDGE {
            return Err(PlanError::InstancesPerBridge(per_bridge));
        }
        let bridges = self.hosts.len().div_ceil(per_bridge).max(1);
        let prefix = &self.prefix;
        self.extra_bridges = (1..bridges)
            .map(|k| Join {
                bridge: format!("{prefix}br{k}"),
                link: format!("{prefix}j{k}"),
                peer: format!("{prefix}k{k}"),
            })
            .collect();
        // By position: a machine's share need not start at index 0.
        for (position, host) in self.hosts.iter_mut().enumerate() {
            host.bridge_index = position / per_bridge;
        }
        Ok(self)
    }

    /// Keeps the hosts of this machine's share (see
    /// [`HostShare::range`]), with the indexes, names and addresses the
    /// whole lab gives them. Call before
    /// [`with_instances_per_bridge`](Self::with_instances_per_bridge).
    #[must_use]
    pub fn with_share(mut self, share: HostShare) -> Self {
        let mine = share.range(self.hosts.len());
        self.hosts.retain(|host| mine.contains(&host.index));
        self.share = (share != HostShare::ALONE).then_some(share);
        self
    }

    /// Whether this machine's first bridge holds the lab's first address:
    /// always on one machine; on machine 1 only when the lab spans several.
    pub fn holds_bridge_address(&self) -> bool {
        self.share.is_none_or(HostShare::holds_bridge_address)
    }

    /// The MTU of the instances' links, when not the kernel's default: the
    /// VXLAN's, so that their full-size frames fit the tunnel.
    pub fn instance_mtu(&self) -> Option<u32> {
        self.vxlan.as_ref().map(VxlanPlan::instance_mtu)
    }

    /// The name of bridge `index` (0: the first, which holds the address).
    pub fn bridge_named(&self, index: usize) -> &str {
        match index {
            0 => &self.bridge,
            k => self
                .extra_bridges
                .get(k - 1)
                .map_or(&self.bridge, |j| &j.bridge),
        }
    }
}

/// The bridge of the lab with `prefix`.
pub fn bridge_name(prefix: &str) -> String {
    format!("{prefix}br")
}

/// Checks that `prefix` can start every name of a lab.
pub fn check_prefix(prefix: &str) -> Result<(), PlanError> {
    let usable = !prefix.is_empty()
        && prefix.len() <= MAX_PREFIX
        && prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if usable {
        Ok(())
    } else {
        Err(PlanError::Prefix(prefix.to_owned()))
    }
}

/// Replaces `{index}` and `{ip}` in a command.
pub fn substitute(template: &str, index: usize, address: Ipv4Addr) -> String {
    template
        .replace("{index}", &index.to_string())
        .replace("{ip}", &address.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(text: &str) -> Ipv4Cidr {
        text.parse().unwrap()
    }

    #[test]
    fn cidr_parses_and_counts_its_hosts() {
        let net = cidr("10.0.0.0/16");
        assert_eq!(net.hosts(), 65_534);
        assert_eq!(net.host(1), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(net.host(256), Some(Ipv4Addr::new(10, 0, 1, 0)));
        assert_eq!(net.host(65_535), None);
        assert_eq!(net.to_string(), "10.0.0.0/16");
    }

    #[test]
    fn cidr_with_host_bits_or_odd_lengths_is_refused() {
        for text in [
            "10.0.0.1/16",
            "10.0.0.0",
            "10.0.0.0/31",
            "10.0.0.0/4",
            "x/8",
        ] {
            assert_eq!(text.parse::<Ipv4Cidr>(), Err(PlanError::Cidr(text.into())));
        }
    }

    #[test]
    fn bridge_takes_the_first_address_and_hosts_follow_in_order() {
        let commands = [("echo {index} {ip}".to_owned(), 2), ("true".to_owned(), 1)];
        let plan = LabPlan::new("t1-", cidr("10.9.0.0/24"), &commands).unwrap();
        assert_eq!(plan.bridge, "t1-br");
        assert_eq!(plan.bridge_address, Ipv4Addr::new(10, 9, 0, 1));
        let summary: Vec<_> = plan
            .hosts
            .iter()
            .map(|h| {
                (
                    h.namespace.as_str(),
                    h.link.as_str(),
                    h.address,
                    h.command.as_str(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "t1-h0",
                    "t1-v0",
                    Ipv4Addr::new(10, 9, 0, 2),
                    "echo 0 10.9.0.2"
                ),
                (
                    "t1-h1",
                    "t1-v1",
                    Ipv4Addr::new(10, 9, 0, 3),
                    "echo 1 10.9.0.3"
                ),
                ("t1-h2", "t1-v2", Ipv4Addr::new(10, 9, 0, 4), "true"),
            ]
        );
    }

    #[test]
    fn a_subnet_too_small_for_the_instances_is_refused() {
        // /30 has 2 host addresses: the bridge and one instance.
        let net = cidr("10.9.0.0/30");
        assert!(LabPlan::new("t-", net, &[("true".into(), 1)]).is_ok());
        assert_eq!(
            LabPlan::new("t-", net, &[("true".into(), 2)]),
            Err(PlanError::TooManyHosts {
                hosts: 2,
                cidr: net
            })
        );
    }

    #[test]
    fn prefixes_that_would_make_bad_interface_names_are_refused() {
        let net = cidr("10.9.0.0/24");
        for prefix in ["", "Upper", "has space", "much-too-long"] {
            assert_eq!(
                LabPlan::new(prefix, net, &[("true".into(), 1)]),
                Err(PlanError::Prefix(prefix.into()))
            );
        }
    }

    #[test]
    fn the_longest_names_fit_an_interface_name() {
        let prefix = "a".repeat(MAX_PREFIX);
        let name = format!("{prefix}v999999");
        assert!(name.len() <= MAX_IFNAME);
        assert!(LabPlan::new(&prefix, cidr("10.0.0.0/16"), &[("true".into(), 3)]).is_ok());
    }

    #[test]
    fn hosts_beyond_a_bridge_go_to_chained_bridges() {
        let commands = [("true".to_owned(), 5)];
        let plan = LabPlan::new("t2-", cidr("10.9.0.0/24"), &commands)
            .unwrap()
            .with_instances_per_bridge(2)
            .unwrap();
        let bridges: Vec<_> = plan.hosts.iter().map(|h| h.bridge_index).collect();
        assert_eq!(bridges, [0, 0, 1, 1, 2]);
        assert_eq!(
            plan.extra_bridges,
            [
                Join {
                    bridge: "t2-br1".into(),
                    link: "t2-j1".into(),
                    peer: "t2-k1".into()
                },
                Join {
                    bridge: "t2-br2".into(),
                    link: "t2-j2".into(),
                    peer: "t2-k2".into()
                },
            ]
        );
        assert_eq!(plan.bridge_named(2), "t2-br2");
        assert_eq!(
            plan.with_instances_per_bridge(0),
            Err(PlanError::InstancesPerBridge(0))
        );
    }

    #[test]
    fn a_share_keeps_the_whole_labs_indexes_names_and_addresses() {
        let commands = [("echo {index} {ip}".to_owned(), 5)];
        let whole = LabPlan::new("t3-", cidr("10.9.0.0/24"), &commands).unwrap();
        let second = whole
            .clone()
            .with_share("2/2".parse().unwrap())
            .with_instances_per_bridge(1)
            .unwrap();
        assert_eq!(second.hosts, {
            let mut hosts = whole.hosts[3..].to_vec();
            hosts[1].bridge_index = 1;
            hosts
        });
        assert_eq!(second.extra_bridges.len(), 1);
        assert!(!second.holds_bridge_address());
        let first = whole.clone().with_share("1/2".parse().unwrap());
        assert_eq!(
            first.hosts.iter().map(|h| h.index).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        assert!(first.holds_bridge_address());
        let alone = whole.clone().with_share(HostShare::ALONE);
        assert_eq!(alone, whole);
        assert!(alone.holds_bridge_address());
    }

    #[test]
    fn no_command_is_an_error() {
        assert_eq!(
            LabPlan::new("t-", cidr("10.9.0.0/24"), &[]),
            Err(PlanError::NoCommands)
        );
    }
}
