//! Starting and stopping the pinned dataplane workers on the opened
//! packet I/O ([`super::packet_io`]).

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_utils::CachePadded;
use dataplane::conntrack::ConnTableError;
use dataplane::counters::WorkerCounters;
use dataplane::forwarding::TableHandle;
use dataplane::io::PacketIo;
use dataplane::pipeline::{WorkerConfig, WorkerState};
use dataplane::worker::Worker;

use super::packet_io::{HeldWhileRunning, OpenedIo};

/// The running workers.
#[derive(Debug)]
pub struct Workers {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<io::Result<()>>>,
    /// Each worker's counters, in worker order (what metrics read).
    pub counters: Vec<Arc<CachePadded<WorkerCounters>>>,
    /// What the sockets need while they run (the XDP program), dropped
    /// when the workers have stopped.
    held: Option<HeldWhileRunning>,
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
    /// Starts one worker per opened socket, with its state from
    /// [`allocate_states`], pinned to its core.
    pub fn start(
        opened: OpenedIo,
        states: Vec<WorkerState>,
        cores: &[usize],
        table: &TableHandle,
        idle_spin: Duration,
    ) -> Result<Self, String> {
        let mut workers = Self {
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::with_capacity(cores.len()),
            counters: Vec::with_capacity(cores.len()),
            held: None,
        };
        // The backends only Linux has are Linux's variants of `OpenedIo`.
        match opened {
            #[cfg(target_os = "linux")]
            OpenedIo::AfPacket(sockets) => {
                workers.spawn_all(sockets, states, cores, table, idle_spin)?;
            }
            #[cfg(target_os = "linux")]
            OpenedIo::AfXdp {
                attachment,
                sockets,
            } => {
                workers.held = Some(attachment);
                workers.spawn_all(sockets, states, cores, table, idle_spin)?;
            }
            OpenedIo::Netmap(ports) => workers.spawn_all(ports, states, cores, table, idle_spin)?,
            #[cfg(target_os = "linux")]
            OpenedIo::NetmapEmulated(ports) => {
                workers.spawn_all(ports, states, cores, table, idle_spin)?;
            }
        }
        Ok(workers)
    }

    fn spawn_all<Io: PacketIo + Send + 'static>(
        &mut self,
        sockets: Vec<Io>,
        states: Vec<WorkerState>,
        cores: &[usize],
        table: &TableHandle,
        idle_spin: Duration,
    ) -> Result<(), String> {
        for (index, ((io, state), &core)) in sockets.into_iter().zip(states).zip(cores).enumerate()
        {
            self.counters.push(Arc::clone(&state.counters));
            let worker = Worker::new(io, state, table.clone(), Arc::clone(&self.stop))
                .pinned_to(core)
                .with_idle_spin(idle_spin);
            let thread = std::thread::Builder::new()
                .name(format!("rr-worker-{index}"))
                .spawn(move || worker.run().map(drop))
                .map_err(|e| format!("starting worker {index}: {e}"))?;
            self.threads.push(thread);
        }
        Ok(())
    }

    /// True while every worker runs (a worker stops early only on an I/O error).
    pub fn all_running(&self) -> bool {
        self.threads.iter().all(|t| !t.is_finished())
    }

    /// Stops every worker and waits for it; returns the errors they ended with.
    pub fn stop(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        let mut errors = Vec::new();
        for (index, thread) in std::mem::take(&mut self.threads).into_iter().enumerate() {
            match thread.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => errors.push(format!("worker {index}: {e}")),
                Err(_) => errors.push(format!("worker {index} panicked")),
            }
        }
        // Only now that no worker uses its socket: the program goes
        // (replacing it drops it).
        self.held = None;
        errors
    }
}
