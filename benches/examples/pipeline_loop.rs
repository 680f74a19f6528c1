//! Batches of 32 GRE frames over N distinct flows through the memory backend
//! and the pipeline (prefetch pass, then decide), for
//! counting instructions per packet, which unlike time does not depend on
//! what else the machine is doing:
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
        for _ in 0..batches {
            for _ in 0..BATCH {
                io.push_from_wire(frames.next_frame());
            }
            run_batch(&mut io, &table, &mut state);
            io.clear_tx();
        }
        let ns = start.elapsed().as_nanos() as f64 / (batches * BATCH) as f64;
        println!("round {round}: {ns:.1} ns/packet (including the copy into the ring)");
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
