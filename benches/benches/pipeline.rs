//! The per-packet pipeline through the memory backend, in batches of 32
//! frames as a NIC ring would deliver them. Goal (issue "dataplane core"):
//! at most 25 ns per packet hot (64 Ki flows, connection-table hits) and at
//! most 60 ns with 1 Mi flows, on one core of the 2-core CI machine.
//!
//! Only `run_batch` is timed: refilling the RX ring stands in for the NIC's
//! DMA, which costs the CPU nothing on real hardware.

use std::time::Duration;

use benches::batch::{one_batch, BATCH};
use benches::traffic::{balancer_table, FlowFrames};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dataplane::io::memory::{MemoryIo, MemoryIoConfig};
use dataplane::pipeline::{WorkerConfig, WorkerState};

fn run_case(c: &mut Criterion, id: &str, mut frames: FlowFrames, warm: bool) {
    let table = balancer_table(100);
    let mut state = WorkerState::new(WorkerConfig::default());
    let mut io = MemoryIo::new(MemoryIoConfig::default()).expect("default rings");
    if warm {
        // Every flow is in the connection table before timing starts.
        for _ in 0..frames.len().div_ceil(BATCH) {
            one_batch(&mut io, &mut frames, &table, &mut state);
        }
    }
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                timed += one_batch(&mut io, &mut frames, &table, &mut state);
            }
            timed
        });
    });
    group.finish();
}

fn pipeline(c: &mut Criterion) {
    run_case(c, "gre_v4_tcp_hot", FlowFrames::gre_tcp(64 * 1024), true);
    run_case(
        c,
        "gre_v4_tcp_1m_flows",
        FlowFrames::gre_tcp(1024 * 1024),
        true,
    );
    run_case(
        c,
        "gre_v4_tcp_new_flows",
        FlowFrames::gre_tcp_never_repeating(),
        false,
    );
    run_case(c, "vip_encap", FlowFrames::vip_tcp(64 * 1024), true);
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3)).sample_size(30);
    targets = pipeline
}
criterion_main!(benches);
