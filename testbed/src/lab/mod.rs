//! Network labs in namespaces (the play-style `testbed run`, with `cleanup`
//! and `status`).
//!
//! - [`plan`]: names and addresses of a lab, from its prefix and subnet.
//! - [`netns`] and [`netlink`]: named namespaces and the rtnetlink requests
//!   that build links and addresses (no `ip` process per object).
//! - [`build`]: creating a planned lab in parallel, and removing any lab.
//! - [`state`]: the state file under `/run/testbed` that `cleanup` reads.
//! - [`sysctl`]: machine-wide settings a lab changes and restores.
//! - [`tbf`]: token-bucket shaping of the instances' links (`--tbf`).
//! - [`netem`]: impaired instance links (`--netem`, `--impair`).
//! - [`run`]: `testbed run`.

pub mod build;
pub mod netem;
pub mod netlink;
pub mod netns;
pub mod plan;
pub mod run;
pub mod state;
pub mod sysctl;
pub mod tbf;

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

pub use plan::{Ipv4Cidr, LabPlan, PlanError};
pub use run::RunArgs;
pub use state::LabState;

/// Options of `testbed cleanup`.
#[derive(Debug, Args)]
pub struct CleanupArgs {
    /// The lab's prefix, as given to `testbed run`.
    #[arg(short = 'p', long)]
    pub prefix: String,
}

/// Options of `testbed status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The lab's prefix, as given to `testbed run`; every lab when absent.
    #[arg(short = 'p', long)]
    pub prefix: Option<String>,
    /// Print the lab's state as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `testbed cleanup`: removes the lab's processes, namespaces and bridge,
/// then its state file. Without a state file (or a damaged one) it still
/// removes what carries the prefix.
pub fn cleanup(args: &CleanupArgs) -> ExitCode {
    if let Err(error) = plan::check_prefix(&args.prefix) {
        eprintln!("testbed cleanup: {error}");
        return ExitCode::from(2);
    }
    let dir = Path::new(state::STATE_DIR);
    let (bridge, saved) = match LabState::load_in(dir, &args.prefix) {
        Ok(Some(state)) => (state.plan.bridge, state.sysctls),
        Ok(None) => (plan::bridge_name(&args.prefix), Vec::new()),
        Err(error) => {
            eprintln!("testbed cleanup: state file unreadable ({error}); removing by prefix");
            (plan::bridge_name(&args.prefix), Vec::new())
        }
    };
    let mut problems = build::remove(&args.prefix, &bridge, std::time::Duration::from_secs(2));
    problems.extend(sysctl::restore(&saved));
    for problem in &problems {
        eprintln!("testbed cleanup: {problem}");
    }
    if let Err(error) = LabState::remove_in(dir, &args.prefix) {
        eprintln!("testbed cleanup: state file: {error}");
        return ExitCode::FAILURE;
    }
    if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `testbed status`: the hosts and addresses of one lab, or of every lab
/// with a state file.
pub fn status(args: &StatusArgs) -> ExitCode {
    let dir = Path::new(state::STATE_DIR);
    let prefixes = match &args.prefix {
        Some(prefix) => vec![prefix.clone()],
        None => state::prefixes_in(dir),
    };
    let mut labs = Vec::new();
    for prefix in &prefixes {
        match LabState::load_in(dir, prefix) {
            Ok(Some(state)) => labs.push(state),
            Ok(None) => {
                eprintln!(
                    "testbed status: no lab with prefix {prefix:?} (no {})",
                    state::path(prefix).display()
                );
                return ExitCode::FAILURE;
            }
            Err(error) => {
                eprintln!("testbed status: {}: {error}", state::path(prefix).display());
                return ExitCode::FAILURE;
            }
        }
    }
    if args.json {
        // One lab: its state; all labs: a list of states.
        let text = if args.prefix.is_some() {
            serde_json::to_string_pretty(&labs[0])
        } else {
            serde_json::to_string_pretty(&labs)
        };
        match text {
            Ok(text) => println!("{text}"),
            Err(error) => {
                eprintln!("testbed status: {error}");
                return ExitCode::FAILURE;
            }
        }
        return ExitCode::SUCCESS;
    }
    if labs.is_empty() {
        println!("no labs (no state files in {})", state::STATE_DIR);
    }
    for state in &labs {
        print_lab(state);
    }
    ExitCode::SUCCESS
}

fn print_lab(state: &LabState) {
    let plan = &state.plan;
    println!(
        "lab {} (run pid {}, created {}): {} hosts on {} ({} at {})",
        plan.prefix,
        state.owner_pid,
        state.created_at,
        plan.hosts.len(),
        plan.cidr,
        plan.bridge,
        plan.bridge_address
    );
    for host in &plan.hosts {
        println!(
            "  {:>5}  {:<16} {:<16} {:<15}  {}",
            host.index, host.namespace, host.link, host.address, host.command
        );
    }
    for link in &state.netem {
        println!(
            "  {:>5}  netem ({}, seed {}) on {}: {}",
            link.index,
            link.mode.name(),
            link.seed,
            link.link,
            link.spec
        );
    }
}
