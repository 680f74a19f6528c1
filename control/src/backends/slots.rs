//! Stable backend slots and their generations.
//!
//! A slot is the index the packet path knows a backend by (connection-table
//! entries and per-backend counters refer to it), so it never changes while
//! the backend exists. A freed slot is reused, lowest first, but always with
//! the next generation, so that connection-table entries left by its previous
//! backend can never match the new one.

use std::collections::BTreeSet;

use dataplane::maglev::MAX_BACKENDS;

/// Which slots are taken, and each slot's current generation.
#[derive(Debug, Clone, Default)]
pub struct Slots {
    /// Generation of every slot ever handed out, indexed by slot.
    generations: Vec<u16>,
    /// Slots handed out before and given back since, lowest first.
    free: BTreeSet<u16>,
}

impl Slots {
    /// A free slot and its generation: the lowest freed slot with its
    /// generation bumped, else a new slot at generation 0; `None` when all
    /// [`MAX_BACKENDS`] slots are taken.
    pub fn take(&mut self) -> Option<(u16, u16)> {
        if let Some(slot) = self.free.pop_first() {
            return Some((slot, self.bump(slot)));
        }
        if self.generations.len() >= MAX_BACKENDS {
            return None;
        }
        self.generations.push(0);
        Some(((self.generations.len() - 1) as u16, 0))
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
    fn a_freed_slot_is_reused_lowest_first_with_the_next_generation() {
        let mut slots = Slots::default();
        for _ in 0..4 {
            slots.take();
        }
        slots.release(2);
        slots.release(1);
        assert_eq!(slots.take(), Some((1, 1)));
        assert_eq!(slots.take(), Some((2, 1)));
        assert_eq!(slots.take(), Some((4, 0)));
        slots.release(1);
        assert_eq!(slots.take(), Some((1, 2)));
    }

    #[test]
    fn bumping_moves_a_slot_to_its_next_generation() {
        let mut slots = Slots::default();
        slots.take();
        assert_eq!(slots.bump(0), 1);
        assert_eq!(slots.bump(0), 2);
        slots.release(0);
        assert_eq!(slots.take(), Some((0, 3)));
    }

    #[test]
    fn slots_run_out_at_the_maglev_limit() {
        let mut slots = Slots::default();
        for _ in 0..MAX_BACKENDS {
            assert!(slots.take().is_some());
        }
        assert_eq!(slots.take(), None);
        slots.release(7);
        assert_eq!(slots.take(), Some((7, 1)));
    }
}
