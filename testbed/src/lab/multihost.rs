//! One star lab over several machines (`testbed run -h i/N --vxlan-device
//! DEV`): each machine runs its share of the instances on its own bridge,
//! and the bridges are joined into one Ethernet segment by VXLAN.
//!
//! - **The share**: with T instances in all (the sum of the `-n` counts,
//!   the same on every machine) and N machines, machine i runs a contiguous
//!   run of instance indexes: each gets T / N, and the first T mod N
//!   machines one more (T = 5, N = 2: machine 1 runs 0..3, machine 2 runs
//!   3..5). An instance keeps the index, namespace name and address the
//!   single-machine lab gives it, so addresses are unique across machines.
//! - **The bridge address** (the subnet's first) is on machine 1's bridge
//!   only: one owner per address on the segment. The other machines'
//!   bridges carry no address.
//! - **The VXLAN** `{prefix}vx` (VNI `--vxlan-id`, UDP port `--vxlan-port`,
//!   sending through `--vxlan-device` from its first IPv4 address, learning
//!   on) is a port of the lab's first bridge. Each `--vxlan-remote` gets an
//!   all-zeros forwarding entry, so broadcasts (ARP) and unknown
//!   destinations go to every remote by unicast (no multicast needed); the
//!   device learns where each remote instance's MAC lives from what
//!   arrives. It is recorded in the lab's plan (the state file) and removed
//!   by cleanup with the lab's other links.
//! - **The MTU**: VXLAN adds 50 bytes (outer IPv4 20, UDP 8, VXLAN 8, inner
//!   Ethernet 14). The VXLAN device keeps the kernel's MTU (the underlying
//!   device's minus 50), and the instances' links (both ends) get that MTU
//!   too, so that a full-size frame of an instance fits the tunnel instead
//!   of being dropped by the bridge.
//! - **Names**: namespaces are machine-wide, so labs sharing a machine (as
//!   in the tests, where two namespaces play two machines) need different
//!   `--prefix` values; on separate machines the same prefix works.

use std::fmt;
use std::net::Ipv4Addr;
use std::ops::Range;
use std::str::FromStr;

use clap::Args;
use serde::{Deserialize, Serialize};

use super::netlink::{link_index, Netlink};

/// Bytes VXLAN adds around an instance's IP packet: outer IPv4 (20), UDP
/// (8), VXLAN (8) and the inner Ethernet header (14).
pub const VXLAN_OVERHEAD: u32 = 50;
/// Smallest MTU an IPv4 link may have (RFC 791).
const MIN_IPV4_MTU: u32 = 68;
/// Largest VNI: the VXLAN header has 24 bits for it.
pub const MAX_VNI: u32 = (1 << 24) - 1;

/// Which share of a lab's instances this machine runs: machine `machine`
/// (from 1) of `machines`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostShare {
    pub machine: usize,
    pub machines: usize,
}

/// A `-h` value that is not `i/N` with `1 <= i <= N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareError(pub String);

impl fmt::Display for ShareError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "-h {:?} is not usable; expected i/N, this machine's number i (from 1) of N \
             machines, 1 <= i <= N (e.g. -h 1/2 on one machine and -h 2/2 on the other)",
            self.0
        )
    }
}

impl std::error::Error for ShareError {}

impl FromStr for HostShare {
    type Err = ShareError;

    fn from_str(text: &str) -> Result<Self, ShareError> {
        let bad = || ShareError(text.to_owned());
        let (machine, machines) = text.split_once('/').ok_or_else(bad)?;
        let number = |part: &str| {
            // Digits only: `+1` and ` 1` are not what anyone means here.
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            part.parse::<usize>().map_err(|_| bad())
        };
        let (machine, machines) = (number(machine)?, number(machines)?);
        if machine == 0 || machine > machines {
            return Err(bad());
        }
        Ok(Self { machine, machines })
    }
}

impl fmt::Display for HostShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.machine, self.machines)
    }
}

impl HostShare {
    /// The whole lab on one machine.
    pub const ALONE: Self = Self {
        machine: 1,
        machines: 1,
    };

    /// The instance indexes this machine runs out of `total`: T / N each,
    /// one more for each of the first T mod N machines, in machine order.
    pub fn range(self, total: usize) -> Range<usize> {
        let machines = self.machines.max(1);
        let before = self.machine.clamp(1, machines) - 1;
        let (each, extra) = (total / machines, total % machines);
        let start = before * each + before.min(extra);
        let len = each + usize::from(before < extra);
        start..start + len
    }

    /// Whether this machine's bridge holds the lab's first address: machine
    /// 1's only, so that the segment has one owner for it.
    pub fn holds_bridge_address(self) -> bool {
        self.machine == 1
    }
}

