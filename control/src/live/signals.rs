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

/// Waits out a graceful stop's `grace`, or less when another SIGINT or
/// SIGTERM arrives: the operator's "now", as a second Ctrl-C means to most
/// daemons. True when it was cut short.
pub async fn wait_grace(grace: Duration) -> bool {
    let at_start = host::signals::count();
    let cut = wait_unless_counted(grace, at_start, host::signals::count).await;
    if cut {
        let signal = host::signals::received().unwrap_or("signal");
        warn!("second {signal} during the grace period: stopping now");
    }
    cut
}

/// Waits `grace`, looking every tick whether `count` passed `at_start`.
async fn wait_unless_counted(grace: Duration, at_start: u32, count: impl Fn() -> u32) -> bool {
    let deadline = tokio::time::Instant::now() + grace;
    loop {
        if count() > at_start {
            return true;
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return false;
        }
        tokio::time::sleep((deadline - now).min(TICK)).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn the_grace_period_runs_out_without_another_signal() {
        let cut = wait_unless_counted(Duration::from_millis(30), 1, || 1).await;
        assert!(!cut);
    }

    #[tokio::test]
    async fn another_signal_cuts_the_grace_period_short() {
        let count = AtomicU32::new(1);
        let waiting = wait_unless_counted(Duration::from_secs(3600), 1, || {
            // The second signal arrives while it waits.
            count.fetch_add(1, Ordering::SeqCst)
        });
        let cut = tokio::time::timeout(Duration::from_secs(60), waiting).await;
        assert_eq!(cut, Ok(true), "an hour's grace ends at the next signal");
    }
}
