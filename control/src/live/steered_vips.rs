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
//! Where BGP announces the VIPs (VIP mode) through a BIRD of its own
//! without `RR_BGP_ROUTES`, the announced routes follow too: BIRD is
//! reconfigured with the new VIPs and its sessions stay up. Fixed routes
//! (`RR_BGP_ROUTES`, or the operator's BIRD) stay as they are, and a VIP
//! that came later is warned of; so is an IPv6 VIP, which BGP does not
//! announce (IPv4 only).

use std::collections::BTreeSet;
use std::net::IpAddr;

use tracing::{info, warn};

use crate::backends::{NamedServices, Publisher};
use crate::bgp::{BgpHandle, Route};

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

/// The IPv4 VIPs as host routes, in order; an IPv6 one is warned of once
/// (`warned`): the announcements are IPv4 only.
fn announced_routes(vips: &[IpAddr], warned: &mut BTreeSet<IpAddr>) -> Vec<Route> {
    let mut routes = Vec::with_capacity(vips.len());
    for vip in vips {
        match vip {
            IpAddr::V4(v4) => routes.push(Route::host(*v4)),
            IpAddr::V6(_) => {
                if warned.insert(*vip) {
                    warn!(%vip, "an IPv6 VIP is steered but not announced over BGP (IPv4 only)");
                }
            }
        }
    }
    routes
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

/// What BGP does with the VIPs.
#[derive(Debug, Clone)]
pub enum VipAnnouncing {
    /// Nothing: BGP is off, or announces the balancer's own address (GRE
    /// mode, where a service's VIP is an inner address).
    Not,
    /// Routes fixed at start (`RR_BGP_ROUTES`, or the operator's BIRD): a
    /// VIP that comes later is warned of.
    Fixed,
    /// BIRD of ours announces the (IPv4) VIPs: it follows them.
    Following(BgpHandle),
}

/// Keeps every steering on `RR_VIPS` (`rr_vips`) and the services' VIPs as
/// the services change, until the task is dropped. Each steering holds
/// `at_start` when this begins; BGP's routes follow as `announcing` says.
pub async fn follow_services(
    publisher: Publisher,
    rr_vips: Vec<IpAddr>,
    at_start: Vec<IpAddr>,
    steerings: Vec<Box<dyn VipSteering>>,
    announcing: VipAnnouncing,
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
        let in_order = steered(&rr_vips, &publisher.services());
        let wanted: BTreeSet<IpAddr> = in_order.iter().copied().collect();
        match &announcing {
            VipAnnouncing::Not => {}
            VipAnnouncing::Fixed => {
                for vip in wanted.difference(&at_start) {
                    if warned.insert(*vip) {
                        warn!(
                            %vip,
                            "a VIP that came after the start is steered but not announced over \
                             BGP: the routes are fixed (RR_BGP_ROUTES, or your BIRD's)"
                        );
                    }
                }
            }
            VipAnnouncing::Following(bgp) => {
                bgp.set_routes(announced_routes(&in_order, &mut warned));
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
