//! The publisher: owns the backend set and the table handle workers read,
//! and turns every change into a new forwarding table.
//!
//! A change is applied to a copy of the set, the Maglev table is built from
//! the copy (off the packet path: on the caller's thread, under the
//! publisher's lock so that publications are ordered), and only if that
//! succeeds is the copy kept and the table swapped in atomically with the
//! next generation. Workers never take the lock: they load the handle once
//! per batch.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use dataplane::forwarding::{ForwardingSpec, ForwardingTable, TableHandle};
use tokio::sync::watch;

use super::backend::Backend;
use super::error::BackendError;
use super::health_state::Transition;
use super::set::BackendSet;

/// Everything in a forwarding table except the backends and the generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSettings {
    pub lb_ipv4: Ipv4Addr,
    pub lb_mac: [u8; 6],
    pub vips: Vec<IpAddr>,
    pub seed: u64,
    pub table_size: u32,
    pub mtu: u16,
}

/// Shared handle to the backend set and the published table; cheap to clone.
#[derive(Debug, Clone)]
pub struct Publisher {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    handle: TableHandle,
    /// The generation of the last published table, for tasks that follow
    /// the set (health checks, neighbour resolution).
    changes: watch::Sender<u64>,
}

#[derive(Debug)]
struct State {
    set: BackendSet,
    settings: TableSettings,
    generation: u64,
}

impl State {
    fn spec_of(&self, set: &BackendSet, generation: u64) -> ForwardingSpec {
        let s = &self.settings;
        ForwardingSpec {
            lb_ipv4: s.lb_ipv4,
            lb_mac: s.lb_mac,
            vips: s.vips.clone(),
            backends: set.specs(),
            seed: s.seed,
            table_size: s.table_size,
            mtu: s.mtu,
            generation,
        }
    }
}

impl Publisher {
    /// Builds the first table (generation 1) from `set`.
    pub fn new(settings: TableSettings, set: BackendSet) -> Result<Self, BackendError> {
        let state = State {
            set,
            settings,
            generation: 1,
        };
        let table = ForwardingTable::build(&state.spec_of(&state.set, 1))?;
        Ok(Self {
            inner: Arc::new(Inner {
                state: Mutex::new(state),
                handle: TableHandle::new(table),
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
        self.lock().generation
    }

    /// The spec of the table published last.
    pub fn spec(&self) -> ForwardingSpec {
        let state = self.lock();
        state.spec_of(&state.set, state.generation)
    }

    /// Every backend, in address order.
    pub fn backends(&self) -> Vec<Backend> {
        self.lock().set.iter().cloned().collect()
    }

    pub fn backend(&self, addr: Ipv4Addr) -> Option<Backend> {
        self.lock().set.get(addr).cloned()
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
        let mut state = self.lock();
        let mut set = state.set.clone();
        let result = change(&mut set)?;
        if set.specs() == state.set.specs() {
            state.set = set;
            return Ok(result);
        }
        let generation = state.generation + 1;
        let table = ForwardingTable::build(&state.spec_of(&set, generation))?;
        state.set = set;
        state.generation = generation;
        self.inner.handle.publish(table);
        self.inner.changes.send_replace(generation);
        Ok(result)
    }

    pub fn add(&self, addr: Ipv4Addr, weight: u32) -> Result<Backend, BackendError> {
        self.update(|set| set.add(addr, weight).cloned())
    }

    pub fn remove(&self, addr: Ipv4Addr) -> Result<Backend, BackendError> {
        self.update(|set| set.remove(addr))
    }

    pub fn set_weight(&self, addr: Ipv4Addr, weight: u32) -> Result<Backend, BackendError> {
        self.update(|set| set.set_weight(addr, weight).cloned())
    }

    pub fn set_drain(&self, addr: Ipv4Addr, drain: bool) -> Result<Backend, BackendError> {
        self.update(|set| set.set_drain(addr, drain).cloned())
    }

    /// The neighbour resolver's answer for `addr` (`None`: unresolved, so no
    /// traffic is sent there).
    pub fn set_mac(&self, addr: Ipv4Addr, mac: Option<[u8; 6]>) -> Result<(), BackendError> {
        self.update(|set| set.set_mac(addr, mac))
    }

    /// A health-check result; republishes when it completes a transition.
    pub fn record_health(
        &self,
        addr: Ipv4Addr,
        healthy: bool,
        rise: u32,
        fall: u32,
    ) -> Result<Option<Transition>, BackendError> {
        self.update(|set| set.record_health(addr, healthy, rise, fall))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves a consistent set (changes
        // are made on a copy), so a poisoned lock is still usable.
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests;
