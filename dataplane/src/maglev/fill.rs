//! Populating a Maglev table: permutations and the turn order.
//!
//! Which entry a turn claims is [`super::search`]'s business; this file
//! decides whose turn it is and stops as soon as the last entry is claimed.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hash::Hasher;

use siphasher::sip::SipHasher13;

use super::search::{step, Claimed, Scalar, Search};
use super::MaglevBackend;

/// Second `SipHash` key word for a permutation's offset (`"offset\0\0"`).
pub(super) const OFFSET_DOMAIN: u64 = u64::from_le_bytes(*b"offset\0\0");
/// Second `SipHash` key word for a permutation's skip (`"skip\0\0\0\0"`).
pub(super) const SKIP_DOMAIN: u64 = u64::from_le_bytes(*b"skip\0\0\0\0");

/// Above this ratio of largest to mean weight, rounds in which most backends
/// only earn credit would cost more than a priority queue of next turns.
const ROUNDS_SKEW_LIMIT: u64 = 4;

/// One backend's walk through its permutation.
#[derive(Debug, Clone, Copy)]
pub(super) struct Walker {
    /// The next entry of the permutation to try.
    pub(super) position: u32,
    /// The permutation's stride, in `1..M`; coprime with the prime `M`.
    pub(super) skip: u32,
    /// What the backend writes into the entries it claims.
    pub(super) slot: u16,
}

/// The shared state of one fill.
#[derive(Debug)]
struct Fill<'a> {
    entries: &'a mut [u16],
    claimed: Claimed,
    size: u32,
    walkers: Vec<Walker>,
}

/// Fills every entry of `entries` (all `EMPTY` on entry) from `rotation`:
/// backends with weight above zero, sorted by key. Leaves `entries` untouched
/// when `rotation` is empty.
pub(super) fn populate(entries: &mut [u16], rotation: &[MaglevBackend], seed: u64) {
    if rotation.is_empty() {
        return;
    }
    let weights: Vec<u64> = rotation
        .iter()
        .map(|backend| u64::from(backend.weight))
        .collect();
    let mut fill = Fill::new(entries, rotation, seed);
    #[cfg(target_arch = "x86_64")]
    if let Some(search) = super::search::Avx2::detect(&fill.walkers, fill.size) {
        // SAFETY: `Avx2::detect` returns a search only when the CPU has AVX2.
        unsafe { fill.run_avx2(&search, &weights) };
        return;
    }
    fill.run(&Scalar, &weights);
}

/// SipHash-1-3 of a backend key under `(seed, domain)`: independent hashes for
/// offset and skip from one seed.
pub(super) fn keyed_hash(seed: u64, domain: u64, key: u128) -> u64 {
    let mut hasher = SipHasher13::new_with_keys(seed, domain);
    hasher.write(&key.to_le_bytes());
    hasher.finish()
}

impl<'a> Fill<'a> {
    /// Starts every backend of `rotation` at the head of its permutation.
    fn new(entries: &'a mut [u16], rotation: &[MaglevBackend], seed: u64) -> Self {
        let size = entries.len() as u32;
        let walkers = rotation
            .iter()
            .map(|backend| {
                let offset = keyed_hash(seed, OFFSET_DOMAIN, backend.key) % u64::from(size);
                let skip = keyed_hash(seed, SKIP_DOMAIN, backend.key) % u64::from(size - 1) + 1;
                Walker {
                    position: offset as u32,
                    skip: skip as u32,
                    slot: backend.slot,
                }
            })
            .collect();
        Fill {
            entries,
            claimed: Claimed::new(size),
            size,
            walkers,
        }
    }

    /// Takes every turn with `search`: in rounds, unless the weights are so
    /// skewed that most of a round's visits would be idle.
    #[inline(always)]
    fn run<S: Search>(&mut self, search: &S, weights: &[u64]) {
        let max_weight = weights.iter().copied().max().unwrap_or(1);
        let total_weight: u64 = weights.iter().sum();
        if weights.len() as u64 * max_weight <= ROUNDS_SKEW_LIMIT * total_weight {
            self.by_rounds(search, weights, max_weight);
        } else {
            self.by_schedule(search, weights, max_weight);
        }
    }

