//! Grudges: for each node, the nodes whose packets it drops (Jepsen's
//! term). Every partition form becomes one; seeded where it is random.

use std::collections::BTreeSet;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::spec::PartitionSpec;

/// Who drops whose packets, over nodes `0..n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grudge {
    /// `drops[receiver]`: the senders whose packets the receiver drops.
    drops: Vec<BTreeSet<usize>>,
}

impl Grudge {
    /// Nobody drops anything.
    pub fn none(n: usize) -> Self {
        Self {
            drops: vec![BTreeSet::new(); n],
        }
    }

    /// Nodes in different components drop each other's packets; nodes in no
    /// component are untouched.
    pub fn complete(n: usize, components: &[Vec<usize>]) -> Self {
        let mut g = Self::none(n);
        for (i, a) in components.iter().enumerate() {
            for b in components.iter().skip(i + 1) {
                for &x in a {
                    for &y in b {
                        g.cut(x, y);
                        g.cut(y, x);
                    }
                }
            }
        }
        g
    }

    /// `receiver` drops `sender`'s packets.
    pub fn cut(&mut self, sender: usize, receiver: usize) {
        if sender != receiver {
            self.drops[receiver].insert(sender);
        }
    }

    /// Whether a packet from `sender` to `receiver` is dropped.
    pub fn drops(&self, sender: usize, receiver: usize) -> bool {
        self.drops[receiver].contains(&sender)
    }

