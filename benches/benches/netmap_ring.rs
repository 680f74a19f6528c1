//! The netmap ring loop alone: `NetmapIo` over an emulated netmap port with
//! an in-memory device, running the real pipeline, in ns per packet, next
//! to the memory backend with the same pipeline and traffic, in one run
//! (issue 14). Batches of 32, as `pipeline` measures.
//!
//! What each figure holds (all per packet, criterion's `Elements(32)`):
//!
//! - `memory`: `MemoryIo::run_batch`: the simulated rings, the pipeline,
//!   the verdict moves.
//! - `netmap_emulated`: `NetmapIo::run_batch` whole: `rxsync`, the ring loop
//!   (frames over their netmap buffers, pipeline, buffer swaps, one
//!   publication of each ring's head), `txsync`. The emulated kernel's syncs
//!   copy every frame: from the device into a netmap buffer (where a NIC
//!   would DMA) and from the TX buffer into the device's queue (where a NIC
//!   would DMA out).
//! - `netmap_ring_loop`: the same batches with the time spent inside the
//!   two syncs subtracted (each sync timed by a wrapper port): what the
//!   backend itself costs, the part that is the same on a real netmap
//!   kernel.
//! - `emulated_syncs`: that sync time alone.
//! - `ioctl_pair`: two system calls that do nothing (`ioctl` on a pipe with
//!   a request it refuses), per 32 packets: the least a real kernel's
//!   `NIOCRXSYNC` + `NIOCTXSYNC` per batch cost; the driver's own work on
//!   the NIC's descriptors comes on top, the copies do not.
//!
//! So a real netmap kernel's batch costs about `netmap_ring_loop` +
//! `ioctl_pair` + the driver's per-slot work, where the emulated one costs
//! `netmap_ring_loop` + `emulated_syncs`.
//!
//! Refilling the device (the wire's arrivals) and draining what it sent are
//! outside the timed part, as `pipeline` leaves the memory ring's refill out.
//! `cargo bench -p benches --bench netmap_ring`.

use std::hint::black_box;
use std::io;
use std::time::{Duration, Instant};

use benches::netmap::{device, emulated_memory_io, EmulatedMemoryIo};
use benches::system::load_average;
use benches::traffic::{balancer_table, FlowFrames};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dataplane::forwarding::ForwardingTable;
use dataplane::io::memory::{MemoryIo, MemoryIoConfig};
use dataplane::io::PacketIo;
use dataplane::pipeline::{Pipeline, WorkerConfig, WorkerState};

const BATCH: usize = 32;
const FLOWS: u64 = 64 * 1024;

/// A backend the bench can feed a batch, run it and empty its output.
trait Backend {
    fn push(&mut self, frame: &[u8]);
    /// Runs one batch; returns the time it took and the part of it spent
    /// in the (emulated) kernel's syncs.
    fn batch(&mut self, table: &ForwardingTable, state: &mut WorkerState) -> (Duration, Duration);
    fn drain(&mut self);
}

impl Backend for MemoryIo {
    fn push(&mut self, frame: &[u8]) {
        self.push_from_wire(frame);
    }

    fn batch(&mut self, table: &ForwardingTable, state: &mut WorkerState) -> (Duration, Duration) {
        let start = Instant::now();
        let counts = self
            .run_batch(BATCH, Pipeline::handler(table, state))
            .expect("memory I/O does not fail");
        let elapsed = start.elapsed();
        black_box(counts);
        (elapsed, Duration::ZERO)
    }

    fn drain(&mut self) {
        self.clear_tx();
    }
}

impl Backend for EmulatedMemoryIo {
    fn push(&mut self, frame: &[u8]) {
        device(self).push_from_wire(frame);
    }

    fn batch(&mut self, table: &ForwardingTable, state: &mut WorkerState) -> (Duration, Duration) {
        let before = self.port().in_syncs();
        let start = Instant::now();
        let counts = self
            .run_batch(BATCH, Pipeline::handler(table, state))
            .expect("the emulated port over memory does not fail");
        let elapsed = start.elapsed();
        black_box(counts);
        (elapsed, self.port().in_syncs().saturating_sub(before))
    }

