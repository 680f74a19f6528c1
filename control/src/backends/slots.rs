//! Stable backend slots and their generations.
//!
//! A slot is the index the packet path knows a backend by (connection-table
//! entries and per-backend counters refer to it), so it never changes while
//! the backend exists. New slots are handed out while any are left, so a
//! slot's per-backend packet counter (which only its worker can write, and
//! so never resets) belongs to one backend for the balancer's life in all
//! but extreme churn. Only once all [`MAX_BACKENDS`] slots were used is a
//! freed slot reused, lowest first, and always with the next generation, so
//! that connection-table entries left by its previous backend can never
//! match the new one.
//!
//! Services' drop-counter ids follow the same rules with their own limit
//! ([`Slots::with_capacity`]): the generation tells the workers' counter
//! rows of a reused id from those of its previous service.

use std::collections::BTreeSet;

use dataplane::maglev::MAX_BACKENDS;

/// Which slots are taken, and each slot's current generation.
#[derive(Debug, Clone)]
pub struct Slots {
    /// How many slots there are.
    capacity: usize,
    /// Generation of every slot ever handed out, indexed by slot.
    generations: Vec<u16>,
    /// Slots handed out before and given back since, lowest first.
    free: BTreeSet<u16>,
}

impl Default for Slots {
    /// The backend slots: [`MAX_BACKENDS`] of them.
    fn default() -> Self {
        Self::with_capacity(MAX_BACKENDS)
    }
}

impl Slots {
    /// `capacity` slots (at most 65,536: slots are `u16`), none taken.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            capacity: capacity.min(1 << 16),
            generations: Vec::new(),
            free: BTreeSet::new(),
        }
    }

    /// A free slot and its generation: a never-used slot at generation 0
    /// while there are any, else the lowest freed slot with its generation
    /// bumped; `None` when all [`MAX_BACKENDS`] slots are taken.
    pub fn take(&mut self) -> Option<(u16, u16)> {
        if self.generations.len() < self.capacity {
            self.generations.push(0);
            return Some(((self.generations.len() - 1) as u16, 0));
        }
        let slot = self.free.pop_first()?;
        Some((slot, self.bump(slot)))
    }

    /// Gives the slot back; its next owner gets a new generation.
    pub fn release(&mut self, slot: u16) {
        if (slot as usize) < self.generations.len() {
            self.free.insert(slot);
        }
    }

    /// Moves the slot to its next generation (wrapping) and returns it: the
    /// connection-table entries pointing at the old one become misses.
    pub fn bump(&mut self, slot: u16) -> u16 {
        match self.generations.get_mut(slot as usize) {
            Some(generation) => {
                *generation = generation.wrapping_add(1);
                *generation
            }
            None => 0,
        }
    }

    /// Slots taken now.
    pub fn in_use(&self) -> usize {
        self.generations.len() - self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_slots_count_up_from_zero_at_generation_zero() {
        let mut slots = Slots::default();
        assert_eq!(slots.take(), Some((0, 0)));
        assert_eq!(slots.take(), Some((1, 0)));
        assert_eq!(slots.take(), Some((2, 0)));
        assert_eq!(slots.in_use(), 3);
    }

    #[test]
    fn freed_slots_wait_while_never_used_ones_remain() {
        let mut slots = Slots::default();
        for _ in 0..4 {
            slots.take();
        }
        slots.release(1);
        assert_eq!(slots.take(), Some((4, 0)));
        assert_eq!(slots.in_use(), 4);
    }

    /// Slots with every one of the [`MAX_BACKENDS`] slots taken.
    fn all_taken() -> Slots {
        let mut slots = Slots::default();
        for _ in 0..MAX_BACKENDS {
            assert!(slots.take().is_some());
        }
        slots
    }

    #[test]
    fn slots_run_out_at_the_maglev_limit() {
        let mut slots = all_taken();
        assert_eq!(slots.take(), None);
        assert_eq!(slots.in_use(), MAX_BACKENDS);
    }

    #[test]
    fn then_freed_slots_are_reused_lowest_first_with_the_next_generation() {
        let mut slots = all_taken();
        slots.release(9);
        slots.release(7);
        assert_eq!(slots.take(), Some((7, 1)));
        assert_eq!(slots.take(), Some((9, 1)));
        slots.release(7);
        assert_eq!(slots.take(), Some((7, 2)));
        assert_eq!(slots.take(), None);
    }

    #[test]
    fn a_smaller_capacity_runs_out_at_its_own_limit() {
        let mut slots = Slots::with_capacity(2);
        assert_eq!(slots.take(), Some((0, 0)));
        assert_eq!(slots.take(), Some((1, 0)));
        assert_eq!(slots.take(), None);
        slots.release(0);
        assert_eq!(slots.take(), Some((0, 1)));
    }

    #[test]
    fn bumping_moves_a_slot_to_its_next_generation() {
        let mut slots = all_taken();
        assert_eq!(slots.bump(0), 1);
        assert_eq!(slots.bump(0), 2);
        slots.release(0);
        assert_eq!(slots.take(), Some((0, 3)));
    }
}
