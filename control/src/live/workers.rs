//! Starting and stopping the pinned dataplane workers on `AF_PACKET`.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_utils::CachePadded;
use dataplane::conntrack::ConnTableError;
use dataplane::counters::WorkerCounters;
use dataplane::forwarding::TableHandle;
use dataplane::io::af_packet::{AfPacketConfig, AfPacketIo};
use dataplane::pipeline::{WorkerConfig, WorkerState};
use dataplane::worker::Worker;

/// The running workers.
#[derive(Debug)]
pub struct Workers {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<io::Result<()>>>,
    /// Each worker's counters, in worker order (what metrics read).
    pub counters: Vec<Arc<CachePadded<WorkerCounters>>>,
}

/// How each worker opens the interface.
pub fn af_packet_config(interface: &str, workers: usize) -> AfPacketConfig {
    let mut config = AfPacketConfig::new(interface);
    // Room in front of each frame for VIP mode's outer IPv4 + GRE header.
    config.headroom = 128;
    config.ring_frames = 4096;
    if workers > 1 {
        // Fanout ids are per network namespace; the process id keeps two
        // balancers in one namespace apart.
        config.fanout = Some(std::process::id() as u16);
    }
    config
}

/// Every worker's tables, allocated before the balancer changes anything on
/// the host: the connection tables are its largest allocations, and a
/// machine without the memory refuses the start here, with nothing to undo.
pub fn allocate_states(
    worker_config: WorkerConfig,
    workers: usize,
) -> Result<Vec<WorkerState>, ConnTableError> {
    (0..workers)
        .map(|_| WorkerState::try_new(worker_config))
        .collect()
}

impl Workers {
    /// Opens one `AF_PACKET` socket per worker (in this thread, so in this
    /// network namespace) and starts each worker, with its state from
    /// [`allocate_states`], pinned to its core.
    pub fn start(
        config: &AfPacketConfig,
        states: Vec<WorkerState>,
        cores: &[usize],
        table: &TableHandle,
    ) -> Result<Self, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut sockets = Vec::with_capacity(cores.len());
        for _ in cores {
            sockets.push(AfPacketIo::open(config).map_err(|e| e.to_string())?);
        }
        let mut threads = Vec::with_capacity(cores.len());
        let mut counters = Vec::with_capacity(cores.len());
        for (index, ((io, state), &core)) in sockets.into_iter().zip(states).zip(cores).enumerate()
        {
            counters.push(Arc::clone(&state.counters));
            let worker = Worker::new(io, state, table.clone(), Arc::clone(&stop)).pinned_to(core);
            let thread = std::thread::Builder::new()
                .name(format!("rr-worker-{index}"))
                .spawn(move || worker.run().map(drop))
                .map_err(|e| format!("starting worker {index}: {e}"))?;
            threads.push(thread);
        }
        Ok(Self {
            stop,
            threads,
            counters,
        })
    }

    /// True while every worker runs (a worker stops early only on an I/O error).
    pub fn all_running(&self) -> bool {
        self.threads.iter().all(|t| !t.is_finished())
    }

    /// Stops every worker and waits for it; returns the errors they ended with.
    pub fn stop(self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        let mut errors = Vec::new();
        for (index, thread) in self.threads.into_iter().enumerate() {
            match thread.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => errors.push(format!("worker {index}: {e}")),
                Err(_) => errors.push(format!("worker {index} panicked")),
            }
        }
        errors
    }
}
