//! Health checks: one tokio task per backend probes it every interval and
//! counts the results in a row itself; only when `fall` failures or `rise`
//! successes in a row flip the backend's state does it tell the
//! [`Publisher`], which republishes the table. A result that flips nothing
//! takes no lock and builds nothing, so probes never queue behind a table
//! build, and a thousand backends cost a thousand probes, not a thousand
//! copies of the set.
//!
//! A supervisor follows the backend set through [`Publisher::subscribe`]:
//! a backend added through the API is checked from the next moment, a
//! removed one's task is stopped. A named service's backends are checked
//! with the service's own check when it has one, the others with
//! `RR_HEALTH`; a backend whose check changes (a reload) gets a new task,
//! keeping its state, and one left with no check at all is brought up, as
//! if checks had never run. A transition republishes only the backend's
//! own service's Maglev table (the others' are shared). Backends start up (up until proven down),
//! as with no health check at all, so that a balancer forwards from its first
//! packet; a dead backend is out after `fall` intervals.

mod probe;

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use tokio::task::{AbortHandle, JoinHandle, JoinSet};
use tokio::time::MissedTickBehavior;

pub use probe::{probe, ProbeError};

use crate::backends::{BackendError, HealthState, Publisher, Transition};
use crate::config::{BalancerArgs, HealthCheck};

/// What to probe, how often, and how many results flip a backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthConfig {
    pub check: HealthCheck,
    pub interval: Duration,
    pub timeout: Duration,
    pub rise: u32,
    pub fall: u32,
}

impl HealthConfig {
    pub fn from_args(args: &BalancerArgs) -> Self {
        Self {
            check: args.health.clone(),
            interval: args.health_interval,
            timeout: args.health_timeout,
            rise: args.health_rise,
            fall: args.health_fall,
        }
    }
}

/// The running checks; dropping it (or [`HealthChecks::stop`]) stops them all.
#[derive(Debug)]
pub struct HealthChecks {
    supervisor: Option<JoinHandle<()>>,
}

impl HealthChecks {
    /// Stops every check.
    pub fn stop(&mut self) {
        if let Some(task) = self.supervisor.take() {
            task.abort();
        }
    }
}

impl Drop for HealthChecks {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts checking every backend of `publisher`, now and as the set changes,
/// on the current tokio runtime. A backend whose check is
/// `HealthCheck::None` (the balancer's, with no service check of its own)
/// is not probed and stays up.
pub fn spawn(publisher: Publisher, config: HealthConfig) -> HealthChecks {
    HealthChecks {
        supervisor: Some(tokio::spawn(supervise(publisher, config))),
    }
}

/// The check each backend is probed with: its service's, else `RR_HEALTH`;
/// backends with no check are left out.
fn checks_by_backend(publisher: &Publisher, global: &HealthCheck) -> HashMap<IpAddr, HealthCheck> {
    let services = publisher.services();
    let own = services.health_checks();
    publisher
        .backends()
        .iter()
        .map(|b| (b.addr, own.get(&b.addr).map_or(global, |c| *c)))
        .filter(|(_, check)| **check != HealthCheck::None)
        .map(|(addr, check)| (addr, check.clone()))
        .collect()
}

/// Keeps one check task per checked backend. The tasks live in a
/// `JoinSet`, so aborting the supervisor aborts them all. Each change of
/// the set costs time linear in the number of backends (hash lookups both
/// ways).
async fn supervise(publisher: Publisher, config: HealthConfig) {
    let mut changes = publisher.subscribe();
    let mut tasks = JoinSet::new();
    let mut running: HashMap<IpAddr, (HealthCheck, AbortHandle)> = HashMap::new();
    loop {
        while tasks.try_join_next().is_some() {}
        let mut wanted = checks_by_backend(&publisher, &config.check);
        let mut unchecked = Vec::new();
        running.retain(|addr, (check, task)| {
            let keep = wanted.get(addr) == Some(check) && !task.is_finished();
            if !keep {
                task.abort();
                if !wanted.contains_key(addr) {
                    unchecked.push(*addr);
                }
            }
            keep
        });
        for addr in unchecked {
            bring_up_unchecked(&publisher, addr).await;
        }
        for (addr, check) in wanted.drain() {
            if let Entry::Vacant(slot) = running.entry(addr) {
                let task = tasks.spawn(check_loop(
                    publisher.clone(),
                    config.clone(),
                    check.clone(),
                    addr,
                ));
                slot.insert((check, task));
            }
        }
        if changes.changed().await.is_err() {
            return;
        }
    }
}

/// A backend that stays in the set but is no longer checked (its
/// service's check was removed) is up, as an unchecked backend always is:
/// otherwise the last check's verdict would keep it out for good.
async fn bring_up_unchecked(publisher: &Publisher, addr: IpAddr) {
    if publisher.backend(addr).is_none_or(|b| b.health.is_up()) {
        return;
    }
    let p = publisher.clone();
    // Republishing builds a Maglev table: keep it off the async threads.
    if let Ok(Ok(Some(_))) = tokio::task::spawn_blocking(move || p.set_health(addr, true)).await {
        tracing::info!(backend = %addr, "backend no longer checked: back in rotation");
    }
}

/// Probes one backend every interval until it leaves the set.
async fn check_loop(publisher: Publisher, config: HealthConfig, check: HealthCheck, addr: IpAddr) {
    let mut ticks = tokio::time::interval(config.interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let Some(backend) = publisher.backend(addr) else {
        return;
    };
    // This task's own count of results in a row: the publisher hears of
    // the backend only when the count flips its state.
    let mut health = if backend.health.is_up() {
        HealthState::UP
    } else {
        HealthState::DOWN
    };
    loop {
        ticks.tick().await;
        let result = probe(&check, addr, config.timeout).await;
        let Some(transition) = health.record(result.is_ok(), config.rise, config.fall) else {
            continue;
        };
        let up = transition == Transition::CameUp;
        let p = publisher.clone();
        // Republishing builds a Maglev table: keep it off the async threads.
        let recorded = tokio::task::spawn_blocking(move || p.set_health(addr, up)).await;
        match recorded {
            Ok(Ok(Some(Transition::WentDown))) => tracing::warn!(
                backend = %addr,
                check = %check,
                reason = %result.as_ref().err().map(ToString::to_string).unwrap_or_default(),
                failures = config.fall,
                "backend down: no new flows, its established flows are re-balanced"
            ),
            Ok(Ok(Some(Transition::CameUp))) => tracing::info!(
                backend = %addr,
                check = %check,
                successes = config.rise,
                "backend up: back in rotation"
            ),
            Ok(Ok(None)) => {}
            Ok(Err(BackendError::Unknown(_))) | Err(_) => return,
            Ok(Err(e)) => tracing::error!(
                backend = %addr,
                error = %e,
                "health result not applied"
            ),
        }
    }
}

#[cfg(test)]
mod tests;