/// The options of `testbed run` for a lab over several machines.
#[derive(Debug, Clone, Args)]
pub struct MultiHostArgs {
    /// This machine's share of the instances, `i/N`: machine i of N, each
    /// running a contiguous share of the instance indexes (the first T mod
    /// N machines one more), joined over VXLAN (needs --vxlan-device when
    /// N > 1). The bridge address is on machine 1 only.
    #[arg(short = 'h', long = "machine", value_name = "i/N")]
    pub share: Option<HostShare>,
    /// The interface the lab's VXLAN sends through; its first IPv4 address
    /// is the tunnel's source.
    #[arg(long, value_name = "DEV")]
    pub vxlan_device: Option<String>,
    /// The VXLAN's VNI (0 to 16777215).
    #[arg(long, default_value_t = DEFAULT_VNI, requires = "vxlan_device")]
    pub vxlan_id: u32,
    /// The VXLAN's UDP port.
    #[arg(long, default_value_t = DEFAULT_PORT, requires = "vxlan_device")]
    pub vxlan_port: u16,
    /// The other machines' underlay addresses (unicast, no multicast
    /// needed): comma-separated or repeated.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "IP,...",
        requires = "vxlan_device"
    )]
    pub vxlan_remote: Vec<Ipv4Addr>,
}

/// The VNI and UDP port when not given (4789 is IANA's VXLAN port).
pub const DEFAULT_VNI: u32 = 42;
pub const DEFAULT_PORT: u16 = 4789;

/// No share and no VXLAN, with the command line's defaults.
impl Default for MultiHostArgs {
    fn default() -> Self {
        Self {
            share: None,
            vxlan_device: None,
            vxlan_id: DEFAULT_VNI,
            vxlan_port: DEFAULT_PORT,
            vxlan_remote: Vec::new(),
        }
    }
}

/// The VXLAN of a lab, decided before anything is built (recorded in the
/// lab's plan).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VxlanPlan {
    /// `{prefix}vx`, a port of the lab's first bridge.
    pub name: String,
    pub id: u32,
    pub port: u16,
    /// The underlying device and its first IPv4 address (the source).
    pub device: String,
    pub local: Ipv4Addr,
    pub remotes: Vec<Ipv4Addr>,
    /// The underlying device's MTU when the lab was planned.
    pub device_mtu: u32,
}

impl VxlanPlan {
    /// The MTU of the VXLAN device (the kernel's default) and of the
    /// instances' links: the underlying device's minus [`VXLAN_OVERHEAD`].
    pub fn instance_mtu(&self) -> u32 {
        self.device_mtu.saturating_sub(VXLAN_OVERHEAD)
    }
}

/// The name of lab `prefix`'s VXLAN device.
pub fn vxlan_name(prefix: &str) -> String {
    format!("{prefix}vx")
}

impl MultiHostArgs {
    /// This machine's share (the whole lab without `-h`).
    pub fn share(&self) -> HostShare {
        self.share.unwrap_or(HostShare::ALONE)
    }

    /// Checks the options that need no look at the machine: a share of
    /// several machines needs a VXLAN; the VNI fits 24 bits; the port is
    /// not 0.
    pub fn check(&self) -> Result<(), String> {
        let share = self.share();
        if share.machines > 1 && self.vxlan_device.is_none() {
            return Err(format!(
                "-h {share} needs --vxlan-device DEV: the machines' shares meet over VXLAN \
                 through DEV"
            ));
        }
        if self.vxlan_id > MAX_VNI {
            return Err(format!(
                "--vxlan-id {} is not usable; expected a VNI from 0 to {MAX_VNI} (24 bits)",
                self.vxlan_id
            ));
        }
        if self.vxlan_port == 0 {
            return Err("--vxlan-port 0 is not usable; expected a UDP port from 1 to 65535".into());
        }
        Ok(())
    }

    /// Plans lab `prefix`'s VXLAN, if any, reading the underlying device's
    /// index, MTU and first IPv4 address in the calling thread's namespace.
    pub fn plan(&self, prefix: &str) -> Result<Option<VxlanPlan>, String> {
        self.check()?;
        let Some(device) = &self.vxlan_device else {
            return Ok(None);
        };
        let index = link_index(device).map_err(|e| {
            format!("--vxlan-device {device:?}: {e}; expected an interface of this machine")
        })?;
        let mut netlink = Netlink::open().map_err(|e| e.to_string())?;
        let device_mtu = netlink
            .link_mtu(index, device)
            .map_err(|e| format!("--vxlan-device {device:?}: {e}"))?;
        let local = netlink
            .ipv4_addresses(index, device)
            .map_err(|e| format!("--vxlan-device {device:?}: {e}"))?
            .first()
            .copied()
            .ok_or_else(|| {
                format!(
                    "--vxlan-device {device:?} has no IPv4 address; the VXLAN sends from the \
                     device's first one"
                )
            })?;
        plan_with(prefix, self, device, local, device_mtu).map(Some)
    }
}

