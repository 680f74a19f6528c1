//! The live balancer: `rusty_rail` on an interface until SIGINT or SIGTERM.
//!
//! - [`args`]: the live settings (`RR_DEVICE`, `RR_IO`, workers, cores, ...).
//! - [`device`]: the interface's index, MAC, MTU and address.
//! - [`netlink`] and [`neighbours`]: backends' next-hop MACs from the
//!   kernel's neighbour table.
//! - [`host_rules`]: the nftables table that keeps the kernel from answering
//!   the GRE the balancer forwards.
//! - [`workers`]: the pinned `AF_PACKET` workers.
//!
//! Everything the balancer changes on the system is undone at exit, in
//! reverse order, also when starting fails half-way (guards drop).

pub mod args;
pub mod device;
pub mod host_rules;
pub mod neighbours;
pub mod netlink;
pub mod workers;

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dataplane::io::offloads::{self, Offload, OffloadGuard};
use tracing::{info, warn};

pub use args::LiveArgs;
use device::Device;
use host_rules::HostRules;
use neighbours::{NextHop, Resolver};
use workers::Workers;

use crate::api::{self, ApiState};
use crate::backends::Publisher;
use crate::config::MacAddr;
use crate::health::{self, HealthConfig};
use crate::tables;

/// How often next hops are re-read from the neighbour table.
const RESOLVE_INTERVAL: Duration = Duration::from_secs(1);
/// How long start-up waits for backends' next hops before starting anyway
/// (unresolved backends stay out of the table until they resolve).
const RESOLVE_AT_START: Duration = Duration::from_secs(3);

/// A start-up failure: configuration (exit code 2) or the system (1).
#[derive(Debug)]
pub enum StartError {
    Config(String),
    System(String),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Config(m) | Self::System(m) => f.write_str(m),
        }
    }
}

impl StartError {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::Config(_) => ExitCode::from(2),
            Self::System(_) => ExitCode::FAILURE,
        }
    }
}

