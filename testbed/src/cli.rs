//! The `testbed` command line: one subcommand per tool.
//!
//! Each tool owns its argument struct; this file only lists them, so adding a tool is
//! one variant here and one arm in `main.rs`.

use clap::{Parser, Subcommand};

use crate::experiment::ExperimentArgs;
use crate::lab::link_emulator::LinkEmulatorArgs;
use crate::lab::topology::{DownArgs, UpArgs};
use crate::lab::{CleanupArgs, RunArgs, StatusArgs};
use crate::mconnect::MconnectArgs;
use crate::partition::command::PartitionArgs;
use crate::proxy::ProxyArgs;
use crate::toxiproxy_cli::ToxiproxyCliArgs;
use crate::tunnel::TunnelArgs;

/// Rusty Rail's testbed: network labs, faults and load testers for the balancer.
#[derive(Debug, Parser)]
#[command(name = "testbed", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The testbed's tools.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Many-connections tester for load balancers (server and client), mconnect-compatible.
    Mconnect(MconnectArgs),
    /// Fault proxy: a Toxiproxy-compatible server (HTTP API on --host/--port).
    Proxy(ProxyArgs),
    /// Toxiproxy's command line client (list, inspect, create, toggle, delete, toxic).
    ToxiproxyCli(ToxiproxyCliArgs),
    /// Runs commands in a lab: N instances each in a namespace on one bridge.
    Run(RunArgs),
    /// Builds a lab from a topology file (networks, routers, named hosts) and returns once it is ready.
    Up(UpArgs),
    /// Removes a lab made by `up` (namespaces, bridges, links, processes, sysctls, state file).
    Down(DownArgs),
    /// Removes a lab (namespaces, links, bridge, processes, state file).
    Cleanup(CleanupArgs),
    /// Shows a lab's hosts, interfaces, addresses, routes, impairments and partition.
    Status(StatusArgs),
    /// Partitions a running lab (Jepsen grudges, one-way cuts, intermittent), or heals it.
    Partition(PartitionArgs),
    /// One userspace link emulator between two interfaces of a namespace, until SIGTERM (`up` starts one per netem link).
    LinkEmulator(LinkEmulatorArgs),
    /// GRE tunnel endpoints in userspace: router-side encapsulation (ECMP) and server-side decapsulation (DSR).
    Tunnel(TunnelArgs),
    /// Experiments: systems x topologies x workloads x faults, repeated, with results and plots (`run`, `report`).
    Experiment(ExperimentArgs),
}
