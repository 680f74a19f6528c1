//! How much of the API one client can hold, through real sockets on
//! loopback: connections that never finish their headers or bodies are
//! closed, the connection cap holds overall and per client, and a client
//! over its rate is told when to retry.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::*;
use control::api::{ApiLimits, ApiState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// The default limits with these changes.
fn limits(change: impl FnOnce(&mut ApiLimits)) -> ApiLimits {
    let mut limits = ApiLimits::default();
    change(&mut limits);
    limits
}

async fn serve_with(limits: ApiLimits) -> Server {
    serve(ApiState::new(publisher(2), workers(1)).with_limits(limits)).await
}

/// A connection to `to` from loopback address `from` (127.0.0.x).
async fn connect_from(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(IpAddr::V4(from), 0)).unwrap();
    socket.connect(to).await.unwrap()
}

/// Reads until the server closes the connection (or 10 s pass); what it
/// sent and how long that took.
async fn until_closed(s: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut seen = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk)).await {
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) => seen.extend_from_slice(&chunk[..n]),
            Err(elapsed) => panic!("still open after 10 s ({elapsed}); sent {seen:?}"),
        }
    }
    (
        String::from_utf8_lossy(&seen).into_owned(),
        started.elapsed(),
    )
}

/// A kept-alive connection from `from` that has had one answer: the server
/// holds a slot for it from then on (until its header timeout).
async fn held_from(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let mut s = connect_from(from, to).await;
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {to}\r\n\r\n");
    s.write_all(request.as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = s.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed before answering: {seen:?}");
        seen.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&seen);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")?
                        .parse()
                        .ok()
                })
                .unwrap();
            if body.len() >= length {
                return s;
            }
        }
    }
}

#[tokio::test]
async fn a_connection_that_never_finishes_its_headers_is_closed_after_the_header_timeout() {
    let timeout = Duration::from_millis(400);
    let server = serve_with(limits(|l| l.header_timeout = timeout)).await;
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET /backends HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let (silent_closed, slow_closed) =
        tokio::join!(until_closed(&mut silent), until_closed(&mut slow));
    for (what, (_, after)) in [("silent", silent_closed), ("slow", slow_closed)] {
        assert!(
            after >= timeout.saturating_sub(Duration::from_millis(100)) && after < timeout * 5,
            "{what} connection closed after {after:?}"
        );
    }
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_header_timeout() {
    let timeout = Duration::from_millis(400);
    let server = serve_with(limits(|l| l.header_timeout = timeout)).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr);
    s.write_all(request.as_bytes()).await.unwrap();
    let (answer, after) = until_closed(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        after >= timeout.saturating_sub(Duration::from_millis(100)),
        "{after:?}"
    );
}

#[tokio::test]
async fn a_body_that_does_not_arrive_is_answered_408() {
    let timeout = Duration::from_millis(300);
    let server = serve_with(limits(|l| l.body_timeout = timeout)).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /backends HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{{\"ip\"",
        server.addr
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let (answer, after) = until_closed(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("send it at once"), "{answer}");
    assert!(
        after >= timeout.saturating_sub(Duration::from_millis(50)),
        "{after:?}"
    );
}

#[tokio::test]
async fn bodies_larger_than_the_limit_are_answered_413() {
    let server = serve_with(ApiLimits::default()).await;
    let padding = " ".repeat(5000);
    let a = json(
        server.addr,
        "POST",
        "/backends",
        &format!(r#"{{"ip": "10.1.0.9"{padding}}}"#),
    )
    .await;
    assert_eq!(a.status, 413, "{}", a.body);
    assert!(
        a.error().contains("larger than 4096 bytes"),
        "{}",
        a.error()
    );
    let chunked = format!(
        "POST /backends HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n1388\r\n{}\r\n0\r\n\r\n",
        server.addr,
        " ".repeat(5000)
    );
    assert_eq!(
        send_raw(server.addr, &chunked).await.status,
        413,
        "without a Content-Length"
    );
}

#[tokio::test]
async fn connections_beyond_the_cap_are_answered_503_and_closed() {
    let server = serve_with(limits(|l| {
        l.max_connections = 4;
        l.max_connections_per_client = 4;
    }))
    .await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(held_from(Ipv4Addr::LOCALHOST, server.addr).await);
    }
    for _ in 0..3 {
        let mut extra = TcpStream::connect(server.addr).await.unwrap();
        let (answer, after) = until_closed(&mut extra).await;
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(answer.contains("RR_API_MAX_CONNECTIONS"), "{answer}");
        assert!(
            after < Duration::from_secs(1),
            "refused at once, not after {after:?}"
        );
    }
    held.clear();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let a = try_get(server.addr, "/healthz").await.unwrap();
        if a.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "slots never came back: {}",
            a.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn one_client_cannot_take_every_connection() {
    let server = serve_with(limits(|l| {
        l.max_connections = 10;
        l.max_connections_per_client = 2;
    }))
    .await;
    let greedy = Ipv4Addr::LOCALHOST;
    let _held = [
        held_from(greedy, server.addr).await,
        held_from(greedy, server.addr).await,
    ];
    let mut third = connect_from(greedy, server.addr).await;
    let (answer, _) = until_closed(&mut third).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("this client has its share"), "{answer}");
    let mut other = connect_from(Ipv4Addr::new(127, 0, 0, 2), server.addr).await;
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        server.addr
    );
    other.write_all(request.as_bytes()).await.unwrap();
    let (answer, _) = until_closed(&mut other).await;
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "another client still gets in: {answer}"
    );
}

/// `GET /healthz` from loopback address `from`.
async fn get_from(from: Ipv4Addr, server: &Server) -> String {
    let mut s = connect_from(from, server.addr).await;
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        server.addr
    );
    s.write_all(request.as_bytes()).await.unwrap();
    until_closed(&mut s).await.0
}

#[tokio::test]
async fn a_client_over_its_rate_is_answered_429_with_retry_after() {
    let server = serve_with(limits(|l| {
        l.rate_per_second = 1;
        l.burst = 3;
    }))
    .await;
    let client = Ipv4Addr::LOCALHOST;
    for _ in 0..3 {
        let answer = get_from(client, &server).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    let answer = get_from(client, &server).await;
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("retry-after: 1\r\n"),
        "{answer}"
    );
    assert!(answer.contains("RR_API_RATE"), "{answer}");
    let other = get_from(Ipv4Addr::new(127, 0, 0, 3), &server).await;
    assert!(
        other.starts_with("HTTP/1.1 200"),
        "another client has its own rate: {other}"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let answer = get_from(client, &server).await;
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "a second later: {answer}"
    );
}

#[tokio::test]
async fn a_request_head_over_16_kib_is_answered_431() {
    let server = serve_with(ApiLimits::default()).await;
    let request = format!(
        "GET /backends HTTP/1.1\r\nHost: {}\r\nX-Padding: {}\r\nConnection: close\r\n\r\n",
        server.addr,
        "p".repeat(20 * 1024)
    );
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    // The server may answer and close before it has read it all.
    let _ = s.write_all(request.as_bytes()).await;
    let (answer, _) = until_closed(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
}
