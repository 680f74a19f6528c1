//! The live balancer's own settings (interface, packet I/O, workers, cores,
//! offloads, logging); the shared balancer settings come from
//! [`BalancerArgs`](crate::config::BalancerArgs).

#[cfg(target_os = "linux")]
use std::path::Path;
use std::time::Duration;

use dataplane::worker::DEFAULT_IDLE_SPIN;

use super::cores::{allowed_cores, parse_cores_within};
use crate::config::{BalancerArgs, ConfigError, Problem, Setting};

/// Options of the live balancer (`rusty_rail` without a subcommand).
#[derive(Debug, Clone, clap::Args)]
pub struct LiveArgs {
    /// The interface to balance on: GRE to its address is forwarded to
    /// backends, everything else is left to the host.
    #[arg(long, env = "RR_DEVICE", value_name = "IFNAME")]
    pub device: String,

    /// Packet I/O: auto picks the best this build and kernel have.
    #[arg(long = "io", env = "RR_IO", value_name = "BACKEND", default_value = "auto", value_parser = parse_io)]
    pub io: IoChoice,

    /// How an idle worker waits for frames: `poll` spins 200 µs after the
    /// last frame, then sleeps in the backend's poll (netmap's `poll()`,
    /// the socket's); `busy` never sleeps (its core stays at 100%, no
    /// wake-up latency).
    #[arg(long = "poll", env = "RR_POLL", value_name = "MODE", default_value = "poll", value_parser = parse_poll)]
    pub poll: PollMode,

    /// Dataplane workers, each pinned to a core: sharing the interface
    /// through an `AF_PACKET` fanout group, or one per receive queue on
    /// `AF_XDP` and netmap (a NIC ring pair each) [default: one per
    /// `RR_CORES` entry; else on netmap (`RR_IO=netmap`, or `auto` where
    /// `/dev/netmap` exists and they fit the cores) one per receive ring
    /// netmap reports, refused with how to lower the queues when they
    /// outnumber the usable cores; else 1].
    #[arg(long, env = "RR_WORKERS", value_name = "N", value_parser = parse_workers)]
    pub workers: Option<usize>,

    /// Cores the workers are pinned to, one per worker [default: the last
    /// cores, leaving core 0 to control when there are more cores than workers].
    #[arg(long, env = "RR_CORES", value_name = "CORE;...", value_parser = parse_cores)]
    pub cores: Option<Cores>,

    /// Leave the interface's receive offloads (GRO, LRO) as they are instead
    /// of turning off the ones that would hand the balancer merged frames.
    #[arg(long, env = "RR_KEEP_OFFLOADS", value_name = "BOOL", default_value = "0", value_parser = parse_keep_offloads)]
    pub keep_offloads: bool,

    /// A TOML file of settings and services (control/examples/services.toml);
    /// the environment and flags override its settings. Its services are
    /// reloaded on SIGHUP.
    #[arg(long, env = "RR_CONFIG", value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,

    /// Log filter (tracing's `EnvFilter` syntax: error, warn, info, debug,
    /// trace, or per module such as control=debug).
    #[arg(long, env = "RR_LOG", value_name = "FILTER", default_value = "info")]
    pub log: String,

    #[command(flatten)]
    pub balancer: BalancerArgs,

    /// BGP announcements through BIRD (`RR_BGP_*`), off by default.
    #[command(flatten)]
    pub bgp: crate::bgp::BgpArgs,
}

/// The packet I/O backend to run on. On FreeBSD netmap is the only one
/// (`auto` is netmap there): `AF_PACKET`, `AF_XDP` and the emulated port's
/// packet sockets are Linux's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoChoice {
    Auto,
    #[cfg(target_os = "linux")]
    AfPacket,
    #[cfg(target_os = "linux")]
    AfXdp,
    /// The kernel's netmap (`/dev/netmap`).
    Netmap,
    /// The netmap backend on a port whose kernel side runs in userspace over
    /// a packet socket: a test mode for machines without netmap, never
    /// picked by `auto`.
    #[cfg(target_os = "linux")]
    NetmapEmulated,
}

/// How idle workers wait (`RR_POLL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollMode {
    Poll,
    Busy,
}

impl PollMode {
    /// How long a worker spins without frames before it sleeps in the
    /// backend's poll: never, when busy-polling.
    pub fn idle_spin(self) -> Duration {
        match self {
            Self::Poll => DEFAULT_IDLE_SPIN,
            Self::Busy => Duration::MAX,
        }
    }
}

fn parse_poll(s: &str) -> Result<PollMode, ConfigError> {
    match s.trim().to_ascii_lowercase().as_str() {
        "poll" => Ok(PollMode::Poll),
        "busy" | "busy-poll" | "busy_poll" => Ok(PollMode::Busy),
        _ => Err(ConfigError::invalid(Setting::Poll, s, Problem::OutOfRange)),
    }
}

/// Where netmap's kernel side is reached.
#[cfg(target_os = "linux")]
pub const NETMAP_DEVICE: &str = "/dev/netmap";

/// FreeBSD: `netmap` or `auto` (netmap is in the GENERIC kernel; a kernel
/// without it fails the start when the port is opened, with the reason).
/// Every other value is refused naming these two.
#[cfg(target_os = "freebsd")]
fn parse_io(s: &str) -> Result<IoChoice, ConfigError> {
    match s.trim().to_ascii_lowercase().as_str() {
        "auto" => Ok(IoChoice::Auto),
        "netmap" => Ok(IoChoice::Netmap),
        _ => Err(ConfigError::invalid(
            Setting::Io,
            s,
            Problem::Unavailable(
                "on FreeBSD the balancer runs on netmap: use netmap or auto (which is netmap)"
                    .into(),
            ),
        )),
    }
}

