//! Populating a Maglev table: permutations and the turn order.
//!
//! Building is dominated by probing: late in the fill most entries are taken
//! and a backend walks its permutation past many of them (about `M ln M`
//! probes in all). Hence the choices here: no division in the walk (`next =
//! position + skip`, minus `M` once on overflow), the "taken" test on a bitmap
//! (8 KiB for the default size, so it stays in L1 while the `u16` entries are
//! only written), per-backend state in one small array, and a stop as soon as
//! the last entry is claimed.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hash::Hasher;

use siphasher::sip::SipHasher13;

use super::MaglevBackend;

/// Second `SipHash` key word for a permutation's offset (`"offset\0\0"`).
const OFFSET_DOMAIN: u64 = u64::from_le_bytes(*b"offset\0\0");
/// Second `SipHash` key word for a permutation's skip (`"skip\0\0\0\0"`).
const SKIP_DOMAIN: u64 = u64::from_le_bytes(*b"skip\0\0\0\0");

/// Above this ratio of largest to mean weight, rounds in which most backends
/// only earn credit would cost more than a priority queue of next turns.
const ROUNDS_SKEW_LIMIT: u64 = 4;

/// One backend's walk through its permutation.
#[derive(Debug, Clone, Copy)]
struct Walker {
    /// The next entry of the permutation to try.
    position: u32,
    /// The permutation's stride, in `1..M`; coprime with the prime `M`.
    skip: u32,
    /// What the backend writes into the entries it claims.
    slot: u16,
}

/// Entries already claimed, one bit each.
#[derive(Debug)]
struct Claimed {
    words: Vec<u64>,
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
    let max_weight = weights.iter().copied().max().unwrap_or(1);
    let total_weight: u64 = weights.iter().sum();
    let mut fill = Fill::new(entries, rotation, seed);
    if weights.len() as u64 * max_weight <= ROUNDS_SKEW_LIMIT * total_weight {
        fill.by_rounds(&weights, max_weight);
    } else {
        fill.by_schedule(&weights, max_weight);
    }
}

/// SipHash-1-3 of a backend key under `(seed, domain)`: independent hashes for
/// offset and skip from one seed.
fn keyed_hash(seed: u64, domain: u64, key: u128) -> u64 {
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
            .map(|backend| Walker {
                position: (keyed_hash(seed, OFFSET_DOMAIN, backend.key) % u64::from(size)) as u32,
                skip: (keyed_hash(seed, SKIP_DOMAIN, backend.key) % u64::from(size - 1)) as u32 + 1,
                slot: backend.slot,
            })
            .collect();
        Fill {
            entries,
            claimed: Claimed {
                words: vec![0; (size as usize).div_ceil(64)],
            },
            size,
            walkers,
        }
    }

    /// Katran's rounds: in each round every backend, in key order, earns its
    /// weight as credit and takes one turn if its credit reaches the largest
    /// weight. After `r` rounds backend `i` has had `floor(r * w_i / w_max)`
    /// turns, so its share of entries is `w_i / W` to within one entry per
    /// round boundary.
    fn by_rounds(&mut self, weights: &[u64], max_weight: u64) {
        let mut credits = vec![0u64; weights.len()];
        let mut unclaimed = self.entries.len();
        loop {
            for (index, (credit, &weight)) in credits.iter_mut().zip(weights).enumerate() {
                *credit += weight;
                if *credit < max_weight {
                    continue;
                }
                *credit -= max_weight;
                self.take_turn(index);
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
    fn by_schedule(&mut self, weights: &[u64], max_weight: u64) {
        let turn_round = |turn: u64, weight: u64| (turn * max_weight).div_ceil(weight) - 1;
        let mut turns_taken = vec![0u64; weights.len()];
        let mut schedule: BinaryHeap<Reverse<(u64, usize)>> = weights
            .iter()
            .enumerate()
            .map(|(index, &weight)| Reverse((turn_round(1, weight), index)))
            .collect();
        let mut unclaimed = self.entries.len();
        while let Some(Reverse((_, index))) = schedule.pop() {
            self.take_turn(index);
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
    /// permutation visits every entry because `M` is prime.
    #[inline(always)]
    fn take_turn(&mut self, index: usize) {
        let walker = &mut self.walkers[index];
        let size = self.size;
        let mut position = walker.position;
        while self.claimed.test_and_set(position) {
            position = step(position, walker.skip, size);
        }
        self.entries[position as usize] = walker.slot;
        walker.position = step(position, walker.skip, size);
    }
}

impl Claimed {
    /// Marks `position` claimed; returns whether it already was.
    #[inline(always)]
    fn test_and_set(&mut self, position: u32) -> bool {
        let word = &mut self.words[(position / 64) as usize];
        let bit = 1u64 << (position % 64);
        let was_set = *word & bit != 0;
        *word |= bit;
        was_set
    }
}

/// The next position of a permutation: `(position + skip) mod size` for
/// `position, skip < size`, without a division. No overflow: `size ≤ 2^26`.
#[inline(always)]
fn step(position: u32, skip: u32, size: u32) -> u32 {
    let next = position + skip;
    if next >= size {
        next - size
    } else {
        next
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

    fn fill_with(rotation: &[MaglevBackend], size: u32, use_schedule: bool) -> Vec<u16> {
        let mut entries = vec![EMPTY; size as usize];
        let weights: Vec<u64> = rotation.iter().map(|b| u64::from(b.weight)).collect();
        let max_weight = weights.iter().copied().max().unwrap();
        let mut fill = Fill::new(&mut entries, rotation, 7);
        if use_schedule {
            fill.by_schedule(&weights, max_weight);
        } else {
            fill.by_rounds(&weights, max_weight);
        }
        entries
    }

    #[test]
    fn step_wraps_without_division() {
        assert_eq!(step(3, 4, 7), 0);
        assert_eq!(step(2, 4, 7), 6);
        assert_eq!(step(6, 6, 7), 5);
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

    proptest! {
        /// The schedule is only a faster route to the rounds' turn order.
        #[test]
        fn schedule_takes_the_same_turns_as_rounds(
            weights in proptest::collection::vec(1u32..1000, 1..40),
            size in prop::sample::select(vec![41u32, 251, 1009, 4099]),
        ) {
            let rotation = rotation(&weights);
            prop_assert_eq!(fill_with(&rotation, size, true), fill_with(&rotation, size, false));
        }
    }
}
