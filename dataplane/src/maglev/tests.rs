//! The Maglev table's specification, as tests.

// Entry counts are far below 2^52: converting them to f64 is exact.
#![allow(clippy::cast_precision_loss)]

use super::*;
use proptest::prelude::*;

/// An IPv4 address as a backend key (IPv4-mapped IPv6).
fn ipv4_key(address: u32) -> u128 {
    0xffff_0000_0000 | u128::from(address)
}

fn backend(slot: u16, address: u32, weight: u32) -> MaglevBackend {
    MaglevBackend {
        slot,
        key: ipv4_key(address),
        weight,
    }
}

fn equal_backends(count: u16) -> Vec<MaglevBackend> {
    (0..count)
        .map(|slot| backend(slot, 0x0a00_0000 + u32::from(slot), 1))
        .collect()
}

/// How many entries each slot owns, indexed by slot.
fn entry_counts(table: &MaglevTable, slots: usize) -> Vec<usize> {
    let mut counts = vec![0; slots];
    for &slot in table.entries() {
        counts[usize::from(slot)] += 1;
    }
    counts
}

/// Whether two of `backends` walk their permutations with the same skip
/// under `seed` (the same cycle of the table, from different offsets).
fn shares_a_skip(backends: &[MaglevBackend], seed: u64) -> bool {
    let mut skips: Vec<u64> = backends
        .iter()
        .map(|b| {
            fill::keyed_hash(seed, fill::SKIP_DOMAIN, b.key) % u64::from(DEFAULT_TABLE_SIZE - 1)
        })
        .collect();
    skips.sort_unstable();
    skips.windows(2).any(|pair| pair[0] == pair[1])
}

/// Backends with distinct addresses, slots `0..n` and weights from `weights`.
fn weighted_backends(
    addresses: std::collections::BTreeSet<u32>,
    weights: &[u32],
) -> Vec<MaglevBackend> {
    addresses
        .into_iter()
        .zip(weights)
        .enumerate()
        .map(|(slot, (address, &weight))| backend(slot as u16, address, weight))
        .collect()
}

fn backends_strategy(
    max_backends: usize,
    max_weight: u32,
) -> impl Strategy<Value = Vec<MaglevBackend>> {
    (
        prop::collection::btree_set(any::<u32>(), 1..=max_backends),
        prop::collection::vec(0..=max_weight, max_backends),
    )
        .prop_map(|(addresses, weights)| weighted_backends(addresses, &weights))
}

const TEST_SIZES: [u32; 4] = [101, 1009, 4099, DEFAULT_TABLE_SIZE];

#[test]
fn lookup_returns_none_when_no_backend_has_weight() {
    for backends in [vec![], vec![backend(0, 1, 0), backend(1, 2, 0)]] {
        let table = MaglevTable::build(&backends, 101, 0).unwrap();
        assert!(table.entries().iter().all(|&entry| entry == u16::MAX));
        assert_eq!(table.lookup(12_345), None);
    }
}

#[test]
fn a_single_backend_owns_every_entry() {
    let table = MaglevTable::build(&[backend(7, 1, 3)], DEFAULT_TABLE_SIZE, 0).unwrap();
    assert!(table.entries().iter().all(|&entry| entry == 7));
    assert_eq!(table.lookup(u64::MAX), Some(7));
}

#[test]
fn lookup_reads_the_entry_at_hash_modulo_size() {
    let table = MaglevTable::build(&equal_backends(10), 1009, 42).unwrap();
    assert_eq!(table.size(), 1009);
    for hash in [0, 1, 1008, 1009, 123_456_789, u64::MAX] {
        let expected = table.entries()[(hash % 1009) as usize];
        assert_eq!(table.lookup(hash), Some(expected));
    }
}

#[test]
fn the_seed_changes_the_table() {
    let backends = equal_backends(10);
    let first = MaglevTable::build(&backends, 1009, 1).unwrap();
    let second = MaglevTable::build(&backends, 1009, 2).unwrap();
    assert_ne!(first.entries(), second.entries());
}

#[test]
fn the_paper_sizes_are_accepted() {
    for size in [DEFAULT_TABLE_SIZE, 655_373] {
        let table = MaglevTable::build(&equal_backends(1000), size, 0).unwrap();
        assert_eq!(table.size(), size);
        assert!(!table.entries().contains(&u16::MAX));
    }
}

