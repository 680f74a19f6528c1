//! Maglev table build time, ours against the `maglev-hash` crate, at the
//! paper's table sizes with 1000 backends; then the table's quality figures
//! (balance and disruption) that the issue asks for.

// Entry counts are far below 2^52: converting them to f64 is exact.
#![allow(clippy::cast_precision_loss)]

use std::hint::black_box;

use criterion::{BatchSize, BenchmarkId, Criterion};
use dataplane::maglev::{MaglevBackend, MaglevTable, DEFAULT_TABLE_SIZE};

const BACKENDS: u16 = 1000;
const SIZES: [u32; 2] = [DEFAULT_TABLE_SIZE, 655_373];
const SEED: u64 = 0x5eed;

/// `count` backends with equal weights on 10.0.0.0/16, IPv4-mapped keys.
fn backends(count: u16) -> Vec<MaglevBackend> {
    (0..count)
        .map(|slot| MaglevBackend {
            slot,
            key: 0xffff_0a00_0000 + u128::from(slot),
            weight: 1,
        })
        .collect()
}

fn bench_builds(criterion: &mut Criterion) {
    let backends = backends(BACKENDS);
    let keys: Vec<u128> = backends.iter().map(|backend| backend.key).collect();
    let mut group = criterion.benchmark_group("maglev_build");
    group.sample_size(10);
    for size in SIZES {
        let id = format!("{size}x{BACKENDS}");
        group.bench_function(BenchmarkId::new("rusty_rail", &id), |bencher| {
            bencher.iter(|| MaglevTable::build(black_box(&backends), size, SEED).unwrap());
        });
        // `with_capacity` takes the smallest prime ≥ the capacity: exactly `size`.
        group.bench_function(BenchmarkId::new("maglev_hash", &id), |bencher| {
            bencher.iter_batched(
                || keys.clone(),
                |keys| maglev_hash::MaglevTable::with_capacity(keys, size as usize),
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

/// Share of the table's entries whose backend differs between two tables.
fn moved_share(before: &MaglevTable, after: &MaglevTable) -> f64 {
    let moved = before
        .entries()
        .iter()
        .zip(after.entries())
        .filter(|(old, new)| old != new)
        .count();
    moved as f64 / f64::from(before.size())
}

fn print_quality_figures() {
    let all = backends(BACKENDS);
    let table = MaglevTable::build(&all, DEFAULT_TABLE_SIZE, SEED).unwrap();
    let mut counts = vec![0usize; usize::from(BACKENDS)];
    for &slot in table.entries() {
        counts[usize::from(slot)] += 1;
    }
    let max = counts.iter().copied().max().unwrap_or(0) as f64;
    let mean = f64::from(DEFAULT_TABLE_SIZE) / f64::from(BACKENDS);
    println!("== maglev quality (rusty_rail, M = {DEFAULT_TABLE_SIZE}, N = {BACKENDS}, equal weights) ==");
    println!("imbalance max/avg entries per backend: {:.4}", max / mean);
    for removed in [1usize, 10, 100] {
        // Remove evenly spread backends, so the figure does not hinge on one neighbourhood.
        let stride = usize::from(BACKENDS) / removed;
        let remaining: Vec<MaglevBackend> = all
            .iter()
            .enumerate()
            .filter(|(index, _)| index % stride != 0 || index / stride >= removed)
            .map(|(_, backend)| *backend)
            .collect();
        assert_eq!(remaining.len(), usize::from(BACKENDS) - removed);
        let after = MaglevTable::build(&remaining, DEFAULT_TABLE_SIZE, SEED).unwrap();
        println!(
            "entries moved when {removed} of {BACKENDS} backends are removed: {:.2}% (ideal {:.2}%)",
            100.0 * moved_share(&table, &after),
            100.0 * removed as f64 / f64::from(BACKENDS)
        );
    }
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    bench_builds(&mut criterion);
    criterion.final_summary();
    print_quality_figures();
}
