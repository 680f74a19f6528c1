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
use super::steered_vips::{VipAnnouncing, VipSteering};
use super::workers::Workers;
use super::StartError;
use crate::api::{Liveness, DEFAULT_STALL_LIMIT};
use crate::backends::Publisher;
use crate::bgp::settings::Bird;
use crate::bgp::BgpSpeaker;
use crate::config::BalancerArgs;
use crate::health::{self, HealthConfig};

/// How often replaced forwarding tables no worker reads any more are freed.
const FREE_RETIRED_EVERY: Duration = Duration::from_secs(1);
/// How long the API may take to finish its requests in flight at stop.
const API_GRACE: Duration = Duration::from_secs(2);
/// How long BIRD may take to confirm a withdrawal at stop.
const WITHDRAW_WAIT: Duration = Duration::from_secs(2);

/// The balancer between start and stop.
#[derive(Debug)]
pub struct Running {
    runtime: Runtime,
    publisher: Publisher,
    workers: Workers,
    keeper: NextHopKeeper,
    api: Option<PreparedApi>,
    bgp: Option<BgpSpeaker>,
    /// BGP announces the VIPs (VIP mode, our BIRD, no `RR_BGP_ROUTES`), so
    /// its routes follow the services' VIPs.
    bgp_follows_vips: bool,
    /// How long to forward with the routes withdrawn before stopping.
    grace: Duration,
    /// The `--config` file, whose services SIGHUP reloads.
    config: Option<std::path::PathBuf>,
    /// The VIPs steered to the balancer at start.
    vips: Vec<std::net::IpAddr>,
    /// What steers them (the `AF_XDP` program's maps, the nftables sets),
    /// kept on the services' VIPs while running.
    vip_steerings: Vec<Box<dyn VipSteering>>,
}

impl Running {
    /// Starts the workers (their sockets are opened here, in the balancer's
    /// network namespace) and the neighbour thread. `host_steering` is the
    /// host's part of steering the VIPs (the nftables sets), if any.
    pub fn start(
        prepared: Prepared,
        host_steering: Option<Box<dyn VipSteering>>,
    ) -> Result<Self, StartError> {
        let Prepared {
            cores,
            states,
            io,
            idle_spin,
            runtime,
            api,
            resolver,
            static_macs,
            publisher,
            bgp,
            config,
            vips,
            ..
        } = prepared;
        let opened = io.open(cores.len()).map_err(StartError::System)?;
        let io_steering = opened.vip_steering().map_err(StartError::System)?;
        let vip_steerings = io_steering.into_iter().chain(host_steering).collect();
        let workers = Workers::start(opened, states, &cores, &publisher.handle(), idle_spin)
            .map_err(StartError::System)?;
        let keeper = NextHopKeeper::start(resolver, publisher.clone(), static_macs)
            .map_err(|e| StartError::System(format!("starting the neighbour thread: {e}")))?;
        let grace = bgp.as_ref().map_or(Duration::ZERO, |b| b.grace);
        // Our BIRD announcing the VIPs can follow them; fixed routes cannot.
        let bgp_follows_vips = bgp
            .as_ref()
            .is_some_and(|b| b.routes_are_vips && matches!(b.bird, Bird::Own(_)));
        let bgp = match bgp {
            Some(settings) => {
                let readiness = crate::readiness::Readiness {
                    publisher: publisher.clone(),
                    counters: workers.counters.clone().into(),
                    liveness: std::sync::Arc::new(Liveness::new(
                        &workers.counters,
                        DEFAULT_STALL_LIMIT,
                    )),
                };
                Some(BgpSpeaker::start(&settings, readiness).map_err(StartError::System)?)
            }
            None => None,
        };
        Ok(Self {
            runtime,
            publisher,
            workers,
            keeper,
            api,
            bgp,
            bgp_follows_vips,
            grace,
            config,
            vips,
            vip_steerings,
        })
    }

    /// Serves until SIGINT, SIGTERM or a worker's death; then stops the
    /// health checks and the API.
    pub fn serve_until_stopped(&mut self, args: &BalancerArgs) {
        let publisher = self.publisher.clone();
        let workers = &self.workers;
        let api = self.api.take();
        let bgp = self.bgp.as_ref().map(BgpSpeaker::handle);
        let grace = self.grace;
        let config = self.config.clone();
        let vips = self.vips.clone();
        let vip_steerings = std::mem::take(&mut self.vip_steerings);
        let rr_vips = args.vips.as_slice().to_vec();
        // BGP announces VIPs in VIP mode only (GRE mode: its own address).
        let announcing = match &bgp {
            Some(handle) if self.bgp_follows_vips => VipAnnouncing::Following(handle.clone()),
            Some(_) if !rr_vips.is_empty() => VipAnnouncing::Fixed,
            _ => VipAnnouncing::Not,
        };
        self.runtime.block_on(async {
            let mut health = health::spawn(publisher.clone(), HealthConfig::from_args(args));
            let freeing = tokio::spawn(free_retired_tables(publisher.clone()));
            let steering = tokio::spawn(super::steered_vips::follow_services(
                publisher.clone(),
                rr_vips,
                vips,
                vip_steerings,
                announcing,
            ));
            let reloading = config.clone().map(|path| {
                tokio::spawn(super::config_reload::reload_on_sighup(
                    path,
                    publisher.clone(),
                ))
            });
            let (api_stop, api_stopped) = tokio::sync::oneshot::channel::<()>();
            let api_task = api.map(|api| {
                let state = api
                    .state(publisher.clone(), workers.counters.clone())
                    .with_bgp(bgp.clone())
                    .with_config(config.clone());
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
            if let Some(bgp) = bgp {
                withdraw_for_grace(bgp, grace).await;
            }
            health.stop();
            freeing.abort();
            steering.abort();
            if let Some(reloading) = reloading {
                reloading.abort();
            }
            let _ = api_stop.send(());
            if let Some(task) = api_task {
                let _ = tokio::time::timeout(API_GRACE, task).await;
            }
        });
    }

    /// Stops the neighbour thread and the workers, and prints each worker's
    /// counters.
    pub fn stop(self) {
        if let Some(bgp) = self.bgp {
            bgp.stop();
        }
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

/// Withdraws the routes, then keeps forwarding for `grace` while the
/// routers move flows to the other balancers (less if a second SIGINT or
/// SIGTERM says to stop now).
async fn withdraw_for_grace(bgp: crate::bgp::BgpHandle, grace: Duration) {
    let confirmed = tokio::task::spawn_blocking(move || bgp.drain_and_wait(WITHDRAW_WAIT))
        .await
        .unwrap_or(false);
    if confirmed {
        info!("BGP routes withdrawn; forwarding for {grace:?} more before stopping");
    } else {
        warn!("BIRD did not confirm the withdrawal within {WITHDRAW_WAIT:?}; forwarding for {grace:?} more before stopping");
    }
    signals::wait_grace(grace).await;
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
