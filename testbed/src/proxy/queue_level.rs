//! What one direction of one connection holds queued (pieces and bytes), shared between
//! the direction that fills it and the connections list that shows it.
//!
//! A TCP direction stores its queue's size after every change; a UDP session's queues
//! add and take datagrams as they pass, and refuse one that would go past the bound.

use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Debug, Default)]
pub struct QueueLevel {
    pieces: AtomicUsize,
    bytes: AtomicUsize,
}

impl QueueLevel {
    /// The queue now holds `pieces` pieces of `bytes` bytes in all.
    pub fn store(&self, pieces: usize, bytes: usize) {
        self.pieces.store(pieces, Ordering::Relaxed);
        self.bytes.store(bytes, Ordering::Relaxed);
    }

    /// Counts one more item of `bytes` unless that would pass either bound; false (and
    /// nothing counted) if it would. Only the filling side calls it, so the check and
    /// the add cannot race with another add.
    pub fn try_add(&self, bytes: usize, max_pieces: usize, max_bytes: usize) -> bool {
        let (pieces, held) = self.get();
        if pieces >= max_pieces || held.saturating_add(bytes) > max_bytes {
            return false;
        }
        self.pieces.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        true
    }

    /// Forgets one item of `bytes` (it left the queue).
    pub fn take(&self, bytes: usize) {
        self.pieces.fetch_sub(1, Ordering::Relaxed);
        self.bytes.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// (pieces, bytes) queued now.
    pub fn get(&self) -> (usize, usize) {
        (
            self.pieces.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }
}
