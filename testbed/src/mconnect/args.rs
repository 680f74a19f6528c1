//! `testbed mconnect` options: mconnect's, in clap's long-option style, plus ours.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::client::{Arrivals, ClientConfig, HoldConfig};
use super::output::{OutputFormat, Protocol};
use super::source_range::SourceRange;

/// Many-connections tester: `--server` answers with its name; the client counts names.
#[derive(Debug, Clone, Args)]
#[allow(clippy::struct_excessive_bools)] // each is a command-line switch
#[command(after_help = "Examples:\n  \
    testbed mconnect --server --address '[::]:5001' --udp --probe '[::]:8080'\n  \
    testbed mconnect --address 10.0.0.1:5001 --nconn 1000 --output json\n  \
    testbed mconnect --address '[fd00::1]:5001' --nconn 100 --keep --duration 30s --interval 1s --events ev.jsonl")]
pub struct MconnectArgs {
    /// Run the server instead of the client.
    #[arg(long)]
    pub server: bool,

    /// Server: where to listen [default: [::]:5001]. Client: the HOST:PORT to connect to.
    #[arg(long, required_unless_present = "server")]
    pub address: Option<String>,

    /// Server: also answer UDP datagrams. Client: use UDP instead of TCP.
    #[arg(long)]
    pub udp: bool,

    /// Server: the name to answer with [default: the hostname].
    #[arg(long, requires = "server")]
    pub name: Option<String>,

    /// Server: serve an HTTP liveness probe (/healthz) on this address.
    #[arg(long, value_name = "ADDR", requires = "server")]
    pub probe: Option<SocketAddr>,

    /// Server: print `accepted PEER` / `datagram PEER to ADDRESS` on stdout for every connection or datagram.
    #[arg(long, requires = "server")]
    pub log_connections: bool,

    /// Number of connections.
    #[arg(long, default_value_t = 1, conflicts_with = "server")]
    pub nconn: u64,

    /// Keep connections open until all have replied (with --duration: for that long).
    #[arg(long, conflicts_with = "server")]
    pub keep: bool,

    /// Random source address per connection from this range (routed to this host, e.g. on lo).
    #[arg(long, value_name = "CIDR", conflicts_with = "server")]
    pub srccidr: Option<SourceRange>,

    /// Seed of the source-address choice [default: from the clock, reported in JSON].
    #[arg(long, conflicts_with = "server")]
    pub seed: Option<u64>,

    /// Connections being opened at once (connect, first reply, and without --keep the close).
    #[arg(long, default_value_t = 64, conflicts_with = "server")]
    pub max_concurrent: usize,

    /// Time for every connection to connect and reply [default: nconn/1000 s + 2 s].
    #[arg(long, value_parser = humantime::parse_duration, conflicts_with = "server")]
    pub timeout: Option<Duration>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Txt, conflicts_with = "server")]
    pub output: OutputFormat,

    /// Open connections at this many per second instead of as fast as possible.
    #[arg(long, value_parser = parse_rate, conflicts_with = "server")]
    pub rate: Option<f64>,

    /// With --rate: evenly spaced starts, or a Poisson process of that rate (seeded by --seed).
    #[arg(long, value_enum, default_value_t = Arrivals::Uniform, requires = "rate")]
    pub arrivals: Arrivals,

    /// With --keep: hold connections this long (from the start), asking the server's name every --interval.
    #[arg(long, value_parser = humantime::parse_duration, requires = "keep")]
    pub duration: Option<Duration>,

    /// With --duration: how often each held connection asks; no answer within it means broken.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1s", requires = "duration")]
    pub interval: Duration,

    /// Write one JSON line per connection event (opened, reply, moved, broken, closed...) to FILE.
    #[arg(long, value_name = "FILE", conflicts_with = "server")]
    pub events: Option<PathBuf>,
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!(
            "`{text}` is not a positive number of connections per second"
        )),
    }
}

/// An address that did not resolve.
#[derive(Debug)]
pub struct AddressError {
    pub address: String,
    pub reason: String,
}

impl std::fmt::Display for AddressError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "--address `{}`: {}; expected HOST:PORT such as 10.0.0.1:5001, [fd00::1]:5001 or server:5001",
            self.address, self.reason
        )
    }
}

impl std::error::Error for AddressError {}

/// Resolves HOST:PORT, preferring an address of the family `ipv4` when given.
pub fn resolve(address: &str, ipv4: Option<bool>) -> Result<SocketAddr, AddressError> {
    let error = |reason: String| AddressError {
        address: address.to_owned(),
        reason,
    };
    let candidates: Vec<SocketAddr> = address
        .to_socket_addrs()
        .map_err(|e| error(e.to_string()))?
        .collect();
    let preferred = ipv4.and_then(|ipv4| candidates.iter().find(|a| a.is_ipv4() == ipv4));
    preferred
        .or(candidates.first())
        .copied()
        .ok_or_else(|| error("resolves to no address".to_owned()))
}

