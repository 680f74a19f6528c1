//! The start-up stage before anything on the host changes: every setting
//! checked, the connection tables allocated (the largest allocations), the
//! API's token read and its port bound, the backends' next hops asked for
//! and the first forwarding table built. Whatever fails here fails with
//! nothing to undo: exit code 2 for a setting, 1 for the system.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use dataplane::pipeline::WorkerState;
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tracing::{info, warn};

use super::device::{self, Device};
use super::neighbours::{NextHop, Resolver};
use super::packet_io::{self, IoPlan};
use super::worker_count::{self, NetmapUse, WorkerPlan};
use super::{
    cores, netmap_port, next_hops, open_files, steered_vips, workers, LiveArgs, StartError,
};
use crate::api::{self, ApiLimits, ApiState};
use crate::backends::{BackendError, Publisher};
use crate::config::{ApiToken, BalancerArgs, MacAddr};
use crate::stats::SharedCounters;
use crate::tables;

/// Everything the balancer runs with, made without touching the host.
#[derive(Debug)]
pub struct Prepared {
    pub device: Device,
    pub lb_ip: Ipv4Addr,
    /// The balancer's IPv6 address (`RR_LB_IPV6` or the device's), which
    /// GRE over IPv6 is sent to.
    pub lb_ipv6: Option<Ipv6Addr>,
    /// The workers' cores, one per worker.
    pub cores: Vec<usize>,
    /// One per worker, allocated here.
    pub states: Vec<WorkerState>,
    /// The packet I/O backend, opened when the workers start.
    pub io: IoPlan,
    /// How long an idle worker spins before it sleeps (`RR_POLL`).
    pub idle_spin: std::time::Duration,
    /// The control runtime: health checks, the API, table reaping.
    pub runtime: Runtime,
    pub api: Option<PreparedApi>,
    pub resolver: Resolver,
    pub static_macs: BTreeMap<IpAddr, MacAddr>,
    pub publisher: Publisher,
    /// BGP, when `RR_BGP_*` turned it on.
    pub bgp: Option<crate::bgp::BgpSettings>,
    /// The `--config` file, whose services SIGHUP reloads.
    pub config: Option<std::path::PathBuf>,
    /// The VIPs the packet I/O and the host's rules take plain packets for:
    /// `RR_VIPS` and the services' VIPs at start.
    pub vips: Vec<IpAddr>,
}

/// The API, bound, with what its layers check.
#[derive(Debug)]
pub struct PreparedApi {
    pub listener: TcpListener,
    token: Option<ApiToken>,
    token_reads: bool,
    hosts: Vec<String>,
    limits: ApiLimits,
}

impl PreparedApi {
    /// What the log says of the token.
    pub fn token_use(&self) -> &'static str {
        match (&self.token, self.token_reads) {
            (None, _) => "none (loopback only)",
            (Some(_), false) => "required on changes",
            (Some(_), true) => "required on every route but /healthz",
        }
    }

    /// The API's state over `publisher` and the workers' `counters`.
    pub fn state(&self, publisher: Publisher, counters: Vec<SharedCounters>) -> ApiState {
        ApiState::new(publisher, counters)
            .with_token(self.token.clone(), self.token_reads)
            .with_hosts(&self.hosts)
            .with_limits(self.limits)
    }
}

fn config(e: impl std::fmt::Display) -> StartError {
    StartError::Config(e.to_string())
}

