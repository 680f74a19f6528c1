//! The VIPs the balancer takes plain packets for (VIP mode): `RR_VIPS` and
//! every service's VIP, kept so while the balancer runs.
//!
//! What takes them from the interface is built at start from the list
//! [`steered`] gives: the `AF_XDP` program's VIP maps and the nftables
//! table's VIP sets (which keep the kernel from answering its copies). A
//! reload or `POST /services` that brings a VIP, or takes the last service
//! off one, changes both while the workers run ([`follow_services`]): the
//! difference ([`VipChanges::between`]) is applied as elements added to or
//! deleted from those maps and sets, so a new VIP is taken from the next
//! packet on and a removed one is the kernel's again, unless `RR_VIPS`
//! names it. The forwarding table serves every service's VIP whatever
//! steered it there, and netmap takes every frame, so it needs no list.
//!
//! What still follows only from the next start: BGP's announcements (the
//! routes BIRD is configured with at start), of which a warning says so.

use std::collections::BTreeSet;
use std::net::IpAddr;

use tracing::{info, warn};

use crate::backends::{NamedServices, Publisher};

/// `vips` (`RR_VIPS`) and the services' VIPs, each once, in that order.
pub fn steered(vips: &[IpAddr], services: &NamedServices) -> Vec<IpAddr> {
    let mut seen = BTreeSet::new();
    vips.iter()
        .copied()
        .chain(services.0.iter().map(|s| s.template.vip))
        .filter(|vip| seen.insert(*vip))
        .collect()
}

/// What to add to and remove from a steering to go from one set of VIPs
/// to another.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VipChanges {
    pub added: Vec<IpAddr>,
    pub removed: Vec<IpAddr>,
}

impl VipChanges {
    /// From `now` to `wanted`: what `wanted` has that `now` lacks, and the
    /// reverse, each in address order.
    pub fn between(now: &BTreeSet<IpAddr>, wanted: &BTreeSet<IpAddr>) -> Self {
        Self {
            added: wanted.difference(now).copied().collect(),
            removed: now.difference(wanted).copied().collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }
}

/// One VIP a steering could not change, and why.
pub type VipFailure = (IpAddr, String);

/// Something that takes VIPs' packets from the interface (or keeps the
/// kernel from answering them) and can change which while it runs.
pub trait VipSteering: Send + std::fmt::Debug {
    /// What it is, for the log.
    fn what(&self) -> &'static str;

    /// Adds `changes.added` and removes `changes.removed`; returns those it
    /// could not change (the others are changed).
    fn apply(&mut self, changes: &VipChanges) -> Vec<VipFailure>;
}

/// A steering with the VIPs it holds now.
#[derive(Debug)]
struct Followed {
    steering: Box<dyn VipSteering>,
    holds: BTreeSet<IpAddr>,
}

impl Followed {
    /// Brings it to `wanted`, logging each change; what failed stays as it
    /// was, to be tried again at the next change of the services.
    fn follow(&mut self, wanted: &BTreeSet<IpAddr>) {
        let changes = VipChanges::between(&self.holds, wanted);
        if changes.is_empty() {
            return;
        }
        let what = self.steering.what();
        let failed = self.steering.apply(&changes);
        for (vip, why) in &failed {
            warn!(%vip, steering = what, "a VIP's steering could not be changed: {why}");
        }
        let failed: BTreeSet<IpAddr> = failed.into_iter().map(|(vip, _)| vip).collect();
        for vip in changes.added.iter().filter(|v| !failed.contains(v)) {
            self.holds.insert(*vip);
            info!(%vip, steering = what, "VIP steered to the balancer");
        }
        for vip in changes.removed.iter().filter(|v| !failed.contains(v)) {
            self.holds.remove(vip);
            info!(%vip, steering = what, "VIP no longer steered, left to the kernel");
        }
    }
}

/// Keeps every steering on `RR_VIPS` (`rr_vips`) and the services' VIPs as
/// the services change, until the task is dropped. Each steering holds
/// `at_start` when this begins. Where BGP announces the VIPs
/// (`bgp_announces_vips`), a VIP that was not there at start is warned of
/// once: BIRD announces the routes it started with.
pub async fn follow_services(
    publisher: Publisher,
    rr_vips: Vec<IpAddr>,
    at_start: Vec<IpAddr>,
    steerings: Vec<Box<dyn VipSteering>>,
    bgp_announces_vips: bool,
) {
    let at_start: BTreeSet<IpAddr> = at_start.into_iter().collect();
    let mut followed: Vec<Followed> = steerings
        .into_iter()
        .map(|steering| Followed {
            steering,
            holds: at_start.clone(),
        })
        .collect();
    let mut changes = publisher.subscribe();
    let mut warned = BTreeSet::new();
    loop {
        let wanted: BTreeSet<IpAddr> = steered(&rr_vips, &publisher.services())
            .into_iter()
            .collect();
        if bgp_announces_vips {
            for vip in wanted.difference(&at_start) {
                if warned.insert(*vip) {
                    warn!(
                        %vip,
                        "a VIP that came after the start is steered but not announced over BGP \
                         until the next start (BIRD announces the routes it started with: \
                         RR_BGP_ROUTES, or RR_VIPS and the services' VIPs at start)"
                    );
                }
            }
        }
        // A steering's change may run nft: off the runtime's threads.
        followed = tokio::task::spawn_blocking(move || {
            for one in &mut followed {
                one.follow(&wanted);
            }
            followed
        })
        .await
        .unwrap_or_default();
        if changes.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests;
