//! Per-worker fragment table: every fragment of a datagram goes to the
//! backend its first fragment's 5-tuple maps to, which is the backend the
//! flow's whole packets go to. (Katran drops fragments; we do not.)
//!
//! The first fragment carries the transport header, so it is balanced like
//! any packet and its choice is recorded under the datagram's identity
//! (source, destination, protocol, identification). Later fragments look that
//! up. Fragments that overtake their first fragment are copied aside for a
//! short, bounded time; when the first arrives they are released, otherwise
//! they are dropped and counted.

use crate::counters::WorkerCounters;
use crate::flow::DatagramKey;
use crate::verdict::DropReason;

/// Sizes and times of a worker's fragment table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentConfig {
    /// Datagrams remembered at once (rounded up to a power of two).
    pub datagrams: usize,
    /// How long a datagram's backend choice is remembered after its first
    /// fragment (Linux keeps reassembly state for 30 s by default).
    pub datagram_timeout_ms: u64,
    /// Early fragments that can wait for their first fragment at once.
    pub hold_frames: usize,
    /// How long an early fragment waits before it is dropped.
    pub hold_time_ms: u64,
    /// Size of each hold buffer; larger fragments are not held.
    pub hold_buf_size: usize,
}

impl Default for FragmentConfig {
    fn default() -> Self {
        Self {
            datagrams: 4096,
            datagram_timeout_ms: 30_000,
            hold_frames: 64,
            hold_time_ms: 100,
            hold_buf_size: 2048 + HOLD_HEADROOM,
        }
    }
}

/// Room kept in front of a held frame so that VIP-mode encapsulation can
/// prepend its headers when the frame is released.
pub const HOLD_HEADROOM: usize = 128;

/// Entries per bucket; a bucket is searched linearly.
const WAYS: usize = 4;

#[derive(Debug, Clone, Copy)]
struct Datagram {
    key: DatagramKey,
    slot: u16,
    generation: u16,
    expires_ms: u64,
    used: bool,
}

/// A fragment copied aside, with its place in a hold buffer.
#[derive(Debug)]
pub struct HeldFrame {
    pub buf: Box<[u8]>,
    pub head: usize,
    pub len: usize,
    key: DatagramKey,
    arrived_ms: u64,
}

/// One worker's fragment state; all memory is allocated at construction.
#[derive(Debug)]
pub struct FragmentTable {
    config: FragmentConfig,
    datagrams: Box<[Datagram]>,
    bucket_mask: usize,
    free_bufs: Vec<Box<[u8]>>,
    waiting: Vec<HeldFrame>,
    ready: Vec<HeldFrame>,
}

impl FragmentTable {
    pub fn new(config: FragmentConfig) -> Self {
        let buckets = (config.datagrams.max(WAYS) / WAYS).next_power_of_two();
        let empty = Datagram {
            key: DatagramKey {
                src: [0; 16],
                dst: [0; 16],
                ident: 0,
                protocol: 0,
                is_ipv6: false,
            },
            slot: 0,
            generation: 0,
            expires_ms: 0,
            used: false,
        };
        Self {
            config,
            datagrams: vec![empty; buckets * WAYS].into_boxed_slice(),
            bucket_mask: buckets - 1,
            free_bufs: (0..config.hold_frames)
                .map(|_| vec![0u8; config.hold_buf_size].into_boxed_slice())
                .collect(),
            waiting: Vec::with_capacity(config.hold_frames),
            ready: Vec::with_capacity(config.hold_frames),
        }
    }

    fn bucket(&self, hash: u64) -> core::ops::Range<usize> {
        let start = (hash as usize & self.bucket_mask) * WAYS;
        start..start + WAYS
    }

    /// Remembers the backend chosen for a datagram's first fragment and
    /// releases the fragments that were waiting for it.
    pub fn record(
        &mut self,
        hash: u64,
        key: &DatagramKey,
        slot: u16,
        generation: u16,
        now_ms: u64,
    ) {
        let bucket = self.bucket(hash);
        let entries = &mut self.datagrams[bucket];
        // Reuse the datagram's own entry, else a free or expired one, else the
        // one closest to expiry: old datagrams give way to new ones.
        let index = entries
            .iter()
            .position(|d| d.used && d.key == *key)
            .or_else(|| {
                entries
                    .iter()
                    .position(|d| !d.used || d.expires_ms <= now_ms)
            })
            .unwrap_or_else(|| {
                let mut oldest = 0;
                for (i, d) in entries.iter().enumerate() {
                    if d.expires_ms < entries[oldest].expires_ms {
                        oldest = i;
                    }
                }
                oldest
            });
        entries[index] = Datagram {
            key: *key,
            slot,
            generation,
            expires_ms: now_ms + self.config.datagram_timeout_ms,
            used: true,
        };
        let mut i = 0;
        while i < self.waiting.len() {
            if self.waiting[i].key == *key {
                let frame = self.waiting.swap_remove(i);
                self.ready.push(frame);
            } else {
                i += 1;
            }
        }
    }

    /// The backend slot and generation recorded for a datagram, if any.
    pub fn lookup(&self, hash: u64, key: &DatagramKey, now_ms: u64) -> Option<(u16, u16)> {
        self.datagrams[self.bucket(hash)]
            .iter()
            .find(|d| d.used && d.expires_ms > now_ms && d.key == *key)
            .map(|d| (d.slot, d.generation))
    }

