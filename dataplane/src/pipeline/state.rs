//! What one worker owns: its connection table, fragment table, counters and clock.

use std::sync::Arc;

use crossbeam_utils::CachePadded;

use crate::conntrack::{ConnTable, ConnTableConfig};
use crate::counters::WorkerCounters;
use crate::fragments::{FragmentConfig, FragmentTable};

use super::fast_path::FastFlow;

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
    pub(super) memo: FastMemo,
    now_ms: u64,
}

/// Frames a batch can carry the fast-path classification for from its
/// prefetch pass to its decide pass; larger batches classify the rest twice.
const MEMO_SLOTS: usize = 64;

/// What the prefetch pass learned about a fast-path frame: its flow and the
/// flow's hash, keyed by where the frame's bytes are, so the decide pass
/// neither re-parses nor re-hashes it. Both passes see the same frames in the
/// same order; an entry is used only if the next frame is the very same
/// buffer and length, else the frame is classified again.
#[derive(Debug)]
pub(super) struct FastMemo {
    entries: [MemoEntry; MEMO_SLOTS],
    filled: usize,
    next: usize,
}

#[derive(Debug, Clone, Copy)]
struct MemoEntry {
    at: usize,
    len: usize,
    flow: FastFlow,
    hash: u64,
}

impl FastMemo {
    fn new() -> Self {
        let empty = MemoEntry {
            at: 0,
            len: 0,
            flow: FastFlow {
                words: [0; 2],
                protocol: 0,
            },
            hash: 0,
        };
        Self {
            entries: [empty; MEMO_SLOTS],
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
    pub(super) fn put(&mut self, frame: &[u8], flow: FastFlow, hash: u64) {
        if let Some(slot) = self.entries.get_mut(self.filled) {
            *slot = MemoEntry {
                at: frame.as_ptr() as usize,
                len: frame.len(),
                flow,
                hash,
            };
            self.filled += 1;
        }
    }

    /// The flow and hash put for this very frame, if it is the next entry.
    #[inline]
    pub(super) fn take(&mut self, frame: &[u8]) -> Option<(FastFlow, u64)> {
        let e = *self.entries[..self.filled].get(self.next)?;
        if e.at == frame.as_ptr() as usize && e.len == frame.len() {
            self.next += 1;
            Some((e.flow, e.hash))
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
            memo: FastMemo::new(),
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
