//! The start-up stage that changes the host: receive offloads off, then the
//! nftables table. Each change is recorded as an undo step the moment it is
//! made ([`super::undo`]), so that every way out puts the host back: a
//! normal stop ([`HostChanges::undo`]), an error later in start-up or an
//! unwinding panic (the guard drops), a panic that aborts (the panic hook).
//!
//! Nothing that can fail for want of memory, a setting or a port comes after
//! this stage but the workers' sockets and threads ([`super::prepare`] has
//! done the rest), and those failures return errors that drop the guard.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use host::offloads::OffloadGuard;
use tracing::{info, warn};

use super::host_rules::{HostRules, VipSets};
use super::packet_io::IoPlan;
use super::receive_offloads;
use super::steered_vips::VipSteering;
use super::undo::{self, UndoStep};
use super::StartError;

/// The host as changed; dropping it (or [`undo`](Self::undo)) puts it back.
#[derive(Debug)]
#[must_use = "dropping it puts the host back at once"]
pub struct HostChanges {
    /// The nftables table's VIP sets, where the table was installed.
    vip_sets: Option<VipSets>,
}

impl HostChanges {
    /// Turns the receive offloads off (unless `keep_offloads`; more of
    /// them where `io` may run on netmap) and, where `io` may run on a
    /// backend that leaves the kernel its own copy of every frame, installs
    /// the nftables table for a balancer at `lb` (IPv4, and IPv6 where it
    /// has one) serving `vips`.
    pub fn apply(
        device: &str,
        keep_offloads: bool,
        io: &IoPlan,
        lb: (Ipv4Addr, Option<Ipv6Addr>),
        vips: &[IpAddr],
    ) -> Result<Self, StartError> {
        let netmap = io.may_use_netmap();
        if let Some(offloads) = receive_offloads::turn_off(device, keep_offloads, netmap)? {
            undo::push(Box::new(RestoreOffloads(Some(offloads))));
        }
        if !io.needs_host_rules() {
            info!("nftables: no rule needed, the kernel never sees what the balancer takes");
            return Ok(Self { vip_sets: None });
        }
        // From here an error return puts the offloads back (the caller has
        // no guard yet): undo what is recorded.
        let rules = HostRules::install(device, lb, vips).map_err(|e| {
            undo::undo_all();
            StartError::System(e.to_string())
        })?;
        info!(
            table = rules.table(),
            "nftables: the kernel's copies of balanced traffic are dropped"
        );
        let vip_sets = Some(rules.vip_sets());
        undo::push(Box::new(RemoveRules(rules)));
        Ok(Self { vip_sets })
    }

    /// What keeps the kernel from answering VIP traffic, to follow the
    /// services' VIPs while running: the nftables VIP sets, where installed
    /// (they go with the table when the host is put back).
    pub fn vip_steering(&self) -> Option<Box<dyn VipSteering>> {
        self.vip_sets
            .clone()
            .map(|sets| Box::new(sets) as Box<dyn VipSteering>)
    }

    /// Puts the host back now, saying what was done.
    pub fn undo(self) {
        drop(self);
    }
}

impl Drop for HostChanges {
    fn drop(&mut self) {
        undo::undo_all();
    }
}

/// Deletes the nftables table.
struct RemoveRules(HostRules);

impl UndoStep for RemoveRules {
    fn undo(self: Box<Self>) {
        let table = self.0.table().to_owned();
        match self.0.remove() {
            Ok(()) => info!(table, "nftables table removed"),
            Err(e) => warn!("removing the nftables table {table}: {e}"),
        }
    }
}

/// Turns the offloads changed back on.
struct RestoreOffloads(Option<OffloadGuard>);

impl UndoStep for RestoreOffloads {
    fn undo(self: Box<Self>) {
        receive_offloads::restore(self.0);
    }
}
