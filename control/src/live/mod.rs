//! The live balancer: `rusty_rail` on an interface until SIGINT or SIGTERM.
//!
//! - [`args`]: the live settings (`RR_DEVICE`, `RR_IO`, workers, cores, ...).
//! - [`cores`]: the CPU set, the workers' cores, and the control threads' cores.
//! - [`device`]: the interface's index, MAC, MTU and address.
//! - [`neighbours`] and [`next_hops`]: backends' next-hop MACs from the
//!   kernel's neighbour table (through `host::netlink`), kept current on a
//!   thread.
//! - [`receive_offloads`]: GRO and LRO off while it runs.
//! - [`signals`]: what ends it.
//! - [`host_rules`]: the nftables table that keeps the kernel from answering
//!   the GRE the balancer forwards.
//! - [`workers`]: the pinned `AF_PACKET` workers.
//!
//! Everything the balancer changes on the system is undone at exit, in
//! reverse order, also when starting fails half-way (guards drop).

pub mod args;
pub mod cores;
pub mod device;
pub mod host_rules;
pub mod neighbours;
pub mod next_hops;
pub mod receive_offloads;
pub mod signals;
pub mod workers;

use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::time::Duration;

use tracing::{info, warn};

pub use args::LiveArgs;
use device::Device;
use host_rules::HostRules;
use neighbours::{NextHop, Resolver};
use next_hops::NextHopKeeper;
use workers::Workers;

use crate::api::{self, ApiState};
use crate::backends::Publisher;
use crate::health::{self, HealthConfig};
use crate::tables;

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
    // Before any control thread starts, so that they all inherit the set.
    let control_cores = cores::control_cores(&cores::allowed_cores(), &cores);
    if let Err(e) = cores::pin_current_thread(&control_cores) {
        warn!("control threads not pinned to {control_cores:?}: {e}");
    }
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
        control_cores = ?control_cores,
        "starting: packet I/O af_packet (this build's only live backend)"
    );
    // Before the host is changed: a refusal here leaves nothing to undo.
    let states = workers::allocate_states(tables::worker_config(&args.balancer), cores.len())
        .map_err(|e| StartError::Config(format!("RR_CONNTRACK_CAPACITY: {e}")))?;
    let io_config = workers::af_packet_config(
        &device.name,
        cores.len(),
        device.mtu.max(u32::from(args.balancer.mtu)),
    )
    .map_err(StartError::Config)?;

    let offloads = receive_offloads::turn_off(&device.name, args.keep_offloads)?;
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
    let hops = next_hops::resolve_at_start(&mut resolver, &targets);
    for &backend in &targets {
        next_hops::report_next_hop(
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

    let workers = Workers::start(&io_config, states, &cores, &publisher.handle())
        .map_err(StartError::System)?;

    let keeper = NextHopKeeper::start(resolver, publisher.clone(), static_macs)
        .map_err(|e| StartError::System(format!("starting the neighbour thread: {e}")))?;

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
        signals::wait_for_signal(&workers).await;
        health.stop();
        let _ = api_stop.send(());
        if let Some(task) = api_task {
            let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
        }
    });
    keeper.stop();
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
    receive_offloads::restore(offloads);
    info!("stopped; the system is as before");
    Ok(())
}
