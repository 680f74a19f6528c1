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

/// Flows hashed together: one per lane of [`FlowHasher::ipv4_x8`].
const LANES: usize = 8;

/// What the prefetch pass learned about a fast-path frame: its flow's
/// protocol and hash, keyed by where the frame's bytes are, so the decide
/// pass neither re-parses nor re-hashes it. Both passes see the same frames
/// in the same order; an entry is used only if the next frame is the very
/// same buffer and length, else the frame is classified again.
///
/// Flows are hashed eight at a time, as soon as eight are waiting, and their
/// connection-table buckets prefetched; the last few of a batch are hashed
/// when the decide pass begins. Each field is its own array, so hashing
/// reads the flows' words as one contiguous block.
#[derive(Debug)]
pub(super) struct FastMemo {
    at: [usize; MEMO_SLOTS],
    len: [usize; MEMO_SLOTS],
    words: [[u64; 2]; MEMO_SLOTS],
    protocol: [u8; MEMO_SLOTS],
    hash: [u64; MEMO_SLOTS],
    filled: usize,
    /// Entries `..hashed` have their hash (and their bucket prefetched).
    hashed: usize,
    next: usize,
}

impl FastMemo {
    fn new() -> Self {
        Self {
            at: [0; MEMO_SLOTS],
            len: [0; MEMO_SLOTS],
            words: [[0; 2]; MEMO_SLOTS],
            protocol: [0; MEMO_SLOTS],
            hash: [0; MEMO_SLOTS],
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
    /// memo is full. Every eighth flow hashes the last eight together.
    #[inline]
    pub(super) fn put(
        &mut self,
        frame: &[u8],
        flow: FastFlow,
        hasher: &FlowHasher,
        conntrack: &ConnTable,
    ) -> bool {
        let i = self.filled;
        if i >= MEMO_SLOTS {
            return false;
        }
        self.at[i] = frame.as_ptr() as usize;
        self.len[i] = frame.len();
        self.words[i] = flow.words;
        self.protocol[i] = flow.protocol;
        self.filled = i + 1;
        if self.filled - self.hashed == LANES {
            self.hash_group(self.hashed, hasher, conntrack);
            self.hashed = self.filled;
        }
        true
    }

    /// Hashes the eight flows from `first` on, and prefetches their buckets.
    /// Entries past `filled` hold stale words: hashing them costs nothing
    /// extra in the vector and their hashes are never read.
    #[inline]
    fn hash_group(&mut self, first: usize, hasher: &FlowHasher, conntrack: &ConnTable) {
        let (Some(words), Some(hashes)) = (
            self.words[first..].first_chunk::<LANES>(),
            self.hash[first..].first_chunk_mut::<LANES>(),
        ) else {
            return;
        };
        *hashes = hasher.ipv4_x8(words);
        for &hash in &hashes[..(self.filled - first).min(LANES)] {
            conntrack.prefetch(hash);
        }
    }

    /// The protocol and hash put for this very frame, if it is the next entry.
    #[inline]
    pub(super) fn take(
        &mut self,
        frame: &[u8],
        hasher: &FlowHasher,
        conntrack: &ConnTable,
    ) -> Option<(u8, u64)> {
        if self.hashed < self.filled {
            self.hash_rest(hasher, conntrack);
        }
        let i = self.next;
        if i < self.filled && self.at[i] == frame.as_ptr() as usize && self.len[i] == frame.len() {
            self.next = i + 1;
            Some((self.protocol[i], self.hash[i]))
        } else {
            None
        }
    }

    /// Hashes the flows left over from the last group of eight.
    #[cold]
    fn hash_rest(&mut self, hasher: &FlowHasher, conntrack: &ConnTable) {
        // A group that would run past the end starts earlier: the flows it
        // hashes again get the same hashes.
        let first = self.hashed.min(MEMO_SLOTS - LANES);
        self.hash_group(first, hasher, conntrack);
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
