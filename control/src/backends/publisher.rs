//! The publisher: owns the backend set and the table handle workers read,
//! and turns every change into a new forwarding table.
//!
//! Changes (API, health transitions, next hops) are serialized by one lock,
//! held through the Maglev build so that publications are ordered: a change
//! is applied to a copy of the set, the table is built from the copy, and
//! only if that succeeds is the copy kept and the table swapped in
//! atomically with the next generation.
//!
//! Nothing that only reads takes that lock. The backends and generation of
//! the last publication are an immutable snapshot, swapped in after each
//! change, so a `GET /backends`, a metrics scrape or a health supervisor
//! never waits for a rebuild, however large. Workers load the table handle
//! once per batch; the tables they stop using are freed here, on the
//! control side ([`RetiredTables`]), never at the end of a worker's batch.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use arc_swap::ArcSwap;
use dataplane::forwarding::{
    BackendSpec, ForwardingSpec, ForwardingTable, RetiredTables, TableHandle,
};
use tokio::sync::watch;

use super::backend::Backend;
use super::error::BackendError;
use super::health_state::Transition;
use super::services::NamedServices;
use super::set::BackendSet;
use super::slots::Slots;
use crate::config::file::ServiceConfig;

/// Everything in a forwarding table except the backends and the generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSettings {
    pub lb_ipv4: Ipv4Addr,
    /// The outer source toward IPv6 backends (and where GRE over IPv6 to
    /// the balancer goes); without it IPv6 backends are refused.
    pub lb_ipv6: Option<Ipv6Addr>,
    pub lb_mac: [u8; 6],
    pub vips: Vec<IpAddr>,
    pub seed: u64,
    pub table_size: u32,
    pub mtu: u16,
}

impl TableSettings {
    fn spec(&self, backends: Vec<BackendSpec>, generation: u64) -> ForwardingSpec {
        ForwardingSpec {
            lb_ipv4: self.lb_ipv4,
            lb_ipv6: self.lb_ipv6,
            lb_mac: self.lb_mac,
            vips: self.vips.clone(),
            backends,
            seed: self.seed,
            table_size: self.table_size,
            mtu: self.mtu,
            generation,
        }
    }
}

/// Shared handle to the backend set and the published table; cheap to clone.
#[derive(Debug, Clone)]
pub struct Publisher {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Taken by changes only, and held through the table build.
    writer: Mutex<Writer>,
    /// What readers see: the set as of the last change.
    view: ArcSwap<View>,
    settings: TableSettings,
    handle: TableHandle,
    /// Tables replaced while a worker may still read them; its own lock, so
    /// that freeing them never waits for a build.
    retired: Mutex<RetiredTables>,
    /// The generation of the last published table, for tasks that follow
    /// the set (health checks, neighbour resolution).
    changes: watch::Sender<u64>,
}

#[derive(Debug)]
struct Writer {
    set: BackendSet,
    /// Which backends of `set` belong to named services.
    services: NamedServices,
    /// The services' drop-counter ids: taken, free, and their generations.
    service_ids: Slots,
    generation: u64,
}

/// The backends (in address order), the services and the generation
/// readers see.
#[derive(Debug)]
struct View {
    backends: Vec<Backend>,
    services: NamedServices,
    generation: u64,
}

impl View {
    fn of(writer: &Writer) -> Arc<Self> {
        Arc::new(Self {
            backends: writer.set.iter().cloned().collect(),
            services: writer.services.clone(),
            generation: writer.generation,
        })
    }
}

