//! `testbed`: dispatches to the tool named by the subcommand.

use std::process::ExitCode;

use clap::Parser;
use testbed::cli::{Cli, Command};

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Mconnect(args) => testbed::mconnect::main(&args),
        Command::Proxy(args) => testbed::proxy::main(&args),
        Command::ToxiproxyCli(args) => testbed::toxiproxy_cli::main(&args),
        Command::Run(args) => testbed::lab::run::main(&args),
        Command::Cleanup(args) => testbed::lab::cleanup(&args),
        Command::Status(args) => testbed::lab::status(&args),
        Command::Partition(args) => testbed::partition::command::main(&args),
        Command::Tunnel(args) => testbed::tunnel::main(&args),
    }
}
