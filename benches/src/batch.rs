//! One timed batch of the pipeline through the memory backend, as the
//! pipeline benches measure it.

use std::hint::black_box;
use std::time::{Duration, Instant};

use dataplane::forwarding::ForwardingTable;
use dataplane::io::memory::MemoryIo;
use dataplane::io::PacketIo;
use dataplane::pipeline::{Pipeline, WorkerState};

use crate::traffic::FlowFrames;

/// Frames per batch, as a NIC ring delivers them.
pub const BATCH: usize = 32;

/// Refills the RX ring with the next `BATCH` frames (untimed: it stands in
/// for the NIC's DMA) and returns how long the pipeline took over them.
pub fn one_batch(
    io: &mut MemoryIo,
    frames: &mut FlowFrames,
    table: &ForwardingTable,
    state: &mut WorkerState,
) -> Duration {
    for _ in 0..BATCH {
        io.push_from_wire(frames.next_frame());
    }
    let start = Instant::now();
    let counts = io
        .run_batch(BATCH, Pipeline::handler(table, state))
        .expect("memory I/O does not fail");
    let elapsed = start.elapsed();
    black_box(counts);
    io.clear_tx();
    elapsed
}
