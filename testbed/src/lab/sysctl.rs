//! The machine-wide sysctls a lab changes, saved in its state file before the
//! change and restored at teardown (or by `testbed cleanup`).
//!
//! - Neighbour table thresholds: every host on the bridge is a neighbour of
//!   the machine, and the default `gc_thresh3` (1024) overflows ("neighbour
//!   table overflow", lost ARP entries) with a thousand hosts.
//! - `bridge-nf-call-iptables`, where `br_netfilter` is loaded: bridged lab
//!   traffic must not go through the machine's iptables rules.

use std::fs;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// A sysctl's path under `/proc/sys` and the value it had before the lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedSysctl {
    pub path: String,
    pub value: String,
}

/// A change the lab wants: `path` set to `value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysctlChange {
    pub path: String,
    pub value: String,
}

const NEIGHBOUR_FAMILIES: [&str; 2] = ["ipv4", "ipv6"];
const BRIDGE_NF: [&str; 2] = [
    "/proc/sys/net/bridge/bridge-nf-call-iptables",
    "/proc/sys/net/bridge/bridge-nf-call-ip6tables",
];

/// The changes a lab of `hosts` hosts needs, given the current values read by
/// `read` (`None`: the sysctl does not exist here). Thresholds only ever go
/// up: a machine tuned higher keeps its values.
pub fn needed(hosts: usize, read: impl Fn(&str) -> Option<String>) -> Vec<SysctlChange> {
    let mut changes = Vec::new();
    let wanted = [(1, hosts), (2, 2 * hosts), (3, 4 * hosts)];
    for family in NEIGHBOUR_FAMILIES {
        for (level, value) in wanted {
            let path = format!("/proc/sys/net/{family}/neigh/default/gc_thresh{level}");
            let Some(current) = read(&path).and_then(|v| v.trim().parse::<usize>().ok()) else {
                continue;
            };
            if current < value {
                changes.push(SysctlChange {
                    path,
                    value: value.to_string(),
                });
            }
        }
    }
    for path in BRIDGE_NF {
        if read(path).is_some_and(|v| v.trim() != "0") {
            changes.push(SysctlChange {
                path: path.to_owned(),
                value: "0".to_owned(),
            });
        }
    }
    changes
}

/// Reads a sysctl file, `None` when it does not exist.
pub fn read(path: &str) -> Option<String> {
    fs::read_to_string(path).ok()
}

/// The current values of the sysctls `changes` will touch.
pub fn save(changes: &[SysctlChange]) -> Vec<SavedSysctl> {
    changes
        .iter()
        .filter_map(|change| {
            Some(SavedSysctl {
                path: change.path.clone(),
                value: read(&change.path)?.trim().to_owned(),
            })
        })
        .collect()
}

/// Applies `changes`; the first failure names its sysctl.
pub fn apply(changes: &[SysctlChange]) -> Result<(), String> {
    for change in changes {
        write(&change.path, &change.value)
            .map_err(|e| format!("setting {} to {}: {e}", change.path, change.value))?;
    }
    Ok(())
}

/// Puts back saved values; returns the problems met.
pub fn restore(saved: &[SavedSysctl]) -> Vec<String> {
    saved
        .iter()
        .filter_map(|s| {
            write(&s.path, &s.value)
                .err()
                .map(|e| format!("restoring {} to {}: {e}", s.path, s.value))
        })
        .collect()
}

fn write(path: &str, value: &str) -> io::Result<()> {
    if !path.starts_with("/proc/sys/") || path.contains("..") || !Path::new(path).exists() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not an existing file under /proc/sys",
        ));
    }
    fs::write(path, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine<'a>(values: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |path| {
            values
                .iter()
                .find(|(p, _)| *p == path)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn thresholds_are_raised_for_a_large_lab_and_never_lowered() {
        let values = [
            ("/proc/sys/net/ipv4/neigh/default/gc_thresh1", "128\n"),
            ("/proc/sys/net/ipv4/neigh/default/gc_thresh2", "512\n"),
            ("/proc/sys/net/ipv4/neigh/default/gc_thresh3", "100000\n"),
        ];
        let changes = needed(1000, machine(&values));
        assert_eq!(
            changes,
            [
                SysctlChange {
                    path: "/proc/sys/net/ipv4/neigh/default/gc_thresh1".into(),
                    value: "1000".into()
                },
                SysctlChange {
                    path: "/proc/sys/net/ipv4/neigh/default/gc_thresh2".into(),
                    value: "2000".into()
                },
            ]
        );
    }

    #[test]
    fn a_small_lab_changes_nothing_on_a_default_machine() {
        let values = [
            ("/proc/sys/net/ipv4/neigh/default/gc_thresh1", "128"),
            ("/proc/sys/net/ipv4/neigh/default/gc_thresh2", "512"),
            ("/proc/sys/net/ipv4/neigh/default/gc_thresh3", "1024"),
        ];
        assert_eq!(needed(10, machine(&values)), []);
    }

    #[test]
    fn bridge_netfilter_is_turned_off_only_where_it_exists_and_is_on() {
        let on = [("/proc/sys/net/bridge/bridge-nf-call-iptables", "1\n")];
        assert_eq!(
            needed(1, machine(&on)),
            [SysctlChange {
                path: "/proc/sys/net/bridge/bridge-nf-call-iptables".into(),
                value: "0".into()
            }]
        );
        assert_eq!(needed(1, machine(&[])), []);
    }

    #[test]
    fn writes_outside_proc_sys_are_refused() {
        let saved = [SavedSysctl {
            path: "/tmp/not-a-sysctl".into(),
            value: "1".into(),
        }];
        assert_eq!(restore(&saved).len(), 1);
    }
}
