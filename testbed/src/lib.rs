//! Rusty Rail's testbed: the tools that prove the balancer works.
//!
//! The `testbed` binary is a thin dispatcher over this library (see [`cli`]), so the
//! experiment runner can call the same code in-process.
//!
//! - [`mconnect`]: the many-connections tester (server and client), compatible with
//!   Nordix mconnect's options and output, and able to see moved and broken flows.
//! - [`impair`]: netem's impairment syntax and a seeded per-packet model of it,
//!   for links on kernels without `sch_netem`.
//! - [`partition`]: Jepsen-style grudges and play's intermittent partitions,
//!   applied with nftables in the lab's namespaces.
//! - [`proxy`]: the fault proxy, a drop-in Toxiproxy server with more faults.
//! - [`toxiproxy_cli`]: Toxiproxy's command line client, for either server.
//! - [`lab`]: network labs in namespaces (`testbed run`, `cleanup`, `status`).
//! - [`experiment`]: the experiment runner (`testbed experiment run|report`).
//! - [`tunnel`]: GRE tunnel endpoints in userspace (router-side encapsulation
//!   with ECMP, server-side decapsulation for direct server return).

pub mod cli;
pub mod experiment;
pub mod impair;
pub mod lab;
pub mod mconnect;
pub mod partition;
pub mod proxy;
pub mod toxiproxy_cli;
pub mod tunnel;
