//! A worker's connection table: which backend each live flow was sent to.
//!
//! Maglev alone would move some flows when the backend set changes; the
//! connection table keeps an established flow on its backend until it has
//! been idle longer than its protocol's timeout. Each worker owns one table,
//! so nothing here is shared or atomic.
//!
//! The table is set-associative: a flow hash picks one bucket of four
//! 16-byte ways, one 64-byte cache line, so a lookup touches one line (which
//! [`ConnTable::prefetch`] can pull in ahead of a batch). All memory is
//! allocated once in [`ConnTable::try_new`].
//!
//! A flow counts as established once a packet after its first has hit its
//! entry (a TCP handshake's ACK, a second UDP datagram). An established
//! flow's entry is never evicted: only its idle timeout frees it. When a
//! bucket is full of live flows, a new flow takes the way of the least
//! recently seen flow that is not established, or, when all four are
//! established, is balanced by Maglev without being recorded
//! ([`InsertOutcome::Full`]). So a flood of new flows, spoofed SYNs or
//! single datagrams at any rate, can only push out other flows that have
//! not yet shown a second packet. The number of new flows recorded per
//! second is capped as well, which bounds the work a flood makes.

use std::fmt;
use std::mem::size_of;

use crate::huge::{HugeSlice, Zeroable};

/// Ways per bucket: 4 x 16 bytes fill one cache line.
const WAYS: usize = 4;
/// The smallest table: 8 buckets, so the 3 hash bits dropped from the tag
/// (see [`flow_tag`]) are always among the bucket index bits.
pub const MIN_CAPACITY: usize = 32;
/// The largest table, `2^28` entries (4 GiB): a bound on what a configuration
/// value can make a worker allocate.
pub const MAX_CAPACITY: usize = 1 << 28;

/// Tag bit set in every occupied way, so a tag is never 0 (0 marks empty).
const PRESENT: u64 = 1 << 63;
/// Tag bit holding the timeout class: set for [`TimeoutClass::Udp`].
const UDP_CLASS: u64 = 1 << 62;
/// Tag bit set once a lookup has hit the way: the flow is established and
/// its entry is never evicted.
const ESTABLISHED: u64 = 1 << 61;

/// Sizing, timeouts and admission rate of a [`ConnTable`].
#[derive(Debug, Clone, Copy)]
pub struct ConnTableConfig {
    /// Entries, in [`MIN_CAPACITY`]`..=`[`MAX_CAPACITY`] (others are
    /// refused by [`ConnTable::try_new`]); rounded up to a power of two.
    pub capacity: usize,
    /// Idle time after which a TCP flow's entry no longer counts.
    pub tcp_timeout_secs: u32,
    /// Idle time after which a UDP (or other non-TCP) flow's entry no longer counts.
    pub udp_timeout_secs: u32,
    /// New flows admitted per second of `now_secs`; 0 admits none.
    pub max_new_per_sec: u32,
}

impl Default for ConnTableConfig {
    fn default() -> Self {
        Self {
            capacity: 1 << 20,
            tcp_timeout_secs: 300,
            udp_timeout_secs: 30,
            max_new_per_sec: 1_000_000,
        }
    }
}

/// Which idle timeout applies to a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutClass {
    /// TCP flows.
    Tcp,
    /// UDP flows, and every protocol other than TCP.
    Udp,
}

/// What the table remembers for a flow: the backend chosen for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnEntry {
    /// The backend's slot in the forwarding table.
    pub slot: u16,
    /// The backend's generation when the flow was pinned to it; the caller
    /// compares it with the current one and re-inserts when it is stale.
    pub generation: u16,
}

/// What [`ConnTable::insert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertOutcome {
    /// A new flow took an empty or expired way.
    Inserted,
    /// The flow already had a live entry; it now holds the new one.
    Replaced,
    /// A new flow took the way of another flow's live entry: the least
    /// recently seen of its bucket's flows that are not established.
    Evicted,
    /// A new flow's bucket holds four live, established flows: nothing was
    /// written (the flow is balanced by Maglev alone until a way frees up).
    Full,
    /// Over `max_new_per_sec` this second: nothing was written.
    RateLimited,
}

/// One way: a flow's tag and what it maps to. 16 bytes.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C)]
struct Way {
    /// [`flow_tag`] plus the class and established bits; 0 when the way is empty.
    tag: u64,
    /// `now_secs` of the flow's last insert or lookup hit.
    last_seen: u32,
    slot: u16,
    generation: u16,
}

/// One cache line of ways.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(64))]
struct Bucket {
    ways: [Way; WAYS],
}

// SAFETY: a Bucket is plain integers; all zeros is four empty ways (tag 0).
unsafe impl Zeroable for Bucket {}

const _: () = assert!(size_of::<Way>() == 16);
const _: () = assert!(size_of::<Bucket>() == 64);

