//! The backend set: every backend by address, and the slots they hold.

use std::collections::BTreeMap;
use std::net::IpAddr;

use dataplane::forwarding::BackendSpec;

use super::backend::{Backend, MAX_WEIGHT};
use super::error::BackendError;
use super::health_state::{HealthState, Transition};
use super::slots::Slots;

/// Backends keyed by address (IPv4 or IPv6). Plain data: the [`super::Publisher`]
/// owns it and turns every change into a new forwarding table.
#[derive(Debug, Clone, Default)]
pub struct BackendSet {
    backends: BTreeMap<IpAddr, Backend>,
    slots: Slots,
}

impl BackendSet {
    /// Adds a backend: up (up until proven down), not draining, no MAC yet,
    /// in a free slot (see [`Slots::take`]).
    pub fn add(&mut self, addr: IpAddr, weight: u32) -> Result<&Backend, BackendError> {
        check_weight(weight)?;
        if self.backends.contains_key(&addr) {
            return Err(BackendError::Exists(addr));
        }
        let (slot, generation) = self.slots.take().ok_or(BackendError::Full)?;
        let backend = Backend {
            addr,
            weight,
            drain: false,
            health: HealthState::UP,
            mac: None,
            slot,
            generation,
        };
        Ok(self.backends.entry(addr).or_insert(backend))
    }

    /// Removes a backend; its slot is freed (reused, if ever, with a new
    /// generation).
    pub fn remove(&mut self, addr: IpAddr) -> Result<Backend, BackendError> {
        let backend = self
            .backends
            .remove(&addr)
            .ok_or(BackendError::Unknown(addr))?;
        self.slots.release(backend.slot);
        Ok(backend)
    }

    /// Sets the configured weight (a draining backend keeps draining).
    pub fn set_weight(&mut self, addr: IpAddr, weight: u32) -> Result<&Backend, BackendError> {
        check_weight(weight)?;
        let backend = self.get_mut(addr)?;
        backend.weight = weight;
        Ok(backend)
    }

    /// Starts or stops draining. Draining keeps the generation: established
    /// flows stay on the backend.
    pub fn set_drain(&mut self, addr: IpAddr, drain: bool) -> Result<&Backend, BackendError> {
        let backend = self.get_mut(addr)?;
        backend.drain = drain;
        Ok(backend)
    }

    /// Sets or clears the next-hop MAC (the neighbour resolver's answer).
    pub fn set_mac(&mut self, addr: IpAddr, mac: Option<[u8; 6]>) -> Result<(), BackendError> {
        self.get_mut(addr)?.mac = mac;
        Ok(())
    }

    /// Records a health-check result. A transition in either direction moves
    /// the backend to a new generation: flows pinned to it before it failed
    /// are re-balanced, and it comes back with no stale entries.
    pub fn record_health(
        &mut self,
        addr: IpAddr,
        healthy: bool,
        rise: u32,
        fall: u32,
    ) -> Result<Option<Transition>, BackendError> {
        let backend = self
            .backends
            .get_mut(&addr)
            .ok_or(BackendError::Unknown(addr))?;
        let transition = backend.health.record(healthy, rise, fall);
        if transition.is_some() {
            backend.generation = self.slots.bump(backend.slot);
        }
        Ok(transition)
    }

    /// Sets the health a checker concluded (it counts the results in a row
    /// itself); a change moves the backend to a new generation, as in
    /// [`record_health`](Self::record_health).
    pub fn set_health(
        &mut self,
        addr: IpAddr,
        up: bool,
    ) -> Result<Option<Transition>, BackendError> {
        let backend = self
            .backends
            .get_mut(&addr)
            .ok_or(BackendError::Unknown(addr))?;
        if backend.health.is_up() == up {
            return Ok(None);
        }
        backend.health = if up {
            HealthState::UP
        } else {
            HealthState::DOWN
        };
        backend.generation = self.slots.bump(backend.slot);
        Ok(Some(if up {
            Transition::CameUp
        } else {
            Transition::WentDown
        }))
    }

    pub fn get(&self, addr: IpAddr) -> Option<&Backend> {
        self.backends.get(&addr)
    }

    /// Backends in address order.
    pub fn iter(&self) -> impl Iterator<Item = &Backend> {
        self.backends.values()
    }

    pub fn len(&self) -> usize {
        self.backends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.backends.is_empty()
    }

    /// The backends as the forwarding table is built from them.
    pub fn specs(&self) -> Vec<BackendSpec> {
        self.backends.values().map(Backend::spec).collect()
    }

    fn get_mut(&mut self, addr: IpAddr) -> Result<&mut Backend, BackendError> {
        self.backends
            .get_mut(&addr)
            .ok_or(BackendError::Unknown(addr))
    }
}

