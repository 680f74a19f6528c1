//! What one worker owns: its connection table, fragment table, counters and clock.

use std::sync::Arc;

use crossbeam_utils::CachePadded;

use crate::conntrack::{ConnTable, ConnTableConfig, ConnTableError};
use crate::counters::WorkerCounters;
use crate::fragments::{FragmentConfig, FragmentTable};

#[cfg(target_arch = "x86_64")]
use super::fast_path::Avx512Fast;
use super::too_big::ReplyBudget;

/// Sizes and timeouts of a worker's tables.
#[derive(Debug, Clone, Copy, Default)]
pub struct WorkerConfig {
    pub conntrack: ConnTableConfig,
    pub fragments: FragmentConfig,
}

/// Per-worker mutable state. Nothing in it is shared with other workers;
/// control only reads `counters`.
#[derive(Debug)]
pub struct WorkerState {
    pub conntrack: ConnTable,
    pub fragments: FragmentTable,
    pub counters: Arc<CachePadded<WorkerCounters>>,
    /// The fast path eight frames at a time, where the CPU can.
    #[cfg(target_arch = "x86_64")]
    pub(super) avx512: Option<Avx512Fast>,
    /// How many ICMP "too big" errors the worker may still send.
    pub(super) too_big_budget: ReplyBudget,
    now_ms: u64,
    /// `now_ms` in whole seconds, worked out once per batch, not per packet.
    now_secs: u32,
}

impl WorkerState {
    /// Allocates every table once; nothing on the packet path allocates
    /// after this. Panics where [`try_new`](Self::try_new) fails: for tests
    /// and benches, whose sizes are constants.
    pub fn new(config: WorkerConfig) -> Self {
        Self::try_new(config).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`new`](Self::new), with an error where the connection table's
    /// capacity is out of range or its memory is refused.
    pub fn try_new(config: WorkerConfig) -> Result<Self, ConnTableError> {
        Ok(Self {
            conntrack: ConnTable::try_new(config.conntrack)?,
            fragments: FragmentTable::new(config.fragments),
            counters: WorkerCounters::new_shared(),
            #[cfg(target_arch = "x86_64")]
            avx512: Avx512Fast::detect(),
            too_big_budget: ReplyBudget::default(),
            now_ms: 0,
            now_secs: 0,
        })
    }

    /// Sets the worker's clock, in milliseconds since an arbitrary start
    /// (monotonic time live, capture timestamps in replay). Called once per batch.
    #[inline]
    pub fn set_now_ms(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
        self.now_secs = (now_ms / 1000) as u32;
    }

    /// The clock in milliseconds.
    #[inline]
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// The clock in whole seconds, the connection table's resolution.
    #[inline]
    pub fn now_secs(&self) -> u32 {
        self.now_secs
    }
}