/// A fixed-size, set-associative map from flow hash to [`ConnEntry`].
pub struct ConnTable {
    buckets: HugeSlice<Bucket>,
    /// `buckets.len() - 1`; the bucket of a hash is `hash & bucket_mask`.
    bucket_mask: u64,
    tcp_timeout_secs: u32,
    udp_timeout_secs: u32,
    max_new_per_sec: u32,
    /// The second `new_this_second` counts admissions for.
    rate_second: u32,
    new_this_second: u32,
    evictions: u64,
    full: u64,
    rate_limited: u64,
    /// The next bucket [`ConnTable::sweep_occupancy`] looks at.
    sweep_cursor: usize,
    /// Live entries counted so far in the current sweep.
    sweep_live: usize,
}

impl fmt::Debug for ConnTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnTable")
            .field("capacity", &self.capacity())
            .field("tcp_timeout_secs", &self.tcp_timeout_secs)
            .field("udp_timeout_secs", &self.udp_timeout_secs)
            .field("max_new_per_sec", &self.max_new_per_sec)
            .field("evictions", &self.evictions)
            .field("full", &self.full)
            .field("rate_limited", &self.rate_limited)
            .finish_non_exhaustive()
    }
}

/// The flow's identity within its bucket: the hash without its three lowest
/// bits (always part of the bucket index, as there are at least 8 buckets),
/// marked present. Bits 61 to 63 are free for the established, class and
/// presence bits.
#[inline(always)]
fn flow_tag(hash: u64) -> u64 {
    (hash >> 3) | PRESENT
}

/// The class's tag bit, as a shift of the comparison the class came from
/// rather than a select between two 64-bit constants.
#[inline(always)]
fn class_bit(class: TimeoutClass) -> u64 {
    u64::from(class == TimeoutClass::Udp) << UDP_CLASS.trailing_zeros()
}

/// Seconds since `last_seen`; 0 if the clock reads earlier than that.
#[inline(always)]
fn idle_secs(now_secs: u32, last_seen: u32) -> u32 {
    now_secs.saturating_sub(last_seen)
}

/// `idle_secs(now_secs, last_seen) > timeout_secs`, as one add and compare
/// in 64 bits (where the add cannot overflow) instead of a saturating
/// subtract: both say the clock has passed `last_seen + timeout_secs`.
#[inline(always)]
fn idle_longer_than(timeout_secs: u32, now_secs: u32, last_seen: u32) -> bool {
    u64::from(last_seen) + u64::from(timeout_secs) < u64::from(now_secs)
}

/// Why a [`ConnTable`] could not be made.
#[derive(Debug)]
pub enum ConnTableError {
    /// The capacity is outside [`MIN_CAPACITY`]`..=`[`MAX_CAPACITY`].
    Capacity(usize),
    /// The kernel refused the memory.
    Memory {
        capacity: usize,
        error: std::io::Error,
    },
}

impl fmt::Display for ConnTableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Capacity(n) => write!(
                f,
                "a connection table of {n} entries is outside {MIN_CAPACITY}..={MAX_CAPACITY}"
            ),
            Self::Memory { capacity, error } => write!(
                f,
                "cannot allocate a {capacity}-entry connection table ({} MiB): {error}; \
                 lower the capacity or free memory",
                capacity.saturating_mul(size_of::<Way>()) >> 20
            ),
        }
    }
}

impl std::error::Error for ConnTableError {}

impl ConnTable {
    /// Allocates the whole table (16 bytes per entry) up front; nothing on
    /// the packet path allocates afterwards. Panics where
    /// [`try_new`](Self::try_new) fails: for tests and benches, whose sizes
    /// are constants.
    pub fn new(config: ConnTableConfig) -> Self {
        Self::try_new(config).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`new`](Self::new), with an error for a capacity out of range or
    /// memory the kernel refuses, so that a balancer can refuse to start
    /// before it has changed anything.
    pub fn try_new(config: ConnTableConfig) -> Result<Self, ConnTableError> {
        if !(MIN_CAPACITY..=MAX_CAPACITY).contains(&config.capacity) {
            return Err(ConnTableError::Capacity(config.capacity));
        }
        let capacity = config.capacity.next_power_of_two();
        let bucket_count = capacity / WAYS;
        Ok(Self {
            buckets: HugeSlice::zeroed(bucket_count)
                .map_err(|error| ConnTableError::Memory { capacity, error })?,
            bucket_mask: bucket_count as u64 - 1,
            tcp_timeout_secs: config.tcp_timeout_secs,
            udp_timeout_secs: config.udp_timeout_secs,
            max_new_per_sec: config.max_new_per_sec,
            rate_second: 0,
            new_this_second: 0,
            evictions: 0,
            full: 0,
            rate_limited: 0,
            sweep_cursor: 0,
            sweep_live: 0,
        })
    }

