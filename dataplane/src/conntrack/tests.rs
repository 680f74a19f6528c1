//! The connection table's specification, as tests.

use super::*;
use proptest::prelude::*;
use std::collections::HashMap;

const TCP: TimeoutClass = TimeoutClass::Tcp;
const UDP: TimeoutClass = TimeoutClass::Udp;

fn table(capacity: usize, max_new_per_sec: u32) -> ConnTable {
    ConnTable::new(ConnTableConfig {
        capacity,
        max_new_per_sec,
        ..ConnTableConfig::default()
    })
}

fn entry(slot: u16) -> ConnEntry {
    ConnEntry {
        slot,
        generation: 1,
    }
}

/// A well-mixed flow hash for flow number `n` (splitmix64).
fn flow_hash(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[test]
fn the_defaults_are_those_documented() {
    let config = ConnTableConfig::default();
    assert_eq!(config.capacity, 1 << 20);
    assert_eq!(config.tcp_timeout_secs, 300);
    assert_eq!(config.udp_timeout_secs, 30);
    assert_eq!(config.max_new_per_sec, 1_000_000);
}

#[test]
fn capacity_is_rounded_up_to_a_power_of_two() {
    assert_eq!(table(1000, 1).capacity(), 1024);
    assert_eq!(table(1 << 20, 1).capacity(), 1 << 20);
    assert_eq!(table(MIN_CAPACITY, 1).capacity(), 32);
    assert_eq!(table(MIN_CAPACITY + 1, 1).capacity(), 64);
    assert_eq!(
        ConnTable::new(ConnTableConfig::default()).capacity(),
        1 << 20
    );
}

#[test]
fn a_capacity_out_of_range_is_refused_not_clamped() {
    for capacity in [0, 1, MIN_CAPACITY - 1, MAX_CAPACITY + 1, usize::MAX] {
        let config = ConnTableConfig {
            capacity,
            ..ConnTableConfig::default()
        };
        let error = ConnTable::try_new(config).unwrap_err();
        assert!(
            matches!(error, ConnTableError::Capacity(n) if n == capacity),
            "{capacity}: {error}"
        );
        assert!(
            error.to_string().contains("outside 32..=268435456"),
            "{error}"
        );
    }
}

#[test]
fn an_entry_costs_at_most_32_bytes() {
    let table = ConnTable::new(ConnTableConfig::default());
    assert!(table.memory_bytes() <= 32 * table.capacity());
    assert!(table.memory_bytes() >= 16 * table.capacity());
}

#[test]
fn a_flow_hits_after_insert() {
    let mut table = table(1024, 100);
    assert_eq!(
        table.insert(flow_hash(1), entry(7), TCP, 10),
        InsertOutcome::Inserted
    );
    assert_eq!(table.lookup(flow_hash(1), TCP, 10), Some(entry(7)));
    assert_eq!(table.lookup(flow_hash(2), TCP, 10), None);
}

#[test]
fn a_tcp_flow_misses_once_idle_longer_than_the_tcp_timeout() {
    let mut table = table(1024, 100);
    table.insert(flow_hash(1), entry(7), TCP, 1000);
    table.insert(flow_hash(2), entry(8), TCP, 1000);
    assert_eq!(table.lookup(flow_hash(1), TCP, 1300), Some(entry(7)));
    assert_eq!(table.lookup(flow_hash(2), TCP, 1301), None);
}

#[test]
fn a_udp_flow_misses_once_idle_longer_than_the_udp_timeout() {
    let mut table = table(1024, 100);
    table.insert(flow_hash(1), entry(7), UDP, 1000);
    table.insert(flow_hash(2), entry(8), UDP, 1000);
    assert_eq!(table.lookup(flow_hash(1), UDP, 1030), Some(entry(7)));
    assert_eq!(table.lookup(flow_hash(2), UDP, 1031), None);
    assert_eq!(table.occupancy(1031), 1);
}

#[test]
fn lookups_keep_a_flow_alive_past_its_timeout() {
    let mut table = table(1024, 100);
    table.insert(flow_hash(1), entry(7), UDP, 0);
    for now in (20..=400).step_by(20) {
        assert_eq!(
            table.lookup(flow_hash(1), UDP, now),
            Some(entry(7)),
            "at {now}"
        );
    }
}

#[test]
fn a_clock_reading_earlier_than_last_seen_counts_as_no_idle_time() {
    let mut table = table(1024, 100);
    table.insert(flow_hash(1), entry(7), UDP, 500);
    assert_eq!(table.lookup(flow_hash(1), UDP, 400), Some(entry(7)));
}

#[test]
fn inserting_a_live_flow_again_replaces_its_entry() {
    let mut table = table(1024, 100);
    table.insert(flow_hash(1), entry(7), TCP, 0);
    let fresh = ConnEntry {
        slot: 9,
        generation: 2,
    };
    assert_eq!(
        table.insert(flow_hash(1), fresh, TCP, 5),
        InsertOutcome::Replaced
    );
    assert_eq!(table.lookup(flow_hash(1), TCP, 5), Some(fresh));
    assert_eq!(table.occupancy(5), 1);
}

#[test]
fn an_expired_flow_inserted_again_is_a_new_flow_in_its_old_way() {
    let mut table = table(1024, 100);
    table.insert(flow_hash(1), entry(7), UDP, 0);
    assert_eq!(
        table.insert(flow_hash(1), entry(8), UDP, 100),
        InsertOutcome::Inserted
    );
    assert_eq!(table.lookup(flow_hash(1), UDP, 100), Some(entry(8)));
    assert_eq!(table.occupancy(100), 1);
}

#[test]
fn memory_stays_bounded_when_four_times_capacity_flows_arrive() {
    let mut table = table(1024, u32::MAX);
    let memory = table.memory_bytes();
    let mut evicted = 0;
    for flow in 0..4 * 1024 {
        match table.insert(flow_hash(flow), entry(1), TCP, 0) {
            InsertOutcome::Evicted => evicted += 1,
            InsertOutcome::Inserted => {}
            other => panic!("flow {flow}: unexpected {other:?}"),
        }
    }
    assert_eq!(table.memory_bytes(), memory);
    assert_eq!(table.occupancy(0), 1024);
    assert_eq!(table.evictions(), evicted);
    assert!(evicted >= 3 * 1024);
}

#[test]
fn eviction_takes_the_least_recently_seen_flow_of_the_bucket() {
    // With 8 buckets, flows whose hashes share the three low bits share a bucket.
    let mut table = table(32, u32::MAX);
    let same_bucket = |n: u64| (flow_hash(n) << 3) | 0b101;
    for n in 0..4 {
        table.insert(same_bucket(n), entry(n as u16), TCP, 10 + n as u32);
    }
    assert_eq!(table.lookup(same_bucket(0), TCP, 20), Some(entry(0)));
    assert_eq!(
        table.insert(same_bucket(9), entry(9), TCP, 21),
        InsertOutcome::Evicted
    );
    assert_eq!(table.lookup(same_bucket(1), TCP, 21), None);
    for n in [0, 2, 3, 9] {
        assert!(table.lookup(same_bucket(n), TCP, 21).is_some(), "flow {n}");
    }
}

#[test]
fn new_flows_beyond_the_rate_are_refused_and_established_flows_stay() {
    let mut table = table(1 << 16, 100);
    for flow in 0..100 {
        assert_eq!(
            table.insert(flow_hash(flow), entry(1), TCP, 0),
            InsertOutcome::Inserted
        );
    }
    let mut admitted = 0;
    for flow in 1000..11_000 {
        if table.insert(flow_hash(flow), entry(2), TCP, 1) != InsertOutcome::RateLimited {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 100);
    assert_eq!(table.rate_limited(), 9_900);
    assert_eq!(table.occupancy(1), 200);
    for flow in 0..100 {
        assert_eq!(table.lookup(flow_hash(flow), TCP, 1), Some(entry(1)));
    }
}

#[test]
fn a_syn_flood_evicts_at_most_the_rate_of_established_flows_per_second() {
    // 32 entries, all held by flows not yet established; 4 new flows
    // admitted a second.
    let mut table = table(32, 4);
    // Four flows in each of the 8 buckets (the bucket is the hash's three low bits).
    let established: Vec<u64> = (0..32).map(|n| (flow_hash(n) << 3) | (n % 8)).collect();
    for (second, flows) in established.chunks(4).enumerate() {
        for &hash in flows {
            let outcome = table.insert(hash, entry(1), TCP, second as u32);
            assert_eq!(outcome, InsertOutcome::Inserted);
        }
    }
    for flood in 0..1000 {
        table.insert(flow_hash(1_000_000 + flood), entry(2), TCP, 100);
    }
    let surviving = established
        .iter()
        .filter(|&&hash| table.lookup(hash, TCP, 100).is_some())
        .count();
    assert!(surviving >= 28, "only {surviving} of 32 survived");
    assert!(table.evictions() <= 4);
    assert_eq!(table.rate_limited(), 996);
}

#[test]
fn a_flood_of_new_flows_at_any_rate_never_evicts_an_established_flow() {
    let mut table = table(4096, u32::MAX);
    // 1,000 flows show a second packet (a lookup hit): established.
    for flow in 0..1000 {
        let outcome = table.insert(flow_hash(flow), entry(flow as u16), TCP, 0);
        assert_ne!(outcome, InsertOutcome::Full);
        assert_ne!(outcome, InsertOutcome::RateLimited);
    }
    let established: Vec<u64> = (0..1000)
        .filter(|&flow| table.lookup(flow_hash(flow), TCP, 1).is_some())
        .collect();
    assert!(established.len() > 990, "{}", established.len());
    // A flood of 64 times the capacity in single-packet flows.
    let mut full = 0;
    for flood in 0..64 * 4096 {
        match table.insert(flow_hash(1_000_000 + flood), entry(9), TCP, 2) {
            InsertOutcome::Full => full += 1,
            InsertOutcome::Inserted | InsertOutcome::Evicted => {}
            other => panic!("flood flow {flood}: {other:?}"),
        }
    }
    assert!(full > 0, "some buckets are full of established flows");
    assert_eq!(table.full(), full);
    for &flow in &established {
        assert_eq!(
            table.lookup(flow_hash(flow), TCP, 3),
            Some(entry(flow as u16)),
            "established flow {flow} lost its entry"
        );
    }
}

#[test]
fn a_replaced_entry_stays_established_and_an_expired_one_does_not() {
    let mut table = table(32, u32::MAX);
    let same_bucket = |n: u64| (flow_hash(n) << 3) | 0b011;
    for n in 0..4 {
        table.insert(same_bucket(n), entry(1), TCP, 0);
        assert!(table.lookup(same_bucket(n), TCP, 0).is_some());
    }
    // A stale generation corrected: still established, so still kept.
    assert_eq!(
        table.insert(same_bucket(0), entry(2), TCP, 1),
        InsertOutcome::Replaced
    );
    assert_eq!(
        table.insert(same_bucket(9), entry(9), TCP, 1),
        InsertOutcome::Full
    );
    // Flow 0 expires; it comes back as a new flow, which the next newcomer
    // may evict once the others are gone too.
    let later = 1 + 300 + 1;
    for n in 1..4 {
        assert!(table.lookup(same_bucket(n), TCP, 300).is_some());
    }
    assert_eq!(
        table.insert(same_bucket(0), entry(3), TCP, later),
        InsertOutcome::Inserted
    );
    assert_eq!(
        table.insert(same_bucket(9), entry(9), TCP, later),
        InsertOutcome::Evicted
    );
    assert_eq!(table.lookup(same_bucket(0), TCP, later), None);
}

#[test]
fn the_next_second_admits_new_flows_again() {
    let mut table = table(1024, 2);
    table.insert(flow_hash(1), entry(1), TCP, 7);
    table.insert(flow_hash(2), entry(1), TCP, 7);
    assert_eq!(
        table.insert(flow_hash(3), entry(1), TCP, 7),
        InsertOutcome::RateLimited
    );
    assert_eq!(table.lookup(flow_hash(3), TCP, 7), None);
    assert_eq!(
        table.insert(flow_hash(3), entry(1), TCP, 8),
        InsertOutcome::Inserted
    );
}

#[test]
fn replacing_a_live_flow_is_not_rate_limited() {
    let mut table = table(1024, 1);
    table.insert(flow_hash(1), entry(1), TCP, 7);
    assert_eq!(
        table.insert(flow_hash(2), entry(1), TCP, 7),
        InsertOutcome::RateLimited
    );
    assert_eq!(
        table.insert(flow_hash(1), entry(5), TCP, 7),
        InsertOutcome::Replaced
    );
    assert_eq!(table.lookup(flow_hash(1), TCP, 7), Some(entry(5)));
}

#[test]
fn a_zero_rate_admits_no_new_flow() {
    let mut table = table(1024, 0);
    assert_eq!(
        table.insert(flow_hash(1), entry(1), TCP, 0),
        InsertOutcome::RateLimited
    );
    assert_eq!(table.occupancy(0), 0);
}

#[test]
fn a_full_sweep_counts_the_live_entries_like_occupancy() {
    let mut table = table(1024, u32::MAX);
    for n in 0..300 {
        table.insert(
            flow_hash(n),
            entry(1),
            if n % 2 == 0 { TCP } else { UDP },
            0,
        );
    }
    // 256 buckets, 100 per step: the third step finishes the pass.
    assert_eq!(table.sweep_occupancy(100, 0), None);
    assert_eq!(table.sweep_occupancy(100, 0), None);
    assert_eq!(table.sweep_occupancy(100, 0), Some(table.occupancy(0)));
    assert!(table.occupancy(0) > 250);
    // Past the UDP timeout only the TCP half is live, and the next pass says so.
    let later = 31;
    let mut counted = None;
    for _ in 0..3 {
        counted = table.sweep_occupancy(100, later).or(counted);
    }
    assert_eq!(counted, Some(table.occupancy(later)));
    assert!(table.occupancy(later) < 160);
}

#[test]
fn a_sweep_step_of_zero_buckets_makes_no_progress() {
    let mut table = table(32, u32::MAX);
    table.insert(flow_hash(1), entry(1), TCP, 0);
    assert_eq!(table.sweep_occupancy(0, 0), None);
    assert_eq!(table.sweep_occupancy(8, 0), Some(1));
}

#[test]
fn prefetch_leaves_the_table_unchanged() {
    let mut table = table(1024, 100);
    table.insert(flow_hash(1), entry(7), TCP, 0);
    table.prefetch(flow_hash(1));
    table.prefetch(flow_hash(2));
    assert_eq!(table.lookup(flow_hash(1), TCP, 0), Some(entry(7)));
    assert_eq!(table.occupancy(0), 1);
}

/// An operation on the table and on the model.
#[derive(Debug, Clone)]
enum Op {
    Insert { flow: u64, slot: u16 },
    Lookup { flow: u64 },
    Advance { secs: u32 },
}

/// 64 flows on a 64-entry table: flow `i` lands in bucket `i % 16`, four a
/// bucket, so no insert can evict.
fn model_hash(flow: u64) -> u64 {
    (flow_hash(flow) << 8) | flow
}

/// Odd flows are UDP: a flow's class never changes, as its hash covers the protocol.
fn model_class(flow: u64) -> TimeoutClass {
    if flow % 2 == 1 {
        UDP
    } else {
        TCP
    }
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u64..64, any::<u16>()).prop_map(|(flow, slot)| Op::Insert { flow, slot }),
        (0u64..64).prop_map(|flow| Op::Lookup { flow }),
        (0u32..4).prop_map(|secs| Op::Advance { secs }),
    ]
}

