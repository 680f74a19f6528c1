//! mconnect's speed goal: 10,000 connects with a per-host count against three local
//! servers, at least 40,000 connects per second on the 2-core machine (twice the rate
//! in mconnect's README), with the client's own CPU per connect.
//!
//! The three servers (127.0.0.1, .2, .3) run as child processes (this same binary,
//! started with `RR_BENCH_MCONNECT_SERVER`), so the client's CPU time is this process's
//! `getrusage(RUSAGE_SELF)` alone. A local run has no balancer in front of the servers,
//! so the client runs three `run_client`s at once, one per server, and merges their
//! per-host counts. Plain `fn main`: the figures are printed, not fitted.
//!
//! `cargo bench -p benches --bench mconnect` (under `cargo test`: one small smoke run)

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use benches::stats::median;
use testbed::mconnect::{
    raise_open_file_limit, run_client, ClientConfig, Report, Server, ServerConfig,
};

const SERVER_ROLE: &str = "RR_BENCH_MCONNECT_SERVER";
const CONNECTS: u32 = 10_000;
const RUNS: usize = 3;
/// Under `cargo test` (no `--bench` argument) one small run checks that the bench works.
const SMOKE_CONNECTS: u32 = 300;
const GOAL_PER_SECOND: f64 = 40_000.0;

fn main() {
    let _ = raise_open_file_limit();
    if let Ok(address) = std::env::var(SERVER_ROLE) {
        serve(&address);
        return;
    }
    let measuring = std::env::args().any(|arg| arg == "--bench");
    let (connects, runs) = if measuring {
        (CONNECTS, RUNS)
    } else {
        (SMOKE_CONNECTS, 1)
    };
    let servers = Servers::start(&["127.0.0.1:0", "127.0.0.2:0", "127.0.0.3:0"]);
    println!(
        "mconnect: {connects} connects against {} local servers, {runs} runs per runtime",
        servers.addresses.len()
    );
    for flavour in [Flavour::CurrentThread, Flavour::MultiThread] {
        let runtime = flavour.runtime();
        runtime.block_on(connect_all(&servers.addresses, u64::from(connects / 10))); // warm-up
        let mut rates = Vec::new();
        for run in 1..=runs {
            let cpu_before = cpu_time();
            let servers_before = servers.cpu_time();
            let started = Instant::now();
            let counts = runtime.block_on(connect_all(&servers.addresses, u64::from(connects)));
            let elapsed = started.elapsed();
            let cpu = cpu_time().saturating_sub(cpu_before);
            let servers_cpu = servers
                .cpu_time()
                .zip(servers_before)
                .map(|(after, before)| after.saturating_sub(before));
            let rate = f64::from(connects) / elapsed.as_secs_f64();
            rates.push(rate);
            let per_connect =
                |cpu: Duration| format!("{:.1} us", cpu.as_secs_f64() * 1e6 / f64::from(connects));
            let servers_cpu = servers_cpu.map_or_else(|| "unknown".to_owned(), per_connect);
            println!(
                "  {:<14} run {run}: {rate:>6.0} connects/s ({:.3} s); CPU per connect: client {}, servers {servers_cpu}; hosts {counts:?}",
                flavour.name(),
                elapsed.as_secs_f64(),
                per_connect(cpu),
            );
        }
        let median = median(&rates);
        let verdict = if !measuring {
            "smoke test only, not compared with"
        } else if median >= GOAL_PER_SECOND {
            "meets"
        } else {
            "below"
        };
        println!(
            "  {:<14} median {median:.0} connects/s: {verdict} the goal of {GOAL_PER_SECOND:.0}",
            flavour.name()
        );
    }
}

