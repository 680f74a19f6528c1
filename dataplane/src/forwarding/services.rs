//! Services: many VIPs on one balancer, each with its own backends, hash
//! fields and Maglev table.
//!
//! A service is found by a new flow's destination address, protocol and
//! port: an exact port first, then the protocol with any port, then the
//! address alone. Only a connection-table miss looks a service up; an
//! established flow's entry names its backend slot directly, so the cost
//! of many services stays off the packet path of established flows.
//!
//! Backend slots are one space for the whole balancer: each slot belongs
//! to one service (or to the default service of the environment form), so
//! connection-table entries, fragment records and per-slot counters keep
//! meaning what they meant with one service.
//!
//! A table is rebuilt for every change, but a service whose Maglev input
//! (backends in rotation, weights, size, seed) did not change keeps the
//! previous table's Maglev table: the same `Arc`, not a rebuilt copy.

use core::fmt;
use core::net::IpAddr;
use std::sync::Arc;

use crate::flow::FlowKey;
use crate::maglev::{MaglevBackend, MaglevError, MaglevTable};

use super::{split_vips, BackendSpec};

/// Which part of a new flow picks its backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum HashFields {
    /// Source and destination address and port, and the protocol.
    #[default]
    FiveTuple,
    /// The source address alone: a client reaches the same backend on every
    /// port and protocol of the service (IPVS's persistence, Katran's
    /// source-only option).
    SourceAddress,
}

/// Where a packet came in: which services may take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingress {
    /// GRE to the balancer, looked up by the inner destination.
    Gre,
    /// A plain packet to a VIP, looked up by its destination.
    Vip,
}

/// One service as control describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    /// Unique among the services; names it in the API, metrics and errors.
    pub name: String,
    pub vip: IpAddr,
    /// IP protocol number (6 TCP, 17 UDP); `None` matches every protocol.
    pub protocol: Option<u8>,
    /// Destination port; `None` matches every port. Needs a protocol.
    pub port: Option<u16>,
    /// The service's backends; their slots are unique across all services.
    pub backends: Vec<BackendSpec>,
    /// Entries in the service's Maglev table, a prime above the backend count.
    pub table_size: u32,
    pub hash: HashFields,
    /// Where the workers count the service's drops: control gives each
    /// service its own id for as long as it exists.
    pub counter: ServiceCounter,
}

/// A service's row in the workers' per-service drop counters. Control keeps
/// a service's id across reloads while the service exists and reuses it
/// after the service is gone, always with the next generation: a worker
/// zeroes the row the first time it counts a drop under a new generation,
/// and readers ignore a row still holding another generation, so a reused
/// id never shows the previous service's drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ServiceCounter {
    /// Below [`crate::counters::SERVICE_COUNTERS`]; unique among services.
    pub id: u16,
    pub generation: u16,
}

/// What a service is looked up by: the destination (IPv4 as IPv4-mapped
/// IPv6), then protocol and port, `None` standing for "any". Ordered so
/// that one sorted array answers every lookup by binary search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceAddress {
    pub vip: u128,
    pub protocol: Option<u8>,
    pub port: Option<u16>,
}

impl ServiceAddress {
    pub fn of(spec: &ServiceSpec) -> Self {
        Self {
            vip: widen(spec.vip),
            protocol: spec.protocol,
            port: spec.port,
        }
    }
}

fn widen(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(a.to_ipv6_mapped()),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// A flow key's destination as a [`ServiceAddress::vip`].
#[inline]
fn destination_of(key: &FlowKey) -> u128 {
    if key.is_ipv6 {
        u128::from_be_bytes(key.dst)
    } else {
        let [a, b, c, d, ..] = key.dst;
        u128::from(core::net::Ipv4Addr::new(a, b, c, d).to_ipv6_mapped())
    }
}

/// Everything a Maglev table is built from: equal inputs build equal
/// tables, so an equal input lets a rebuild keep the old table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct MaglevInput {
    pub backends: Vec<MaglevBackend>,
    pub size: u32,
    pub seed: u64,
}

impl MaglevInput {
    /// Backends without a next-hop MAC get no entries (weight 0), as in
    /// the default service.
    pub fn of(backends: &[BackendSpec], size: u32, seed: u64) -> Self {
        let mut backends: Vec<_> = backends
            .iter()
            .map(|b| MaglevBackend {
                slot: b.slot,
                key: widen(b.addr),
                weight: if b.mac.is_some() { b.weight } else { 0 },
            })
            .collect();
        // The table does not depend on the order; the comparison should not either.
        backends.sort_unstable_by_key(|b| b.key);
        Self {
            backends,
            size,
            seed,
        }
    }

    /// The previous table if it was built from the same input, else a new one.
    pub fn build(
        self,
        previous: Option<(&Self, &Arc<MaglevTable>)>,
    ) -> Result<(Arc<Self>, Arc<MaglevTable>), MaglevError> {
        if let Some((input, table)) = previous {
            if *input == self {
                return Ok((Arc::new(self), Arc::clone(table)));
            }
        }
        let table = MaglevTable::build(&self.backends, self.size, self.seed)?;
        Ok((Arc::new(self), Arc::new(table)))
    }
}