    fn drain(&mut self) {
        let device = device(self);
        device.drain_to_wire(|frame| {
            black_box(frame);
        });
        device.drain_to_host(|frame| {
            black_box(frame);
        });
    }
}

/// Which part of a batch's time a figure counts.
#[derive(Clone, Copy)]
enum Part {
    Whole,
    WithoutSyncs,
    SyncsOnly,
}

fn one_batch<B: Backend>(
    io: &mut B,
    frames: &mut FlowFrames,
    table: &ForwardingTable,
    state: &mut WorkerState,
    part: Part,
) -> Duration {
    for _ in 0..BATCH {
        io.push(frames.next_frame());
    }
    let (whole, syncs) = io.batch(table, state);
    io.drain();
    match part {
        Part::Whole => whole,
        Part::WithoutSyncs => whole.saturating_sub(syncs),
        Part::SyncsOnly => syncs,
    }
}

fn run_case<B: Backend>(
    c: &mut Criterion,
    id: &str,
    mut io: B,
    traffic: fn() -> FlowFrames,
    part: Part,
) {
    let table = balancer_table(100);
    let mut state = WorkerState::new(WorkerConfig::default());
    let mut frames = traffic();
    // Every flow is in the connection table before timing starts.
    for _ in 0..frames.len().div_ceil(BATCH) {
        one_batch(&mut io, &mut frames, &table, &mut state, Part::Whole);
    }
    let mut group = c.benchmark_group("netmap_ring");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                timed += one_batch(&mut io, &mut frames, &table, &mut state, part);
            }
            timed
        });
    });
    group.finish();
}

/// Two system calls the kernel refuses at once, per batch.
fn ioctl_pair(c: &mut Criterion) {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` has room for the two descriptors pipe writes.
    let rc = unsafe { libc::pipe(fds.as_mut_ptr()) };
    assert_eq!(rc, 0, "pipe: {}", io::Error::last_os_error());
    let mut group = c.benchmark_group("netmap_ring");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("ioctl_pair", |b| {
        b.iter(|| {
            for _ in 0..2 {
                // SAFETY: termios is plain data; all-zero is a valid value.
                let mut termios: libc::termios = unsafe { std::mem::zeroed() };
                // SAFETY: an ioctl a pipe does not know (TCGETS on our open
                // pipe) fails with ENOTTY without touching the argument,
                // which is a live, writable termios anyway.
                let rc = unsafe { libc::ioctl(fds[0], libc::TCGETS, &raw mut termios) };
                black_box(rc);
            }
        });
    });
    group.finish();
    for fd in fds {
        // SAFETY: our own descriptors, closed once.
        unsafe { libc::close(fd) };
    }
}

fn netmap_ring(c: &mut Criterion) {
    println!("netmap_ring: load average {}", load_average());
    let hot = || FlowFrames::gre_tcp(FLOWS);
    let vip = || FlowFrames::vip_tcp(FLOWS);
    let memory = || MemoryIo::new(MemoryIoConfig::default()).expect("default rings");
    for (name, traffic) in [
        ("gre_v4_tcp_hot", hot as fn() -> FlowFrames),
        ("vip_encap", vip),
    ] {
        run_case(c, &format!("memory/{name}"), memory(), traffic, Part::Whole);
        run_case(
            c,
            &format!("netmap_emulated/{name}"),
            emulated_memory_io(),
            traffic,
            Part::Whole,
        );
        run_case(
            c,
            &format!("netmap_ring_loop/{name}"),
            emulated_memory_io(),
            traffic,
            Part::WithoutSyncs,
        );
        run_case(
            c,
            &format!("emulated_syncs/{name}"),
            emulated_memory_io(),
            traffic,
            Part::SyncsOnly,
        );
    }
    ioctl_pair(c);
    println!("netmap_ring: load average {}", load_average());
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(2)).sample_size(20);
    targets = netmap_ring
}
criterion_main!(benches);
