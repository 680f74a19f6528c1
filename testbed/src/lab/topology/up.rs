//! `testbed up FILE.toml` and `testbed down FILE.toml` (or `-p PREFIX`).
//! `up` returns once the lab is ready, leaving its commands running
//! detached; `down` removes the lab, processes and sysctls included.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use super::plan::TopologyPlan;
use super::{build, emulate, processes};
use crate::lab::plan::{bridge_name, check_prefix, Ipv4Cidr, LabPlan};
use crate::lab::state::{self, LabState, STATE_DIR};
use crate::lab::{sysctl, teardown};

/// Options of `testbed up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// The topology file (TOML; see `testbed::lab::topology` or the README).
    pub file: PathBuf,
    /// Start of every object's name; overrides the file's `prefix`.
    #[arg(short = 'p', long)]
    pub prefix: Option<String>,
    /// Working directory of the hosts' commands, where their output goes
    /// (`{host}.{n}.stdout`, `.stderr`); default: /tmp/testbed-{prefix}.
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
}

/// Options of `testbed down`.
#[derive(Debug, Args)]
pub struct DownArgs {
    /// The topology file the lab was made from (for its prefix).
    #[arg(required_unless_present = "prefix")]
    pub file: Option<PathBuf>,
    /// The lab's prefix (instead of, or overriding, the file's).
    #[arg(short = 'p', long)]
    pub prefix: Option<String>,
}

/// `testbed up`.
pub fn main_up(args: &UpArgs) -> ExitCode {
    let result = TopologyPlan::load(&args.file, args.prefix.as_deref()).and_then(|plan| {
        let work_dir = args
            .work_dir
            .clone()
            .unwrap_or_else(|| default_work_dir(&plan.prefix));
        up(&plan, &work_dir, Path::new(STATE_DIR))
    });
    match result {
        Ok(state) => {
            print_ready(&state);
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("testbed up: {message}");
            ExitCode::from(2)
        }
    }
}

/// `testbed down`.
pub fn main_down(args: &DownArgs) -> ExitCode {
    let prefix = match (&args.prefix, &args.file) {
        (Some(prefix), _) => prefix.clone(),
        (None, Some(file)) => match TopologyPlan::load(file, None) {
            Ok(plan) => plan.prefix,
            Err(message) => {
                eprintln!("testbed down: {message}");
                return ExitCode::from(2);
            }
        },
        (None, None) => {
            eprintln!("testbed down: give the topology file or -p PREFIX");
            return ExitCode::from(2);
        }
    };
    match down(&prefix, Path::new(STATE_DIR)) {
        Ok(()) => {
            println!("lab {prefix}: down");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("testbed down: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Where a lab's commands run and write by default.
pub fn default_work_dir(prefix: &str) -> PathBuf {
    std::env::temp_dir().join(format!("testbed-{prefix}"))
}

/// Builds lab `plan`, starts an emulator per netem link and the hosts'
/// commands in `work_dir`; the state file goes to `state_dir` first.
/// Returns the lab's state once it is ready; on failure, removes whatever it
/// made. The emulators run as `{this executable} link-emulator`: callers
/// whose executable is not `testbed` use [`up_with`].
pub fn up(plan: &TopologyPlan, work_dir: &Path, state_dir: &Path) -> Result<LabState, String> {
    let program = std::env::current_exe()
        .map_err(|e| format!("finding this executable (for the link emulators): {e}"))?;
    up_with(plan, work_dir, state_dir, &program)
}

/// [`up`], with the emulators run as `{testbed} link-emulator ...`.
pub fn up_with(
    plan: &TopologyPlan,
    work_dir: &Path,
    state_dir: &Path,
    testbed: &Path,
) -> Result<LabState, String> {
    let state_path = state::path_in(state_dir, &plan.prefix);
    if LabState::load_in(state_dir, &plan.prefix)
        .map_err(|e| format!("reading {}: {e}", state_path.display()))?
        .is_some()
    {
        return Err(format!(
            "a lab with prefix {:?} exists ({}); remove it with `testbed down -p {}`",
            plan.prefix,
            state_path.display(),
            plan.prefix
        ));
    }
    let links = plan.hosts.iter().map(|h| h.interfaces.len()).sum();
    let changes = sysctl::needed(links, sysctl::read);
    let mut lab = LabState {
        plan: star_placeholder(plan)?,
        owner_pid: std::process::id(),
        created_at: chrono::Utc::now().to_rfc3339(),
        sysctls: sysctl::save(&changes),
        topology: Some(plan.clone()),
        processes: Vec::new(),
        partition: None,
        netem: Vec::new(),
    };
    // Saved before anything changes, so that cleanup can undo any part.
    lab.save_in(state_dir)
        .map_err(|e| format!("writing {}: {e}", state_path.display()))?;
    let fail = |message: String| {
        for problem in teardown::remove_lab(state_dir, &plan.prefix) {
            eprintln!("testbed up: cleanup: {problem}");
        }
        Err(message)
    };
    if let Err(error) = sysctl::apply(&changes) {
        return fail(error);
    }
    let bridges_up = std::time::Instant::now();
    if let Err(error) = build::create(plan) {
        return fail(format!("building lab {}: {error}", plan.prefix));
    }
    // Before the commands, so that they see impaired links from the start.
    let emulated = emulate::start(plan, work_dir, bridges_up, testbed, &mut lab.processes);
    // Recorded even on failure: the removal stops them by their pids.
    let saved = lab.save_in(state_dir);
    if let Err(error) = emulated {
        return fail(format!("impairing lab {}: {error}", plan.prefix));
    }
    if let Err(error) = saved {
        return fail(format!("writing {}: {error}", state_path.display()));
    }
    let (started, result) = processes::start(plan, work_dir);
    lab.processes.extend(started);
    // Recorded even on failure: the removal stops them by their pids.
    let saved = lab.save_in(state_dir);
    if let Err(error) = result {
        return fail(error);
    }
    if let Err(error) = saved {
        return fail(format!("writing {}: {error}", state_path.display()));
    }
    Ok(lab)
}

/// Removes lab `prefix` (any lab with a state file in `state_dir`, or the
/// objects carrying the prefix).
pub fn down(prefix: &str, state_dir: &Path) -> Result<(), String> {
    check_prefix(prefix).map_err(|e| e.to_string())?;
    let problems = teardown::remove_lab(state_dir, prefix);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// The star plan a topology lab's state carries: its prefix, no hosts.
fn star_placeholder(plan: &TopologyPlan) -> Result<LabPlan, String> {
    let cidr = plan.networks.first().map_or_else(
        || "10.0.0.0/8".parse::<Ipv4Cidr>().map_err(|e| e.to_string()),
        |n| Ok(n.cidr),
    )?;
    Ok(LabPlan {
        prefix: plan.prefix.clone(),
        cidr,
        bridge: bridge_name(&plan.prefix),
        bridge_address: cidr.network,
        extra_bridges: Vec::new(),
        hosts: Vec::new(),
        share: None,
        vxlan: None,
    })
}

fn print_ready(state: &LabState) {
    let Some(plan) = &state.topology else {
        return;
    };
    println!(
        "lab {}: {} hosts on {} networks ready (testbed status -p {} for details)",
        plan.prefix,
        plan.hosts.len(),
        plan.networks.len(),
        plan.prefix
    );
    for host in &plan.hosts {
        let addresses: Vec<String> = host
            .interfaces
            .iter()
            .map(|i| format!("{} {}", i.name, i.address))
            .collect();
        println!("  {:<24} {}", host.namespace, addresses.join(", "));
    }
}