fn check_weight(weight: u32) -> Result<(), BackendError> {
    if weight > MAX_WEIGHT {
        return Err(BackendError::WeightOutOfRange(weight.into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        [10, 1, 0, last].into()
    }

    #[test]
    fn added_backends_start_up_undrained_and_unresolved_in_new_slots() {
        let mut set = BackendSet::default();
        let b = set.add(ip(1), 2).unwrap().clone();
        assert_eq!((b.slot, b.generation, b.weight), (0, 0, 2));
        assert!(b.health.is_up() && !b.drain && b.mac.is_none());
        assert_eq!(set.add(ip(2), 1).unwrap().slot, 1);
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn an_address_is_added_once() {
        let mut set = BackendSet::default();
        set.add(ip(1), 1).unwrap();
        assert_eq!(set.add(ip(1), 5), Err(BackendError::Exists(ip(1))));
        assert_eq!(set.get(ip(1)).unwrap().weight, 1);
    }

    #[test]
    fn weights_above_the_maximum_are_refused() {
        let mut set = BackendSet::default();
        assert_eq!(
            set.add(ip(1), 65_536),
            Err(BackendError::WeightOutOfRange(65_536))
        );
        set.add(ip(1), 65_535).unwrap();
        assert!(set.set_weight(ip(1), 70_000).is_err());
        assert_eq!(set.get(ip(1)).unwrap().weight, 65_535);
    }

    #[test]
    fn unknown_backends_are_named() {
        let mut set = BackendSet::default();
        assert_eq!(set.remove(ip(9)), Err(BackendError::Unknown(ip(9))));
        assert_eq!(
            set.set_drain(ip(9), true).unwrap_err(),
            BackendError::Unknown(ip(9))
        );
        assert_eq!(
            set.record_health(ip(9), true, 1, 1),
            Err(BackendError::Unknown(ip(9)))
        );
        assert_eq!(
            BackendError::Unknown(ip(9)).to_string(),
            "no backend 10.1.0.9"
        );
    }

    #[test]
    fn a_backend_removed_and_added_again_is_a_new_incarnation() {
        let mut set = BackendSet::default();
        set.add(ip(1), 1).unwrap();
        set.add(ip(2), 1).unwrap();
        set.remove(ip(1)).unwrap();
        let b = set.add(ip(1), 1).unwrap();
        assert_eq!(
            b.slot, 2,
            "a fresh slot: no entry or counter of slot 0 applies"
        );
        assert_eq!(set.get(ip(2)).unwrap().slot, 1, "others keep theirs");
    }

    #[test]
    fn draining_and_weight_changes_keep_the_generation() {
        let mut set = BackendSet::default();
        set.add(ip(1), 4).unwrap();
        set.set_mac(ip(1), Some([2, 0, 0, 0, 0, 1])).unwrap();
        set.set_drain(ip(1), true).unwrap();
        assert_eq!(set.specs()[0].weight, 0);
        set.set_weight(ip(1), 6).unwrap();
        assert_eq!(set.specs()[0].weight, 0, "still draining");
        set.set_drain(ip(1), false).unwrap();
        assert_eq!(set.specs()[0].weight, 6);
        assert_eq!(set.specs()[0].generation, 0);
    }

    #[test]
    fn health_transitions_move_the_backend_to_a_new_generation() {
        let mut set = BackendSet::default();
        set.add(ip(1), 1).unwrap();
        assert_eq!(set.record_health(ip(1), false, 2, 2), Ok(None));
        assert_eq!(set.get(ip(1)).unwrap().generation, 0);
        assert_eq!(
            set.record_health(ip(1), false, 2, 2),
            Ok(Some(Transition::WentDown))
        );
        assert_eq!(set.get(ip(1)).unwrap().generation, 1);
        set.record_health(ip(1), true, 2, 2).unwrap();
        assert_eq!(
            set.record_health(ip(1), true, 2, 2),
            Ok(Some(Transition::CameUp))
        );
        assert_eq!(set.get(ip(1)).unwrap().generation, 2);
    }

    #[test]
    fn a_health_set_from_outside_changes_the_generation_only_when_it_changes() {
        let mut set = BackendSet::default();
        set.add(ip(1), 1).unwrap();
        assert_eq!(set.set_health(ip(1), true), Ok(None));
        assert_eq!(set.get(ip(1)).unwrap().generation, 0);
        assert_eq!(set.set_health(ip(1), false), Ok(Some(Transition::WentDown)));
        assert!(!set.get(ip(1)).unwrap().health.is_up());
        assert_eq!(set.get(ip(1)).unwrap().generation, 1);
        assert_eq!(set.set_health(ip(1), false), Ok(None));
        assert_eq!(set.set_health(ip(1), true), Ok(Some(Transition::CameUp)));
        assert_eq!(set.get(ip(1)).unwrap().generation, 2);
        assert_eq!(
            set.set_health(ip(9), true),
            Err(BackendError::Unknown(ip(9)))
        );
    }
}