/// One service in a forwarding table.
#[derive(Debug)]
pub struct Service {
    pub name: Arc<str>,
    pub address: ServiceAddress,
    pub hash: HashFields,
    /// Shared with the tables before and after this one while the
    /// service's backends stay the same.
    pub maglev: Arc<MaglevTable>,
    /// The slots of the service's backends, ascending.
    pub slots: Box<[u16]>,
    /// Where its drops are counted.
    pub counter: ServiceCounter,
    pub(super) input: Arc<MaglevInput>,
}

/// Why the services could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceError {
    /// The service's Maglev table could not be built.
    Maglev { service: String, error: MaglevError },
    /// Two services have one name.
    DuplicateName(String),
    /// Two services match the same address, protocol and port.
    DuplicateAddress { first: String, second: String },
    /// A port without a protocol (a port means nothing without one).
    PortWithoutProtocol(String),
    /// A backend slot given to two services (or to one and the default).
    SlotInTwoServices { slot: u16, service: String },
    /// The name is empty or not made of letters, digits, `-`, `_`, `.`.
    BadName(String),
    /// A drop-counter id past the workers' counter rows.
    CounterOutOfRange { id: u16, service: String },
    /// Two services given one drop-counter id.
    CounterInTwoServices { id: u16, service: String },
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Maglev { service, error } => write!(f, "service {service:?}: {error}"),
            Self::DuplicateName(name) => write!(
                f,
                "service name {name:?} is used twice; each service needs its own name"
            ),
            Self::DuplicateAddress { first, second } => write!(
                f,
                "services {first:?} and {second:?} have the same VIP, protocol and port; \
                 give one another port or protocol, or merge them"
            ),
            Self::PortWithoutProtocol(name) => write!(
                f,
                "service {name:?} has a port but no protocol; set protocol to \"tcp\" or \"udp\", \
                 or remove the port to match every port"
            ),
            Self::SlotInTwoServices { slot, service } => write!(
                f,
                "service {service:?}: backend slot {slot} already belongs to another service; \
                 slots are unique across services"
            ),
            Self::BadName(name) => write!(
                f,
                "service name {name:?} is not accepted; use 1 to 64 letters, digits, '-', '_' or '.'"
            ),
            Self::CounterOutOfRange { id, service } => write!(
                f,
                "service {service:?}: counter id {id} is out of range; use 0..{}",
                crate::counters::SERVICE_COUNTERS
            ),
            Self::CounterInTwoServices { id, service } => write!(
                f,
                "service {service:?}: counter id {id} already belongs to another service; \
                 ids are unique across services"
            ),
        }
    }
}

impl std::error::Error for ServiceError {}

/// Whether a service name is accepted: it appears in URLs and metric labels.
pub fn is_valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The named services of a table, sorted by address for lookup.
#[derive(Debug, Default)]
pub struct Services {
    /// Sorted by `address`; unique.
    by_address: Box<[ServiceAddress]>,
    /// `in_order[i]` is the service at `by_address[i]`.
    in_order: Box<[Service]>,
    /// The counter of the service every named service's slot belongs to,
    /// sorted by slot: for drops decided after a backend was chosen.
    counter_by_slot: Box<[(u16, ServiceCounter)]>,
    /// Every VIP of a service, IPv4 and IPv6, sorted and unique.
    vips_v4: Box<[[u8; 4]]>,
    vips_v6: Box<[[u8; 16]]>,
}