    /// The flow's entry, if it was seen within `class`'s timeout; a hit
    /// counts as activity, refreshes the flow's last-seen time and marks the
    /// flow established.
    #[inline]
    pub fn lookup(&mut self, hash: u64, class: TimeoutClass, now_secs: u32) -> Option<ConnEntry> {
        // A flow's class never changes (its hash covers the protocol), so
        // its way holds exactly this tag and class bit, established or not.
        let tag = flow_tag(hash) | class_bit(class);
        let established = tag | ESTABLISHED;
        let timeout = self.timeout_secs(class);
        let ways = &mut self.bucket_mut(hash).ways;
        // Nearly every hit is an established flow: look for it by its exact
        // tag first, as the table did before flows had the bit, and only
        // then for a flow's first hit (its second packet).
        let way = match ways.iter().position(|way| way.tag == established) {
            Some(index) => index,
            None => ways.iter().position(|way| way.tag == tag)?,
        };
        // `position` over four ways: the index is below WAYS.
        let way = &mut ways[way % WAYS];
        if idle_longer_than(timeout, now_secs, way.last_seen) {
            return None;
        }
        // Written only when the second changes or on the flow's first hit:
        // a flow's bucket line then stays clean between seconds, and
        // evicting it from the cache costs no write-back.
        if way.last_seen != now_secs || way.tag != established {
            way.last_seen = now_secs;
            way.tag = established;
        }
        Some(ConnEntry {
            slot: way.slot,
            generation: way.generation,
        })
    }

    /// Pins the flow to `entry`.
    ///
    /// A flow with a live entry has it overwritten (`Replaced`; this is how a
    /// stale backend generation is corrected, and it is not a new flow: it
    /// stays established if it was). Any other flow is new: it takes its own
    /// expired way, an empty or expired way (`Inserted`), or else the way of
    /// the least recently seen flow of the bucket that is not established
    /// (`Evicted`); when every way holds a live established flow nothing is
    /// written (`Full`). A new flow is also refused once `max_new_per_sec`
    /// new flows were admitted in second `now_secs` (`RateLimited`, nothing
    /// written).
    pub fn insert(
        &mut self,
        hash: u64,
        entry: ConnEntry,
        class: TimeoutClass,
        now_secs: u32,
    ) -> InsertOutcome {
        let tag = flow_tag(hash);
        let index = self.bucket_index(hash);
        let scan = self.scan_bucket(index, tag, now_secs);
        let (way, outcome) = if scan.own_way_live {
            (scan.own_way, InsertOutcome::Replaced)
        } else if scan.own_way < WAYS {
            (scan.own_way, InsertOutcome::Inserted)
        } else if scan.first_free < WAYS {
            (scan.first_free, InsertOutcome::Inserted)
        } else if scan.least_recent < WAYS {
            (scan.least_recent, InsertOutcome::Evicted)
        } else {
            self.full += 1;
            return InsertOutcome::Full;
        };
        if outcome != InsertOutcome::Replaced && !self.admit_new_flow(now_secs) {
            self.rate_limited += 1;
            return InsertOutcome::RateLimited;
        }
        if outcome == InsertOutcome::Evicted {
            self.evictions += 1;
        }
        let established = if scan.own_way_live {
            self.buckets[index].ways[way].tag & ESTABLISHED
        } else {
            0
        };
        self.buckets[index].ways[way] = Way {
            tag: tag | class_bit(class) | established,
            last_seen: now_secs,
            slot: entry.slot,
            generation: entry.generation,
        };
        outcome
    }

