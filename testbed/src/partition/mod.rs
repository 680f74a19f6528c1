//! Partitions: who cannot reach whom, and when. A spec (Jepsen's named
//! grudges, explicit components, one-way cuts, play's bucket form) becomes a
//! [`Grudge`] over a lab's nodes, seeded where random; each node's share is
//! one atomic nftables ruleset in its namespace ([`nft`]); a [`schedule`]
//! says when cuts are applied and healed.

pub mod command;
pub mod grudge;
pub mod nft;
pub mod record;
pub mod schedule;
pub mod spec;

pub use grudge::Grudge;
pub use spec::{PartitionSpec, PartitionSpecError};

use std::net::IpAddr;

/// A node of a lab as partitions see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub namespace: String,
    pub addrs: Vec<IpAddr>,
}

/// Applies `grudge` to `nodes` (indexed alike): each namespace gets, in one
/// transaction, rules dropping the addresses of the nodes it holds a grudge
/// against; namespaces are loaded in parallel.
pub fn apply(nodes: &[Node], grudge: &Grudge) -> Result<(), String> {
    if nodes.len() != grudge.nodes() {
        return Err(format!(
            "the grudge covers {} nodes, the lab has {}",
            grudge.nodes(),
            nodes.len()
        ));
    }
    let rulesets: Vec<String> = (0..nodes.len())
        .map(|receiver| {
            let sources: Vec<IpAddr> = grudge
                .dropped_by(receiver)
                .flat_map(|s| nodes[s].addrs.iter().copied())
                .collect();
            nft::drop_from(&sources)
        })
        .collect();
    load_all(nodes, &rulesets)
}

/// Removes every partition from `nodes`.
pub fn heal(nodes: &[Node]) -> Result<(), String> {
    load_all(nodes, &vec![nft::heal(); nodes.len()])
}

fn load_all(nodes: &[Node], rulesets: &[String]) -> Result<(), String> {
    let errors: Vec<String> = std::thread::scope(|scope| {
        let loads: Vec<_> = nodes
            .iter()
            .zip(rulesets)
            .map(|(node, rules)| scope.spawn(move || nft::load(&node.namespace, rules)))
            .collect();
        loads
            .into_iter()
            .filter_map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("an nft loader thread panicked".into()))
                    .err()
            })
            .collect()
    });
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}