impl Services {
    /// Builds the services, reusing the Maglev table of every service of
    /// `previous` with the same name and input. `taken[slot]` is set for
    /// slots already used (the default service's); it is updated.
    pub(super) fn build(
        specs: &[ServiceSpec],
        seed: u64,
        previous: Option<&Self>,
        taken: &mut [bool],
    ) -> Result<Self, ServiceError> {
        let mut services = Vec::with_capacity(specs.len());
        let mut counter_taken = vec![false; crate::counters::SERVICE_COUNTERS];
        for spec in specs {
            if !is_valid_name(&spec.name) {
                return Err(ServiceError::BadName(spec.name.clone()));
            }
            if spec.port.is_some() && spec.protocol.is_none() {
                return Err(ServiceError::PortWithoutProtocol(spec.name.clone()));
            }
            let mut slots: Vec<u16> = spec.backends.iter().map(|b| b.slot).collect();
            slots.sort_unstable();
            for &slot in &slots {
                let taken = &mut taken[usize::from(slot)];
                if *taken {
                    return Err(ServiceError::SlotInTwoServices {
                        slot,
                        service: spec.name.clone(),
                    });
                }
                *taken = true;
            }
            let id = spec.counter.id;
            let Some(in_use) = counter_taken.get_mut(usize::from(id)) else {
                return Err(ServiceError::CounterOutOfRange {
                    id,
                    service: spec.name.clone(),
                });
            };
            if core::mem::replace(in_use, true) {
                return Err(ServiceError::CounterInTwoServices {
                    id,
                    service: spec.name.clone(),
                });
            }
            let old = previous
                .and_then(|p| p.named(&spec.name))
                .map(|s| (&*s.input, &s.maglev));
            let (input, maglev) = MaglevInput::of(&spec.backends, spec.table_size, seed)
                .build(old)
                .map_err(|error| ServiceError::Maglev {
                    service: spec.name.clone(),
                    error,
                })?;
            services.push(Service {
                name: spec.name.as_str().into(),
                address: ServiceAddress::of(spec),
                hash: spec.hash,
                maglev,
                slots: slots.into_boxed_slice(),
                counter: spec.counter,
                input,
            });
        }
        let mut names: Vec<&str> = services.iter().map(|s| &*s.name).collect();
        names.sort_unstable();
        if let Some(pair) = names.windows(2).find(|p| p[0] == p[1]) {
            return Err(ServiceError::DuplicateName(pair[0].to_owned()));
        }
        services.sort_unstable_by_key(|s| s.address);
        if let Some(pair) = services.windows(2).find(|p| p[0].address == p[1].address) {
            return Err(ServiceError::DuplicateAddress {
                first: pair[0].name.to_string(),
                second: pair[1].name.to_string(),
            });
        }
        let vips: Vec<IpAddr> = specs.iter().map(|s| s.vip).collect();
        let (vips_v4, vips_v6) = split_vips(&vips);
        let (mut vips_v4, mut vips_v6) = (vips_v4.into_vec(), vips_v6.into_vec());
        vips_v4.sort_unstable();
        vips_v4.dedup();
        vips_v6.sort_unstable();
        vips_v6.dedup();
        let mut counter_by_slot: Vec<(u16, ServiceCounter)> = services
            .iter()
            .flat_map(|s| s.slots.iter().map(|&slot| (slot, s.counter)))
            .collect();
        counter_by_slot.sort_unstable();
        Ok(Self {
            counter_by_slot: counter_by_slot.into_boxed_slice(),
            by_address: services.iter().map(|s| s.address).collect(),
            in_order: services.into_boxed_slice(),
            vips_v4: vips_v4.into_boxed_slice(),
            vips_v6: vips_v6.into_boxed_slice(),
        })
    }

    /// Every service, in address order.
    pub fn iter(&self) -> impl Iterator<Item = &Service> {
        self.in_order.iter()
    }

    pub fn len(&self) -> usize {
        self.in_order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.in_order.is_empty()
    }

    /// The service of this name.
    pub fn named(&self, name: &str) -> Option<&Service> {
        self.in_order.iter().find(|s| &*s.name == name)
    }

    /// The service a new flow belongs to: an exact protocol and port first,
    /// then the protocol with any port, then any protocol.
    #[inline]
    pub fn find(&self, key: &FlowKey) -> Option<&Service> {
        if self.in_order.is_empty() {
            return None;
        }
        let vip = destination_of(key);
        let candidates = [
            (Some(key.protocol), Some(key.dst_port)),
            (Some(key.protocol), None),
            (None, None),
        ];
        candidates.into_iter().find_map(|(protocol, port)| {
            let address = ServiceAddress {
                vip,
                protocol,
                port,
            };
            let at = self.by_address.binary_search(&address).ok()?;
            self.in_order.get(at)
        })
    }

    /// The counter of the named service `slot`'s backend belongs to
    /// (`None`: the default service's, or no backend's).
    pub fn counter_of_slot(&self, slot: u16) -> Option<ServiceCounter> {
        let at = self
            .counter_by_slot
            .binary_search_by_key(&slot, |&(s, _)| s)
            .ok()?;
        self.counter_by_slot.get(at).map(|&(_, counter)| counter)
    }

    /// Whether some service has this IPv4 VIP.
    #[inline]
    pub fn has_vip_v4(&self, addr: [u8; 4]) -> bool {
        !self.vips_v4.is_empty() && self.vips_v4.binary_search(&addr).is_ok()
    }

    /// Whether some service has this IPv6 VIP.
    #[inline]
    pub fn has_vip_v6(&self, addr: &[u8; 16]) -> bool {
        !self.vips_v6.is_empty() && self.vips_v6.binary_search(addr).is_ok()
    }

    /// Whether some service has an IPv6 VIP.
    #[inline]
    pub fn has_ipv6(&self) -> bool {
        !self.vips_v6.is_empty()
    }

    /// The IPv4 VIPs of every service, sorted.
    pub fn vips_v4(&self) -> &[[u8; 4]] {
        &self.vips_v4
    }

    /// The IPv6 VIPs of every service, sorted.
    pub fn vips_v6(&self) -> &[[u8; 16]] {
        &self.vips_v6
    }
}

#[cfg(test)]
mod tests;
