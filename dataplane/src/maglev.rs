//! Weighted Maglev lookup table (Eisenbud et al., "Maglev: A Fast and
//! Reliable Software Network Load Balancer", NSDI 2016, section 3.4).
//!
//! Every backend walks its own permutation of the `M` table entries, given by
//! an `offset` and a `skip` derived from keyed hashes of its address; in
//! rounds, each backend claims the next entry of its permutation that is still
//! empty. The result spreads flows almost evenly (each backend owns `M/N`
//! entries, give or take one) and, because a backend's permutation does not
//! depend on the others, removing one backend moves few entries of the rest.
//!
//! Weights follow Katran: each round a backend earns its weight as credit and
//! takes a turn only when its credit reaches the largest weight, so entries are
//! proportional to weight and a weight-0 backend owns nothing.
//!
//! The table is built off the packet path (control rebuilds it on every
//! backend change) and read by every worker: [`MaglevTable::lookup`] is one
//! modulo and one load.

mod fill;
mod primes;
mod search;

use std::fmt;
use std::net::Ipv6Addr;

pub use primes::{is_prime, nearest_primes};

/// The table size used unless configured otherwise: the prime the paper uses.
pub const DEFAULT_TABLE_SIZE: u32 = 65537;
/// The most backends a table can hold: entries are `u16` slot ids and
/// `u16::MAX` marks an empty entry.
pub const MAX_BACKENDS: usize = 65535;
/// The largest table size accepted, `2^26` entries (128 MiB of `u16`): far past
/// what any backend count needs, and small enough that a typo in the
/// configuration cannot exhaust memory.
pub const MAX_TABLE_SIZE: u32 = 1 << 26;

/// Marks an entry no backend has claimed; never a valid slot.
const EMPTY: u16 = u16::MAX;

/// One backend as the table builder sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaglevBackend {
    /// What [`MaglevTable::lookup`] returns for flows sent to this backend:
    /// the caller's index into its own backend array. `0..=65534`.
    pub slot: u16,
    /// The backend's identity, from which its permutation is derived: its IP
    /// address as a `u128` (IPv4 as an IPv4-mapped IPv6 address). Keeping the
    /// address rather than the slot as identity means a backend keeps its
    /// entries when others are added or removed and slots are renumbered.
    pub key: u128,
    /// Relative share of flows; 0 takes the backend out of rotation.
    pub weight: u32,
}

/// Why a table could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MaglevError {
    /// The size is not prime, so some permutations would not visit every entry.
    SizeNotPrime {
        /// The size asked for.
        size: u32,
        /// The nearest prime below it, if any.
        below: Option<u32>,
        /// The nearest prime above it that is still accepted, if any.
        above: Option<u32>,
    },
    /// The table must have more entries than there are backends.
    SizeTooSmall {
        /// The size asked for.
        size: u32,
        /// How many backends were given.
        backends: usize,
    },
    /// The size is above [`MAX_TABLE_SIZE`].
    SizeTooLarge {
        /// The size asked for.
        size: u32,
    },
    /// More than [`MAX_BACKENDS`] backends.
    TooManyBackends(usize),
    /// Two backends share a slot.
    DuplicateSlot(u16),
    /// Two backends share a key (address).
    DuplicateKey(u128),
    /// A backend uses slot `u16::MAX`, which marks empty entries.
    ReservedSlot,
}

impl fmt::Display for MaglevError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SizeNotPrime { size, below, above } => {
                write!(f, "table size {size} is not prime; ")?;
                match (below, above) {
                    (Some(below), Some(above)) => {
                        write!(f, "nearest primes: {below} and {above}")
                    }
                    (Some(prime), None) | (None, Some(prime)) => {
                        write!(f, "nearest prime: {prime}")
                    }
                    (None, None) => write!(f, "use a prime such as {DEFAULT_TABLE_SIZE}"),
                }
            }
            Self::SizeTooSmall { size, backends } => write!(
                f,
                "table size {size} must exceed the number of backends ({backends}); \
                 use a prime at least 100 times the backend count (default {DEFAULT_TABLE_SIZE})"
            ),
            Self::SizeTooLarge { size } => write!(
                f,
                "table size {size} is above the largest accepted, {MAX_TABLE_SIZE}; \
                 use a prime up to that (default {DEFAULT_TABLE_SIZE})"
            ),
            Self::TooManyBackends(count) => write!(
                f,
                "{count} backends given; a table holds at most {MAX_BACKENDS}"
            ),
            Self::DuplicateSlot(slot) => write!(
                f,
                "backend slot {slot} is given to more than one backend; each needs its own slot"
            ),
            Self::DuplicateKey(key) => write!(
                f,
                "backend address {} appears more than once; each backend needs its own address",
                display_key(*key)
            ),
            Self::ReservedSlot => write!(
                f,
                "backend slot {EMPTY} marks empty entries; use slots 0 to {}",
                EMPTY - 1
            ),
        }
    }
}

