//! The receive offloads the balancer turns off while it runs, and puts back.

use host::offloads::{self, Offload, OffloadGuard};
use tracing::{info, warn};

use super::StartError;

/// Turns off the receive offloads that would hand the workers frames merged
/// beyond the MTU (GRO, LRO), unless asked to keep them. The guard puts them
/// back (also when start-up fails later and it drops).
pub fn turn_off(interface: &str, keep: bool) -> Result<Option<OffloadGuard>, StartError> {
    if keep {
        info!("RR_KEEP_OFFLOADS: offloads left as they are");
        return Ok(None);
    }
    let guard = offloads::disable(interface, &[Offload::Gro, Offload::Lro])
        .map_err(|e| StartError::System(format!("turning receive offloads off: {e}")))?;
    for change in guard.changes() {
        info!("offload changed: {change}");
    }
    for refused in guard.refused() {
        tracing::debug!("offload left alone: {refused}");
    }
    Ok(Some(guard))
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
