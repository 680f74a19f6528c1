//! Removing a lab from its state file, whatever made it (`testbed run` or
//! `testbed up`) and however far its building got.

use std::path::Path;
use std::time::Duration;

use super::state::LabState;
use super::topology::processes;
use super::{build, plan, sysctl};

/// How long a lab's processes get between SIGTERM and SIGKILL.
pub const GRACE: Duration = Duration::from_secs(2);

/// Removes lab `prefix`: the background processes its state records (while
/// their pids still name them), every process left in its namespaces, the
/// namespaces, bridges and veth pairs, then restores the sysctls it changed
/// and removes its state file. Without a state file (or with a damaged
/// one) it still removes what carries the prefix. Returns the problems met.
pub fn remove_lab(dir: &Path, prefix: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let state = match LabState::load_in(dir, prefix) {
        Ok(state) => state,
        Err(error) => {
            problems.push(format!(
                "state file unreadable ({error}); removing by prefix"
            ));
            None
        }
    };
    let bridge = state
        .as_ref()
        .map_or_else(|| plan::bridge_name(prefix), |s| s.plan.bridge.clone());
    if let Some(state) = &state {
        processes::stop(&state.processes, GRACE);
    }
    problems.extend(build::remove(prefix, &bridge, GRACE));
    if let Some(state) = &state {
        problems.extend(sysctl::restore(&state.sysctls));
    }
    if let Err(error) = LabState::remove_in(dir, prefix) {
        problems.push(format!("state file: {error}"));
    }
    problems
}