    /// Asks the CPU to bring the flow's bucket into cache, so that a lookup a
    /// few packets later does not wait on memory. A hint only; no-op on
    /// architectures other than `x86_64`.
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        // Plain address arithmetic, no bounds check: the index is in bounds
        // (see `bucket_mut`), and a prefetch would not fault even if it were not.
        let bucket: *const Bucket = self.buckets.as_ptr().wrapping_add(self.bucket_index(hash));
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `_mm_prefetch` needs SSE, part of the x86_64 baseline. A
        // prefetch never faults and does not change memory; the address is
        // anyway that of a live bucket borrowed from `self`.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>(bucket.cast::<i8>());
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = bucket;
    }

    /// Entries holding a flow seen within its timeout. Scans the whole table:
    /// for metrics, not for the packet path.
    pub fn occupancy(&self, now_secs: u32) -> usize {
        self.buckets
            .iter()
            .flat_map(|bucket| &bucket.ways)
            .filter(|way| self.is_live(way, now_secs))
            .count()
    }

    /// Counts live entries a few buckets at a time, so that a worker can keep
    /// an occupancy gauge without ever scanning the whole table in one batch:
    /// looks at the next `buckets` buckets (wrapping) and, when that finishes
    /// a pass over the table, returns the live entries the pass saw. Entries
    /// inserted or expiring during a pass may or may not be counted, which
    /// is fine for a gauge.
    pub fn sweep_occupancy(&mut self, buckets: usize, now_secs: u32) -> Option<usize> {
        let end = self
            .sweep_cursor
            .saturating_add(buckets)
            .min(self.buckets.len());
        let live = self.buckets[self.sweep_cursor..end]
            .iter()
            .flat_map(|bucket| &bucket.ways)
            .filter(|way| self.is_live(way, now_secs))
            .count();
        self.sweep_live += live;
        self.sweep_cursor = end;
        if end < self.buckets.len() {
            return None;
        }
        self.sweep_cursor = 0;
        Some(core::mem::take(&mut self.sweep_live))
    }

    /// Entries the table holds: the configured capacity after rounding.
    pub fn capacity(&self) -> usize {
        self.buckets.len() * WAYS
    }

    /// Live entries pushed out by new flows since the table was made.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// New flows not recorded because their bucket held only established
    /// flows, since the table was made.
    pub fn full(&self) -> u64 {
        self.full
    }

    /// New flows refused by the per-second cap since the table was made.
    pub fn rate_limited(&self) -> u64 {
        self.rate_limited
    }

    /// Bytes the table occupies, all allocated in [`Self::new`].
    pub fn memory_bytes(&self) -> usize {
        size_of::<Self>() + self.buckets.len() * size_of::<Bucket>()
    }

    #[inline(always)]
    fn bucket_index(&self, hash: u64) -> usize {
        (hash & self.bucket_mask) as usize
    }

    /// The bucket of `hash`, without the bounds check an index would cost on
    /// every lookup.
    #[inline(always)]
    fn bucket_mut(&mut self, hash: u64) -> &mut Bucket {
        let index = self.bucket_index(hash);
        debug_assert!(index < self.buckets.len());
        // SAFETY: `bucket_mask` is `buckets.len() - 1`, set in `new` together
        // with `buckets` (a power of two) and never changed, so `hash &
        // bucket_mask` is always an index into `buckets`.
        unsafe { self.buckets.get_unchecked_mut(index) }
    }

    #[inline(always)]
    fn timeout_secs(&self, class: TimeoutClass) -> u32 {
        match class {
            TimeoutClass::Tcp => self.tcp_timeout_secs,
            TimeoutClass::Udp => self.udp_timeout_secs,
        }
    }

    /// Whether a way holds a flow seen within its own class's timeout.
    #[inline(always)]
    fn is_live(&self, way: &Way, now_secs: u32) -> bool {
        let class = if way.tag & UDP_CLASS == 0 {
            TimeoutClass::Tcp
        } else {
            TimeoutClass::Udp
        };
        way.tag != 0 && !idle_longer_than(self.timeout_secs(class), now_secs, way.last_seen)
    }

    /// Counts a new flow against this second's allowance; false when spent.
    fn admit_new_flow(&mut self, now_secs: u32) -> bool {
        if now_secs != self.rate_second {
            self.rate_second = now_secs;
            self.new_this_second = 0;
        }
        if self.new_this_second >= self.max_new_per_sec {
            return false;
        }
        self.new_this_second += 1;
        true
    }

    /// One pass over bucket `index` for an insert of the flow tagged `tag`:
    /// plain selects the compiler can make branch-free, because the bucket
    /// has usually just arrived from memory and a mispredicted branch here
    /// would stall the next insert too.
    #[inline(always)]
    fn scan_bucket(&self, index: usize, tag: u64, now_secs: u32) -> BucketScan {
        let ways = &self.buckets[index].ways;
        let mut scan = BucketScan {
            own_way: WAYS,
            own_way_live: false,
            first_free: WAYS,
            least_recent: WAYS,
        };
        let mut most_idle = 0;
        // Backwards, so that the first matching way is the one kept.
        for (position, way) in ways.iter().enumerate().rev() {
            let live = self.is_live(way, now_secs);
            if way.tag & !(UDP_CLASS | ESTABLISHED) == tag {
                scan.own_way = position;
                scan.own_way_live = live;
            }
            if !live {
                scan.first_free = position;
            }
            let idle = idle_secs(now_secs, way.last_seen);
            if way.tag & ESTABLISHED == 0 && idle >= most_idle {
                most_idle = idle;
                scan.least_recent = position;
            }
        }
        scan
    }
}

/// What an insert needs to know about its bucket; `WAYS` means "none".
#[derive(Debug, Clone, Copy)]
struct BucketScan {
    /// The way already holding this flow.
    own_way: usize,
    /// Whether that way's entry is still within its timeout.
    own_way_live: bool,
    /// The first empty or expired way.
    first_free: usize,
    /// The way seen least recently among those not established (ties: the first).
    least_recent: usize,
}

#[cfg(test)]
mod tests;