impl MconnectArgs {
    pub fn protocol(&self) -> Protocol {
        if self.udp {
            Protocol::Udp
        } else {
            Protocol::Tcp
        }
    }

    /// The client configuration for an already resolved target.
    pub fn client_config(&self, target: SocketAddr) -> ClientConfig {
        ClientConfig {
            target,
            protocol: self.protocol(),
            nconn: self.nconn,
            keep: self.keep,
            hold: self.duration.map(|duration| HoldConfig {
                duration,
                interval: self.interval,
            }),
            source_range: self.srccidr,
            seed: self.seed,
            max_concurrent: self.max_concurrent,
            timeout: self.timeout,
            rate: self.rate,
            arrivals: self.arrivals,
            events: self.events.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: MconnectArgs,
    }

    fn parse(line: &[&str]) -> Result<MconnectArgs, clap::Error> {
        Wrapper::try_parse_from(std::iter::once("mconnect").chain(line.iter().copied()))
            .map(|w| w.args)
    }

    #[test]
    fn client_options_map_to_the_client_configuration() {
        let args = parse(&[
            "--address",
            "[fd00::1]:5001",
            "--nconn",
            "300",
            "--keep",
            "--srccidr",
            "fd00:9::/64",
            "--seed",
            "5",
            "--max-concurrent",
            "8",
            "--timeout",
            "3s",
            "--rate",
            "100",
            "--duration",
            "10s",
            "--interval",
            "500ms",
            "--output",
            "json",
            "--events",
            "ev.jsonl",
        ])
        .unwrap();
        let config = args.client_config("[fd00::1]:5001".parse().unwrap());
        assert_eq!(config.nconn, 300);
        assert!(config.keep);
        assert_eq!(config.source_range, Some("fd00:9::/64".parse().unwrap()));
        assert_eq!(config.seed, Some(5));
        assert_eq!(config.max_concurrent, 8);
        assert_eq!(config.timeout, Some(Duration::from_secs(3)));
        assert_eq!(config.rate, Some(100.0));
        assert_eq!(
            config.hold,
            Some(HoldConfig {
                duration: Duration::from_secs(10),
                interval: Duration::from_millis(500)
            })
        );
        assert_eq!(config.events, Some(PathBuf::from("ev.jsonl")));
        assert_eq!(args.output, OutputFormat::Json);
        assert!(config.validate().is_ok());
    }

    #[test]
    fn defaults_are_mconnects() {
        let args = parse(&["--address", "127.0.0.1:5001"]).unwrap();
        assert_eq!(args.nconn, 1);
        assert_eq!(args.max_concurrent, 64);
        assert_eq!(args.output, OutputFormat::Txt);
        assert_eq!(args.protocol(), Protocol::Tcp);
        assert!(args.timeout.is_none());
    }

    #[test]
    fn the_client_needs_an_address_and_the_server_does_not() {
        assert!(parse(&["--nconn", "5"]).is_err());
        assert!(parse(&["--server"]).is_ok());
    }

    #[test]
    fn client_only_and_server_only_options_do_not_mix() {
        assert!(parse(&["--server", "--nconn", "5"]).is_err());
        assert!(parse(&["--address", "127.0.0.1:1", "--name", "x"]).is_err());
        assert!(
            parse(&["--address", "127.0.0.1:1", "--duration", "5s"]).is_err(),
            "--duration needs --keep"
        );
    }

    #[test]
    fn bad_values_are_refused_by_name() {
        let error = parse(&["--address", "a:1", "--rate", "0"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("`0` is not a positive number"), "{error}");
        let error = parse(&["--address", "a:1", "--srccidr", "10.0.0.0"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("no prefix length"), "{error}");
        assert!(parse(&["--address", "a:1", "--output", "xml"]).is_err());
    }

    #[test]
    fn resolve_prefers_the_asked_family_and_names_bad_addresses() {
        assert_eq!(
            resolve("127.0.0.1:5001", Some(true)).unwrap(),
            "127.0.0.1:5001".parse().unwrap()
        );
        assert_eq!(
            resolve("[::1]:5001", None).unwrap(),
            "[::1]:5001".parse().unwrap()
        );
        let error = resolve("no-port", None).unwrap_err().to_string();
        assert!(error.contains("`no-port`"), "{error}");
    }
}