#[test]
fn a_non_prime_size_is_rejected_naming_the_nearest_primes() {
    let error = MaglevTable::build(&equal_backends(3), 65_536, 0).unwrap_err();
    assert_eq!(
        error,
        MaglevError::SizeNotPrime {
            size: 65_536,
            below: Some(65_521),
            above: Some(65_537)
        }
    );
    assert_eq!(
        error.to_string(),
        "table size 65536 is not prime; nearest primes: 65521 and 65537"
    );
}

#[test]
fn a_size_not_above_the_backend_count_is_rejected() {
    let error = MaglevTable::build(&equal_backends(5), 5, 0).unwrap_err();
    assert_eq!(
        error,
        MaglevError::SizeTooSmall {
            size: 5,
            backends: 5
        }
    );
    assert!(error
        .to_string()
        .contains("must exceed the number of backends (5)"));
    assert!(MaglevTable::build(&equal_backends(4), 5, 0).is_ok());
}

#[test]
fn a_size_above_the_maximum_is_rejected_and_not_suggested() {
    let error = MaglevTable::build(&equal_backends(5), MAX_TABLE_SIZE + 1, 0).unwrap_err();
    assert_eq!(
        error,
        MaglevError::SizeTooLarge {
            size: MAX_TABLE_SIZE + 1
        }
    );
    // 2^26 - 1 is not prime, and the next prime is above the maximum.
    let error = MaglevTable::build(&equal_backends(5), MAX_TABLE_SIZE - 1, 0).unwrap_err();
    assert_eq!(
        error.to_string(),
        "table size 67108863 is not prime; nearest prime: 67108859"
    );
}

#[test]
fn more_than_the_maximum_backends_are_rejected() {
    let backends: Vec<MaglevBackend> = (0..=MAX_BACKENDS as u32)
        .map(|index| backend(index as u16, index, 1))
        .collect();
    let error = MaglevTable::build(&backends, DEFAULT_TABLE_SIZE, 0).unwrap_err();
    assert_eq!(error, MaglevError::TooManyBackends(65_536));
}

#[test]
fn a_slot_shared_by_two_backends_is_rejected() {
    let backends = [backend(3, 1, 1), backend(3, 2, 1)];
    let error = MaglevTable::build(&backends, 101, 0).unwrap_err();
    assert_eq!(error, MaglevError::DuplicateSlot(3));
}

#[test]
fn an_address_shared_by_two_backends_is_rejected_and_shown_as_ipv4() {
    let backends = [backend(0, 0x0a00_0001, 1), backend(1, 0x0a00_0001, 2)];
    let error = MaglevTable::build(&backends, 101, 0).unwrap_err();
    assert_eq!(error, MaglevError::DuplicateKey(ipv4_key(0x0a00_0001)));
    assert!(error
        .to_string()
        .contains("10.0.0.1 appears more than once"));
}

#[test]
fn the_empty_marker_slot_is_rejected() {
    let error = MaglevTable::build(&[backend(u16::MAX, 1, 1)], 101, 0).unwrap_err();
    assert_eq!(error, MaglevError::ReservedSlot);
    assert!(error.to_string().contains("use slots 0 to 65534"));
}

#[test]
fn equal_weights_give_every_backend_the_same_entries_give_or_take_one() {
    let table = MaglevTable::build(&equal_backends(1000), DEFAULT_TABLE_SIZE, 0).unwrap();
    let counts = entry_counts(&table, 1000);
    assert!(counts.iter().all(|&count| count == 65 || count == 66));
}

