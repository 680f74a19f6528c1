//! Connection table speed: lookup hit, lookup miss (with and without
//! prefetching a few flows ahead) and insert of new flows, in a table of
//! 1 Mi entries holding 64 Ki or 1 Mi live flows.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use dataplane::conntrack::{ConnEntry, ConnTable, ConnTableConfig, TimeoutClass};

const CAPACITY: usize = 1 << 20;
/// Flows per timed iteration: a few worker batches' worth.
const BATCH: usize = 1024;
/// How many flows ahead the prefetching loop asks for.
const PREFETCH_DISTANCE: usize = 8;
const LIVE_COUNTS: [(usize, &str); 2] = [(1 << 16, "64Ki_live"), (1 << 20, "1Mi_live")];
const ENTRY: ConnEntry = ConnEntry {
    slot: 3,
    generation: 1,
};
/// First flow number of the flows never inserted before the timed part.
const FRESH_FLOWS: u64 = 1 << 40;

/// A well-mixed 64-bit flow hash for flow number `n` (splitmix64), standing in
/// for the keyed `SipHash` of a 5-tuple.
fn flow_hash(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn new_table() -> ConnTable {
    ConnTable::new(ConnTableConfig {
        capacity: CAPACITY,
        tcp_timeout_secs: 1,
        max_new_per_sec: u32::MAX,
        ..ConnTableConfig::default()
    })
}

/// Inserts flows `0..live` at `now_secs`.
fn insert_live(table: &mut ConnTable, live: usize, now_secs: u32) {
    for n in 0..live as u64 {
        table.insert(flow_hash(n), ENTRY, TimeoutClass::Tcp, now_secs);
    }
}

/// Runs `per_flow` on `hashes[cursor..cursor + BATCH]`, wrapping around.
fn batch(hashes: &[u64], cursor: &mut usize, mut per_flow: impl FnMut(u64)) {
    for _ in 0..BATCH {
        per_flow(hashes[*cursor]);
        *cursor += 1;
        if *cursor == hashes.len() {
            *cursor = 0;
        }
    }
}

fn bench_lookups(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("conntrack");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(20);
    for (live, label) in LIVE_COUNTS {
        let mut table = new_table();
        insert_live(&mut table, live, 0);
        // A full table evicts some flows while filling (buckets overflow):
        // hits are measured on the ones still there.
        let hits: Vec<u64> = (0..live as u64)
            .map(flow_hash)
            .filter(|&hash| table.lookup(hash, TimeoutClass::Tcp, 0).is_some())
            .collect();
        let misses: Vec<u64> = (FRESH_FLOWS..FRESH_FLOWS + live as u64)
            .map(flow_hash)
            .collect();
        let mut cursor = 0;
        group.bench_function(BenchmarkId::new("lookup_hit", label), |bencher| {
            bencher.iter(|| {
                batch(&hits, &mut cursor, |hash| {
                    black_box(table.lookup(hash, TimeoutClass::Tcp, 0));
                });
            });
        });
        group.bench_function(BenchmarkId::new("lookup_hit_prefetch", label), |bencher| {
            bencher.iter(|| {
                let ahead = (cursor + PREFETCH_DISTANCE) % hits.len();
                let mut ahead_cursor = ahead;
                batch(&hits, &mut cursor, |hash| {
                    table.prefetch(hits[ahead_cursor]);
                    ahead_cursor = (ahead_cursor + 1) % hits.len();
                    black_box(table.lookup(hash, TimeoutClass::Tcp, 0));
                });
            });
        });
        let mut cursor = 0;
        group.bench_function(BenchmarkId::new("lookup_miss", label), |bencher| {
            bencher.iter(|| {
                batch(&misses, &mut cursor, |hash| {
                    black_box(table.lookup(hash, TimeoutClass::Tcp, 0));
                });
            });
        });
        group.bench_function(BenchmarkId::new("insert", label), |bencher| {
            bencher.iter_custom(|iterations| timed_inserts(&mut table, live, iterations));
        });
    }
    group.finish();
}

/// Times `iterations` batches of inserts of never-seen flows into a table
/// that holds `live` established flows. Every `live` inserts, untimed, the
/// clock jumps past the timeout and the established flows are inserted
/// again, so the live count stays between `live` and `2 * live` (capped by
/// capacity, where every insert evicts).
fn timed_inserts(table: &mut ConnTable, live: usize, iterations: u64) -> Duration {
    let mut elapsed = Duration::ZERO;
    let mut now_secs = 0;
    let mut since_reset = 0;
    let mut next_flow = FRESH_FLOWS;
    for _ in 0..iterations {
        if since_reset >= live {
            now_secs += 2;
            insert_live(table, live, now_secs);
            since_reset = 0;
        }
        let start = Instant::now();
        for _ in 0..BATCH {
            black_box(table.insert(flow_hash(next_flow), ENTRY, TimeoutClass::Tcp, now_secs));
            next_flow += 1;
        }
        elapsed += start.elapsed();
        since_reset += BATCH;
    }
    elapsed
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    bench_lookups(&mut criterion);
    criterion.final_summary();
}
