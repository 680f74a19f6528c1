//! The many-connections tester for load balancers, compatible with Nordix mconnect
//! and able to see broken flows.
//!
//! - [`server`]: answers every connection with its name (TCP, UDP, HTTP probe).
//! - [`client`]: opens many connections and counts the names ([`run_client`]).
//! - [`output`]: the report, in mconnect's text and JSON shapes.
//!
//! The experiment runner calls [`run_client`] directly; the `testbed mconnect`
//! subcommand is [`main`].

mod args;
mod client;
mod clock;
mod events;
mod flow;
mod hold;
mod latency;
mod output;
pub mod probe;
mod server;
mod source_range;
mod system;
mod tally;
mod udp_reply;

use std::process::ExitCode;

pub use args::{resolve, AddressError, MconnectArgs};
pub use client::{default_timeout, run_client, ClientConfig, ClientError, HoldConfig};
pub use clock::RunClock;
pub use events::{Event, EventKind, EventLogError};
pub use latency::{LatencySamples, LatencySummary};
pub use output::{Disruption, DisruptionKind, HoldReport, OutputFormat, Protocol, Report};
pub use server::{Server, ServerConfig, ServerError};
pub use source_range::{SourceRange, SourceRangeError};
pub use system::{hostname, raise_open_file_limit};

/// The server's default address: every IPv6 and IPv4 address, mconnect's port.
pub const DEFAULT_SERVER_ADDRESS: &str = "[::]:5001";

/// Exit code for a run that could not start (bad address, port taken...); a run that
/// started and saw failures exits with 1, as mconnect does.
const EXIT_SETUP: u8 = 2;

/// `testbed mconnect`: runs the server or the client, prints, and returns the exit code.
pub fn main(args: &MconnectArgs) -> ExitCode {
    if let Err(error) = raise_open_file_limit() {
        eprintln!("testbed mconnect: cannot raise the open-file limit ({error}); continuing with the current one");
    }
    // The server spreads accepted connections over every core. The client
    // runs on one thread: the kernel's TCP setup dominates its cost, and on a
    // small machine a single-threaded client leaves the other cores to the
    // servers and the balancer (the mconnect bench measures both runtimes).
    let mut builder = if args.server {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return setup_failed(&format!("cannot start the async runtime: {error}")),
    };
    if args.server {
        runtime.block_on(serve(args))
    } else {
        runtime.block_on(connect(args))
    }
}

async fn serve(args: &MconnectArgs) -> ExitCode {
    let address = match resolve(
        args.address.as_deref().unwrap_or(DEFAULT_SERVER_ADDRESS),
        None,
    ) {
        Ok(address) => address,
        Err(error) => return setup_failed(&error.to_string()),
    };
    let name = match &args.name {
        Some(name) => name.clone(),
        None => match hostname() {
            Ok(name) => name,
            Err(error) => {
                return setup_failed(&format!("cannot read the hostname ({error}); give --name"))
            }
        },
    };
    let config = ServerConfig {
        address,
        name,
        udp: args.udp,
        probe: args.probe,
        log_connections: args.log_connections,
    };
    match Server::bind(config) {
        Ok(server) => {
            eprintln!("{}", server.ready_line());
            server.serve().await;
            ExitCode::SUCCESS
        }
        Err(error) => setup_failed(&error.to_string()),
    }
}

async fn connect(args: &MconnectArgs) -> ExitCode {
    let Some(address) = args.address.as_deref() else {
        return setup_failed("the client needs --address HOST:PORT");
    };
    let target = match resolve(address, args.srccidr.map(|range| range.is_ipv4())) {
        Ok(target) => target,
        Err(error) => return setup_failed(&error.to_string()),
    };
    match run_client(&args.client_config(target)).await {
        Ok(report) => {
            print!("{}", report.render(args.output));
            if report.failed() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(error) => setup_failed(&error.to_string()),
    }
}

fn setup_failed(message: &str) -> ExitCode {
    eprintln!("testbed mconnect: {message}");
    ExitCode::from(EXIT_SETUP)
}
