//! The fault proxy's speed goals, on loopback with no toxics, measured in the same run
//! against a direct connection and against `socat` as a proxy (Debian's `socat`):
//!
//! - added request/response latency (64-byte ping-pong, p50 and p99): at most 25 µs
//!   at p50 (Toxiproxy documents under 100 µs);
//! - throughput with one stream and with 32 streams: one stream at least 80% of
//!   direct and above socat.
//!
//! Upstream servers are blocking threads in this process; `testbed proxy` runs
//! in-process on a runtime built as `testbed proxy` builds its own (multi-threaded,
//! one worker per core); socat is a child process. Plain `fn main`: the figures are
//! printed, not fitted.
//!
//! The machine is small and shared, so its state drifts during a run: every round
//! measures each target in turn (starting with a different one each round), and the
//! verdicts are medians of per-round comparisons, each made between figures taken
//! seconds apart.
//!
//! `cargo bench -p benches --bench proxy` (without `--bench`: one small smoke run)

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use benches::stats::median;
use testbed::proxy::collection::ProxyInput;
use testbed::proxy::ProxyServer;

const MESSAGE: usize = 64;
const BUFFER: usize = 128 * 1024;

struct Sizes {
    pings: usize,
    single_bytes: usize,
    streams: usize,
    stream_bytes: usize,
    runs: usize,
}

const MEASURE: Sizes = Sizes {
    pings: 20_000,
    single_bytes: 1 << 30,
    streams: 32,
    stream_bytes: 32 << 20,
    runs: 5,
};

const SMOKE: Sizes = Sizes {
    pings: 200,
    single_bytes: 8 << 20,
    streams: 32,
    stream_bytes: 256 << 10,
    runs: 1,
};

/// Serves every connection on its own thread.
fn serve(handler: fn(TcpStream)) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an upstream");
    let address = listener.local_addr().expect("upstream address");
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || handler(stream));
        }
    });
    address
}

fn echo(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buffer = vec![0; BUFFER];
    while let Ok(read) = stream.read(&mut buffer) {
        if read == 0 || stream.write_all(&buffer[..read]).is_err() {
            return;
        }
    }
}

/// Reads to the end of stream, then answers one byte: the sender's clock stops there.
fn sink(mut stream: TcpStream) {
    let mut buffer = vec![0; BUFFER];
    while let Ok(read) = stream.read(&mut buffer) {
        if read == 0 {
            let _ = stream.write_all(b"k");
            return;
        }
    }
}

fn ping_pong(target: SocketAddr, pings: usize) -> (Duration, Duration) {
    let mut stream = TcpStream::connect(target).expect("connect for ping-pong");
    stream.set_nodelay(true).expect("nodelay");
    let message = [7_u8; MESSAGE];
    let mut back = [0_u8; MESSAGE];
    let mut samples = Vec::with_capacity(pings);
    for index in 0..pings + pings / 10 {
        let start = Instant::now();
        stream.write_all(&message).expect("ping");
        stream.read_exact(&mut back).expect("pong");
        if index >= pings / 10 {
            samples.push(start.elapsed()); // the first tenth warms up
        }
    }
    samples.sort();
    (
        samples[samples.len() / 2],
        samples[samples.len() * 99 / 100],
    )
}

fn send(target: SocketAddr, bytes: usize) {
    let mut stream = TcpStream::connect(target).expect("connect for throughput");
    let chunk = vec![1_u8; BUFFER];
    let mut left = bytes;
    while left > 0 {
        let size = left.min(chunk.len());
        stream.write_all(&chunk[..size]).expect("send");
        left -= size;
    }
    stream.shutdown(Shutdown::Write).expect("shutdown");
    let mut ack = [0_u8; 1];
    stream.read_exact(&mut ack).expect("the sink's ack");
}

/// Bytes per second with `streams` parallel senders of `bytes` each.
fn throughput(target: SocketAddr, streams: usize, bytes: usize) -> f64 {
    let start = Instant::now();
    let senders: Vec<_> = (0..streams)
        .map(|_| thread::spawn(move || send(target, bytes)))
        .collect();
    for sender in senders {
        sender.join().expect("sender thread");
    }
    (streams * bytes) as f64 / start.elapsed().as_secs_f64()
}

/// The two socat processes, stopped when this is dropped (and by the kernel
/// should the bench itself die first).
struct Socat {
    children: Vec<Child>,
    echo: SocketAddr,
    sink: SocketAddr,
}

