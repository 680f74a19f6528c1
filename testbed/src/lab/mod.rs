//! Network labs in namespaces: the play-style star of `testbed run`, the
//! topologies of `testbed up FILE.toml`, with `cleanup` and `status`.
//!
//! - [`plan`]: names and addresses of a lab, from its prefix and subnet.
//! - [`netns`] and [`netlink`] (the `host` crate's): named namespaces and
//!   the rtnetlink requests that build links and addresses (no `ip` process
//!   per object).
//! - [`build`]: creating a planned lab in parallel, and removing any lab.
//! - [`state`]: the state file under `/run/testbed` that `cleanup` reads.
//! - [`sysctl`]: machine-wide settings a lab changes and restores.
//! - [`tbf`]: token-bucket shaping of the instances' links (`--tbf`).
//! - [`netem`]: impaired instance links (`--netem`, `--impair`).
//! - [`multihost`]: one lab over several machines (`-h i/N`, VXLAN).
//! - [`link_emulator`]: `testbed link-emulator`, one emulated link in a
//!   process of its own (for `testbed up`).
//! - [`run`]: `testbed run`.
//! - [`topology`]: labs of several networks and named hosts from a TOML
//!   file (`testbed up`, `testbed down`).
//! - [`teardown`]: removing any lab from its state file (`cleanup`, `down`).
//! - [`status`]: `testbed status`.

pub mod build;
/// The workspace's one rtnetlink client, from the `host` crate.
pub use host::netlink;
pub mod link_emulator;
pub mod multihost;
pub mod netem;
pub mod netns;
pub mod plan;
pub mod prefixed;
pub mod run;
pub mod state;
pub mod status;
pub mod sysctl;
pub mod tbf;
pub mod teardown;
pub mod topology;

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

/// `testbed cleanup`: removes the lab's processes, namespaces, bridges and
/// links, then its state file (see [`teardown::remove_lab`]).
pub fn cleanup(args: &CleanupArgs) -> ExitCode {
    if let Err(error) = plan::check_prefix(&args.prefix) {
        eprintln!("testbed cleanup: {error}");
        return ExitCode::from(2);
    }
    let problems = teardown::remove_lab(Path::new(state::STATE_DIR), &args.prefix);
    for problem in &problems {
        eprintln!("testbed cleanup: {problem}");
    }
    if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `testbed status`: see [`status::main`].
pub fn status(args: &StatusArgs) -> ExitCode {
    status::main(args)
}
