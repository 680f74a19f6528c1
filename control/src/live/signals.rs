//! What ends the balancer: SIGINT, SIGTERM, or a worker that stopped.

use std::time::Duration;

use tracing::{info, warn};

use super::workers::Workers;

/// Waits for SIGINT or SIGTERM, or until a worker dies.
pub async fn wait_for_signal(workers: &Workers) {
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    else {
        warn!("cannot watch for SIGTERM; stopping");
        return;
    };
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => { info!("SIGINT: stopping"); return; }
            _ = term.recv() => { info!("SIGTERM: stopping"); return; }
            _ = tick.tick() => {
                if !workers.all_running() {
                    warn!("a worker stopped on an I/O error; stopping");
                    return;
                }
            }
        }
    }
}