    /// [`Self::run`] compiled with AVX2 enabled, so that the search inlines.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn run_avx2(&mut self, search: &super::search::Avx2, weights: &[u64]) {
        self.run(search, weights);
    }

    /// Katran's rounds: in each round every backend, in key order, earns its
    /// weight as credit and takes one turn if its credit reaches the largest
    /// weight. After `r` rounds backend `i` has had `floor(r * w_i / w_max)`
    /// turns, so its share of entries is `w_i / W` to within one entry per
    /// round boundary.
    #[inline(always)]
    fn by_rounds<S: Search>(&mut self, search: &S, weights: &[u64], max_weight: u64) {
        let mut unclaimed = self.entries.len();
        if weights.iter().all(|&weight| weight == max_weight) {
            // Equal weights: every backend takes a turn in every round.
            loop {
                for index in 0..weights.len() {
                    self.take_turn(search, index);
                    unclaimed -= 1;
                    if unclaimed == 0 {
                        return;
                    }
                }
            }
        }
        let mut credits = vec![0u64; weights.len()];
        loop {
            for (index, (credit, &weight)) in credits.iter_mut().zip(weights).enumerate() {
                *credit += weight;
                if *credit < max_weight {
                    continue;
                }
                *credit -= max_weight;
                self.take_turn(search, index);
                unclaimed -= 1;
                if unclaimed == 0 {
                    return;
                }
            }
        }
    }

    /// The same turns as [`Self::by_rounds`], in the same order, without
    /// visiting backends that only earn credit: backend `i`'s `k`-th turn
    /// (from 1) falls in round `ceil(k * w_max / w_i) - 1`, and a min-heap on
    /// (round, key order) yields the turns in order. Used when weights are so
    /// skewed that most visits in a round would be idle.
    #[inline(always)]
    fn by_schedule<S: Search>(&mut self, search: &S, weights: &[u64], max_weight: u64) {
        let turn_round = |turn: u64, weight: u64| (turn * max_weight).div_ceil(weight) - 1;
        let mut turns_taken = vec![0u64; weights.len()];
        let mut schedule: BinaryHeap<Reverse<(u64, usize)>> = weights
            .iter()
            .enumerate()
            .map(|(index, &weight)| Reverse((turn_round(1, weight), index)))
            .collect();
        let mut unclaimed = self.entries.len();
        while let Some(Reverse((_, index))) = schedule.pop() {
            self.take_turn(search, index);
            unclaimed -= 1;
            if unclaimed == 0 {
                return;
            }
            turns_taken[index] += 1;
            let next = turn_round(turns_taken[index] + 1, weights[index]);
            schedule.push(Reverse((next, index)));
        }
    }

    /// Backend `index` claims the next unclaimed entry of its permutation.
    /// One exists: the caller stops once every entry is claimed, and the
    /// permutation visits every entry because `M` is prime. Early in the fill
    /// the first probe usually succeeds, so it is made here, before `search`.
    #[inline(always)]
    fn take_turn<S: Search>(&mut self, search: &S, index: usize) {
        let walker = self.walkers[index];
        let size = self.size;
        let free = if self.claimed.contains(walker.position) {
            let start = step(walker.position, walker.skip, size);
            search.first_unclaimed(&self.claimed, index, &walker, size, start)
        } else {
            walker.position
        };
        self.claimed.insert(free);
        self.entries[free as usize] = walker.slot;
        self.walkers[index].position = step(free, walker.skip, size);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const EMPTY: u16 = u16::MAX;

    fn rotation(weights: &[u32]) -> Vec<MaglevBackend> {
        weights
            .iter()
            .enumerate()
            .map(|(index, &weight)| MaglevBackend {
                slot: index as u16,
                key: 0x0a00_0000 + index as u128,
                weight,
            })
            .collect()
    }

    /// The paper's algorithm as written, with Katran's weighted rounds: `%`
    /// for every probe, the table itself as the "taken" test.
    fn reference(rotation: &[MaglevBackend], size: u32, seed: u64) -> Vec<u16> {
        let m = u64::from(size);
        let offsets: Vec<u64> = rotation
            .iter()
            .map(|b| keyed_hash(seed, OFFSET_DOMAIN, b.key) % m)
            .collect();
        let skips: Vec<u64> = rotation
            .iter()
            .map(|b| keyed_hash(seed, SKIP_DOMAIN, b.key) % (m - 1) + 1)
            .collect();
        let max_weight = rotation.iter().map(|b| u64::from(b.weight)).max().unwrap();
        let mut next = vec![0u64; rotation.len()];
        let mut credit = vec![0u64; rotation.len()];
        let mut table = vec![EMPTY; size as usize];
        let mut filled = 0;
        loop {
            for i in 0..rotation.len() {
                credit[i] += u64::from(rotation[i].weight);
                if credit[i] < max_weight {
                    continue;
                }
                credit[i] -= max_weight;
                let mut candidate = (offsets[i] + next[i] * skips[i]) % m;
                while table[candidate as usize] != EMPTY {
                    next[i] += 1;
                    candidate = (offsets[i] + next[i] * skips[i]) % m;
                }
                table[candidate as usize] = rotation[i].slot;
                next[i] += 1;
                filled += 1;
                if filled == size {
                    return table;
                }
            }
        }
    }

    #[derive(Debug, Clone, Copy)]
    enum Order {
        Rounds,
        Schedule,
    }

    fn fill_with<S: Search>(
        rotation: &[MaglevBackend],
        size: u32,
        order: Order,
        search: impl FnOnce(&[Walker]) -> S,
    ) -> Vec<u16> {
        let mut entries = vec![EMPTY; size as usize];
        let weights: Vec<u64> = rotation.iter().map(|b| u64::from(b.weight)).collect();
        let max_weight = weights.iter().copied().max().unwrap();
        let mut fill = Fill::new(&mut entries, rotation, 7);
        let search = search(&fill.walkers);
        match order {
            Order::Rounds => fill.by_rounds(&search, &weights, max_weight),
            Order::Schedule => fill.by_schedule(&search, &weights, max_weight),
        }
        entries
    }

    #[test]
    fn offset_and_skip_hashes_are_independent_of_each_other() {
        let key = 0xffff_0a00_0001;
        assert_ne!(
            keyed_hash(1, OFFSET_DOMAIN, key),
            keyed_hash(1, SKIP_DOMAIN, key)
        );
        assert_ne!(
            keyed_hash(1, OFFSET_DOMAIN, key),
            keyed_hash(2, OFFSET_DOMAIN, key)
        );
    }

    #[test]
    fn a_large_table_matches_the_papers_algorithm() {
        let rotation = rotation(&[1; 1000]);
        let mut entries = vec![EMPTY; 65_537];
        populate(&mut entries, &rotation, 3);
        assert_eq!(entries, reference(&rotation, 65_537, 3));
    }

    proptest! {
        /// All the speed work (bitmap, no division, AVX2, the schedule) must
        /// not change a single entry.
        #[test]
        fn the_table_matches_the_papers_algorithm(
            weights in proptest::collection::vec(1u32..50, 1..40),
            size in prop::sample::select(vec![41u32, 251, 1009, 4099]),
            seed in any::<u64>(),
        ) {
            let rotation = rotation(&weights);
            let mut entries = vec![EMPTY; size as usize];
            populate(&mut entries, &rotation, seed);
            prop_assert_eq!(entries, reference(&rotation, size, seed));
        }

        /// The schedule is only a faster route to the rounds' turn order.
        #[test]
        fn schedule_takes_the_same_turns_as_rounds(
            weights in proptest::collection::vec(1u32..1000, 1..40),
            size in prop::sample::select(vec![41u32, 251, 1009, 4099]),
        ) {
            let rotation = rotation(&weights);
            prop_assert_eq!(
                fill_with(&rotation, size, Order::Schedule, |_| Scalar),
                fill_with(&rotation, size, Order::Rounds, |_| Scalar)
            );
        }
    }

    #[cfg(target_arch = "x86_64")]
    proptest! {
        /// Where the CPU has AVX2 (the machines these tests run on do), its
        /// search finds what the scalar one does.
        #[test]
        fn the_avx2_search_matches_the_scalar_one(
            weights in proptest::collection::vec(1u32..10, 1..40),
            size in prop::sample::select(vec![41u32, 251, 1009, 4099]),
        ) {
            let rotation = rotation(&weights);
            let detect = |walkers: &[Walker]| super::super::search::Avx2::detect(walkers, size);
            if detect(&[]).is_none() {
                return Ok(()); // nothing to compare on this CPU
            }
            prop_assert_eq!(
                fill_with(&rotation, size, Order::Rounds, |w| detect(w).unwrap()),
                fill_with(&rotation, size, Order::Rounds, |_| Scalar)
            );
        }
    }
}
