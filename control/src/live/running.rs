//! The running balancer: the workers and the neighbour thread started, the
//! control runtime serving health checks, the API and the freeing of
//! replaced tables until SIGINT, SIGTERM or a worker's death; then stopped
//! in order, its counters printed. The host's changes are undone by the
//! caller after [`Running::stop`].

use std::time::Duration;

use tokio::runtime::Runtime;
use tracing::{info, warn};

use super::next_hops::NextHopKeeper;
use super::prepare::{Prepared, PreparedApi};
use super::signals;
use super::workers::Workers;
use super::StartError;
use crate::backends::Publisher;
use crate::config::BalancerArgs;
use crate::health::{self, HealthConfig};

/// How often replaced forwarding tables no worker reads any more are freed.
const FREE_RETIRED_EVERY: Duration = Duration::from_secs(1);
/// How long the API may take to finish its requests in flight at stop.
const API_GRACE: Duration = Duration::from_secs(2);

/// The balancer between start and stop.
#[derive(Debug)]
pub struct Running {
    runtime: Runtime,
    publisher: Publisher,
    workers: Workers,
    keeper: NextHopKeeper,
    api: Option<PreparedApi>,
}

impl Running {
    /// Starts the workers (their sockets are opened here, in the balancer's
    /// network namespace) and the neighbour thread.
    pub fn start(prepared: Prepared) -> Result<Self, StartError> {
        let Prepared {
            cores,
            states,
            io,
            runtime,
            api,
            resolver,
            static_macs,
            publisher,
            ..
        } = prepared;
        let opened = io.open(cores.len()).map_err(StartError::System)?;
        let workers = Workers::start(opened, states, &cores, &publisher.handle())
            .map_err(StartError::System)?;
        let keeper = NextHopKeeper::start(resolver, publisher.clone(), static_macs)
            .map_err(|e| StartError::System(format!("starting the neighbour thread: {e}")))?;
        Ok(Self {
            runtime,
            publisher,
            workers,
            keeper,
            api,
        })
    }

    /// Serves until SIGINT, SIGTERM or a worker's death; then stops the
    /// health checks and the API.
    pub fn serve_until_stopped(&mut self, args: &BalancerArgs) {
        let publisher = self.publisher.clone();
        let workers = &self.workers;
        let api = self.api.take();
        self.runtime.block_on(async {
            let mut health = health::spawn(publisher.clone(), HealthConfig::from_args(args));
            let freeing = tokio::spawn(free_retired_tables(publisher.clone()));
            let (api_stop, api_stopped) = tokio::sync::oneshot::channel::<()>();
            let api_task = api.map(|api| {
                let state = api.state(publisher.clone(), workers.counters.clone());
                info!(
                    addr = ?api.listener.local_addr().ok(),
                    token = api.token_use(),
                    "API listening"
                );
                tokio::spawn(crate::api::serve_on(api.listener, state, async {
                    let _ = api_stopped.await;
                }))
            });
            info!("running; SIGINT or SIGTERM stops");
            signals::wait_for_signal(workers).await;
            health.stop();
            freeing.abort();
            let _ = api_stop.send(());
            if let Some(task) = api_task {
                let _ = tokio::time::timeout(API_GRACE, task).await;
            }
        });
    }

    /// Stops the neighbour thread and the workers, and prints each worker's
    /// counters.
    pub fn stop(self) {
        self.keeper.stop();
        let counters = self.workers.counters.clone();
        for error in self.workers.stop() {
            warn!("{error}");
        }
        let table = self.publisher.handle().load();
        for (index, c) in counters.iter().enumerate() {
            println!("worker {index}:\n{}", crate::report::render(c, &table));
        }
        drop(table);
        self.publisher.free_retired_tables();
    }
}

/// Frees, now and then, the replaced tables the workers have let go of
/// (each publication frees them too; this catches the last one).
async fn free_retired_tables(publisher: Publisher) {
    let mut ticks = tokio::time::interval(FREE_RETIRED_EVERY);
    loop {
        ticks.tick().await;
        publisher.free_retired_tables();
    }
}
