//! The host the programs run on: what this machine can do, and how the
//! programs talk to it. One copy of each, shared by the balancer (`control`),
//! the `testbed` and the tests.
//!
//! - [`capability`]: the one check every lab test and bench makes before it
//!   touches namespaces, links or a tool, and the one place a skip is
//!   reported and counted (see its docs for `RR_REQUIRE_LABS` and
//!   `RR_SKIP_LOG`).
//! - `netlink`: the rtnetlink client (links, addresses, routes, neighbours).
//! - `offloads`: an interface's offloads through `SIOCETHTOOL` (Linux).
//! - `interface_capabilities`: FreeBSD's counterpart, `SIOCSIFCAP`.
//! - [`route_messages`] and `route_socket`: FreeBSD's routing socket (the
//!   route toward an address, the ARP table), where Linux has rtnetlink.
//! - [`signals`]: SIGINT and SIGTERM as a stop flag.

pub mod capability;
#[cfg(target_os = "freebsd")]
pub mod interface_capabilities;
#[cfg(target_os = "linux")]
pub mod netlink;
#[cfg(target_os = "linux")]
pub mod offloads;
pub mod route_messages;
#[cfg(target_os = "freebsd")]
pub mod route_socket;
pub mod signals;
