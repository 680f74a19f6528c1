//! Topology labs (`testbed up FILE.toml`, `testbed down`): several subnets,
//! routers and named hosts, each host a network namespace, described in a
//! TOML file.
//!
//! ```toml
//! prefix = "lb-"                 # starts every name; `-p` overrides it
//!
//! [[network]]                    # a subnet
//! name = "front"                 # the bridge is "{prefix}{name}" (15 characters at most)
//! cidr = "10.0.1.0/24"
//! # address = "10.0.1.254"       # the machine's own address on the bridge (optional)
//! # bridge = true                # a bridge even with two members (default: a veth pair)
//!
//! [[host]]
//! name = "router"                # namespace "{prefix}{name}"
//! forward = true                 # net.ipv4.ip_forward=1 in its namespace
//! links = [                      # interfaces eth0, eth1, ... in this order
//!   { network = "front", address = "10.0.1.1", tbf = "rate 100mbit burst 32kb latency 50ms" },
//!   { network = "back", address = "10.0.2.1", netem = "delay 10ms loss 1%" },
//! ]
//! routes = [ "10.9.0.0/16 via 10.0.2.10" ]   # DEST [via GATEWAY] [dev IF]; DEST: default, A/LEN, A
//! addresses = [ "10.9.9.9/32 dev lo" ]       # ADDRESS[/LEN] [dev IF]; /32 and lo by default
//! commands = [ "sleep 1000" ]                # `sh -c`, started in the background by `up`
//! bgp = { as = 65000, peers = [ "10.0.2.10:65001" ], hold = 3 }  # BIRD, ECMP into the kernel (see [`bgp`])
//! ```
//!
//! - A network with exactly two members (no machine address, no `bridge =
//!   true`) is one veth pair between them; any other is a bridge in the
//!   machine's namespace, each member's veth ending on it as
//!   `{prefix}{host index}.{link index}`.
//! - `tbf` shapes what the host sends on that interface (its egress qdisc).
//!   `netem` impairs both directions through a detached userspace link
//!   emulator between the link and its bridge (see [`emulate`]); a link's
//!   `seed`, or the file's top-level `seed` + the link's position, seeds it.
//! - `up` writes the state file (`/run/testbed/{prefix}.json`) first, then
//!   builds through rtnetlink, sets `lo` up everywhere, and starts the
//!   commands detached, their output in `{work dir}/{host}.{n}.stdout` and
//!   `.stderr`, their pids in the state. `down` (or `testbed cleanup`)
//!   stops them and removes every namespace, bridge and veth.
//!
//! - [`bgp`]: a host's `bgp = { as, peers, hold }`: BIRD as an ECMP router.
//! - [`file`]: the file as written, with the place of every value.
//! - [`route`]: the `routes` and `addresses` forms.
//! - [`plan`]: the checked lab, every name and address decided.
//! - [`build`]: creating it through netlink.
//! - [`processes`]: the background commands.
//! - [`emulate`]: the link emulators of netem links.
//! - [`up`]: `testbed up` and `testbed down`.

pub mod bgp;
pub mod build;
pub mod emulate;
pub mod file;
pub mod plan;
pub mod processes;
pub mod route;
pub mod up;

pub use file::TopologyError;
pub use plan::{
    EmulatedLinkPlan, HostPlan, InterfacePlan, Medium, NetworkPlan, Peer, TopologyPlan,
};
pub use processes::BackgroundProcess;
pub use up::{DownArgs, UpArgs};

#[cfg(test)]
mod tests;