proptest! {
    #[test]
    fn without_evictions_the_table_behaves_like_a_hash_map_with_timeouts(
        ops in prop::collection::vec(op_strategy(), 1..400),
    ) {
        let config = ConnTableConfig {
            capacity: 64,
            tcp_timeout_secs: 5,
            udp_timeout_secs: 2,
            max_new_per_sec: u32::MAX,
        };
        let timeout = |class| if class == TCP { 5 } else { 2 };
        let mut table = ConnTable::new(config);
        let mut model: HashMap<u64, (ConnEntry, u32)> = HashMap::new();
        let mut now = 0u32;
        for op in ops {
            match op {
                Op::Insert { flow, slot } => {
                    let class = model_class(flow);
                    let new = ConnEntry { slot, generation: slot / 2 };
                    let live = model
                        .get(&flow)
                        .is_some_and(|&(_, seen)| now - seen <= timeout(class));
                    let expected = if live { InsertOutcome::Replaced } else { InsertOutcome::Inserted };
                    model.insert(flow, (new, now));
                    prop_assert_eq!(table.insert(model_hash(flow), new, class, now), expected);
                }
                Op::Lookup { flow } => {
                    let class = model_class(flow);
                    let expected = match model.get_mut(&flow) {
                        Some((found, seen)) if now - *seen <= timeout(class) => {
                            *seen = now;
                            Some(*found)
                        }
                        _ => None,
                    };
                    prop_assert_eq!(table.lookup(model_hash(flow), class, now), expected);
                }
                Op::Advance { secs } => now += secs,
            }
            let live = model
                .iter()
                .filter(|&(&flow, &(_, seen))| now - seen <= timeout(model_class(flow)))
                .count();
            prop_assert_eq!(table.occupancy(now), live);
        }
        prop_assert_eq!(table.evictions(), 0);
    }
}

proptest! {
    /// The lookup's add-and-compare form of the idle test says what the
    /// saturating idle time says, for every clock reading, wrap edges included.
    #[test]
    fn the_idle_test_agrees_with_the_idle_time(
        timeout in prop_oneof![Just(0u32), Just(u32::MAX), any::<u32>()],
        now in prop_oneof![Just(0u32), Just(u32::MAX), any::<u32>()],
        last_seen in prop_oneof![Just(0u32), Just(u32::MAX), any::<u32>()],
    ) {
        prop_assert_eq!(
            idle_longer_than(timeout, now, last_seen),
            idle_secs(now, last_seen) > timeout
        );
    }
}