    /// The senders `receiver` drops.
    pub fn dropped_by(&self, receiver: usize) -> impl Iterator<Item = usize> + '_ {
        self.drops[receiver].iter().copied()
    }

    pub fn nodes(&self) -> usize {
        self.drops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.drops.iter().all(BTreeSet::is_empty)
    }

    /// The grudge a spec describes over nodes named `names` (a node is named
    /// by its name or its index), drawing from `seed` where the form is random.
    pub fn from_spec(spec: &PartitionSpec, names: &[String], seed: u64) -> Result<Self, String> {
        let n = names.len();
        if n < 2 {
            return Err(format!(
                "a partition needs two nodes or more, the lab has {n}"
            ));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let ordered: Vec<usize> = (0..n).collect();
        let shuffled = || {
            let mut v = ordered.clone();
            v.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
            v
        };
        let halves = |v: &[usize]| vec![v[..n / 2].to_vec(), v[n / 2..].to_vec()];
        Ok(match spec {
            PartitionSpec::Halves => Self::complete(n, &halves(&ordered)),
            PartitionSpec::RandomHalves => Self::complete(n, &halves(&shuffled())),
            PartitionSpec::One => {
                let loner = *ordered.choose(&mut rng).unwrap_or(&0);
                let rest: Vec<usize> = ordered.iter().copied().filter(|i| *i != loner).collect();
                Self::complete(n, &[vec![loner], rest])
            }
            PartitionSpec::Bridge => {
                // Two halves that cannot reach each other, and the node
                // between them that both can reach.
                if n < 3 {
                    return Err(format!("bridge needs three nodes or more, the lab has {n}"));
                }
                let bridge = n / 2;
                Self::complete(
                    n,
                    &[ordered[..bridge].to_vec(), ordered[bridge + 1..].to_vec()],
                )
            }
            PartitionSpec::MajoritiesRing => majorities_ring(&shuffled()),
            PartitionSpec::Components(components) => {
                let resolved = components
                    .iter()
                    .map(|c| {
                        c.iter()
                            .map(|name| resolve(name, names))
                            .collect::<Result<Vec<_>, _>>()
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Self::complete(n, &resolved)
            }
            PartitionSpec::OneWay(cuts) => {
                let mut g = Self::none(n);
                for (from, to) in cuts {
                    g.cut(resolve(from, names)?, resolve(to, names)?);
                }
                g
            }
            PartitionSpec::Buckets { fractions, .. } => {
                Self::complete(n, &deal(&shuffled(), fractions))
            }
        })
    }
}

/// Jepsen's majorities ring: around a ring, each node sees the majority
/// window centred on it and drops everyone else, so every node sees a
/// majority and no two see the same one.
fn majorities_ring(ring: &[usize]) -> Grudge {
    let n = ring.len();
    let majority = n / 2 + 1;
    let mut g = Grudge::none(n);
    for start in 0..n {
        let window: Vec<usize> = (0..majority).map(|k| ring[(start + k) % n]).collect();
        let centre = window[majority / 2];
        for &other in ring {
            if !window.contains(&other) {
                g.cut(other, centre);
            }
        }
    }
    g
}

/// Deals nodes, in order, into buckets of the given fractions (largest
/// remainders get the leftovers, so every node lands somewhere). The spec
/// parser has checked that the fractions lie in (0, 1] and sum to 1.
fn deal(nodes: &[usize], fractions: &[f64]) -> Vec<Vec<usize>> {
    let n = nodes.len();
    let mut sizes: Vec<usize> = fractions
        .iter()
        // Each product lies in 0..=n, so the cast neither wraps nor loses a sign.
        .map(|f| {
            #[allow(clippy::cast_sign_loss)]
            let size = (f.clamp(0.0, 1.0) * n as f64).floor() as usize;
            size
        })
        .collect();
    let mut left = n.saturating_sub(sizes.iter().sum::<usize>());
    let mut by_remainder: Vec<usize> = (0..fractions.len()).collect();
    by_remainder.sort_by(|a, b| {
        let ra = fractions[*a] * n as f64 - sizes[*a] as f64;
        let rb = fractions[*b] * n as f64 - sizes[*b] as f64;
        rb.total_cmp(&ra)
    });
    for i in by_remainder.into_iter().cycle() {
        if left == 0 {
            break;
        }
        sizes[i] += 1;
        left -= 1;
    }
    let mut out = Vec::new();
    let mut at = 0;
    for size in sizes {
        out.push(nodes[at..at + size].to_vec());
        at += size;
    }
    out
}

/// A node by name, or by index when no node has that name.
fn resolve(name: &str, names: &[String]) -> Result<usize, String> {
    names
        .iter()
        .position(|n| n == name)
        .or_else(|| name.parse::<usize>().ok().filter(|i| *i < names.len()))
        .ok_or_else(|| {
            format!(
                "no node \"{name}\" in the lab (nodes: {}, or indices 0..{})",
                names.join(", "),
                names.len()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("h{i}")).collect()
    }

    fn grudge(spec: &str, n: usize) -> Grudge {
        Grudge::from_spec(&PartitionSpec::parse(spec).unwrap(), &names(n), 1).unwrap()
    }

    #[test]
    fn halves_cut_the_first_half_from_the_second_both_ways() {
        let g = grudge("halves", 5);
        for a in 0..2 {
            for b in 2..5 {
                assert!(g.drops(a, b) && g.drops(b, a));
            }
        }
        assert!(!g.drops(0, 1) && !g.drops(3, 4));
    }

    #[test]
    fn bridge_node_reaches_both_halves_which_cannot_reach_each_other() {
        let g = grudge("bridge", 5);
        assert!(g.drops(0, 3) && g.drops(4, 1));
        for other in [0, 1, 3, 4] {
            assert!(!g.drops(2, other) && !g.drops(other, 2));
        }
    }

    #[test]
    fn one_isolates_a_single_node() {
        let g = grudge("one", 6);
        let isolated: Vec<usize> = (0..6)
            .filter(|i| (0..6).filter(|j| j != i).all(|j| g.drops(j, *i)))
            .collect();
        assert_eq!(isolated.len(), 1);
    }

    #[test]
    fn in_a_majorities_ring_every_node_sees_a_majority_and_no_two_the_same() {
        for n in [3, 5, 7] {
            let g = grudge("majorities-ring", n);
            let mut seen_sets = Vec::new();
            for r in 0..n {
                let sees: Vec<usize> = (0..n).filter(|s| !g.drops(*s, r)).collect();
                assert!(sees.len() > n / 2, "n={n} node {r} sees {sees:?}");
                seen_sets.push(sees);
            }
            seen_sets.sort();
            seen_sets.dedup();
            assert_eq!(seen_sets.len(), n);
        }
    }

    #[test]
    fn explicit_components_and_one_way_cuts_use_names_or_indices() {
        let g = grudge("h0,h1|2,h3", 5);
        assert!(g.drops(0, 2) && g.drops(3, 1) && !g.drops(0, 1));
        assert!(
            !g.drops(4, 0) && !g.drops(0, 4),
            "a node in no component is untouched"
        );
        let g = grudge("h0->h1", 3);
        assert!(g.drops(0, 1) && !g.drops(1, 0));
        let e =
            Grudge::from_spec(&PartitionSpec::parse("x->h1").unwrap(), &names(3), 1).unwrap_err();
        assert!(e.contains("no node \"x\""), "{e}");
    }

    #[test]
    fn buckets_deal_every_node_by_the_fractions() {
        let buckets = deal(&(0..10).collect::<Vec<_>>(), &[0.5, 0.3, 0.2]);
        assert_eq!(
            buckets.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![5, 3, 2]
        );
        let buckets = deal(&(0..7).collect::<Vec<_>>(), &[0.5, 0.5]);
        assert_eq!(buckets.iter().map(Vec::len).sum::<usize>(), 7);
    }

    #[test]
    fn random_forms_are_seeded() {
        let spec = PartitionSpec::parse("random-halves").unwrap();
        let a = Grudge::from_spec(&spec, &names(10), 7).unwrap();
        assert_eq!(a, Grudge::from_spec(&spec, &names(10), 7).unwrap());
        let differs = (8..40).any(|seed| Grudge::from_spec(&spec, &names(10), seed).unwrap() != a);
        assert!(differs);
    }
}