/// Runs the balancer until SIGINT or SIGTERM.
pub fn run(args: &LiveArgs) -> Result<(), StartError> {
    let config = |e: crate::config::ConfigError| StartError::Config(e.to_string());
    args.balancer.validate().map_err(config)?;
    let cores = args.worker_cores().map_err(config)?;
    let device = Device::lookup(&args.device).map_err(|e| match e {
        device::DeviceError::Query { .. } => StartError::System(e.to_string()),
        _ => StartError::Config(e.to_string()),
    })?;
    let lb_ip = args.balancer.lb_ip.or(device.ipv4).ok_or_else(|| {
        StartError::Config(format!(
            "RR_LB_IP: not given, and {} has no IPv4 address to default to; expected an IPv4 address such as 192.0.2.10",
            device.name
        ))
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StartError::System(format!("starting the control runtime: {e}")))?;
    // Bound first: a taken port fails the start before the system is touched.
    let api_listener = match args.balancer.api.0 {
        Some(addr) => Some(
            runtime
                .block_on(api::bind(addr))
                .map_err(|e| StartError::System(e.to_string()))?,
        ),
        None => None,
    };
    info!(
        device = %device.name, lb_ip = %lb_ip, workers = cores.len(), cores = ?cores,
        "starting: packet I/O af_packet (this build's only live backend)"
    );

    let offloads = receive_offloads_off(&device.name, args.keep_offloads)?;
    let rules = HostRules::install(&device.name, lb_ip, args.balancer.vips.as_slice())
        .map_err(|e| StartError::System(e.to_string()))?;
    info!(
        table = rules.table(),
        "nftables: the kernel's copies of balanced traffic are dropped"
    );

    let static_macs = args.balancer.backend_macs.0.clone();
    let targets: Vec<Ipv4Addr> = args
        .balancer
        .target_ips
        .as_slice()
        .iter()
        .map(|t| t.addr)
        .collect();
    let mut resolver = Resolver::new(device.index, &device.name)
        .map_err(|e| StartError::System(format!("opening rtnetlink: {e}")))?;
    let hops = resolve_at_start(&mut resolver, &targets);
    for &backend in &targets {
        report_next_hop(
            backend,
            static_macs.contains_key(&backend),
            hops.get(&backend),
        );
    }
    let mac_for = |ip: Ipv4Addr| {
        static_macs
            .get(&ip)
            .map(|m| m.0)
            .or_else(|| hops.get(&ip).and_then(NextHop::mac))
    };
    let mut settings = tables::table_settings(&args.balancer, lb_ip);
    settings.lb_mac = device.mac;
    let publisher = tables::backend_set(&args.balancer, mac_for)
        .and_then(|set| Publisher::new(settings, set))
        .map_err(|e| StartError::Config(e.to_string()))?;

    let io_config = workers::af_packet_config(&device.name, cores.len());
    let workers = Workers::start(
        &io_config,
        tables::worker_config(&args.balancer),
        &cores,
        &publisher.handle(),
    )
    .map_err(StartError::System)?;

    let stop = Arc::new(AtomicBool::new(false));
    let refresher = {
        let stop = Arc::clone(&stop);
        let publisher = publisher.clone();
        let static_macs = static_macs.clone();
        std::thread::Builder::new()
            .name("rr-neighbours".into())
            .spawn(move || keep_next_hops(&mut resolver, &publisher, &static_macs, &stop))
            .map_err(|e| StartError::System(format!("starting the neighbour thread: {e}")))?
    };

    runtime.block_on(async {
        let mut health = health::spawn(publisher.clone(), HealthConfig::from_args(&args.balancer));
        let (api_stop, api_stopped) = tokio::sync::oneshot::channel::<()>();
        let api_task = api_listener.map(|listener| {
            info!(addr = ?listener.local_addr().ok(), "API listening");
            let state = ApiState::new(publisher.clone(), workers.counters.clone());
            tokio::spawn(api::serve_on(listener, state, async {
                let _ = api_stopped.await;
            }))
        });
        info!("running; SIGINT or SIGTERM stops");
        wait_for_signal(&workers).await;
        health.stop();
        let _ = api_stop.send(());
        if let Some(task) = api_task {
            let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
        }
    });
    stop.store(true, Ordering::Relaxed);
    let _ = refresher.join();
    let counters = workers.counters.clone();
    for error in workers.stop() {
        warn!("{error}");
    }
    let table = publisher.handle().load();
    for (index, c) in counters.iter().enumerate() {
        println!("worker {index}:\n{}", crate::report::render(c, &table));
    }
    if let Err(e) = rules.remove() {
        warn!("removing the nftables table: {e}");
    }
    if let Some(mut guard) = offloads {
        let changed: Vec<String> = guard.changes().iter().map(ToString::to_string).collect();
        match guard.restore() {
            Ok(()) if !changed.is_empty() => info!("offloads restored: {}", changed.join(", ")),
            Ok(()) => {}
            Err(e) => warn!("restoring offloads: {e}"),
        }
    }
    info!("stopped; the system is as before");
    Ok(())
}

/// Turns off the receive offloads that would hand the workers frames merged
/// beyond the MTU (GRO, LRO), unless asked to keep them. The guard puts them
/// back (also when start-up fails later and it drops).
fn receive_offloads_off(interface: &str, keep: bool) -> Result<Option<OffloadGuard>, StartError> {
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

/// Resolves next hops, waiting a little for the kernel to answer.
fn resolve_at_start(resolver: &mut Resolver, backends: &[Ipv4Addr]) -> HashMap<Ipv4Addr, NextHop> {
    let deadline = Instant::now() + RESOLVE_AT_START;
    loop {
        let hops = resolver.resolve(backends).unwrap_or_default();
        let pending = hops.values().any(|h| matches!(h, NextHop::Pending { .. }));
        if !pending || Instant::now() >= deadline {
            return hops;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn report_next_hop(backend: Ipv4Addr, is_static: bool, hop: Option<&NextHop>) {
    match (is_static, hop) {
        (true, _) => info!(%backend, "next hop from RR_BACKEND_MACS"),
        (false, Some(hop @ NextHop::Resolved(_))) => {
            info!(%backend, next_hop = %hop, "next hop resolved");
        }
        (false, Some(hop)) => warn!(%backend, "not used until its next hop resolves: {hop}"),
        (false, None) => warn!(%backend, "not used: its next hop could not be looked up"),
    }
}

/// Re-reads next hops every second (at once when the backend set changes)
/// until `stop`, and tells the publisher when a backend's MAC changes,
/// appears or goes away.
fn keep_next_hops(
    resolver: &mut Resolver,
    publisher: &Publisher,
    static_macs: &BTreeMap<Ipv4Addr, MacAddr>,
    stop: &AtomicBool,
) {
    let mut last_error = None;
    let mut seen_generation = publisher.generation();
    while !stop.load(Ordering::Relaxed) {
        let slice = Duration::from_millis(50);
        let mut waited = Duration::ZERO;
        while waited < RESOLVE_INTERVAL
            && !stop.load(Ordering::Relaxed)
            && publisher.generation() == seen_generation
        {
            std::thread::sleep(slice);
            waited += slice;
        }
        seen_generation = publisher.generation();
        let backends = publisher.backends();
        let unresolved: Vec<Ipv4Addr> = backends
            .iter()
            .map(|b| b.addr)
            .filter(|a| !static_macs.contains_key(a))
            .collect();
        let hops = match resolver.resolve(&unresolved) {
            Ok(hops) => hops,
            Err(e) => {
                let text = e.to_string();
                if last_error.as_ref() != Some(&text) {
                    warn!("reading the neighbour table: {text}");
                    last_error = Some(text);
                }
                continue;
            }
        };
        for backend in &backends {
            let Some(hop) = hops.get(&backend.addr) else {
                continue;
            };
            let mac = hop.mac();
            if mac == backend.mac {
                continue;
            }
            if mac.is_some() {
                info!(backend = %backend.addr, next_hop = %hop, "next hop resolved");
            } else {
                warn!(backend = %backend.addr, "out of service: {hop}");
            }
            if let Err(e) = publisher.set_mac(backend.addr, mac) {
                warn!(backend = %backend.addr, "publishing its next hop: {e}");
            }
        }
        seen_generation = publisher.generation();
    }
}

/// Waits for SIGINT or SIGTERM, or until a worker dies.
async fn wait_for_signal(workers: &Workers) {
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
