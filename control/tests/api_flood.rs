//! The flood of the hardening issue: 2,000 idle connections and a crowd of
//! slow requests on the API, while TCP health checks run against backends
//! on loopback addresses in the same process, over dozens of probe
//! intervals; no backend may leave rotation, and the API answers again
//! once the flood stops.
//!
//! The process's soft descriptor limit is lowered for the test to what the
//! flood's own sockets need plus a margin of a few hundred, as on a host with
//! a small default limit: an API that accepted every connection would take
//! the rest, and the probes, out of descriptors (EMFILE), would fail and
//! take every backend out. This file holds that one test, so the limit
//! touches nothing else.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::{serve, workers, Server, MAC};
use control::api::{ApiLimits, ApiState};
use control::backends::{BackendSet, Publisher, TableSettings};
use control::config::HealthCheck;
use control::health::{self, HealthConfig};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Idle connections in the flood.
const IDLE: usize = 2_000;
/// Clients sending their headers, or their body, a byte at a time.
const SLOW: usize = 50;
/// Descriptors left beyond the flood's own: the API's capped connections,
/// the runtime, the listeners and the probes fit in it; an API holding
/// every flood connection does not.
const MARGIN: u64 = 400;
/// How long the flood lasts: dozens of probe intervals.
const FLOOD: Duration = Duration::from_secs(4);
const BACKENDS: [Ipv4Addr; 4] = [
    Ipv4Addr::new(127, 0, 0, 2),
    Ipv4Addr::new(127, 0, 0, 3),
    Ipv4Addr::new(127, 0, 0, 4),
    Ipv4Addr::new(127, 0, 0, 5),
];

/// Lowers the soft `RLIMIT_NOFILE` to `limit` if it is higher; returns
/// whether the limit is now `limit`.
fn lower_open_files(limit: u64) -> bool {
    let mut current = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut current) } != 0 {
        return false;
    }
    if current.rlim_cur < limit {
        return false;
    }
    let lowered = libc::rlimit {
        rlim_cur: limit,
        rlim_max: current.rlim_max,
    };
    // SAFETY: setrlimit reads one rlimit; lowering a soft limit is always allowed.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const lowered) == 0 }
}

/// Listeners on every backend address, on one port, accepting and closing.
async fn backends() -> (u16, JoinSet<()>) {
    'port: loop {
        let first = TcpListener::bind((BACKENDS[0], 0)).await.unwrap();
        let port = first.local_addr().unwrap().port();
        let mut listeners = vec![first];
        for &addr in &BACKENDS[1..] {
            match TcpListener::bind((addr, port)).await {
                Ok(l) => listeners.push(l),
                Err(_) => continue 'port,
            }
        }
        let mut accepting = JoinSet::new();
        for listener in listeners {
            accepting.spawn(async move {
                loop {
                    if let Ok((s, _)) = listener.accept().await {
                        drop(s);
                    }
                }
            });
        }
        return (port, accepting);
    }
}

fn publisher() -> Publisher {
    let mut set = BackendSet::default();
    for addr in BACKENDS {
        set.add(addr.into(), 1).unwrap();
        set.set_mac(addr.into(), Some(MAC)).unwrap();
    }
    let settings = TableSettings {
        lb_ipv4: Ipv4Addr::new(192, 0, 2, 10),
        lb_ipv6: None,
        lb_mac: [2, 0, 0, 0, 0, 1],
        vips: Vec::new(),
        seed: 5,
        table_size: 65_537,
        mtu: 1500,
    };
    Publisher::new(settings, set).unwrap()
}

/// Sends `bytes` one at a time, 200 ms apart, until done or refused.
async fn trickle(addr: SocketAddr, bytes: Vec<u8>) {
    let Ok(mut s) = TcpStream::connect(addr).await else {
        return;
    };
    for byte in bytes {
        if s.write_all(&[byte]).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Opens the flood: idle connections (kept, never written to) and slow
/// requests; returns the idle sockets and how many could not connect.
async fn flood(server: &Server, slow: &mut JoinSet<()>) -> (Vec<TcpStream>, usize) {
    let addr = server.addr;
    for i in 0..SLOW {
        let request = if i % 2 == 0 {
            format!(
                "GET /backends HTTP/1.1\r\nHost: {addr}\r\nX-Slow: {}\r\n\r\n",
                "z".repeat(64)
            )
        } else {
            format!(
                "POST /backends HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 60\r\n\r\n{{\"ip\": \"10.9.9.9\", \"weight\": 1{}}}",
                " ".repeat(30)
            )
        };
        slow.spawn(trickle(addr, request.into_bytes()));
    }
    let mut idle = Vec::with_capacity(IDLE);
    let mut failed = 0;
    for _ in 0..IDLE {
        match tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr)).await {
            Ok(Ok(s)) => idle.push(s),
            _ => failed += 1,
        }
    }
    (idle, failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_idle_and_slow_api_connections_takes_no_backend_out_of_rotation() {
    let limit = IDLE as u64 + SLOW as u64 + MARGIN;
    if !lower_open_files(limit) {
        // A host setting this test will not raise: an allowed skip.
        let _ = host::capability::machine_lacks(format!(
            "the descriptor limit is below {limit} already"
        ));
        return;
    }
    let (port, _backends) = backends().await;
    let p = publisher();
    let _checks = health::spawn(
        p.clone(),
        HealthConfig {
            check: HealthCheck::Tcp { port },
            interval: Duration::from_millis(100),
            // Generous: a loaded machine must not fail a probe by its
            // slowness; one without descriptors fails it at once.
            timeout: Duration::from_secs(2),
            rise: 2,
            fall: 2,
        },
    );
    let limits = ApiLimits {
        header_timeout: Duration::from_secs(2),
        ..ApiLimits::default()
    };
    let server = serve(ApiState::new(p.clone(), workers(1)).with_limits(limits)).await;

    let started = Instant::now();
    let mut slow = JoinSet::new();
    let (idle, failed) = flood(&server, &mut slow).await;
    println!(
        "flood: {} idle connections open, {failed} failed to connect, in {:?}",
        idle.len(),
        started.elapsed()
    );
    while started.elapsed() < FLOOD {
        let out: Vec<IpAddr> = p
            .backends()
            .iter()
            .filter(|b| !b.in_rotation())
            .map(|b| b.addr)
            .collect();
        assert!(
            out.is_empty(),
            "{out:?} left rotation {:?} into the flood",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(p.generation(), 1, "no table was published during the flood");
    drop(idle);
    slow.abort_all();

    let deadline = Instant::now() + Duration::from_secs(10);
    let listed = loop {
        match common::try_get(server.addr, "/backends").await {
            Ok(a) if a.status == 200 => break a.json(),
            other => {
                assert!(
                    Instant::now() < deadline,
                    "the API never answered again: {other:?}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), BACKENDS.len());
    assert!(
        listed.iter().all(|b| b["in_rotation"] == true),
        "{listed:?}"
    );
}