/// The whole stage, in the order its failures are likeliest.
pub fn prepare(args: &LiveArgs) -> Result<Prepared, StartError> {
    args.balancer.validate().map_err(config)?;
    let device = Device::lookup(&args.device).map_err(|e| match e {
        device::DeviceError::Query { .. } => StartError::System(e.to_string()),
        _ => StartError::Config(e.to_string()),
    })?;
    let (plan, netmap_rx_rings) = plan_workers(args, &device.name)?;
    info!("{plan}");
    let cores = plan.cores;
    // Before any control thread starts, so that they all inherit the set.
    let control_cores = cores::control_cores(&cores::allowed_cores(), &cores);
    if let Err(e) = cores::pin_current_thread(&control_cores) {
        warn!("control threads not pinned to {control_cores:?}: {e}");
    }
    let lb_ip = args.balancer.lb_ip.or(device.ipv4).ok_or_else(|| {
        StartError::Config(format!(
            "RR_LB_IP: not given, and {} has no IPv4 address to default to; expected an IPv4 address such as 192.0.2.10",
            device.name
        ))
    })?;
    // The outer source toward IPv6 backends.
    let lb_ipv6 = args.balancer.lb_ipv6.or(device.ipv6);
    check_ipv6_source(&args.balancer, lb_ipv6, &device.name)?;
    let api_token = match args.balancer.api.0 {
        Some(addr) => Some((
            addr,
            args.balancer.api_access.token_for(addr).map_err(config)?,
        )),
        None => None,
    };
    warn_if_others_can_read(args.balancer.api_access.api_token_file.as_deref());
    info!(
        device = %device.name, lb_ip = %lb_ip,
        lb_ipv6 = %lb_ipv6.map_or_else(|| "none".to_owned(), |a| a.to_string()),
        workers = cores.len(), cores = ?cores,
        control_cores = ?control_cores,
        io = ?args.io,
        "starting"
    );
    let states = workers::allocate_states(tables::worker_config(&args.balancer), cores.len())
        .map_err(|e| StartError::Config(format!("RR_CONNTRACK_CAPACITY: {e}")))?;
    raise_open_files(args);
    // From here SIGINT and SIGTERM only set a flag: a stop asked for while
    // the host is being changed is seen once it is running, and undone.
    host::signals::stop_on_signals()
        .map_err(|e| StartError::System(format!("catching SIGINT and SIGTERM: {e}")))?;
    let runtime = control_runtime(control_cores.len())?;
    let api = match api_token {
        Some((addr, token)) => Some(bind_api(&runtime, addr, token, args)?),
        None => None,
    };
    let static_macs = args.balancer.backend_macs.0.clone();
    let (mut resolver, publisher) = first_table(args, &device, (lb_ip, lb_ipv6), &static_macs)?;
    if let Some(path) = &args.config {
        super::config_reload::apply_services(path, &publisher).map_err(StartError::Config)?;
        super::config_reload::resolve_at_start(&mut resolver, &publisher, &static_macs);
    }
    // The services' VIPs are steered too, so that a VIP only the file names
    // reaches the balancer in VIP mode.
    let vips = steered_vips::steered(args.balancer.vips.as_slice(), &publisher.services());
    // VIP mode (RR_VIPS given) announces every VIP it steers, the
    // services' too; GRE mode its own address, where routers tunnel (a
    // service VIP there is an inner address, not a route).
    let announced: &[IpAddr] = if args.balancer.vips.as_slice().is_empty() {
        &[]
    } else {
        &vips
    };
    let bgp = args.bgp.settings(lb_ip, announced).map_err(config)?;
    let io = IoPlan::new(
        args.io,
        &device.name,
        cores.len(),
        netmap_rx_rings,
        device.mtu.max(u32::from(args.balancer.mtu)),
        (lb_ip, lb_ipv6),
        &vips,
    )
    .map_err(StartError::Config)?;
    Ok(Prepared {
        device,
        lb_ip,
        lb_ipv6,
        cores,
        states,
        io,
        idle_spin: args.poll.idle_spin(),
        runtime,
        api,
        resolver,
        static_macs,
        publisher,
        bgp,
        config: args.config.clone(),
        vips,
    })
}

/// An IPv6 backend needs the balancer's IPv6 address as the outer source:
/// without one it is refused here, before anything waits for next hops,
/// naming the device that has none.
fn check_ipv6_source(
    args: &BalancerArgs,
    lb_ipv6: Option<Ipv6Addr>,
    device: &str,
) -> Result<(), StartError> {
    let first_ipv6 = args
        .target_ips
        .as_slice()
        .iter()
        .find_map(|t| match t.addr {
            IpAddr::V6(addr) => Some(addr),
            IpAddr::V4(_) => None,
        });
    match (lb_ipv6, first_ipv6) {
        (None, Some(addr)) => Err(config(format!(
            "RR_TARGET_IPS: {} ({device} has none)",
            BackendError::Ipv6WithoutLbIpv6(addr)
        ))),
        _ => Ok(()),
    }
}

