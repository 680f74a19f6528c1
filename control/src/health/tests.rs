//! Health checks against real listeners on loopback: a backend goes down
//! after `fall` failed probes, comes back after `rise` good ones, and each
//! transition republishes the table.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use crate::backends::{BackendSet, TableSettings};

const LOCAL: Ipv4Addr = Ipv4Addr::LOCALHOST;

fn publisher(backends: &[Ipv4Addr]) -> Publisher {
    let mut set = BackendSet::default();
    for &addr in backends {
        set.add(addr, 1).unwrap();
        set.set_mac(addr, Some([2, 0, 0, 0, 0, 2])).unwrap();
    }
    let settings = TableSettings {
        lb_ipv4: Ipv4Addr::new(192, 0, 2, 10),
        lb_mac: [2, 0, 0, 0, 0, 1],
        vips: Vec::new(),
        seed: 1,
        table_size: 1009,
        mtu: 1500,
    };
    Publisher::new(settings, set).unwrap()
}

/// Probes every 40 ms. No test here is about timeouts (a closed port refuses at
/// once), so the timeout is long: on a loaded machine a stalled runtime must not
/// turn three answered probes into three timeouts and a backend that is up into
/// one that is down.
fn config(check: HealthCheck) -> HealthConfig {
    HealthConfig {
        check,
        interval: Duration::from_millis(40),
        timeout: Duration::from_secs(5),
        rise: 2,
        fall: 3,
    }
}

/// Polls `condition` every 10ms for at most 10s.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn is_up(p: &Publisher, addr: Ipv4Addr) -> bool {
    p.backend(addr).is_some_and(|b| b.health.is_up())
}

/// A TCP server on `addr` answering every request with `status`, changeable
/// while it runs; 0 closes connections without an answer.
async fn http_server(addr: SocketAddr, status: Arc<AtomicU16>) -> (u16, JoinHandle<()>) {
    let listener = TcpListener::bind(addr).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let code = status.load(Ordering::Relaxed);
            tokio::spawn(async move {
                let mut buf = [0u8; 512];
                let _ = s.read(&mut buf).await;
                let answer = format!("HTTP/1.0 {code} X\r\nContent-Length: 0\r\n\r\n");
                let _ = s.write_all(answer.as_bytes()).await;
            });
        }
    });
    (port, task)
}

#[tokio::test]
async fn a_tcp_backend_goes_down_when_its_listener_closes_and_returns_after_rise() {
    let listener = TcpListener::bind((LOCAL, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepting = tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            drop(s);
        }
    });
    let p = publisher(&[LOCAL]);
    let _checks = spawn(p.clone(), config(HealthCheck::Tcp { port }));
    // Stays up and publishes nothing while the listener answers.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(is_up(&p, LOCAL));
    assert_eq!(p.generation(), 1);

    // Taken before the listener closes, so every failed probe comes after it.
    let closed_at = Instant::now();
    accepting.abort();
    let _ = accepting.await;
    eventually("the backend goes down", || !is_up(&p, LOCAL)).await;
    // Three failures take at least one interval even when a late tick and the
    // next on-time one fire back to back; one failure would take it down at once.
    assert!(
        closed_at.elapsed() >= Duration::from_millis(40),
        "down after {:?}: on the first failed probe, not after 3 a tick apart",
        closed_at.elapsed()
    );
    assert_eq!(p.generation(), 2);
    let table = p.handle().load();
    assert!(table.maglev.entries().iter().all(|&s| s == u16::MAX));

    let listener = TcpListener::bind((LOCAL, port)).await.unwrap();
    let _accepting = tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            drop(s);
        }
    });
    eventually("the backend comes back", || is_up(&p, LOCAL)).await;
    assert_eq!(p.generation(), 3);
    assert_eq!(p.backend(LOCAL).unwrap().generation, 2, "a new incarnation");
    assert!(p.handle().load().maglev.entries().iter().all(|&s| s == 0));
}

#[tokio::test]
async fn an_http_backend_is_judged_by_its_status() {
    let status = Arc::new(AtomicU16::new(200));
    let (port, _server) = http_server((LOCAL, 0).into(), status.clone()).await;
    let p = publisher(&[LOCAL]);
    let _checks = spawn(
        p.clone(),
        config(HealthCheck::Http {
            port,
            path: "/healthz".into(),
        }),
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(is_up(&p, LOCAL));
    status.store(503, Ordering::Relaxed);
    eventually("a 503 takes it down", || !is_up(&p, LOCAL)).await;
    status.store(302, Ordering::Relaxed);
    eventually("a 302 brings it back", || is_up(&p, LOCAL)).await;
    assert_eq!(p.generation(), 3);
}

#[tokio::test]
async fn backends_added_later_are_checked_and_removed_ones_forgotten() {
    // Nothing listens on this port on 127.0.0.2 or 127.0.0.3.
    let free = TcpListener::bind((LOCAL, 0)).await.unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let second = Ipv4Addr::new(127, 0, 0, 2);
    let third = Ipv4Addr::new(127, 0, 0, 3);
    let p = publisher(&[second]);
    let _checks = spawn(p.clone(), config(HealthCheck::Tcp { port }));
    eventually("the configured backend goes down", || !is_up(&p, second)).await;
    p.add(third, 1).unwrap();
    assert!(is_up(&p, third), "a new backend starts up");
    eventually("the added backend is checked too", || !is_up(&p, third)).await;
    p.remove(second).unwrap();
    let generation = p.generation();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        p.generation(),
        generation,
        "nothing reports on the removed one"
    );
    assert!(p.backend(second).is_none());
}

#[tokio::test]
async fn stopping_the_checks_freezes_the_states() {
    let free = TcpListener::bind((LOCAL, 0)).await.unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let p = publisher(&[LOCAL]);
    let mut checks = spawn(p.clone(), config(HealthCheck::Tcp { port }));
    assert!(checks.is_active());
    checks.stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(is_up(&p, LOCAL));
}

#[tokio::test]
async fn with_no_health_check_nothing_runs_and_backends_stay_up() {
    let p = publisher(&[Ipv4Addr::new(127, 0, 0, 9)]);
    let checks = spawn(p.clone(), config(HealthCheck::None));
    assert!(!checks.is_active());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(is_up(&p, Ipv4Addr::new(127, 0, 0, 9)));
    assert_eq!(p.generation(), 1);
}
