//! Batches of 32 GRE frames over N flows through the netmap backend on an
//! emulated port with an in-memory device, or through the memory backend,
//! with the real pipeline: for counting instructions per packet, which
//! unlike time does not depend on what else the machine is doing.
//!
//! ```text
//! cargo build --release -p benches --example netmap_loop
//! valgrind --tool=callgrind --callgrind-out-file=a.out \
//!     --toggle-collect='*netmap_loop::run_batch*' \
//!     target/release/examples/netmap_loop netmap 65536 1
//! valgrind ... --callgrind-out-file=b.out ... netmap 65536 5
//! callgrind_annotate --inclusive=yes b.out | grep -E 'PROGRAM TOTALS|TimedPort'
//! # instructions per packet = (b - a) / (4 * 65536): the first round's
//! # misses (Maglev, inserts) cancel out; the same with `memory`.
//! # The emulated kernel's share: TimedPort::rxsync + TimedPort::txsync
//! # (inclusive), from the same two files.
//! ```
//!
//! Arguments: `netmap` or `memory`, flows (default 65536), rounds over them
//! (default 4). `--toggle-collect` counts the batches alone, without the
//! frame generation and the device's refill and drain. Valgrind has no
//! AVX-512, so it counts the scalar fast path.

use benches::netmap::{device, emulated_memory_io, EmulatedMemoryIo};
use benches::traffic::{balancer_table, FlowFrames};
use dataplane::forwarding::ForwardingTable;
use dataplane::io::memory::{MemoryIo, MemoryIoConfig};
use dataplane::io::PacketIo;
use dataplane::pipeline::{Pipeline, WorkerConfig, WorkerState};

const BATCH: usize = 32;

fn main() {
    let mut args = std::env::args().skip(1);
    let backend = args.next().unwrap_or_else(|| "netmap".into());
    let flows: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(65536);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(4);
    let table = balancer_table(100);
    let mut state = WorkerState::new(WorkerConfig::default());
    let mut frames = FlowFrames::gre_tcp(flows);
    let batches = rounds * (flows as usize).div_ceil(BATCH);
    match backend.as_str() {
        "netmap" => {
            let mut io = emulated_memory_io();
            for _ in 0..batches {
                for _ in 0..BATCH {
                    device(&mut io).push_from_wire(frames.next_frame());
                }
                run_batch_netmap(&mut io, &table, &mut state);
                device(&mut io).drain_to_wire(|frame| {
                    std::hint::black_box(frame);
                });
            }
            println!(
                "netmap: {batches} batches of {BATCH}, {:?} in the emulated syncs",
                io.port().in_syncs()
            );
        }
        "memory" => {
            let Ok(mut io) = MemoryIo::new(MemoryIoConfig::default()) else {
                eprintln!("cannot set up the memory rings");
                return;
            };
            for _ in 0..batches {
                for _ in 0..BATCH {
                    io.push_from_wire(frames.next_frame());
                }
                run_batch_memory(&mut io, &table, &mut state);
                io.clear_tx();
            }
            println!("memory: {batches} batches of {BATCH}");
        }
        other => eprintln!("unknown backend {other:?}: expected netmap or memory"),
    }
}

/// One batch through the netmap backend; never inlined, so that callgrind
/// can count it apart from the frame generation around it.
#[inline(never)]
fn run_batch_netmap(io: &mut EmulatedMemoryIo, table: &ForwardingTable, state: &mut WorkerState) {
    let _ = io.run_batch(BATCH, Pipeline::handler(table, state));
}

/// One batch through the memory backend; never inlined (see above).
#[inline(never)]
fn run_batch_memory(io: &mut MemoryIo, table: &ForwardingTable, state: &mut WorkerState) {
    let _ = io.run_batch(BATCH, Pipeline::handler(table, state));
}
