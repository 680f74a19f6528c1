//! One backend as control sees it: what the operator asked for (weight,
//! drain), what health checks found, what neighbour resolution found, and
//! the slot and generation the packet path knows it by.

use std::net::IpAddr;

use dataplane::forwarding::BackendSpec;

use super::health_state::HealthState;

/// The largest weight accepted (the same bound as `RR_TARGET_IPS`).
pub const MAX_WEIGHT: u32 = 65_535;

/// A backend in the set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// IPv4 or IPv6: GRE toward it goes over its family.
    pub addr: IpAddr,
    /// The configured Maglev weight, kept while draining so that undraining
    /// restores it.
    pub weight: u32,
    /// Draining: established flows stay, new flows go elsewhere.
    pub drain: bool,
    pub health: HealthState,
    /// Next-hop Ethernet address; `None` while unresolved, which keeps the
    /// backend out of service.
    pub mac: Option<[u8; 6]>,
    pub slot: u16,
    pub generation: u16,
}

impl Backend {
    /// The weight Maglev gets: 0 while draining, down or unresolved.
    pub fn effective_weight(&self) -> u32 {
        if self.drain || !self.health.is_up() || self.mac.is_none() {
            0
        } else {
            self.weight
        }
    }

    /// Whether new flows can be sent here.
    pub fn in_rotation(&self) -> bool {
        self.effective_weight() > 0
    }

    /// The backend as the forwarding table is built from it.
    pub fn spec(&self) -> BackendSpec {
        BackendSpec {
            slot: self.slot,
            addr: self.addr,
            weight: self.effective_weight(),
            mac: self.mac,
            generation: self.generation,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend() -> Backend {
        Backend {
            addr: [10, 1, 0, 1].into(),
            weight: 3,
            drain: false,
            health: HealthState::UP,
            mac: Some([2, 0, 0, 0, 1, 1]),
            slot: 4,
            generation: 9,
        }
    }

    #[test]
    fn a_healthy_resolved_backend_keeps_its_weight() {
        let b = backend();
        assert!(b.in_rotation());
        assert_eq!(
            b.spec(),
            BackendSpec {
                slot: 4,
                addr: [10, 1, 0, 1].into(),
                weight: 3,
                mac: Some([2, 0, 0, 0, 1, 1]),
                generation: 9,
            }
        );
    }

    #[test]
    fn draining_down_or_unresolved_backends_take_no_new_flows() {
        let mut drained = backend();
        drained.drain = true;
        let mut down = backend();
        down.health.record(false, 1, 1);
        let mut unresolved = backend();
        unresolved.mac = None;
        for b in [drained, down, unresolved] {
            assert_eq!(b.effective_weight(), 0, "{b:?}");
            assert_eq!(b.spec().slot, 4, "the slot stays");
            assert!(!b.in_rotation());
        }
    }
}
