//! What ends the balancer: SIGINT, SIGTERM, or a worker that stopped.
//! Signals set `host::signals`' flag, the workspace's one way of catching
//! them; the control runtime looks at it between ticks.

use std::time::Duration;

use tracing::{info, warn};

use super::workers::Workers;

/// How often the flag and the workers are looked at: short enough that a
/// stop feels immediate, long enough to cost nothing.
const TICK: Duration = Duration::from_millis(100);

/// Waits for SIGINT or SIGTERM, or until a worker dies.
pub async fn wait_for_signal(workers: &Workers) {
    if let Err(e) = host::signals::stop_on_signals() {
        warn!("cannot catch SIGINT and SIGTERM ({e}); stopping");
        return;
    }
    let mut tick = tokio::time::interval(TICK);
    loop {
        tick.tick().await;
        if let Some(signal) = host::signals::received() {
            info!("{signal}: stopping");
            return;
        }
        if !workers.all_running() {
            warn!("a worker stopped on an I/O error; stopping");
            return;
        }
    }
}
