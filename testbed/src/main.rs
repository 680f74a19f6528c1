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
        Command::Up(args) => testbed::lab::topology::up::main_up(&args),
        Command::Down(args) => testbed::lab::topology::up::main_down(&args),
        Command::Cleanup(args) => testbed::lab::cleanup(&args),
        Command::Status(args) => testbed::lab::status(&args),
        Command::Partition(args) => testbed::partition::command::main(&args),
        Command::LinkEmulator(args) => testbed::lab::link_emulator::main(&args),
        Command::Tunnel(args) => testbed::tunnel::main(&args),
        Command::Experiment(args) => testbed::experiment::main(&args),
    }
}
