//! What one worker owns: its connection table, fragment table, counters and clock.

use std::sync::Arc;

use crossbeam_utils::CachePadded;

use crate::conntrack::{ConnTable, ConnTableConfig};
use crate::counters::WorkerCounters;
use crate::flow::FlowHasher;
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
    /// `now_ms` in whole seconds, worked out once per batch, not per packet.
    now_secs: u32,
}

/// Frames a batch can carry the fast-path classification for from its
/// prefetch pass to its decide pass; larger batches classify the rest twice.
const MEMO_SLOTS: usize = 64;

/// Flows hashed together: one per lane of [`FlowHasher::ipv4_x4`].
const LANES: usize = 4;

/// What the prefetch pass learned about a fast-path frame: its flow and the
/// flow's hash, keyed by where the frame's bytes are, so the decide pass
/// neither re-parses nor re-hashes it. Both passes see the same frames in the
/// same order; an entry is used only if the next frame is the very same
/// buffer and length, else the frame is classified again.
///
/// Flows are hashed four at a time, as soon as four are waiting, and their
/// connection-table buckets prefetched; the last few of a batch are hashed
/// one by one when the decide pass begins.
#[derive(Debug)]
pub(super) struct FastMemo {
    entries: [MemoEntry; MEMO_SLOTS],
    filled: usize,
    /// Entries `..hashed` have their hash (and their bucket prefetched).
    hashed: usize,
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
            hashed: 0,
            next: 0,
        }
    }

    #[inline]
    pub(super) fn begin_batch(&mut self) {
        self.filled = 0;
        self.hashed = 0;
        self.next = 0;
    }

    /// Records a fast-path frame's flow; false (nothing recorded) when the
    /// memo is full. Every fourth flow hashes the last four together.
    #[inline]
    pub(super) fn put(
        &mut self,
        frame: &[u8],
        flow: FastFlow,
        hasher: &FlowHasher,
        conntrack: &ConnTable,
    ) -> bool {
        let Some(slot) = self.entries.get_mut(self.filled) else {
            return false;
        };
        *slot = MemoEntry {
            at: frame.as_ptr() as usize,
            len: frame.len(),
            flow,
            hash: 0,
        };
        self.filled += 1;
        if let Some(group) = self.entries.get_mut(self.hashed..self.filled) {
            if let Ok(group) = <&mut [MemoEntry; LANES]>::try_from(group) {
                let hashes = hasher.ipv4_x4(group.each_ref().map(|e| e.flow.words));
                for (entry, hash) in group.iter_mut().zip(hashes) {
                    entry.hash = hash;
                    conntrack.prefetch(hash);
                }
                self.hashed = self.filled;
            }
        }
        true
    }

    /// The flow and hash put for this very frame, if it is the next entry.
    #[inline]
    pub(super) fn take(
        &mut self,
        frame: &[u8],
        hasher: &FlowHasher,
        conntrack: &ConnTable,
    ) -> Option<(FastFlow, u64)> {
        if self.hashed < self.filled {
            self.hash_rest(hasher, conntrack);
        }
        let e = *self.entries[..self.filled].get(self.next)?;
        if e.at == frame.as_ptr() as usize && e.len == frame.len() {
            self.next += 1;
            Some((e.flow, e.hash))
        } else {
            None
        }
    }

    /// Hashes the flows left over from the last group of four.
    #[cold]
    fn hash_rest(&mut self, hasher: &FlowHasher, conntrack: &ConnTable) {
        for entry in &mut self.entries[self.hashed..self.filled] {
            entry.hash = hasher.ipv4(entry.flow.words);
            conntrack.prefetch(entry.hash);
        }
        self.hashed = self.filled;
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
            now_secs: 0,
        }
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