proptest! {
    #[test]
    fn no_entry_is_empty_when_a_backend_has_weight(
        backends in backends_strategy(60, 5),
        size in prop::sample::select(TEST_SIZES.to_vec()),
    ) {
        let table = MaglevTable::build(&backends, size, 1).unwrap();
        let any_weight = backends.iter().any(|b| b.weight > 0);
        prop_assert_eq!(table.entries().contains(&u16::MAX), !any_weight);
    }

    #[test]
    fn the_table_does_not_depend_on_the_order_of_backends(
        (backends, shuffled) in backends_strategy(60, 5)
            .prop_flat_map(|backends| (Just(backends.clone()), Just(backends).prop_shuffle())),
        seed in any::<u64>(),
    ) {
        let table = MaglevTable::build(&backends, 1009, seed).unwrap();
        let from_shuffled = MaglevTable::build(&shuffled, 1009, seed).unwrap();
        prop_assert_eq!(table, from_shuffled);
    }

    /// Backend `i` takes one entry per turn and, after `r` full rounds, has had
    /// `floor(r * w_i / w_max)` turns. Summing over backends bounds the rounds,
    /// which bounds each count: `|count_i - M w_i / W| < N w_i / W + 2`.
    #[test]
    fn entries_are_proportional_to_weight(
        backends in backends_strategy(60, 20),
        size in prop::sample::select(TEST_SIZES.to_vec()),
        seed in any::<u64>(),
    ) {
        let total_weight: f64 = backends.iter().map(|b| f64::from(b.weight)).sum();
        // With every weight 0 the table is all empty entries: nothing to share.
        prop_assume!(total_weight > 0.0);
        let table = MaglevTable::build(&backends, size, seed).unwrap();
        let counts = entry_counts(&table, backends.len());
        let n = backends.len() as f64;
        for backend in &backends {
            let share = f64::from(backend.weight) / total_weight;
            let ideal = f64::from(size) * share;
            let count = counts[usize::from(backend.slot)] as f64;
            prop_assert!(
                (count - ideal).abs() < n * share + 2.0,
                "slot {} weight {}: {} entries, ideal {:.1}", backend.slot, backend.weight, count, ideal
            );
        }
    }

    /// Removing one of `N` backends must move its own `M/N` entries; ideally
    /// nothing else. Maglev also moves some entries of the others, because
    /// their walks change once the removed backend no longer claims entries
    /// ahead of them. Bound: those extra moves stay below the ideal `1/N` of
    /// the table, so total disruption stays under twice the ideal. With
    /// `M / N ≥ 1300` (up to 50 backends, `M = 65537`) measured extra moves
    /// are at most 0.27 of the ideal; they grow with `N / M` (0.6 at 100
    /// backends, 5.7 at 1000, as in the paper's figure).
    ///
    /// The exception, inherent in the paper's permutations: two backends
    /// whose skips are equal walk the same cycle of the table, one a fixed
    /// number of steps behind the other, and when that distance is short
    /// every change to the turns ripples along the shared cycle. Such a pair
    /// occurs with odds of about `N² / 2M` per seed; over 300 sets built to
    /// contain one, extra moves reached 1.1 of the ideal. Bound for them:
    /// under twice the ideal.
    #[test]
    fn removing_one_backend_moves_few_entries_of_the_others(
        backends in backends_strategy(50, 1).prop_filter("two or more", |b| b.len() >= 2)
            .prop_map(|b| b.into_iter().map(|x| MaglevBackend { weight: 1, ..x }).collect::<Vec<_>>()),
        removed in any::<prop::sample::Index>(),
        seed in any::<u64>(),
    ) {
        let removed = removed.index(backends.len());
        let mut remaining = backends.clone();
        let gone = remaining.remove(removed);
        let before = MaglevTable::build(&backends, DEFAULT_TABLE_SIZE, seed).unwrap();
        let after = MaglevTable::build(&remaining, DEFAULT_TABLE_SIZE, seed).unwrap();
        let moved = before
            .entries()
            .iter()
            .zip(after.entries())
            .filter(|&(&old, &new)| old != gone.slot && old != new)
            .count();
        let moved_share = moved as f64 / f64::from(DEFAULT_TABLE_SIZE);
        let ideal = 1.0 / backends.len() as f64;
        let bound = if shares_a_skip(&backends, seed) { 2.0 * ideal } else { ideal };
        prop_assert!(moved_share < bound, "moved {:.4}, ideal {:.4}", moved_share, ideal);
    }

    #[test]
    fn non_prime_sizes_are_rejected_with_the_nearest_primes(size in 2u32..2_000_000) {
        prop_assume!(!is_prime(size));
        let (below, above) = nearest_primes(size);
        prop_assert_eq!(
            MaglevTable::build(&equal_backends(1), size, 0),
            Err(MaglevError::SizeNotPrime { size, below, above })
        );
    }
}
