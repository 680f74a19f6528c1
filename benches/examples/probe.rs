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
    for round in 0..6 {
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