impl Drop for Socat {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One socat relaying `listen_port` on loopback to `target`.
fn spawn_socat(listen_port: u16, target: SocketAddr) -> Option<Child> {
    let mut command = Command::new("socat");
    command
        .arg(format!(
            "TCP-LISTEN:{listen_port},bind=127.0.0.1,reuseaddr,fork,backlog=128"
        ))
        .arg(format!("TCP:{target}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: the closure runs in the forked child before exec and only makes
    // one async-signal-safe system call (prctl), touching no memory of ours.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    command.spawn().ok()
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

fn wait_listening(address: SocketAddr) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if TcpStream::connect(address).is_ok() {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Two socat proxies (echo and sink), or None when socat is not installed.
fn start_socat(echo: SocketAddr, sink: SocketAddr) -> Option<Socat> {
    let (echo_port, sink_port) = (free_port(), free_port());
    let mut socat = Socat {
        children: Vec::new(),
        echo: SocketAddr::from(([127, 0, 0, 1], echo_port)),
        sink: SocketAddr::from(([127, 0, 0, 1], sink_port)),
    };
    socat.children.push(spawn_socat(echo_port, echo)?);
    socat.children.push(spawn_socat(sink_port, sink)?);
    (wait_listening(socat.echo) && wait_listening(socat.sink)).then_some(socat)
}

/// `testbed proxy` in-process with two proxies (echo and sink); returns their addresses.
fn start_testbed_proxy(echo: SocketAddr, sink: SocketAddr) -> (SocketAddr, SocketAddr) {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        // The runtime `testbed proxy`'s main builds (testbed::proxy::main).
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let server = ProxyServer::bind("127.0.0.1:0", 1).await.expect("API bind");
            let collection = server.collection();
            let mut listens = Vec::new();
            for (name, upstream) in [("echo", echo), ("sink", sink)] {
                let proxy = collection
                    .create(ProxyInput {
                        name: Some(name.to_owned()),
                        listen: Some("127.0.0.1:0".to_owned()),
                        upstream: Some(upstream.to_string()),
                        ..ProxyInput::default()
                    })
                    .await
                    .expect("create a proxy");
                listens.push(
                    proxy
                        .settings()
                        .listen
                        .parse::<SocketAddr>()
                        .expect("listen"),
                );
            }
            ready_tx.send((listens[0], listens[1])).expect("report");
            let _ = server.serve().await;
        });
    });
    ready_rx.recv().expect("the proxy starts")
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

/// One target's figures, one entry per round.
#[derive(Default)]
struct Rounds {
    p50: Vec<f64>,
    p99: Vec<f64>,
    single: Vec<f64>,
    multi: Vec<f64>,
}

/// The median over rounds of `compare(ours, theirs)`, each pair from the same round.
fn paired(ours: &[f64], theirs: &[f64], compare: fn(f64, f64) -> f64) -> f64 {
    let per_round: Vec<f64> = ours
        .iter()
        .zip(theirs)
        .map(|(a, b)| compare(*a, *b))
        .collect();
    median(&per_round)
}

/// The 1-minute load average and the core count, so a figure can be read against
/// what else the machine was doing (the bench's own threads come later).
fn machine_state() -> String {
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned());
    let cores = thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get);
    format!("load average {load} before the run, {cores} cores")
}

fn main() {
    let _ = testbed::mconnect::raise_open_file_limit();
    let measuring = std::env::args().any(|arg| arg == "--bench");
    println!("proxy bench: {}", machine_state());
    let sizes = if measuring { MEASURE } else { SMOKE };
    let echo_server = serve(echo);
    let sink_server = serve(sink);
    let (proxy_echo, proxy_sink) = start_testbed_proxy(echo_server, sink_server);
    let socat = start_socat(echo_server, sink_server);
    let mut targets = vec![
        ("direct", echo_server, sink_server),
        ("testbed proxy", proxy_echo, proxy_sink),
    ];
    match &socat {
        Some(socat) => targets.push(("socat", socat.echo, socat.sink)),
        None => println!(
            "proxy bench: socat not found (apt-get install socat); compared with direct only"
        ),
    }
    let mut rounds: Vec<Rounds> = targets.iter().map(|_| Rounds::default()).collect();
    for round in 0..sizes.runs {
        // Rotate who goes first so that no target always meets the same machine state.
        let order: Vec<usize> = (0..targets.len())
            .map(|index| (index + round) % targets.len())
            .collect();
        for &index in &order {
            let (p50, p99) = ping_pong(targets[index].1, sizes.pings);
            rounds[index].p50.push(micros(p50));
            rounds[index].p99.push(micros(p99));
        }
        for &index in &order {
            let rate = throughput(targets[index].2, 1, sizes.single_bytes);
            rounds[index].single.push(rate);
        }
        for &index in &order {
            let rate = throughput(targets[index].2, sizes.streams, sizes.stream_bytes);
            rounds[index].multi.push(rate);
        }
    }
    for ((name, _, _), figures) in targets.iter().zip(&rounds) {
        println!(
            "  {:<14} rtt p50 {:>7.1} us  p99 {:>7.1} us   1 stream {:>7.0} MB/s   {} streams {:>7.0} MB/s   (medians of {} rounds)",
            name,
            median(&figures.p50),
            median(&figures.p99),
            median(&figures.single) / 1e6,
            sizes.streams,
            median(&figures.multi) / 1e6,
            sizes.runs
        );
    }
    let (direct, ours) = (&rounds[0], &rounds[1]);
    let added = paired(&ours.p50, &direct.p50, |a, b| a - b);
    let share = paired(&ours.single, &direct.single, |a, b| a / b);
    let verdict = |ok: bool| match (measuring, ok) {
        (false, _) => "smoke run, not judged",
        (true, true) => "meets",
        (true, false) => "MISSES",
    };
    println!(
        "proxy bench: added p50 latency {added:.1} us (goal <= 25 us: {}); single stream {:.0}% of direct (goal >= 80%: {}); medians of per-round differences and ratios",
        verdict(added <= 25.0),
        share * 100.0,
        verdict(share >= 0.8)
    );
    if let Some(socat_rounds) = rounds.get(2) {
        let over_socat = paired(&ours.single, &socat_rounds.single, |a, b| a / b);
        println!(
            "proxy bench: single stream {:.0} MB/s vs socat {:.0} MB/s, {:.2}x socat (goal: above socat: {}); socat adds {:.1} us at p50",
            median(&ours.single) / 1e6,
            median(&socat_rounds.single) / 1e6,
            over_socat,
            verdict(over_socat > 1.0),
            paired(&socat_rounds.p50, &direct.p50, |a, b| a - b)
        );
    }
    drop(socat);
}