    /// Copies an early fragment aside until its first fragment arrives.
    pub fn hold(&mut self, key: &DatagramKey, frame: &[u8], now_ms: u64) -> Result<(), DropReason> {
        // A hold time of zero means early fragments time out on arrival.
        if self.config.hold_time_ms == 0 {
            return Err(DropReason::FragmentTimeout);
        }
        if frame.len() + HOLD_HEADROOM > self.config.hold_buf_size {
            return Err(DropReason::FragmentHoldFull);
        }
        let Some(mut buf) = self.free_bufs.pop() else {
            return Err(DropReason::FragmentHoldFull);
        };
        buf[HOLD_HEADROOM..HOLD_HEADROOM + frame.len()].copy_from_slice(frame);
        self.waiting.push(HeldFrame {
            buf,
            head: HOLD_HEADROOM,
            len: frame.len(),
            key: *key,
            arrived_ms: now_ms,
        });
        Ok(())
    }

    /// Drops (and counts) early fragments that waited longer than the hold time.
    pub fn expire(&mut self, now_ms: u64, counters: &WorkerCounters) {
        let mut i = 0;
        while i < self.waiting.len() {
            if now_ms.saturating_sub(self.waiting[i].arrived_ms) >= self.config.hold_time_ms {
                let frame = self.waiting.swap_remove(i);
                counters.count_drop(DropReason::FragmentTimeout, frame.len);
                self.free_bufs.push(frame.buf);
            } else {
                i += 1;
            }
        }
    }

    /// A fragment whose first fragment has arrived, to run through the
    /// pipeline again; give its buffer back with [`Self::recycle`].
    pub fn pop_ready(&mut self) -> Option<HeldFrame> {
        self.ready.pop()
    }

    /// Returns a hold buffer to the pool.
    pub fn recycle(&mut self, buf: Box<[u8]>) {
        self.free_bufs.push(buf);
    }

    /// Fragments still waiting for their first fragment.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// True when nothing is held: the worker can skip fragment housekeeping.
    #[inline]
    pub fn is_idle(&self) -> bool {
        self.waiting.is_empty() && self.ready.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ident: u32) -> DatagramKey {
        DatagramKey {
            src: [1; 16],
            dst: [2; 16],
            ident,
            protocol: 17,
            is_ipv6: false,
        }
    }

    #[test]
    fn recorded_datagrams_are_found_until_they_expire() {
        let mut t = FragmentTable::new(FragmentConfig::default());
        t.record(5, &key(1), 3, 9, 1000);
        assert_eq!(t.lookup(5, &key(1), 1001), Some((3, 9)));
        assert_eq!(t.lookup(5, &key(2), 1001), None);
        assert_eq!(t.lookup(5, &key(1), 1000 + 30_000), None);
    }

    #[test]
    fn held_fragments_are_released_when_their_first_fragment_arrives() {
        let mut t = FragmentTable::new(FragmentConfig::default());
        t.hold(&key(1), b"late", 0).unwrap();
        t.hold(&key(2), b"other", 0).unwrap();
        assert!(t.pop_ready().is_none());
        t.record(5, &key(1), 3, 9, 10);
        let held = t.pop_ready().unwrap();
        assert_eq!(&held.buf[held.head..held.head + held.len], b"late");
        assert!(t.pop_ready().is_none());
        assert_eq!(t.waiting(), 1);
        t.recycle(held.buf);
    }

    #[test]
    fn held_fragments_time_out_and_are_counted() {
        let mut t = FragmentTable::new(FragmentConfig::default());
        let counters = WorkerCounters::default();
        t.hold(&key(1), b"late", 0).unwrap();
        t.expire(99, &counters);
        assert_eq!(t.waiting(), 1);
        t.expire(100, &counters);
        assert_eq!(t.waiting(), 0);
        assert_eq!(counters.drops_for(DropReason::FragmentTimeout), 1);
        assert!(t.is_idle());
    }

    #[test]
    fn a_zero_hold_time_holds_nothing() {
        let mut t = FragmentTable::new(FragmentConfig {
            hold_time_ms: 0,
            ..FragmentConfig::default()
        });
        assert_eq!(
            t.hold(&key(1), b"late", 0),
            Err(DropReason::FragmentTimeout)
        );
        assert!(t.is_idle());
    }

    #[test]
    fn the_hold_buffer_is_bounded() {
        let config = FragmentConfig {
            hold_frames: 2,
            ..FragmentConfig::default()
        };
        let mut t = FragmentTable::new(config);
        t.hold(&key(1), b"a", 0).unwrap();
        t.hold(&key(1), b"b", 0).unwrap();
        assert_eq!(t.hold(&key(1), b"c", 0), Err(DropReason::FragmentHoldFull));
        let too_big = vec![0u8; config.hold_buf_size];
        t.expire(1000, &WorkerCounters::default());
        assert_eq!(
            t.hold(&key(1), &too_big, 0),
            Err(DropReason::FragmentHoldFull)
        );
    }

    #[test]
    fn a_full_bucket_gives_way_to_the_newest_datagram() {
        let config = FragmentConfig {
            datagrams: 4,
            ..FragmentConfig::default()
        };
        let mut t = FragmentTable::new(config);
        for ident in 0..5 {
            t.record(0, &key(ident), ident as u16, 0, u64::from(ident));
        }
        assert_eq!(t.lookup(0, &key(4), 10), Some((4, 0)));
        assert_eq!(t.lookup(0, &key(0), 10), None, "the oldest entry gave way");
    }
}