/// The VXLAN plan from what was read of the device.
fn plan_with(
    prefix: &str,
    args: &MultiHostArgs,
    device: &str,
    local: Ipv4Addr,
    device_mtu: u32,
) -> Result<VxlanPlan, String> {
    if device_mtu < MIN_IPV4_MTU + VXLAN_OVERHEAD {
        return Err(format!(
            "--vxlan-device {device:?} has MTU {device_mtu}; the lab's links would get \
             {device_mtu} - {VXLAN_OVERHEAD}, below IPv4's minimum of {MIN_IPV4_MTU}"
        ));
    }
    if args.vxlan_remote.contains(&local) {
        return Err(format!(
            "--vxlan-remote {local} is this machine's own address on {device:?}; list the \
             other machines' addresses"
        ));
    }
    let mut remotes = args.vxlan_remote.clone();
    remotes.dedup();
    Ok(VxlanPlan {
        name: vxlan_name(prefix),
        id: args.vxlan_id,
        port: args.vxlan_port,
        device: device.to_owned(),
        local,
        remotes,
        device_mtu,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(text: &str) -> HostShare {
        text.parse().unwrap()
    }

    #[test]
    fn shares_are_contiguous_cover_every_instance_once_and_differ_by_one_at_most() {
        for total in 0..20 {
            for machines in 1..7 {
                let ranges: Vec<Range<usize>> = (1..=machines)
                    .map(|machine| HostShare { machine, machines }.range(total))
                    .collect();
                assert_eq!(ranges[0].start, 0);
                assert_eq!(ranges[machines - 1].end, total);
                for pair in ranges.windows(2) {
                    assert_eq!(pair[0].end, pair[1].start, "{total} over {machines}");
                    assert!(pair[0].len() >= pair[1].len());
                    assert!(pair[0].len() - pair[1].len() <= 1);
                }
            }
        }
    }

    #[test]
    fn the_first_machines_take_the_remainder() {
        assert_eq!(share("1/2").range(5), 0..3);
        assert_eq!(share("2/2").range(5), 3..5);
        assert_eq!(share("1/2").range(4), 0..2);
        assert_eq!(share("2/2").range(4), 2..4);
        assert_eq!(share("3/3").range(2), 2..2);
        assert_eq!(HostShare::ALONE.range(7), 0..7);
    }

    #[test]
    fn a_share_is_machine_i_of_n() {
        assert_eq!(
            share("2/3"),
            HostShare {
                machine: 2,
                machines: 3
            }
        );
        assert_eq!(share("2/3").to_string(), "2/3");
        assert!(share("1/2").holds_bridge_address());
        assert!(!share("2/2").holds_bridge_address());
    }

    #[test]
    fn a_machine_beyond_the_count_is_refused_naming_the_value() {
        for text in ["3/2", "0/2", "1/0", "2", "a/b", "1/2/3", "+1/2", "1/", ""] {
            let error = text.parse::<HostShare>().unwrap_err().to_string();
            assert!(error.contains(&format!("-h {text:?}")), "{error}");
            assert!(error.contains("1 <= i <= N"), "{error}");
        }
    }

    #[test]
    fn several_machines_need_a_vxlan_device() {
        let args = MultiHostArgs {
            share: Some(share("1/2")),
            ..MultiHostArgs::default()
        };
        let error = args.check().unwrap_err();
        assert!(error.contains("-h 1/2 needs --vxlan-device"), "{error}");
        let alone = MultiHostArgs {
            share: Some(share("1/1")),
            ..MultiHostArgs::default()
        };
        assert_eq!(alone.check(), Ok(()));
    }

    #[test]
    fn a_vni_beyond_24_bits_and_port_0_are_refused() {
        let args = MultiHostArgs {
            vxlan_device: Some("eth0".into()),
            vxlan_id: MAX_VNI + 1,
            vxlan_port: 4789,
            ..MultiHostArgs::default()
        };
        let error = args.check().unwrap_err();
        assert!(error.contains("--vxlan-id 16777216"), "{error}");
        let args = MultiHostArgs {
            vxlan_id: 42,
            vxlan_port: 0,
            ..args
        };
        assert!(args.check().unwrap_err().contains("--vxlan-port 0"));
    }

    #[test]
    fn the_vxlan_plan_takes_the_device_mtu_less_the_overhead() {
        let args = MultiHostArgs {
            vxlan_device: Some("eth0".into()),
            vxlan_id: 7,
            vxlan_port: 4789,
            vxlan_remote: vec![Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 2)],
            ..MultiHostArgs::default()
        };
        let local = Ipv4Addr::new(10, 0, 0, 1);
        let plan = plan_with("vx-", &args, "eth0", local, 1500).unwrap();
        assert_eq!(plan.name, "vx-vx");
        assert_eq!(plan.instance_mtu(), 1450);
        assert_eq!(plan.remotes, [Ipv4Addr::new(10, 0, 0, 2)]);
        let error = plan_with("vx-", &args, "eth0", local, 100).unwrap_err();
        assert!(error.contains("MTU 100"), "{error}");
        let own = MultiHostArgs {
            vxlan_remote: vec![local],
            ..args
        };
        let error = plan_with("vx-", &own, "eth0", local, 1500).unwrap_err();
        assert!(error.contains("--vxlan-remote 10.0.0.1"), "{error}");
    }
}
