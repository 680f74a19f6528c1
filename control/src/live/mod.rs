//! The live balancer: `rusty_rail` on an interface until SIGINT or SIGTERM.
//!
//! [`run`] is its four stages, each in a file of its own:
//!
//! 1. [`prepare`]: everything that can fail for a setting, memory or a port
//!    (settings, the connection tables, the API's token and port, next hops,
//!    the first table), before the host is touched.
//! 2. [`host_changes`]: receive offloads off and the nftables table (on
//!    FreeBSD: the interface capabilities netmap cannot carry off, and no
//!    firewall rule), each recorded as it is made in [`undo`], whose steps
//!    every way out runs (normal stop, error, unwinding, and the panic hook
//!    where panics abort).
//! 3. [`running`]: the workers, the neighbour thread and the control runtime
//!    (health checks, the API) until a signal or a worker's death.
//! 4. Stop: the workers' counters printed, the host put back.
//!
//! The rest are their parts:
//! - [`args`]: the live settings (`RR_DEVICE`, `RR_IO`, workers, cores, ...).
//! - [`cores`]: the CPU set, the workers' cores, and the control threads' cores.
//! - [`device`]: the interface's index, MAC, MTU and address.
//! - [`neighbours`] and [`next_hops`]: backends' next-hop MACs from the
//!   kernel's neighbour table (through `host::netlink`; on FreeBSD the
//!   routing socket and the ARP table), kept current on a thread.
//! - [`open_files`]: the descriptor limit, raised at start.
//! - `receive_offloads`: GRO and LRO off while it runs, and for netmap the
//!   checksum and segmentation offloads (Linux).
//! - [`signals`]: what ends it.
//! - [`steered_vips`]: the VIPs taken from the interface (`RR_VIPS` and the
//!   services' VIPs), kept on the services' as they change.
//! - `host_rules`: the nftables table that keeps the kernel from answering
//!   the GRE and the VIP traffic the balancer forwards (Linux: `AF_PACKET`
//!   leaves the kernel a copy; netmap does not), its VIPs in sets changed
//!   while running.
//! - [`packet_io`]: `RR_IO`'s backend, opened, with `auto`'s fallback (on
//!   FreeBSD: netmap, the only backend there).
//! - `af_packet_slots`: the packet sockets' slot size and ring length
//!   (Linux).
//! - [`netmap_port`]: the kernel's netmap port, on Linux and FreeBSD.
//! - [`frame_room`]: the headroom and header room every backend leaves.
//! - [`worker_count`]: how many workers, on which cores (netmap's default:
//!   one per NIC ring pair).
//! - [`workers`]: the pinned dataplane workers.

#[cfg(target_os = "linux")]
pub mod af_packet_slots;
pub mod args;
pub mod config_reload;
pub mod cores;
pub mod device;
pub mod frame_room;
#[cfg(target_os = "linux")]
pub mod host_changes;
#[cfg(target_os = "freebsd")]
#[path = "host_changes_freebsd.rs"]
pub mod host_changes;
#[cfg(target_os = "linux")]
pub mod host_rules;
pub mod neighbours;
pub mod netmap_port;
pub mod next_hops;
pub mod open_files;
#[cfg(target_os = "linux")]
pub mod packet_io;
#[cfg(target_os = "freebsd")]
#[path = "packet_io_freebsd.rs"]
pub mod packet_io;
pub mod prepare;
#[cfg(target_os = "linux")]
pub mod receive_offloads;
pub mod running;
pub mod signals;
pub mod steered_vips;
pub mod undo;
pub mod worker_count;
pub mod workers;

use std::process::ExitCode;

use tracing::info;

pub use args::LiveArgs;
use host_changes::HostChanges;
use running::Running;

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

/// Runs the balancer until SIGINT or SIGTERM: prepare, change the host,
/// run, stop.
pub fn run(args: &LiveArgs) -> Result<(), StartError> {
    undo::install_panic_hook();
    let prepared = prepare::prepare(args)?;
    if let Some(signal) = host::signals::received() {
        info!("{signal} while starting: stopped before changing the host");
        return Ok(());
    }
    let host = HostChanges::apply(
        &prepared.device.name,
        args.keep_offloads,
        &prepared.io,
        (prepared.lb_ip, prepared.lb_ipv6),
        &prepared.vips,
    )?;
    // An error from here drops `host`, which puts the host back.
    let mut running = Running::start(prepared, host.vip_steering())?;
    running.serve_until_stopped(&args.balancer);
    running.stop();
    host.undo();
    info!("stopped; the system is as before");
    Ok(())
}
