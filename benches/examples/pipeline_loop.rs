//! Batches of 32 GRE frames over N distinct flows through the memory backend
//! and the pipeline (the whole batch handed over at once), for counting
//! instructions per packet, which unlike time does not depend on what else
//! the machine is doing:
//!
//! ```text
//! cargo build --release -p benches --example pipeline_loop
//! valgrind --tool=callgrind target/release/examples/pipeline_loop 1024 2    # a
//! valgrind --tool=callgrind target/release/examples/pipeline_loop 1024 12   # b
//! # instructions per packet = (b - a) / (10 * 1024)
//! ```
//!
//! Arguments: flows (default 65536) and rounds over them (default 6).
//!
//! `--toggle-collect='*pipeline_loop::run_batch*'` counts only the batches
//! themselves (ring, pipeline, counters), without the frame generation.
//! Valgrind has no AVX-512, so it counts the scalar fast path and the AVX2
//! flow hash, not the eight-frame AVX-512 path the machine runs.
//!
//! Run without valgrind, it also times every batch on its own and prints the
//! 10th and 50th percentile per packet: `pipeline_loop 65536 20` for the
//! bench's `hot` case, `pipeline_loop 256 2000` for flows that all stay in
//! cache (the code's cost without the connection-table fetches).

use std::time::Instant;

use benches::traffic::{balancer_table, FlowFrames};
use dataplane::io::memory::{MemoryIo, MemoryIoConfig};
use dataplane::io::PacketIo;
use dataplane::pipeline::{Pipeline, WorkerConfig, WorkerState};

const BATCH: usize = 32;

fn main() {
    let flows: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(65536);
    let rounds: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(6);
    let table = balancer_table(100);
    let mut state = WorkerState::new(WorkerConfig::default());
    let mut frames = FlowFrames::gre_tcp(flows);
    let Ok(mut io) = MemoryIo::new(MemoryIoConfig::default()) else {
        eprintln!("cannot set up the memory rings");
        return;
    };
    let batches = (flows as usize).div_ceil(BATCH);
    for round in 0..rounds {
        let start = Instant::now();
        // Each batch timed on its own as well: the fastest of them show the
        // code's cost apart from what else the machine was doing meanwhile.
        let mut per_batch = Vec::with_capacity(batches);
        for _ in 0..batches {
            for _ in 0..BATCH {
                io.push_from_wire(frames.next_frame());
            }
            let batch_start = Instant::now();
            run_batch(&mut io, &table, &mut state);
            per_batch.push(batch_start.elapsed());
            io.clear_tx();
        }
        let ns = start.elapsed().as_nanos() as f64 / (batches * BATCH) as f64;
        // The mean is what criterion reports; the percentiles show how much
        // of it is the slow tail.
        let mean = per_batch.iter().sum::<std::time::Duration>().as_nanos() as f64
            / (batches * BATCH) as f64;
        per_batch.sort_unstable();
        let percentile = |p: usize| {
            let at = (per_batch.len() - 1) * p / 100;
            per_batch[at].as_nanos() as f64 / BATCH as f64
        };
        println!(
            "round {round}: {ns:.1} ns/packet including the copy into the ring; \
             batches alone: mean {mean:.1}, p10 {:.1}, p50 {:.1}, p90 {:.1}, p99 {:.1} ns/packet",
            percentile(10),
            percentile(50),
            percentile(90),
            percentile(99)
        );
    }
}

/// One batch through the memory rings and the pipeline; never inlined, so
/// that callgrind can count it apart from the frame generation around it.
#[inline(never)]
fn run_batch(
    io: &mut MemoryIo,
    table: &dataplane::forwarding::ForwardingTable,
    state: &mut WorkerState,
) {
    let _ = io.run_batch(BATCH, Pipeline::handler(table, state));
}
