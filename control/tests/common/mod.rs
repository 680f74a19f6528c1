//! Shared by the API tests: a publisher over a few backends, the API served
//! on an ephemeral loopback port, and a minimal HTTP/1.1 client.

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use control::api::{self, ApiState};
use control::backends::{BackendSet, Publisher, TableSettings};
use control::stats::SharedCounters;
use dataplane::counters::WorkerCounters;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

pub const MAC: [u8; 6] = [2, 0, 0, 0, 0, 9];

pub fn ip(last: u8) -> IpAddr {
    IpAddr::from([10, 1, 0, last])
}

/// The balancer's IPv6 address in [`publisher`]'s table.
pub const LB_IPV6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10);

/// A publisher over resolved backends 10.1.0.1..=n, weight 1, 1009-entry
/// table, the balancer at 192.0.2.10 and [`LB_IPV6`].
pub fn publisher(n: u8) -> Publisher {
    publisher_from(n, Some(LB_IPV6))
}

/// [`publisher`] for a balancer without an IPv6 address.
pub fn publisher_ipv4_only(n: u8) -> Publisher {
    publisher_from(n, None)
}

fn publisher_from(n: u8, lb_ipv6: Option<Ipv6Addr>) -> Publisher {
    let mut set = BackendSet::default();
    for last in 1..=n {
        set.add(ip(last), 1).unwrap();
        set.set_mac(ip(last), Some(MAC)).unwrap();
    }
    let settings = TableSettings {
        lb_ipv4: Ipv4Addr::new(192, 0, 2, 10),
        lb_ipv6,
        lb_mac: [2, 0, 0, 0, 0, 1],
        vips: Vec::new(),
        seed: 3,
        table_size: 1009,
        mtu: 1500,
    };
    Publisher::new(settings, set).unwrap()
}

/// The API running on 127.0.0.1 until dropped.
pub struct Server {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub async fn start(publisher: Publisher, counters: Vec<SharedCounters>) -> Server {
    serve(ApiState::new(publisher, counters)).await
}

/// The API over `state` running on 127.0.0.1 until dropped.
pub async fn serve(state: ApiState) -> Server {
    let listener = api::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(api::serve_on(listener, state, async move {
        let _ = stopped.await;
    }));
    Server {
        addr,
        stop: Some(stop),
    }
}

pub fn workers(n: usize) -> Vec<SharedCounters> {
    (0..n).map(|_| WorkerCounters::new_shared()).collect()
}

/// A response: status, content type, body, and the whole head.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: String,
    pub head: String,
}

impl Answer {
    /// The value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    /// The `error` message of a JSON error body.
    pub fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error field: {}", self.body))
            .to_owned()
    }
}

/// Sends one request (`body` as JSON unless `content_type` says otherwise)
/// and reads the whole answer.
pub async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
    content_type: &str,
) -> Answer {
    try_send(addr, method, path, body, content_type)
        .await
        .unwrap_or_else(|e| panic!("{method} {path} on {addr}: {e}"))
}

/// Sends a request whose first lines (request line and headers, each
/// ending in CRLF) are given; Host and Connection are added.
pub async fn send_with(addr: SocketAddr, head: &str) -> Answer {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let request = format!("{head}Host: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).await.unwrap();
    read_answer(&mut s).await.unwrap()
}

/// `GET path`, or why it failed (for servers that may not be up yet).
pub async fn try_get(addr: SocketAddr, path: &str) -> std::io::Result<Answer> {
    try_send(addr, "GET", path, None, "").await
}

async fn try_send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
    content_type: &str,
) -> std::io::Result<Answer> {
    let mut s = TcpStream::connect(addr).await?;
    let body_headers = body.map_or(String::new(), |body| {
        format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
            body.len()
        )
    });
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{body_headers}\r\n{}",
        body.unwrap_or("")
    );
    s.write_all(request.as_bytes()).await?;
    read_answer(&mut s).await
}

async fn read_answer(s: &mut TcpStream) -> std::io::Result<Answer> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await?;
    let raw = String::from_utf8(raw).map_err(|_| bad("answer is not UTF-8"))?;
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .ok_or_else(|| bad("no end of head"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| bad("no status"))?;
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_owned)
        })
        .unwrap_or_default();
    Ok(Answer {
        status,
        content_type,
        body: body.to_owned(),
        head: head.to_owned(),
    })
}

/// Sends `request` as given (request line, headers, blank line, body) and
/// reads the whole answer; the request should say `Connection: close`.
pub async fn send_raw(addr: SocketAddr, request: &str) -> Answer {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    read_answer(&mut s)
        .await
        .unwrap_or_else(|e| panic!("{request:?} to {addr}: {e}"))
}

pub async fn get(addr: SocketAddr, path: &str) -> Answer {
    send(addr, "GET", path, None, "").await
}

pub async fn json(addr: SocketAddr, method: &str, path: &str, body: &str) -> Answer {
    send(addr, method, path, Some(body), "application/json").await
}

/// `PATCH /backends/{ip}` with `{"drain": drain}`.
pub async fn set_drain(addr: SocketAddr, ip: &str, drain: bool) -> Answer {
    let body = format!(r#"{{"drain": {drain}}}"#);
    json(addr, "PATCH", &format!("/backends/{ip}"), &body).await
}

/// Fails the test with promtool's complaints unless `promtool check metrics`
/// accepts `text`.
pub fn assert_promtool_accepts(text: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\non:\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
