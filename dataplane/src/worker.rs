//! The worker loop: one per queue, pinned to a core, sharing nothing mutable.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::forwarding::TableHandle;
use crate::io::PacketIo;
use crate::pipeline::{Pipeline, WorkerState};

/// Frames taken per batch: netmap's and DPDK's customary burst.
pub const DEFAULT_BATCH: usize = 32;

/// How long an idle worker sleeps in the backend's poll before looking at
/// the stop flag and the held fragments again.
const IDLE_WAIT: Duration = Duration::from_millis(1);

/// How long a worker keeps polling its rings after the last frame before it
/// sleeps. A sleeping worker must be woken for the next frame, and with
/// packet sockets that wake-up (a cross-CPU interrupt per frame when the
/// worker sleeps between frames) costs the receiving CPU more than the
/// frame itself; spinning briefly keeps a busy link from paying it.
pub const DEFAULT_IDLE_SPIN: Duration = Duration::from_micros(200);

/// Connection-table buckets (64-byte lines) counted per batch for the
/// occupancy gauge, at most: 2 KiB of reads, small next to a full batch of
/// frames; a million-entry table is swept every 8192 full batches.
const SWEEP_BUCKETS_PER_BATCH: usize = 32;

/// Buckets to count after a batch that moved `frames`: one per frame, so
/// that a worker taking frames a few at a time (a copy-mode socket) does
/// not pay a full sweep step for each; the full step when idle, where the
/// time is spare, so the gauge stays current without traffic.
fn sweep_step(frames: usize) -> usize {
    if frames == 0 {
        SWEEP_BUCKETS_PER_BATCH
    } else {
        frames.min(SWEEP_BUCKETS_PER_BATCH)
    }
}

/// One pinned packet loop.
#[derive(Debug)]
pub struct Worker<Io: PacketIo> {
    pub io: Io,
    pub state: WorkerState,
    table: TableHandle,
    stop: Arc<AtomicBool>,
    core: Option<usize>,
    batch: usize,
    idle_spin: Duration,
}

impl<Io: PacketIo> Worker<Io> {
    /// A worker over `io`, reading tables from `table` until `stop` is set.
    pub fn new(io: Io, state: WorkerState, table: TableHandle, stop: Arc<AtomicBool>) -> Self {
        Self {
            io,
            state,
            table,
            stop,
            core: None,
            batch: DEFAULT_BATCH,
            idle_spin: DEFAULT_IDLE_SPIN,
        }
    }

    /// Pins the loop to this core when it runs.
    #[must_use]
    pub fn pinned_to(mut self, core: usize) -> Self {
        self.core = Some(core);
        self
    }

    /// Frames per batch.
    #[must_use]
    pub fn with_batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// How long to keep polling after the last frame before sleeping (zero
    /// sleeps at once).
    #[must_use]
    pub fn with_idle_spin(mut self, spin: Duration) -> Self {
        self.idle_spin = spin;
        self
    }

    /// Runs until the stop flag is set; returns the worker so its state can
    /// be inspected. Fails only when the backend's I/O fails.
    pub fn run(mut self) -> io::Result<Self> {
        if let Some(id) = self.core {
            if !core_affinity::set_for_current(core_affinity::CoreId { id }) {
                return Err(io::Error::other(format!(
                    "cannot pin the worker to core {id}: is it online and allowed by the CPU mask?"
                )));
            }
        }
        let start = Instant::now();
        let mut idle_since = None;
        while !self.stop.load(Ordering::Relaxed) {
            let now = start.elapsed();
            let moved = self.run_once(now.as_millis() as u64)?;
            if moved > 0 {
                idle_since = None;
                continue;
            }
            let since = *idle_since.get_or_insert(now);
            if now.saturating_sub(since) >= self.idle_spin {
                self.io.wait(IDLE_WAIT)?;
                idle_since = None;
            } else {
                std::hint::spin_loop();
            }
        }
        Ok(self)
    }

    /// One batch at time `now_ms`: the table is read once, frames run
    /// through the pipeline, held fragments are settled. Returns how many
    /// frames moved.
    pub fn run_once(&mut self, now_ms: u64) -> io::Result<usize> {
        let table = self.table.load();
        self.state.set_now_ms(now_ms);
        let state = &mut self.state;
        let counts = self
            .io
            .run_batch(self.batch, Pipeline::handler(&table, state))?;
        let io = &mut self.io;
        Pipeline::release_held(&table, &mut self.state, |bytes| {
            io.transmit_copy(bytes).unwrap_or(false)
        });
        let counters = &self.state.counters;
        counters.batches.add(1);
        counters.host_to_wire.add(counts.host_to_wire as u64);
        counters.table_generation.set(table.generation);
        let now_secs = self.state.now_secs();
        let moved = counts.from_wire + counts.host_to_wire;
        if let Some(live) = self
            .state
            .conntrack
            .sweep_occupancy(sweep_step(moved), now_secs)
        {
            self.state.counters.conntrack_entries.set(live as u64);
        }
        Ok(moved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gauge_s_sweep_costs_a_bucket_per_frame_and_a_full_step_when_idle() {
        assert_eq!(sweep_step(0), SWEEP_BUCKETS_PER_BATCH);
        assert_eq!(sweep_step(1), 1);
        assert_eq!(sweep_step(5), 5);
        assert_eq!(sweep_step(64), SWEEP_BUCKETS_PER_BATCH);
    }
}