/// The workers' cores and why they are that many (see [`worker_count`]),
/// and the receive rings netmap reported for `interface` where the I/O may
/// be netmap. Asking is no change to the host (the port is not
/// registered); where `RR_IO=netmap` the answer is needed, so a refusal
/// fails the start.
fn plan_workers(
    args: &LiveArgs,
    interface: &str,
) -> Result<(WorkerPlan, Option<usize>), StartError> {
    let netmap = packet_io::netmap_use(args.io);
    let rx_rings = match netmap {
        NetmapUse::Chosen => Some(netmap_port::rx_rings(interface).map_err(StartError::System)?),
        NetmapUse::AutoMay => netmap_port::rx_rings(interface)
            .map_err(|e| warn!("RR_IO=auto: netmap cannot tell {interface}'s rings ({e})"))
            .ok(),
        NetmapUse::No => None,
    };
    let plan = worker_count::plan_workers(
        args.workers,
        args.cores.as_ref().map(|cores| cores.0.as_slice()),
        netmap,
        rx_rings,
        &cores::allowed_cores(),
        interface,
    )
    .map_err(config)?;
    Ok((plan, rx_rings))
}

/// A token file other users can read gives them the API: say so (the
/// start goes on; the file is the operator's to fix).
fn warn_if_others_can_read(token_file: Option<&std::path::Path>) {
    use std::os::unix::fs::PermissionsExt;
    let Some(path) = token_file else {
        return;
    };
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o044 != 0 {
            warn!(
                file = %path.display(),
                "RR_API_TOKEN_FILE can be read by other users, who can then change the backends; chmod 600 it"
            );
        }
    }
}

/// Raises the descriptor limit (see [`open_files`]); short of what this
/// configuration needs, the balancer still starts, with a warning that says
/// what to raise.
fn raise_open_files(args: &LiveArgs) {
    let api_connections = args
        .balancer
        .api
        .0
        .map_or(0, |_| args.balancer.api_access.api_max_connections);
    let needed = open_files::needed(args.balancer.target_ips.as_slice().len(), api_connections);
    match open_files::raise_to_hard() {
        Ok(raised) if raised.now < needed => warn!(
            limit = raised.now,
            needed,
            "the open-file limit is below what {} backends and {api_connections} API connections need; \
             raise the hard limit (ulimit -Hn, LimitNOFILE= in systemd) or lower RR_API_MAX_CONNECTIONS",
            args.balancer.target_ips.as_slice().len()
        ),
        Ok(raised) if raised.now > raised.before => info!(
            from = raised.before,
            to = raised.now,
            "open-file limit raised"
        ),
        Ok(_) => {}
        Err(e) => warn!("raising the open-file limit: {e}"),
    }
}

/// A multi-thread runtime: a Maglev build or a slow client in one task
/// never stalls the health probes in another.
fn control_runtime(control_cores: usize) -> Result<Runtime, StartError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(control_cores.clamp(2, 4))
        .thread_name("rr-control")
        .enable_all()
        .build()
        .map_err(|e| StartError::System(format!("starting the control runtime: {e}")))
}

/// Binds the API: a taken port fails the start before the host is touched.
fn bind_api(
    runtime: &Runtime,
    addr: SocketAddr,
    token: Option<ApiToken>,
    args: &LiveArgs,
) -> Result<PreparedApi, StartError> {
    let listener = runtime
        .block_on(api::bind(addr))
        .map_err(|e| StartError::System(e.to_string()))?;
    let access = &args.balancer.api_access;
    Ok(PreparedApi {
        listener,
        token,
        token_reads: access.api_token_reads,
        hosts: access.api_hosts.0.clone(),
        limits: ApiLimits::from_args(access),
    })
}

/// The neighbour resolver, the backends' next hops as the kernel knows them
/// now (waiting a little), and the first table built from them.
fn first_table(
    args: &LiveArgs,
    device: &Device,
    (lb_ip, lb_ipv6): (Ipv4Addr, Option<Ipv6Addr>),
    static_macs: &BTreeMap<IpAddr, MacAddr>,
) -> Result<(Resolver, Publisher), StartError> {
    let targets: Vec<IpAddr> = args
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
    let mac_for = |ip: IpAddr| {
        static_macs
            .get(&ip)
            .map(|m| m.0)
            .or_else(|| hops.get(&ip).and_then(NextHop::mac))
    };
    let mut settings = tables::table_settings(&args.balancer, lb_ip);
    settings.lb_mac = device.mac;
    settings.lb_ipv6 = lb_ipv6;
    let publisher = tables::backend_set(&args.balancer, mac_for)
        .and_then(|set| Publisher::new(settings, set))
        .map_err(config)?;
    Ok((resolver, publisher))
}
