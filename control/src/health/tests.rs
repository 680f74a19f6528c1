//! Health checks against real listeners on loopback: a backend goes down
//! after `fall` failed probes, comes back after `rise` good ones, and each
//! transition republishes the table.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use crate::backends::{BackendSet, TableSettings};
use dataplane::forwarding::ForwardingTable;

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const LOCAL_V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

fn publisher(backends: &[IpAddr]) -> Publisher {
    let mut set = BackendSet::default();
    for &addr in backends {
        set.add(addr, 1).unwrap();
        set.set_mac(addr, Some([2, 0, 0, 0, 0, 2])).unwrap();
    }
    let settings = TableSettings {
        lb_ipv4: Ipv4Addr::new(192, 0, 2, 10),
        // IPv6 backends need it.
        lb_ipv6: Some(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10)),
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

fn is_up(p: &Publisher, addr: IpAddr) -> bool {
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
    let accepting = accept_and_close(listener);
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
    let second = IpAddr::from([127, 0, 0, 2]);
    let third = IpAddr::from([127, 0, 0, 3]);
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
    checks.stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(is_up(&p, LOCAL));
}

#[tokio::test]
async fn with_no_health_check_nothing_runs_and_backends_stay_up() {
    let p = publisher(&[IpAddr::from([127, 0, 0, 9])]);
    let _checks = spawn(p.clone(), config(HealthCheck::None));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(is_up(&p, IpAddr::from([127, 0, 0, 9])));
    assert_eq!(p.generation(), 1);
}

/// Nothing listens on this loopback port.
async fn closed_port() -> u16 {
    let free = TcpListener::bind((LOCAL, 0)).await.unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    port
}

/// A listener accepting (and closing) connections on `port` of every
/// loopback address.
async fn accepting_on(port: u16) -> JoinHandle<()> {
    let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, port))
        .await
        .unwrap();
    accept_and_close(listener)
}

/// Accepts (and closes) connections on `listener` until aborted, which
/// closes it.
fn accept_and_close(listener: TcpListener) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            drop(s);
        }
    })
}

/// Service `name` on VIP 192.0.2.`vip` with `backends`, checked by `health`.
fn service(
    name: &str,
    vip: u8,
    backends: &[IpAddr],
    health: Option<HealthCheck>,
) -> crate::config::file::ServiceConfig {
    crate::config::file::ServiceConfig {
        name: name.into(),
        vip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, vip)),
        protocol: None,
        port: None,
        backends: backends
            .iter()
            .map(|&addr| crate::config::TargetSpec { addr, weight: 1 })
            .collect(),
        health,
        table_size: 251,
        hash: dataplane::forwarding::HashFields::FiveTuple,
        line: 1,
    }
}

fn resolve_all(p: &Publisher) {
    for b in p.backends() {
        p.set_mac(b.addr, Some([2, 0, 0, 0, 0, 2])).unwrap();
    }
}

#[tokio::test]
async fn a_service_s_own_check_takes_only_its_backends_down_and_rebuilds_only_its_table() {
    let closed = closed_port().await;
    let (a, b) = (IpAddr::from([127, 0, 0, 2]), IpAddr::from([127, 0, 0, 3]));
    // The default backend (127.0.0.1) and service "other" have no check
    // (RR_HEALTH none); "checked" probes a closed port.
    let p = publisher(&[LOCAL]);
    p.set_services(&[
        service("checked", 1, &[a], Some(HealthCheck::Tcp { port: closed })),
        service("other", 2, &[b], None),
    ])
    .unwrap();
    resolve_all(&p);
    let before = Arc::clone(&p.handle().load());
    let _checks = spawn(p.clone(), config(HealthCheck::None));
    eventually("the checked service's backend goes down", || !is_up(&p, a)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        is_up(&p, LOCAL) && is_up(&p, b),
        "unchecked backends stay up"
    );
    let after = Arc::clone(&p.handle().load());
    assert_eq!(
        after.generation,
        before.generation + 1,
        "one transition, one table"
    );
    assert!(
        Arc::ptr_eq(&before.maglev, &after.maglev),
        "default table rebuilt"
    );
    let named = |t: &ForwardingTable, n: &str| Arc::clone(&t.services.named(n).unwrap().maglev);
    assert!(
        Arc::ptr_eq(&named(&before, "other"), &named(&after, "other")),
        "the other service's table was rebuilt"
    );
    assert!(named(&after, "checked")
        .entries()
        .iter()
        .all(|&s| s == u16::MAX));
}

#[tokio::test]
async fn a_service_check_overrides_the_balancer_s_and_a_reload_can_change_it() {
    let closed = closed_port().await;
    let open = closed_port().await;
    let _listening = accepting_on(open).await;
    let svc = IpAddr::from([127, 0, 0, 4]);
    // RR_HEALTH probes the closed port: the default backend goes down, the
    // service's backend, checked on the open port, stays up.
    let p = publisher(&[LOCAL]);
    let checked = |health| vec![service("web", 1, &[svc], health)];
    p.set_services(&checked(Some(HealthCheck::Tcp { port: open })))
        .unwrap();
    resolve_all(&p);
    let _checks = spawn(p.clone(), config(HealthCheck::Tcp { port: closed }));
    eventually("the default backend goes down", || !is_up(&p, LOCAL)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        is_up(&p, svc),
        "checked on its service's port, which answers"
    );
    // The service's check removed by a reload: RR_HEALTH's closed port now.
    p.set_services(&checked(None)).unwrap();
    eventually("the balancer's check takes it down", || !is_up(&p, svc)).await;
    // And back to a check of its own, on the open port.
    p.set_services(&checked(Some(HealthCheck::Tcp { port: open })))
        .unwrap();
    eventually("its own check brings it back", || is_up(&p, svc)).await;
}

#[tokio::test]
async fn a_backend_left_with_no_check_comes_back_up() {
    let closed = closed_port().await;
    let svc = IpAddr::from([127, 0, 0, 5]);
    let p = publisher(&[LOCAL]);
    let checked = |health| vec![service("web", 1, &[svc], health)];
    p.set_services(&checked(Some(HealthCheck::Tcp { port: closed })))
        .unwrap();
    let _checks = spawn(p.clone(), config(HealthCheck::None));
    eventually("the service's check takes it down", || !is_up(&p, svc)).await;
    p.set_services(&checked(None)).unwrap();
    eventually("unchecked again, it is up", || is_up(&p, svc)).await;
}

#[tokio::test]
async fn an_ipv6_backend_is_probed_over_ipv6() {
    // Bound on [::1] only: an IPv4 probe of 127.0.0.1 would find nothing.
    let listener = match TcpListener::bind((LOCAL_V6, 0)).await {
        Ok(listener) => listener,
        Err(e) => {
            let _ = host::capability::machine_lacks(format!("IPv6 loopback ([::1]): {e}"));
            return;
        }
    };
    let port = listener.local_addr().unwrap().port();
    let accepting = accept_and_close(listener);
    let p = publisher(&[LOCAL_V6]);
    let _checks = spawn(p.clone(), config(HealthCheck::Tcp { port }));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(is_up(&p, LOCAL_V6), "[::1]:{port} answers");
    accepting.abort();
    let _ = accepting.await;
    eventually("closed, it goes down", || !is_up(&p, LOCAL_V6)).await;
}
