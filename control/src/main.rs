//! `rusty_rail`: the balancer's control process.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use control::replay::{self, ReplayArgs, ReplayError};
use control::synth_capture::{self, SynthArgs};

/// Rusty Rail: a userspace L4 load balancer (GRE, Maglev consistent hashing).
#[derive(Debug, Parser)]
#[command(name = "rusty_rail", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the real pipeline over a capture: each frame to the output (sent
    /// to a backend), the host, or the dropped capture, then print counters.
    Replay(Box<ReplayArgs>),
    /// Write a capture of GRE traffic from a router to the balancer.
    Synth(SynthArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Replay(args) => match replay::run(&args) {
            Ok(report) => {
                print!("{report}");
                ExitCode::SUCCESS
            }
            Err(e @ ReplayError::Config(_)) => {
                eprintln!("rusty_rail: {e}");
                ExitCode::from(2)
            }
            Err(e @ ReplayError::Io(_)) => {
                eprintln!("rusty_rail: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Synth(args) => match synth_capture::run(&args) {
            Ok(frames) => {
                println!("wrote {frames} frames to {}", args.output.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("rusty_rail: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