impl Publisher {
    /// Builds the first table (generation 1) from `set`.
    pub fn new(settings: TableSettings, set: BackendSet) -> Result<Self, BackendError> {
        let table = ForwardingTable::build(&settings.spec(set.specs(), 1))?;
        let writer = Writer {
            set,
            services: NamedServices::default(),
            service_ids: Slots::with_capacity(dataplane::counters::SERVICE_COUNTERS),
            generation: 1,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                view: ArcSwap::new(View::of(&writer)),
                writer: Mutex::new(writer),
                settings,
                handle: TableHandle::new(table),
                retired: Mutex::new(RetiredTables::default()),
                changes: watch::Sender::new(1),
            }),
        })
    }

    /// Where workers load the current table from.
    pub fn handle(&self) -> TableHandle {
        self.inner.handle.clone()
    }

    /// The generation of the table published last.
    pub fn generation(&self) -> u64 {
        self.inner.view.load().generation
    }

    /// The spec of the table published last (its default service: the
    /// backends of no named service).
    pub fn spec(&self) -> ForwardingSpec {
        let view = self.inner.view.load();
        let names: std::collections::BTreeSet<IpAddr> = view
            .services
            .0
            .iter()
            .flat_map(|s| s.members.iter().copied())
            .collect();
        let backends = view
            .backends
            .iter()
            .filter(|b| !names.contains(&b.addr))
            .map(Backend::spec)
            .collect();
        self.inner.settings.spec(backends, view.generation)
    }

    /// The named services of the table published last.
    pub fn services(&self) -> NamedServices {
        self.inner.view.load().services.clone()
    }

    /// Makes the named services those of `configs` (a reload): removed
    /// services and backends leave, new ones join, kept backends keep their
    /// slots, generations, next hops and health, so established flows of
    /// untouched services stay where they are; one table is published for
    /// the whole change, sharing every unchanged service's Maglev table.
    /// On an error nothing changes.
    pub fn set_services(&self, configs: &[ServiceConfig]) -> Result<(), BackendError> {
        self.change_services(|current| {
            *current = configs.to_vec();
            Ok(())
        })
    }

    /// Edits the services' configurations (as [`NamedServices::configs`]
    /// gives them) and applies the result like [`Self::set_services`], all
    /// under one lock, so that concurrent edits do not undo each other.
    pub fn change_services<R>(
        &self,
        edit: impl FnOnce(&mut Vec<ServiceConfig>) -> Result<R, BackendError>,
    ) -> Result<R, BackendError> {
        let mut writer = self.lock();
        let mut configs = writer.services.configs(&writer.set);
        let result = edit(&mut configs)?;
        let mut set = writer.set.clone();
        let mut ids = writer.service_ids.clone();
        let services = writer.services.apply(&configs, &mut set, &mut ids)?;
        self.publish_locked(&mut writer, set, services)?;
        writer.service_ids = ids;
        Ok(result)
    }

    /// Every backend, in address order.
    pub fn backends(&self) -> Vec<Backend> {
        self.inner.view.load().backends.clone()
    }

    pub fn backend(&self, addr: IpAddr) -> Option<Backend> {
        let view = self.inner.view.load();
        let at = view.backends.binary_search_by_key(&addr, |b| b.addr).ok()?;
        Some(view.backends[at].clone())
    }

    /// A receiver that sees the generation of every table published from
    /// now on (tasks use it to notice added and removed backends at once).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    /// Applies `change` to the set and publishes the resulting table if the
    /// backends' specs changed. On any error, from `change` or from building
    /// the table, nothing changes.
    pub fn update<R>(
        &self,
        change: impl FnOnce(&mut BackendSet) -> Result<R, BackendError>,
    ) -> Result<R, BackendError> {
        let mut writer = self.lock();
        self.update_locked(&mut writer, change)
    }

    fn update_locked<R>(
        &self,
        writer: &mut Writer,
        change: impl FnOnce(&mut BackendSet) -> Result<R, BackendError>,
    ) -> Result<R, BackendError> {
        let mut set = writer.set.clone();
        let result = change(&mut set)?;
        let services = writer.services.clone();
        self.publish_locked(writer, set, services)?;
        Ok(result)
    }

    /// Publishes the table of `set` and `services` if the packet path would
    /// see a difference, and keeps them; on an error keeps the old ones.
    fn publish_locked(
        &self,
        writer: &mut Writer,
        set: BackendSet,
        services: NamedServices,
    ) -> Result<(), BackendError> {
        let input = services.split(&set);
        if input == writer.services.split(&writer.set) {
            // Nothing the packet path sees changed (a weight set while
            // draining, say): no table, but readers see the new set.
            writer.set = set;
            let services_changed = writer.services != services;
            writer.services = services;
            self.inner.view.store(View::of(writer));
            if services_changed {
                // A service's health check may have changed: the health
                // supervisor follows the services through this channel.
                self.inner.changes.send_replace(writer.generation);
            }
            return Ok(());
        }
        let (default, named) = input;
        let generation = writer.generation + 1;
        let spec = self.inner.settings.spec(default, generation);
        let previous = self.inner.handle.load();
        let table = ForwardingTable::build_with_services(&spec, &named, Some(&previous))?;
        drop(previous);
        writer.set = set;
        writer.services = services;
        writer.generation = generation;
        self.inner.handle.replace(table, &mut self.retired());
        self.inner.view.store(View::of(writer));
        self.inner.changes.send_replace(generation);
        Ok(())
    }

    pub fn add(&self, addr: IpAddr, weight: u32) -> Result<Backend, BackendError> {
        self.update(|set| set.add(addr, weight).cloned())
    }

    pub fn remove(&self, addr: IpAddr) -> Result<Backend, BackendError> {
        self.update(|set| set.remove(addr))
    }

    pub fn set_weight(&self, addr: IpAddr, weight: u32) -> Result<Backend, BackendError> {
        self.update(|set| set.set_weight(addr, weight).cloned())
    }

    pub fn set_drain(&self, addr: IpAddr, drain: bool) -> Result<Backend, BackendError> {
        self.update(|set| set.set_drain(addr, drain).cloned())
    }

    /// The neighbour resolver's answer for `addr` (`None`: unresolved, so no
    /// traffic is sent there).
    pub fn set_mac(&self, addr: IpAddr, mac: Option<[u8; 6]>) -> Result<(), BackendError> {
        self.update(|set| set.set_mac(addr, mac))
    }

    /// The health a checker concluded, having counted rise and fall itself:
    /// a change republishes, the same health changes nothing.
    pub fn set_health(&self, addr: IpAddr, up: bool) -> Result<Option<Transition>, BackendError> {
        if self.backend(addr).is_some_and(|b| b.health.is_up() == up) {
            return Ok(None);
        }
        self.update(|set| set.set_health(addr, up))
    }

    /// One health-check result; republishes when it completes a transition.
    /// A result that completes none only moves the backend's count of
    /// results in a row: no copy of the set, no table, no new snapshot.
    pub fn record_health(
        &self,
        addr: IpAddr,
        healthy: bool,
        rise: u32,
        fall: u32,
    ) -> Result<Option<Transition>, BackendError> {
        let mut writer = self.lock();
        let mut health = writer
            .set
            .get(addr)
            .ok_or(BackendError::Unknown(addr))?
            .health;
        if health.record(healthy, rise, fall).is_none() {
            return writer.set.record_health(addr, healthy, rise, fall);
        }
        self.update_locked(&mut writer, |set| {
            set.record_health(addr, healthy, rise, fall)
        })
    }

    /// Frees the replaced tables no worker reads any more (on this thread);
    /// returns how many are still read. Each publication does it too; call
    /// it now and then so the last one does not wait for the next change.
    pub fn free_retired_tables(&self) -> usize {
        self.retired().free_unused()
    }

    fn lock(&self) -> MutexGuard<'_, Writer> {
        // A panic while holding the lock leaves a consistent set (changes
        // are made on a copy), so a poisoned lock is still usable.
        self.inner
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn retired(&self) -> MutexGuard<'_, RetiredTables> {
        // A list of tables: consistent whatever panicked while holding it.
        self.inner
            .retired
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests;
