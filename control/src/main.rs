//! `rusty_rail`: the balancer's control process.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use control::config::file::{self as config_file, ConfigFile};
use control::live::{self, LiveArgs};
use control::replay::{self, ReplayArgs, ReplayError};
use control::synth_capture::{self, SynthArgs};

// The doc comment is `--help`'s text, where backticks would show.
#[allow(clippy::doc_markdown)]
/// Rusty Rail: a userspace L4 load balancer (GRE, Maglev consistent hashing).
///
/// Balances live on RR_DEVICE until SIGINT or SIGTERM:
/// `RR_DEVICE=eth0 RR_TARGET_IPS="10.1.0.1;10.1.0.2" rusty_rail`.
/// Every setting is an RR_* environment variable and the same flag.
#[derive(Debug, Parser)]
#[command(
    name = "rusty_rail",
    version,
    about,
    after_help = "Offline tools: `rusty_rail replay --help` (the pipeline over a capture) and `rusty_rail synth --help` (write a capture)."
)]
struct LiveCli {
    #[command(flatten)]
    live: LiveArgs,
}

/// The offline subcommands, parsed when the first argument names one.
#[derive(Debug, Parser)]
#[command(name = "rusty_rail", version, about)]
struct ToolsCli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommand names [`ToolsCli`] knows.
const SUBCOMMANDS: [&str; 4] = ["replay", "synth", "check", "help"];

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the real pipeline over a capture: each frame to the output (sent
    /// to a backend), the host, or the dropped capture, then print counters.
    Replay(Box<ReplayArgs>),
    /// Write a capture of GRE traffic from a router to the balancer.
    Synth(SynthArgs),
    /// Check a configuration file (and the environment over it) without
    /// starting: exit 0 when valid, 2 with every error otherwise.
    Check {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let first = std::env::args().nth(1);
    if !first.is_some_and(|arg| SUBCOMMANDS.contains(&arg.as_str())) {
        if let Some(path) = config_argument() {
            if let Err(code) = load_config(&path) {
                return code;
            }
        }
        return run_live(&LiveCli::parse().live);
    }
    match ToolsCli::parse().command {
        Command::Check { config } => check_config(&config),
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

/// The `--config` file named on the command line (or by `RR_CONFIG`),
/// found before clap parses: the file's settings must be in the
/// environment by then.
fn config_argument() -> Option<PathBuf> {
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--config" {
            return args.next().map(PathBuf::from);
        }
        if let Some(path) = arg.to_str().and_then(|a| a.strip_prefix("--config=")) {
            return Some(PathBuf::from(path));
        }
    }
    std::env::var_os("RR_CONFIG").map(PathBuf::from)
}

/// Reads `path` and puts its settings in the environment (under what the
/// environment already sets); on errors prints them all and gives exit 2.
fn load_config(path: &Path) -> Result<ConfigFile, ExitCode> {
    match config_file::load(path, &live::config_reload::known_settings()) {
        Ok(file) => {
            file.apply_to_environment();
            Ok(file)
        }
        Err(errors) => {
            eprintln!("rusty_rail: {errors}");
            Err(ExitCode::from(2))
        }
    }
}

/// `rusty_rail check --config FILE`.
fn check_config(path: &Path) -> ExitCode {
    let file = match load_config(path) {
        Ok(file) => file,
        Err(code) => return code,
    };
    // The settings as the balancer would parse them, the file under the
    // environment.
    if let Err(e) = LiveCli::try_parse_from(["rusty_rail"]) {
        eprintln!("rusty_rail: {}: {e}", path.display());
        return ExitCode::from(2);
    }
    println!(
        "{}: valid ({} settings, {} services)",
        path.display(),
        file.settings.len(),
        file.services.len()
    );
    ExitCode::SUCCESS
}

/// The live balancer, logging to standard error under `RR_LOG`.
fn run_live(args: &LiveArgs) -> ExitCode {
    let filter = match tracing_subscriber::EnvFilter::try_new(&args.log) {
        Ok(filter) => filter,
        Err(e) => {
            eprintln!(
                "rusty_rail: RR_LOG: {:?} is not a log filter ({e}); expected error, warn, info, debug, trace or module=level pairs",
                args.log
            );
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
    match live::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rusty_rail: {e}");
            e.exit_code()
        }
    }
}
