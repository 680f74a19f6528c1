//! The state file of a lab: its plan, written before anything is created so
//! that `testbed cleanup` can remove a lab whose run was killed at any point.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::netem::LinkImpairment;
use super::plan::LabPlan;
use super::sysctl::SavedSysctl;
use super::topology::{BackgroundProcess, TopologyPlan};
use crate::partition::record::PartitionRecord;

/// Where state files live (one `PREFIX.json` per lab).
pub const STATE_DIR: &str = "/run/testbed";

/// What `cleanup` and `status` need to know about a lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabState {
    /// The star lab of `testbed run`; for a topology lab (`testbed up`), a
    /// plan with its prefix and no hosts, the lab being in `topology`.
    pub plan: LabPlan,
    /// The `testbed run` process that owns the lab.
    pub owner_pid: u32,
    /// When the lab was created, RFC 3339.
    pub created_at: String,
    /// Machine-wide sysctls the lab changed, with their previous values.
    #[serde(default)]
    pub sysctls: Vec<SavedSysctl>,
    /// The lab `testbed up` made from a topology file.
    #[serde(default)]
    pub topology: Option<TopologyPlan>,
    /// The background commands `testbed up` started.
    #[serde(default)]
    pub processes: Vec<BackgroundProcess>,
    /// The partition `testbed partition` put in place, until healed.
    #[serde(default)]
    pub partition: Option<PartitionRecord>,
    /// The instances' impaired links (`--netem`), for `status`.
    #[serde(default)]
    pub netem: Vec<LinkImpairment>,
}

pub fn path_in(dir: &Path, prefix: &str) -> PathBuf {
    dir.join(format!("{prefix}.json"))
}

pub fn path(prefix: &str) -> PathBuf {
    path_in(Path::new(STATE_DIR), prefix)
}

/// The prefixes of the labs with a state file in `dir`, sorted.
pub fn prefixes_in(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut prefixes: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            name.strip_suffix(".json").map(str::to_owned)
        })
        .collect();
    prefixes.sort();
    prefixes
}

impl LabState {
    /// Writes the state file atomically (temporary file, then rename).
    pub fn save_in(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)?;
        let target = path_in(dir, &self.plan.prefix);
        let temporary = target.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(self).map_err(io::Error::other)?;
        fs::write(&temporary, text)?;
        fs::rename(&temporary, &target)
    }

    /// Reads the state of lab `prefix`, `None` when there is none.
    pub fn load_in(dir: &Path, prefix: &str) -> io::Result<Option<Self>> {
        match fs::read_to_string(path_in(dir, prefix)) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Reads the state of lab `prefix`, changes it with `change` and writes
    /// it back; `None` when there is no such lab.
    pub fn update_in(
        dir: &Path,
        prefix: &str,
        change: impl FnOnce(&mut Self),
    ) -> io::Result<Option<Self>> {
        let Some(mut state) = Self::load_in(dir, prefix)? else {
            return Ok(None);
        };
        change(&mut state);
        state.save_in(dir)?;
        Ok(Some(state))
    }

    pub fn remove_in(dir: &Path, prefix: &str) -> io::Result<()> {
        match fs::remove_file(path_in(dir, prefix)) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::plan::Ipv4Cidr;

    #[test]
    fn a_state_file_from_before_topologies_still_loads() {
        let state = LabState {
            plan: LabPlan::new(
                "old-",
                "10.9.0.0/24".parse().unwrap(),
                &[("true".into(), 1)],
            )
            .unwrap(),
            owner_pid: 1,
            created_at: String::new(),
            sysctls: Vec::new(),
            topology: None,
            processes: Vec::new(),
            partition: None,
            netem: Vec::new(),
        };
        let mut json: serde_json::Value = serde_json::to_value(&state).unwrap();
        for field in ["sysctls", "topology", "processes", "partition", "netem"] {
            json.as_object_mut().unwrap().remove(field);
        }
        assert_eq!(serde_json::from_value::<LabState>(json).unwrap(), state);
    }

    #[test]
    fn state_survives_a_save_and_load_and_is_gone_after_removal() {
        let dir = std::env::temp_dir().join(format!("tb-state-{}", std::process::id()));
        let cidr: Ipv4Cidr = "10.9.0.0/24".parse().unwrap();
        let state = LabState {
            plan: LabPlan::new("st-", cidr, &[("true".into(), 2)]).unwrap(),
            owner_pid: 42,
            created_at: "2026-01-01T00:00:00Z".into(),
            sysctls: vec![SavedSysctl {
                path: "/proc/sys/net/ipv4/neigh/default/gc_thresh1".into(),
                value: "128".into(),
            }],
            topology: None,
            processes: Vec::new(),
            partition: None,
            netem: Vec::new(),
        };
        state.save_in(&dir).unwrap();
        assert_eq!(LabState::load_in(&dir, "st-").unwrap(), Some(state.clone()));
        assert_eq!(prefixes_in(&dir), ["st-"]);
        let updated = LabState::update_in(&dir, "st-", |s| s.owner_pid = 7).unwrap();
        assert_eq!(updated.map(|s| s.owner_pid), Some(7));
        assert_eq!(
            LabState::load_in(&dir, "st-").unwrap().unwrap().owner_pid,
            7
        );
        assert!(LabState::update_in(&dir, "none-", |_| {})
            .unwrap()
            .is_none());
        LabState::remove_in(&dir, "st-").unwrap();
        assert_eq!(LabState::load_in(&dir, "st-").unwrap(), None);
        let _ = fs::remove_dir_all(&dir);
    }
}
