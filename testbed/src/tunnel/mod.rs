//! `testbed tunnel`: GRE tunnel endpoints in userspace, for kernels without
//! GRE devices (and to see every packet's fate in counters).
//!
//! ```text
//!  client ns                                   server ns
//!  app -> VIP route -> tun --encap--> raw GRE socket ==GRE==> raw GRE socket --decap--> tun (VIP on it) -> app
//!                                                                                                         |
//!  app <------------------------------- plain IP, VIP -> client, normal routing (DSR) <-------------------+
//! ```
//!
//! - [`EncapEndpoint`] (`testbed tunnel encap`), the router: a tun device
//!   with the VIP routes; each packet read from it gets a GRE header (with
//!   the optional key) and goes to the balancer picked by the inner 5-tuple's
//!   flow hash ([`encap`]); the kernel adds the outer IPv4 header.
//! - [`DecapEndpoint`] (`testbed tunnel decap`), the server: a raw
//!   `IPPROTO_GRE` socket receives every GRE packet (and keeps the kernel from
//!   answering protocol-unreachable); checked packets ([`decap`]) are written
//!   into a tun device that holds the VIPs, so the kernel delivers them to
//!   local sockets. Replies leave by the namespace's normal routes, straight
//!   to the client: direct server return.
//!
//! Both run on one thread in a poll loop with one preallocated buffer (no
//! per-packet allocation) until SIGINT/SIGTERM or, in-process, a stop flag;
//! at exit the binary prints the counters as one JSON object on stdout.
//! Cleanup is the tun descriptor's close: the kernel removes the device with
//! its routes and addresses, also when the process is killed.
//!
//! Run one decap endpoint per network namespace: every raw GRE socket gets a
//! copy of every GRE packet, so two would deliver each packet twice. (The
//! encap endpoint's socket discards what it receives, so it can share a
//! namespace with a decap endpoint.)
//!
//! In-process use (a test's thread that entered a namespace):
//!
//! ```no_run
//! # use std::sync::atomic::AtomicBool;
//! # use testbed::tunnel::{DecapConfig, DecapEndpoint};
//! let config = DecapConfig { tun: "gre0".into(), vip: vec!["192.0.2.1".parse().unwrap()], key: None };
//! let mut endpoint = DecapEndpoint::open(&config).unwrap();
//! let counters = endpoint.counters();
//! let stop = AtomicBool::new(false);
//! endpoint.run(&stop).unwrap(); // until another thread sets `stop`
//! println!("{}", counters.to_json());
//! ```

pub mod config;
pub mod counters;
pub mod decap;
pub mod ecmp_group;
pub mod encap;
pub mod endpoint;
pub mod gre_socket;
pub mod poll;
pub mod prefix;
pub mod system;
pub mod tun;

pub use config::{DecapConfig, EncapConfig};
pub use counters::Counters;
pub use decap::{DecapDrop, Decapsulator};
pub use encap::{EncapDrop, Encapsulator};
pub use endpoint::{DecapEndpoint, EncapEndpoint, TunnelError};
pub use prefix::Prefix;

use std::process::ExitCode;

use clap::{Args, Subcommand};

/// `testbed tunnel` options.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    testbed tunnel encap --tun rr-gre --vip 192.0.2.1 --remote 10.0.0.2,10.0.0.3 --seed 7\n  \
    testbed tunnel decap --tun rr-gre --vip 192.0.2.1 --key 42")]
pub struct TunnelArgs {
    #[command(subcommand)]
    pub mode: TunnelMode,
}

/// Which end of the tunnel to run.
#[derive(Debug, Subcommand)]
pub enum TunnelMode {
    /// Router side: route VIPs into a tun device and send their packets as GRE to the balancer(s).
    Encap(EncapConfig),
    /// Server side: receive GRE on a raw socket and deliver the inner packets through a tun holding the VIPs.
    Decap(DecapConfig),
}

/// Runs the endpoint until SIGINT/SIGTERM; prints its counters as JSON.
pub fn main(args: &TunnelArgs) -> ExitCode {
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("testbed tunnel: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &TunnelArgs) -> Result<(), TunnelError> {
    let stop = host::signals::stop_on_signals().map_err(TunnelError::Loop)?;
    let (counters, result) = match &args.mode {
        TunnelMode::Encap(config) => {
            let mut endpoint = EncapEndpoint::open(config)?;
            eprintln!(
                "tunnel encap: {} carries {} to {}; ready",
                config.tun,
                joined(&config.vip),
                joined(&config.remote)
            );
            let result = endpoint.run(stop);
            (endpoint.counters(), result)
        }
        TunnelMode::Decap(config) => {
            let mut endpoint = DecapEndpoint::open(config)?;
            eprintln!(
                "tunnel decap: GRE for {} delivered through {}; ready",
                joined(&config.vip),
                config.tun
            );
            let result = endpoint.run(stop);
            (endpoint.counters(), result)
        }
    };
    println!("{}", counters.to_json());
    result
}

fn joined<T: ToString>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use crate::cli::{Cli, Command};
    use clap::Parser;

    use super::TunnelMode;

    /// `testbed tunnel encap --tun t0 ARGS`, parsed.
    fn encap_of(args: &[&str]) -> super::EncapConfig {
        let argv = ["testbed", "tunnel", "encap", "--tun", "t0"];
        let cli = Cli::try_parse_from(argv.iter().chain(args)).unwrap();
        let Command::Tunnel(args) = cli.command else {
            panic!("not the tunnel command");
        };
        let TunnelMode::Encap(config) = args.mode else {
            panic!("not encap");
        };
        config
    }

    #[test]
    fn the_command_line_takes_comma_separated_vips_and_remotes() {
        let config = encap_of(&[
            "--vip",
            "192.0.2.1,2001:db8::/64",
            "--remote",
            "10.0.0.2,10.0.0.3",
            "--key",
            "0x2a",
            "--seed",
            "7",
        ]);
        assert_eq!(config.vip.len(), 2);
        assert_eq!(config.remote.len(), 2);
        assert_eq!(config.key, Some(42));
        assert_eq!(config.seed, 7);
    }

    #[test]
    fn an_ipv6_remote_is_taken_for_gre_over_ipv6() {
        let config = encap_of(&[
            "--vip",
            "192.0.2.1",
            "--remote",
            "fd00:201::10",
            "--local",
            "fd00:201::1",
        ]);
        let remote: std::net::IpAddr = "fd00:201::10".parse().unwrap();
        assert_eq!(config.remote, vec![remote]);
        assert_eq!(config.local, Some("fd00:201::1".parse().unwrap()));
    }

    #[test]
    fn a_bad_vip_or_key_is_refused_with_what_is_accepted() {
        for (option, value, accepted) in [
            ("--vip", "192.0.2.1/40", "at most 32"),
            ("--key", "x7", "0x-hex"),
        ] {
            let mut argv = vec![
                "testbed",
                "tunnel",
                "decap",
                "--tun",
                "t0",
                "--vip",
                "192.0.2.1",
            ];
            argv.extend([option, value]);
            let error = Cli::try_parse_from(argv).unwrap_err().to_string();
            assert!(error.contains(value) && error.contains(accepted), "{error}");
        }
    }
}
