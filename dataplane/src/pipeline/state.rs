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

/// Frames of a batch whose fast-path classification the prefetch pass
/// carries to the decide pass (one bit each of a `u64`); frames beyond are
/// classified again.
const MEMO_SLOTS: usize = 64;

/// Flows hashed together: one per lane of [`FlowHasher::ipv4_x8`].
const LANES: usize = 8;

/// What the prefetch pass learned about each fast-path frame of a batch, by
/// the frame's position: its flow's words, then their hash, so the decide
/// pass neither re-parses nor re-hashes it. The decide pass uses an entry
/// only if it was filled in this batch and names the same bytes, else the
/// frame is classified again.
///
/// Positions come in groups of eight, hashed together (one lane each) when
/// the prefetch pass reaches a group's last position, with the buckets of
/// the group's fast-path frames prefetched; a group the prefetch pass did
/// not finish (the batch's last, when partial) is hashed when the decide
/// pass first needs it. Each field is its own array, so hashing reads a
/// group's words as one block.
#[derive(Debug)]
pub(super) struct FastMemo {
    /// Bit `i`: position `i` holds a fast-path frame of this batch.
    filled: u64,
    /// Bit `g`: group `g` (positions `8g..8g + 8`) has its hashes.
    hashed: u8,
    at: [usize; MEMO_SLOTS],
    words: [[u64; 2]; MEMO_SLOTS],
    hash: [u64; MEMO_SLOTS],
}

impl FastMemo {
    fn new() -> Self {
        Self {
            filled: 0,
            hashed: 0,
            at: [0; MEMO_SLOTS],
            words: [[0; 2]; MEMO_SLOTS],
            hash: [0; MEMO_SLOTS],
        }
    }

    #[inline]
    pub(super) fn begin_batch(&mut self) {
        self.filled = 0;
        self.hashed = 0;
    }

    /// Records the fast-path frame at batch position `index`; false
    /// (nothing recorded) when the position is beyond the memo.
    #[inline]
    pub(super) fn put(&mut self, index: usize, frame: &[u8], flow: FastFlow) -> bool {
        if index >= MEMO_SLOTS {
            return false;
        }
        self.at[index] = frame.as_ptr() as usize;
        self.words[index] = flow.words;
        self.filled |= 1 << index;
        true
    }

    /// Called by the prefetch pass after each frame, fast-path or not: at
    /// the last position of a group, hashes the group.
    #[inline]
    pub(super) fn passed(&mut self, index: usize, hasher: &FlowHasher, conntrack: &ConnTable) {
        if index < MEMO_SLOTS && index % LANES == LANES - 1 {
            self.hash_group(index / LANES, hasher, conntrack);
        }
    }

    /// The hash put for the frame at batch position `index`, if it is this
    /// very frame.
    #[inline]
    pub(super) fn take(
        &mut self,
        index: usize,
        frame: &[u8],
        hasher: &FlowHasher,
        conntrack: &ConnTable,
    ) -> Option<u64> {
        if index >= MEMO_SLOTS
            || self.filled & (1 << index) == 0
            || self.at[index] != frame.as_ptr() as usize
        {
            return None;
        }
        let group = index / LANES;
        if self.hashed & (1 << group) == 0 {
            self.hash_group(group, hasher, conntrack);
        }
        Some(self.hash[index])
    }

    /// Hashes group `group` and prefetches the buckets of its fast-path
    /// frames. Positions without one hash stale words: in the vector that
    /// costs nothing extra, and their hashes are never read.
    #[inline]
    fn hash_group(&mut self, group: usize, hasher: &FlowHasher, conntrack: &ConnTable) {
        let first = group * LANES;
        let mut fast = (self.filled >> first) & 0xFF;
        let (Some(words), Some(hashes)) = (
            self.words[first..].first_chunk::<LANES>(),
            self.hash[first..].first_chunk_mut::<LANES>(),
        ) else {
            return;
        };
        self.hashed |= 1 << group;
        if fast == 0 {
            return;
        }
        *hashes = hasher.ipv4_x8(words);
        while fast != 0 {
            conntrack.prefetch(hashes[fast.trailing_zeros() as usize]);
            fast &= fast - 1;
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
