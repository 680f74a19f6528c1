//! `testbed`: dispatches to the tool named by the subcommand.

use std::process::ExitCode;

use clap::Parser;
use testbed::cli::{Cli, Command};

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Mconnect(args) => testbed::mconnect::main(&args),
        Command::Tunnel(args) => testbed::tunnel::main(&args),
    }
}
