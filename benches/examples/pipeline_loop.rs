//! A plain loop of `Pipeline::process` over N distinct GRE flows, for
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

use benches::traffic::{balancer_table, FlowFrames};
use dataplane::pipeline::{Pipeline, WorkerConfig, WorkerState};
use dataplane::Frame;
use std::time::Instant;
fn main() {
    let flows: u64 = std::env::args()
        .nth(1)
        .map_or(65536, |a| a.parse().unwrap());
    let table = balancer_table(100);
    let mut state = WorkerState::new(WorkerConfig::default());
    let mut gen = FlowFrames::gre_tcp(flows);
    let frames: Vec<Vec<u8>> = (0..flows)
        .map(|_| {
            let mut v = vec![0u8; 128];
            v.extend_from_slice(gen.next_frame());
            v
        })
        .collect();
    let mut bufs = frames.clone();
    let rounds: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(6);
    for round in 0..rounds {
        let start = Instant::now();
        let mut n = 0u64;
        for (b, f) in bufs.iter_mut().zip(&frames) {
            b[128..].copy_from_slice(&f[128..]);
            let len = f.len() - 128;
            let mut fr = Frame::new(b, 128, len);
            std::hint::black_box(Pipeline::process(&mut fr, &table, &mut state));
            n += 1;
        }
        let ns = start.elapsed().as_nanos() as f64 / n as f64;
        println!("round {round}: {ns:.1} ns/packet (incl. copy)");
    }
}