#[cfg(target_os = "linux")]
fn parse_io(s: &str) -> Result<IoChoice, ConfigError> {
    match s.trim().to_ascii_lowercase().as_str() {
        "auto" => Ok(IoChoice::Auto),
        "af_packet" | "afpacket" => Ok(IoChoice::AfPacket),
        "af_xdp" | "afxdp" | "xdp" => Ok(IoChoice::AfXdp),
        "netmap" if Path::new(NETMAP_DEVICE).exists() => Ok(IoChoice::Netmap),
        "netmap" => Err(ConfigError::invalid(
            Setting::Io,
            s,
            Problem::Unavailable(
                "this kernel has no netmap (/dev/netmap is missing: load the netmap module); \
                 use af_xdp, af_packet or auto (netmap-emulated runs the netmap backend over a \
                 packet socket, for testing)"
                    .into(),
            ),
        )),
        "netmap-emulated" | "netmap_emulated" => Ok(IoChoice::NetmapEmulated),
        _ => Err(ConfigError::invalid(Setting::Io, s, Problem::OutOfRange)),
    }
}

/// How many cores the machine lets this process use (its CPU set's size).
pub fn available_cores() -> usize {
    allowed_cores().len()
}

fn parse_workers(s: &str) -> Result<usize, ConfigError> {
    let n: usize = s
        .trim()
        .parse()
        .map_err(|_| ConfigError::invalid(Setting::Workers, s, Problem::NotNumber))?;
    if n == 0 || n > available_cores() {
        return Err(ConfigError::invalid(
            Setting::Workers,
            s,
            Problem::OutOfRange,
        ));
    }
    Ok(n)
}

/// Cores to pin workers to, in worker order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cores(pub Vec<usize>);

fn parse_cores(s: &str) -> Result<Cores, ConfigError> {
    parse_cores_within(s, &allowed_cores()).map(Cores)
}

fn parse_keep_offloads(s: &str) -> Result<bool, ConfigError> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err(ConfigError::invalid(
            Setting::KeepOffloads,
            s,
            Problem::OutOfRange,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(e: &ConfigError) -> String {
        e.to_string()
    }

    #[test]
    #[cfg(target_os = "freebsd")]
    fn on_freebsd_only_netmap_and_auto_are_accepted() {
        assert_eq!(parse_io("auto").unwrap(), IoChoice::Auto);
        assert_eq!(parse_io("Netmap").unwrap(), IoChoice::Netmap);
        for other in ["af_packet", "af_xdp", "netmap-emulated", "dpdk"] {
            let error = message(&parse_io(other).unwrap_err());
            assert!(error.contains("use netmap or auto"), "{error}");
        }
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn io_backends_are_named_and_others_refused_with_the_list() {
        assert_eq!(parse_io("auto").unwrap(), IoChoice::Auto);
        assert_eq!(parse_io("AF_PACKET").unwrap(), IoChoice::AfPacket);
        assert_eq!(parse_io("af_xdp").unwrap(), IoChoice::AfXdp);
        if Path::new(NETMAP_DEVICE).exists() {
            assert_eq!(parse_io("netmap").unwrap(), IoChoice::Netmap);
        } else {
            let netmap = message(&parse_io("netmap").unwrap_err());
            assert!(
                netmap.contains("/dev/netmap is missing") && netmap.contains("netmap-emulated"),
                "{netmap}"
            );
        }
        assert_eq!(
            parse_io("netmap-emulated").unwrap(),
            IoChoice::NetmapEmulated
        );
        let other = message(&parse_io("dpdk").unwrap_err());
        assert!(
            other.contains("auto, af_packet, af_xdp, netmap or netmap-emulated"),
            "{other}"
        );
    }

    #[test]
    fn poll_modes_are_poll_or_busy_and_others_are_refused_with_both() {
        assert_eq!(parse_poll("poll").unwrap().idle_spin(), DEFAULT_IDLE_SPIN);
        assert_eq!(parse_poll("BUSY").unwrap(), PollMode::Busy);
        assert_eq!(PollMode::Busy.idle_spin(), Duration::MAX);
        let error = message(&parse_poll("spin").unwrap_err());
        assert!(error.contains("RR_POLL: \"spin\""), "{error}");
        assert!(error.contains("poll (sleep"), "{error}");
    }

    #[test]
    fn cores_take_lists_and_ranges_and_refuse_repeats_and_absent_cores() {
        assert_eq!(parse_cores("0").unwrap(), Cores(vec![0]));
        assert_eq!(
            parse_cores(&format!("0-{}", available_cores() - 1))
                .unwrap()
                .0
                .len(),
            available_cores()
        );
        assert!(message(&parse_cores("0;0").unwrap_err()).starts_with("RR_CORES: \"0\""));
        assert!(parse_cores("9999").is_err());
        assert!(parse_cores("x").is_err());
        assert!(parse_cores(";").is_err());
    }

    #[test]
    fn workers_must_fit_the_machine() {
        assert_eq!(parse_workers("1").unwrap(), 1);
        assert!(message(&parse_workers("0").unwrap_err())
            .starts_with("RR_WORKERS: \"0\" is out of range"));
        assert!(parse_workers("100000").is_err());
        assert!(parse_workers("two").is_err());
    }

    #[test]
    fn keep_offloads_is_a_boolean_word() {
        assert!(parse_keep_offloads("1").unwrap());
        assert!(!parse_keep_offloads("no").unwrap());
        assert!(message(&parse_keep_offloads("maybe").unwrap_err()).starts_with("RR_KEEP_OFFLOADS"));
    }
}
