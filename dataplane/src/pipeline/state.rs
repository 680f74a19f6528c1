//! What one worker owns: its connection table, fragment table, counters and clock.

use std::sync::Arc;

use crossbeam_utils::CachePadded;

use crate::conntrack::{ConnTable, ConnTableConfig};
use crate::counters::WorkerCounters;
use crate::fragments::{FragmentConfig, FragmentTable};

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
    pub(super) memo: HashMemo,
    now_ms: u64,
}

/// Frames a batch can carry hashes for from its prefetch pass to its
/// decide pass; larger batches compute the rest twice.
const MEMO_SLOTS: usize = 64;

/// Flow hashes computed while prefetching a batch, handed to the decide
/// pass so each frame is hashed once. Both passes see the same frames in
/// the same order, so entries are taken in the order they were put.
#[derive(Debug)]
pub(super) struct HashMemo {
    entries: [([u64; 2], u64); MEMO_SLOTS],
    filled: usize,
    next: usize,
}

impl HashMemo {
    fn new() -> Self {
        Self {
            entries: [([0; 2], 0); MEMO_SLOTS],
            filled: 0,
            next: 0,
        }
    }

    #[inline]
    pub(super) fn begin_batch(&mut self) {
        self.filled = 0;
        self.next = 0;
    }

    #[inline]
    pub(super) fn put(&mut self, words: [u64; 2], hash: u64) {
        if let Some(slot) = self.entries.get_mut(self.filled) {
            *slot = (words, hash);
            self.filled += 1;
        }
    }

    /// The hash put for `words`, if it is the next one; else `None` (the
    /// caller hashes).
    #[inline]
    pub(super) fn take(&mut self, words: [u64; 2]) -> Option<u64> {
        let (w, hash) = *self.entries[..self.filled].get(self.next)?;
        if w == words {
            self.next += 1;
            Some(hash)
        } else {
            None
        }
    }
}

impl WorkerState {
    /// Allocates every table once; nothing on the packet path allocates after this.
    pub fn new(config: WorkerConfig) -> Self {
        Self {
            conntrack: ConnTable::new(config.conntrack),
            fragments: FragmentTable::new(config.fragments),
            counters: WorkerCounters::new_shared(),
            memo: HashMemo::new(),
            now_ms: 0,
        }
    }

    /// Sets the worker's clock, in milliseconds since an arbitrary start
    /// (monotonic time live, capture timestamps in replay). Called once per batch.
    #[inline]
    pub fn set_now_ms(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
    }

    /// The clock in milliseconds.
    #[inline]
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// The clock in whole seconds, the connection table's resolution.
    #[inline]
    pub fn now_secs(&self) -> u32 {
        (self.now_ms / 1000) as u32
    }
}