impl std::error::Error for MaglevError {}

/// A key shown as the address it stands for: dotted IPv4 when mapped.
fn display_key(key: u128) -> String {
    let address = Ipv6Addr::from(key);
    match address.to_ipv4_mapped() {
        Some(v4) => v4.to_string(),
        None => address.to_string(),
    }
}

/// An immutable Maglev lookup table: `size` entries, each a backend slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaglevTable {
    entries: Box<[u16]>,
}

impl MaglevTable {
    /// Builds the table for `backends` with `size` entries (a prime above the
    /// backend count, at most [`MAX_TABLE_SIZE`]); `seed` keys the permutation
    /// hashes. Every balancer given the same backends, weights, size and seed
    /// builds the same table, whatever the order of `backends`.
    pub fn build(backends: &[MaglevBackend], size: u32, seed: u64) -> Result<Self, MaglevError> {
        let rotation = validate(backends, size)?;
        let mut entries = vec![EMPTY; size as usize].into_boxed_slice();
        fill::populate(&mut entries, &rotation, seed);
        Ok(Self { entries })
    }

    /// The slot of the backend for a flow hash: `entries[hash % size]`.
    /// `None` when no backend has weight above zero.
    #[inline]
    pub fn lookup(&self, hash: u64) -> Option<u16> {
        // `size` is a prime ≥ 2, so the index is in bounds and the divisor non-zero.
        let index = (hash % self.entries.len() as u64) as usize;
        let slot = self.entries[index];
        (slot != EMPTY).then_some(slot)
    }

    /// Every entry in table order; `u16::MAX` only when no backend has weight.
    pub fn entries(&self) -> &[u16] {
        &self.entries
    }

    /// The number of entries, `M`.
    pub fn size(&self) -> u32 {
        self.entries.len() as u32
    }
}

/// Checks the input and returns the backends in rotation (weight above zero),
/// sorted by key so that the table does not depend on input order.
fn validate(backends: &[MaglevBackend], size: u32) -> Result<Vec<MaglevBackend>, MaglevError> {
    if backends.len() > MAX_BACKENDS {
        return Err(MaglevError::TooManyBackends(backends.len()));
    }
    let mut slot_taken = vec![false; usize::from(u16::MAX) + 1];
    for backend in backends {
        if backend.slot == EMPTY {
            return Err(MaglevError::ReservedSlot);
        }
        let taken = &mut slot_taken[usize::from(backend.slot)];
        if *taken {
            return Err(MaglevError::DuplicateSlot(backend.slot));
        }
        *taken = true;
    }
    let mut sorted = backends.to_vec();
    sorted.sort_unstable_by_key(|backend| backend.key);
    if let Some(pair) = sorted.windows(2).find(|pair| pair[0].key == pair[1].key) {
        return Err(MaglevError::DuplicateKey(pair[0].key));
    }
    if size > MAX_TABLE_SIZE {
        return Err(MaglevError::SizeTooLarge { size });
    }
    if !is_prime(size) {
        let (below, above) = nearest_primes(size);
        let above = above.filter(|&prime| prime <= MAX_TABLE_SIZE);
        return Err(MaglevError::SizeNotPrime { size, below, above });
    }
    if size as usize <= backends.len() {
        return Err(MaglevError::SizeTooSmall {
            size,
            backends: backends.len(),
        });
    }
    sorted.retain(|backend| backend.weight > 0);
    Ok(sorted)
}

#[cfg(test)]
mod tests;
