//! The start-up stage that changes the host, on FreeBSD: the interface's
//! capabilities that netmap cannot carry turned off (`-rxcsum -txcsum
//! -rxcsum6 -txcsum6 -tso -lro`, unless `RR_KEEP_OFFLOADS`), recorded as an
//! undo step the moment it is made ([`super::undo`]), so that every way out
//! puts them back, as on Linux.
//!
//! There is no firewall table here: the balancer's only backend on FreeBSD
//! is netmap, which takes the frames from the NIC, so the kernel never sees
//! (and never answers) what the balancer forwards. Linux needs its nftables
//! table only for `AF_PACKET`, where the kernel keeps a copy.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use host::interface_capabilities::{self, CapabilityGuard, FOR_NETMAP};
use tracing::{info, warn};

use super::packet_io::IoPlan;
use super::undo::{self, UndoStep};
use super::StartError;

/// The host as changed; dropping it (or [`undo`](Self::undo)) puts it back.
#[derive(Debug)]
#[must_use = "dropping it puts the host back at once"]
pub struct HostChanges {
    /// Made only by [`HostChanges::apply`].
    _applied: (),
}

impl HostChanges {
    /// Turns the capabilities netmap cannot carry off (unless
    /// `keep_offloads`). The balancer's address and VIPs need no rule here
    /// (see the module's docs); they are taken for the same call as on
    /// Linux.
    pub fn apply(
        device: &str,
        keep_offloads: bool,
        // Always netmap here: the capabilities below are netmap's, and no
        // firewall rule is needed.
        _io: &IoPlan,
        _lb: (Ipv4Addr, Option<Ipv6Addr>),
        _vips: &[IpAddr],
    ) -> Result<Self, StartError> {
        if keep_offloads {
            info!("RR_KEEP_OFFLOADS: interface capabilities left as they are");
            return Ok(Self { _applied: () });
        }
        let off = FOR_NETMAP.iter().fold(0, |bits, &(bit, _)| bits | bit);
        let guard = interface_capabilities::disable(device, off)
            .map_err(|e| StartError::System(format!("turning interface capabilities off: {e}")))?;
        let changed = guard.changed();
        if !changed.is_empty() {
            info!(
                "interface capabilities off on {device}: {}",
                changed.join(", ")
            );
        }
        undo::push(Box::new(RestoreCapabilities(guard)));
        Ok(Self { _applied: () })
    }

    /// Nothing to follow the services' VIPs with: netmap takes every frame
    /// and no firewall rule names them.
    pub fn vip_steering(&self) -> Option<Box<dyn super::steered_vips::VipSteering>> {
        None
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

/// Turns the capabilities changed back on.
struct RestoreCapabilities(CapabilityGuard);

impl UndoStep for RestoreCapabilities {
    fn undo(mut self: Box<Self>) {
        let changed = self.0.changed();
        match self.0.restore() {
            Ok(()) if !changed.is_empty() => {
                info!("interface capabilities restored: {}", changed.join(", "));
            }
            Ok(()) => {}
            Err(e) => warn!("restoring interface capabilities: {e}"),
        }
    }
}
