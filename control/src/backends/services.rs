//! Named services beside the default one: which backends of the set belong
//! to which service, and the dataplane's description of them all.
//!
//! Every backend, of whichever service, lives in the one [`BackendSet`]: its
//! slot, generation, next hop and health are kept there as for the default
//! service's, so next-hop resolution and health checks follow service
//! backends unchanged. A backend address belongs to one service at most.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use dataplane::forwarding::{BackendSpec, ServiceSpec};

use super::error::BackendError;
use super::set::BackendSet;
use super::slots::Slots;
use crate::config::file::ServiceConfig;
use crate::config::HealthCheck;

/// One named service: its description (without backends), the addresses
/// of its backends in the set, and its own health check (`None`: the
/// balancer's, `RR_HEALTH`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEntry {
    pub template: ServiceSpec,
    pub members: Vec<IpAddr>,
    pub health: Option<HealthCheck>,
    /// Slots of backends that left the service while it existed. A slot's
    /// counters never reset and no other backend takes the slot before all
    /// [`dataplane::maglev::MAX_BACKENDS`] were used, so they keep counting
    /// toward the service's packets, bytes and new flows: those never go
    /// down when a backend leaves (Prometheus would read a reset).
    pub retired_slots: Vec<u16>,
}

impl ServiceEntry {
    /// The slots whose counters make the service's traffic: its backends'
    /// (`slot_of` each backend address), then those of backends that left it.
    pub fn counted_slots(&self, slot_of: &HashMap<IpAddr, u16>) -> Vec<u16> {
        let members = self.members.iter().filter_map(|a| slot_of.get(a).copied());
        members.chain(self.retired_slots.iter().copied()).collect()
    }
}

/// The named services, in the order configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamedServices(pub Vec<ServiceEntry>);

impl NamedServices {
    /// Service name of every member address.
    fn owners(&self) -> BTreeMap<IpAddr, &str> {
        self.0
            .iter()
            .flat_map(|s| {
                s.members
                    .iter()
                    .map(move |&a| (a, s.template.name.as_str()))
            })
            .collect()
    }

    /// The health check of each backend of a named service that has its
    /// own (the others are checked with the balancer's).
    pub fn health_checks(&self) -> BTreeMap<IpAddr, &HealthCheck> {
        self.0
            .iter()
            .filter_map(|s| s.health.as_ref().map(|h| (s, h)))
            .flat_map(|(s, h)| s.members.iter().map(move |&a| (a, h)))
            .collect()
    }

    /// The default service's backends (those of no named service) and the
    /// named services with theirs, as the table is built from them.
    pub fn split(&self, set: &BackendSet) -> (Vec<BackendSpec>, Vec<ServiceSpec>) {
        let owners = self.owners();
        let default = set
            .iter()
            .filter(|b| !owners.contains_key(&b.addr))
            .map(super::Backend::spec)
            .collect();
        let services = self
            .0
            .iter()
            .map(|s| ServiceSpec {
                backends: s
                    .members
                    .iter()
                    .filter_map(|&a| set.get(a).map(super::Backend::spec))
                    .collect(),
                ..s.template.clone()
            })
            .collect();
        (default, services)
    }

    /// The services as configurations, each backend with its weight in
    /// `set`: what a change through the API edits and applies.
    pub fn configs(&self, set: &BackendSet) -> Vec<ServiceConfig> {
        self.0
            .iter()
            .map(|s| ServiceConfig {
                name: s.template.name.clone(),
                vip: s.template.vip,
                protocol: s.template.protocol,
                port: s.template.port,
                backends: s
                    .members
                    .iter()
                    .filter_map(|&addr| {
                        set.get(addr).map(|b| crate::config::TargetSpec {
                            addr,
                            weight: b.weight,
                        })
                    })
                    .collect(),
                health: s.health.clone(),
                table_size: s.template.table_size,
                hash: s.template.hash,
                line: 0,
            })
            .collect()
    }

    /// Makes `set` and the services match `configs`: backends of removed
    /// services and removed backends leave the set (their slots' next
    /// incarnation gets a new generation), new ones join it, kept ones keep
    /// their slot, generation, next hop and health and take the configured
    /// weight. A kept service keeps its drop-counter id; a removed one's id
    /// goes back to `ids`, and a new service takes one from there. Returns
    /// the new services; on an error nothing (of `set` and `ids` either)
    /// is to be kept.
    pub fn apply(
        &self,
        configs: &[ServiceConfig],
        set: &mut BackendSet,
        ids: &mut Slots,
    ) -> Result<Self, BackendError> {
        let old = self.owners();
        let mut new: BTreeMap<IpAddr, &str> = BTreeMap::new();
        for config in configs {
            for target in &config.backends {
                if new.insert(target.addr, &config.name).is_some() {
                    return Err(BackendError::Exists(target.addr));
                }
            }
        }
        // Leaving first, so that an address may move between services
        // (as a new backend: a new generation).
        let mut left: BTreeMap<&str, Vec<u16>> = BTreeMap::new();
        for (&addr, &owner) in &old {
            if new.get(&addr) != Some(&owner) {
                if let Some(b) = set.get(addr) {
                    left.entry(owner).or_default().push(b.slot);
                }
                set.remove(addr)?;
            }
        }
        for gone in self
            .0
            .iter()
            .filter(|s| !configs.iter().any(|c| c.name == s.template.name))
        {
            ids.release(gone.template.counter.id);
        }
        let mut services = Vec::with_capacity(configs.len());
        for config in configs {
            let kept = self.0.iter().find(|s| s.template.name == config.name);
            let mut retired_slots = Vec::new();
            let counter = if let Some(kept) = kept {
                retired_slots.extend(&kept.retired_slots);
                retired_slots.extend(left.get(config.name.as_str()).into_iter().flatten());
                kept.template.counter
            } else {
                let (id, generation) = ids.take().ok_or(BackendError::TooManyServices)?;
                dataplane::forwarding::ServiceCounter { id, generation }
            };
            for target in &config.backends {
                if old.get(&target.addr) == Some(&config.name.as_str()) {
                    set.set_weight(target.addr, target.weight)?;
                } else {
                    set.add(target.addr, target.weight)?;
                }
            }
            services.push(ServiceEntry {
                template: ServiceSpec {
                    counter,
                    ..config.spec(Vec::new())
                },
                members: config.backends.iter().map(|t| t.addr).collect(),
                health: config.health.clone(),
                retired_slots,
            });
        }
        // A retired slot another backend took (only once every slot was
        // used) counts for its new owner alone.
        let taken: std::collections::BTreeSet<u16> = set.iter().map(|b| b.slot).collect();
        for service in &mut services {
            service.retired_slots.retain(|slot| !taken.contains(slot));
        }
        Ok(Self(services))
    }
}

#[cfg(test)]
mod tests;
