//! `rusty_rail replay`: the real pipeline over a capture, with the same
//! configuration as the live balancer, so users can see where each packet
//! of their own traffic would go (our `katran_tester`).

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use dataplane::forwarding::{ForwardingError, ForwardingTable, TableHandle};
use dataplane::io::pcap::{PcapIo, PcapIoConfig};
use dataplane::pipeline::WorkerState;
use dataplane::worker::Worker;

use crate::config::{BalancerArgs, ConfigError};
use crate::report;

/// Options of `rusty_rail replay`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// Capture to replay (classic pcap, Ethernet).
    #[arg(long, value_name = "PCAP")]
    pub input: PathBuf,
    /// Where frames sent toward backends are written.
    #[arg(long, value_name = "PCAP")]
    pub output: PathBuf,
    /// Where frames passed to the host stack are written.
    #[arg(long, value_name = "PCAP")]
    pub to_host: Option<PathBuf>,
    /// Where dropped frames are written.
    #[arg(long, value_name = "PCAP")]
    pub dropped: Option<PathBuf>,
    #[command(flatten)]
    pub balancer: BalancerArgs,
}

/// Why a replay failed.
#[derive(Debug)]
pub enum ReplayError {
    /// The configuration is incomplete or inconsistent (exit code 2).
    Config(String),
    /// Reading the capture or writing an output failed (exit code 1).
    Io(String),
}

impl std::fmt::Display for ReplayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Config(m) | Self::Io(m) => f.write_str(m),
        }
    }
}

impl From<ConfigError> for ReplayError {
    fn from(e: ConfigError) -> Self {
        Self::Config(e.to_string())
    }
}

/// Replays the capture and returns the report to print.
pub fn run(args: &ReplayArgs) -> Result<String, ReplayError> {
    let balancer = &args.balancer;
    balancer.validate()?;
    let lb_ip = balancer.lb_ip.ok_or_else(|| {
        ReplayError::Config(
            "RR_LB_IP (--lb-ip) is required for replay: the IPv4 address GRE packets in the capture are sent to, e.g. 10.0.0.10".into(),
        )
    })?;
    let spec = crate::tables::forwarding_spec(balancer, lb_ip);
    let table = ForwardingTable::build(&spec).map_err(|e| match e {
        // Replay has no device to take the address from.
        ForwardingError::Ipv6BackendWithoutLbIpv6(addr) => ReplayError::Config(format!(
            "RR_TARGET_IPS: backend {addr} is IPv6, and replay needs RR_LB_IPV6 (--lb-ipv6), \
             the outer source of GRE over IPv6 toward it, e.g. 2001:db8::10"
        )),
        e => ReplayError::Config(format!("RR_TARGET_IPS / RR_TABLE_SIZE: {e}")),
    })?;
    let io = PcapIo::open(PcapIoConfig {
        host_output: args.to_host.clone(),
        dropped_output: args.dropped.clone(),
        ..PcapIoConfig::new(&args.input, &args.output)
    })
    .map_err(|e| ReplayError::Io(e.to_string()))?;
    let state = WorkerState::new(crate::tables::worker_config(balancer));
    let handle = TableHandle::new(table);
    // One frame per batch, so every frame sees its own capture time (the
    // connection and fragment tables' clocks follow the capture, not the wall).
    let mut worker =
        Worker::new(io, state, handle.clone(), Arc::new(AtomicBool::new(false))).with_batch(1);
    let started = Instant::now();
    let mut last_ms = 0;
    while !worker.io.is_exhausted() {
        last_ms = worker
            .io
            .next_timestamp()
            .map_or(last_ms, |t| t.as_millis() as u64);
        worker
            .run_once(last_ms)
            .map_err(|e| ReplayError::Io(e.to_string()))?;
    }
    // Let fragments still waiting for a first fragment time out and be counted.
    let settle = u64::try_from(balancer.fragment_hold.as_millis()).unwrap_or(u64::MAX);
    worker
        .run_once(last_ms.saturating_add(settle))
        .map_err(|e| ReplayError::Io(e.to_string()))?;
    let elapsed = started.elapsed();
    let frames = worker.io.frames_replayed();
    let counters = worker.state.counters.clone();
    worker
        .io
        .finish()
        .map_err(|e| ReplayError::Io(e.to_string()))?;
    let rate = frames as f64 / elapsed.as_secs_f64().max(1e-9) / 1e6;
    let mut text = format!(
        "replayed {frames} frames from {} in {:.3} s ({rate:.2} Mpps, one core, including pcap I/O)\n\n",
        args.input.display(),
        elapsed.as_secs_f64()
    );
    text.push_str(&report::render(&counters, &handle.load()));
    Ok(text)
}
