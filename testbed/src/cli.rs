//! The `testbed` command line: one subcommand per tool.
//!
//! Each tool owns its argument struct; this file only lists them, so adding a tool is
//! one variant here and one arm in `main.rs`.

use clap::{Parser, Subcommand};

use crate::mconnect::MconnectArgs;
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
    /// GRE tunnel endpoints in userspace: router-side encapsulation (ECMP) and server-side decapsulation (DSR).
    Tunnel(TunnelArgs),
}
