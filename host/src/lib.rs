//! The host the programs run on: what this machine can do and, to come, how
//! to talk to it (rtnetlink for links, addresses and routes, ethtool
//! offloads, signals).
//!
//! For now one module: [`capability`], the one check every lab test and
//! bench makes before it touches namespaces, links or a tool, and the one
//! place a skip is reported and counted (see its docs for `RR_REQUIRE_LABS`
//! and `RR_SKIP_LOG`).

pub mod capability;
pub mod netlink;
