//! The receive offloads the balancer turns off while it runs, and puts back.

use host::offloads::{self, Offload, OffloadGuard};
use tracing::{info, warn};

use super::StartError;

/// Turns off the receive offloads that would hand the workers frames merged
/// beyond the MTU (GRO, LRO), unless asked to keep them; for netmap also
/// those [`for_netmap`] names. The guard puts them back (also when start-up
/// fails later and it drops).
pub fn turn_off(
    interface: &str,
    keep: bool,
    netmap: bool,
) -> Result<Option<OffloadGuard>, StartError> {
    if keep {
        info!("RR_KEEP_OFFLOADS: offloads left as they are");
        if netmap {
            warn!(
                "RR_KEEP_OFFLOADS with netmap: netmap passes the host's frames to the wire as \
                 they are, and drops those left to checksum or segmentation offload (the \
                 host's own TCP may stall); turn tx, tso and gso off yourself"
            );
        }
        return Ok(None);
    }
    let guard = offloads::disable(interface, &offloads_to_turn_off(netmap))
        .map_err(|e| StartError::System(format!("turning receive offloads off: {e}")))?;
    for change in guard.changes() {
        info!("offload changed: {change}");
    }
    for refused in guard.refused() {
        tracing::debug!("offload left alone: {refused}");
    }
    Ok(Some(guard))
}

/// What is turned off: GRO and LRO always; with netmap also the transmit
/// checksum and segmentation offloads (netmap's rings carry frames as
/// given: the host stack's frames, passed to the wire through the host
/// rings, must be whole and finished) and receive checksumming (the NIC's
/// verdict does not travel through netmap's rings to the host).
pub fn offloads_to_turn_off(netmap: bool) -> Vec<Offload> {
    let mut off = vec![Offload::Gro, Offload::Lro];
    if netmap {
        off.extend([
            Offload::TxChecksum,
            Offload::Tso,
            Offload::Gso,
            Offload::RxChecksum,
        ]);
    }
    off
}

/// Puts back what [`turn_off`] changed, logging it.
pub fn restore(guard: Option<OffloadGuard>) {
    let Some(mut guard) = guard else {
        return;
    };
    let changed: Vec<String> = guard.changes().iter().map(ToString::to_string).collect();
    match guard.restore() {
        Ok(()) if !changed.is_empty() => info!("offloads restored: {}", changed.join(", ")),
        Ok(()) => {}
        Err(e) => warn!("restoring offloads: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netmap_also_turns_off_what_would_leave_frames_unfinished() {
        assert_eq!(offloads_to_turn_off(false), [Offload::Gro, Offload::Lro]);
        let netmap = offloads_to_turn_off(true);
        for offload in [
            Offload::Gro,
            Offload::Lro,
            Offload::TxChecksum,
            Offload::Tso,
        ] {
            assert!(netmap.contains(&offload), "{offload:?}");
        }
    }
}
