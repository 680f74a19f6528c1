//! Internet checksums (RFC 1071 full, RFC 1624 incremental), ours next to
//! etherparse's in the same run. The pipeline verifies a 20-byte header per
//! packet and updates it incrementally when forwarding; VIP mode computes a
//! new one.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dataplane::wire::checksum;
use etherparse::checksum::Sum16BitWords;

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + 3) as u8).collect()
}

fn full(c: &mut Criterion) {
    let mut group = c.benchmark_group("checksum_full");
    for len in [20usize, 64, 1500] {
        let bytes = data(len);
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(BenchmarkId::new("rusty_rail", len), &bytes, |b, bytes| {
            b.iter(|| checksum::checksum(black_box(bytes)));
        });
        group.bench_with_input(BenchmarkId::new("etherparse", len), &bytes, |b, bytes| {
            b.iter(|| {
                Sum16BitWords::new()
                    .add_slice(black_box(bytes))
                    .ones_complement()
            });
        });
    }
    let header: [u8; 20] = data(20).try_into().expect("20 bytes");
    group.bench_function("rusty_rail/ipv4_header_fast_path", |b| {
        b.iter(|| checksum::fold(checksum::sum_ipv4_header(black_box(&header))));
    });
    group.finish();
}

fn incremental(c: &mut Criterion) {
    let mut group = c.benchmark_group("checksum_incremental");
    group.bench_function("update_u32", |b| {
        b.iter(|| {
            checksum::update_u32(
                black_box(0x1234),
                black_box([10, 0, 0, 1]),
                black_box([10, 1, 0, 3]),
            )
        });
    });
    group.bench_function("update_sum_forwarding", |b| {
        // What forwarding changes: TTL/protocol word and both addresses.
        b.iter(|| {
            checksum::update_sum(
                black_box(0x1234),
                black_box(0x4b2f + 0x0a00 + 0x0001 + 0x0a00 + 0x000a),
                black_box(0x4a2f + 0x0a00 + 0x000a + 0x0a01 + 0x0003),
            )
        });
    });
    group.bench_function("full_recompute_20", |b| {
        let header = data(20);
        b.iter(|| checksum::checksum(black_box(&header)));
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = full, incremental
}
criterion_main!(benches);
