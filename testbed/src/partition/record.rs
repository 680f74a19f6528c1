//! The partition in force in a lab, kept in its state file so that `testbed
//! status` can show it: written when `testbed partition` cuts, cleared when
//! it heals.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::grudge::Grudge;
use crate::lab::state::LabState;

/// A partition applied to a lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRecord {
    /// The spec as given to `testbed partition`.
    pub spec: String,
    pub seed: u64,
    /// When it was applied, RFC 3339.
    pub applied_at: String,
    /// Who drops whose packets, by node name.
    pub drops: Vec<NodeDrops>,
}

/// One node's share of a grudge: the senders whose packets it drops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeDrops {
    pub node: String,
    pub drops: Vec<String>,
}

impl PartitionRecord {
    /// The record of `grudge` over nodes `names` (indexed alike).
    pub fn new(spec: &str, seed: u64, grudge: &Grudge, names: &[String]) -> Self {
        let drops = (0..grudge.nodes().min(names.len()))
            .filter_map(|receiver| {
                let senders: Vec<String> = grudge
                    .dropped_by(receiver)
                    .filter_map(|s| names.get(s).cloned())
                    .collect();
                (!senders.is_empty()).then(|| NodeDrops {
                    node: names[receiver].clone(),
                    drops: senders,
                })
            })
            .collect();
        Self {
            spec: spec.to_owned(),
            seed,
            applied_at: chrono::Utc::now().to_rfc3339(),
            drops,
        }
    }

    /// `b drops a; a drops b`, or that nobody drops anything.
    pub fn describe(&self) -> String {
        if self.drops.is_empty() {
            return "nobody drops anything".into();
        }
        self.drops
            .iter()
            .map(|d| format!("{} drops {}", d.node, d.drops.join(",")))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Records `partition` (or, with `None`, a heal) in lab `prefix`'s state
/// file under `dir`.
pub fn record(dir: &Path, prefix: &str, partition: Option<PartitionRecord>) -> Result<(), String> {
    LabState::update_in(dir, prefix, |state| state.partition = partition)
        .map_err(|e| format!("lab {prefix}: recording the partition in its state: {e}"))?
        .map(|_| ())
        .ok_or_else(|| format!("lab {prefix}: its state file is gone"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_names_who_drops_whom() {
        let names: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let grudge = Grudge::complete(3, &[vec![0], vec![1]]);
        let record = PartitionRecord::new("a|b", 1, &grudge, &names);
        assert_eq!(record.describe(), "a drops b; b drops a");
        let none = PartitionRecord::new("x", 1, &Grudge::none(3), &names);
        assert_eq!(none.describe(), "nobody drops anything");
    }
}