/// `nconn` connects spread evenly over `servers`, run at once; the merged per-host
/// count. Panics when any connect or read failed: a fast failure is no result.
async fn connect_all(servers: &[SocketAddr], nconn: u64) -> BTreeMap<String, u64> {
    let share = nconn / servers.len() as u64;
    let runs = servers.iter().enumerate().map(|(i, &server)| {
        let extra = u64::from((i as u64) < nconn % servers.len() as u64);
        let mut config = ClientConfig::new(server, share + extra);
        config.max_concurrent = max_concurrent();
        tokio::spawn(async move { run_client(&config).await })
    });
    let mut counts = BTreeMap::new();
    for run in runs.collect::<Vec<_>>() {
        let report: Report = run.await.expect("client task").expect("client run");
        assert!(!report.failed(), "failures: {}", report.to_text());
        for (host, count) in report.hosts {
            *counts.entry(host).or_insert(0) += count;
        }
    }
    assert_eq!(counts.values().sum::<u64>(), nconn);
    counts
}

/// `--max-concurrent` of each client run: 64 (the default), or `RR_BENCH_MCONNECT_CONCURRENCY`.
fn max_concurrent() -> usize {
    std::env::var("RR_BENCH_MCONNECT_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

#[derive(Clone, Copy)]
enum Flavour {
    CurrentThread,
    MultiThread,
}

impl Flavour {
    fn name(self) -> &'static str {
        match self {
            Self::CurrentThread => "current-thread",
            Self::MultiThread => "multi-thread",
        }
    }

    fn runtime(self) -> tokio::runtime::Runtime {
        let mut builder = match self {
            Self::CurrentThread => tokio::runtime::Builder::new_current_thread(),
            Self::MultiThread => tokio::runtime::Builder::new_multi_thread(),
        };
        builder.enable_all().build().expect("runtime")
    }
}

/// User plus system CPU time of this process (the client only: servers are children).
fn cpu_time() -> Duration {
    // SAFETY: an all-zero rusage is a valid value for getrusage to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &raw mut usage) };
    assert_eq!(rc, 0, "getrusage: {}", std::io::Error::last_os_error());
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.unsigned_abs())
            + Duration::from_micros(t.tv_usec.unsigned_abs())
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// The server child: binds, prints its address, serves until killed.
fn serve(address: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let address: SocketAddr = address.parse().expect("server address");
        let name = format!("server-{}", address.ip());
        let config = ServerConfig {
            address,
            name,
            udp: false,
            probe: None,
            log_connections: false,
        };
        let server = Server::bind(config).expect("bind");
        println!("{}", server.local_addr().expect("local address"));
        server.serve().await;
    });
}

/// The server children, killed when dropped (also when the bench panics).
struct Servers {
    children: Vec<Child>,
    addresses: Vec<SocketAddr>,
}

impl Servers {
    fn start(addresses: &[&str]) -> Self {
        let exe = std::env::current_exe().expect("own path");
        let mut servers = Self {
            children: Vec::new(),
            addresses: Vec::new(),
        };
        for address in addresses {
            let mut child = Command::new(&exe)
                .env(SERVER_ROLE, address)
                .stdout(Stdio::piped())
                .spawn()
                .expect("start server");
            let mut line = String::new();
            BufReader::new(child.stdout.take().expect("stdout"))
                .read_line(&mut line)
                .expect("ready line");
            servers.children.push(child);
            servers.addresses.push(
                line.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("server said `{line}`")),
            );
        }
        servers
    }
}

impl Servers {
    /// The servers' CPU time (user plus system), where `/proc` tells it (10 ms ticks).
    fn cpu_time(&self) -> Option<Duration> {
        // SAFETY: sysconf has no preconditions.
        let ticks_per_second = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).ok()?;
        let mut ticks = 0u64;
        for child in &self.children {
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).ok()?;
            // Fields after the parenthesised command: state is field 3, utime 14, stime 15.
            let after_command = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = after_command.split_whitespace().collect();
            ticks += fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        }
        Some(Duration::from_millis(
            ticks * 1000 / ticks_per_second.max(1),
        ))
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
