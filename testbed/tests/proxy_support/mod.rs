//! Shared by the fault proxy tests: a `testbed proxy` server on loopback in its own
//! runtime (dropped with the harness, which ends every proxy), a blocking JSON client
//! for its API, and small upstream servers.

#![allow(dead_code)] // each test file uses a different part

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use testbed::proxy::{Limits, ProxyServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A running server; dropping it stops the server and every proxy.
pub struct Harness {
    pub api: SocketAddr,
    pub handle: tokio::runtime::Handle,
    agent: ureq::Agent,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

/// An API answer: status and body (JSON when it parses, else a string).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Harness {
    pub fn start(seed: u64) -> Harness {
        Self::start_with_limits(seed, Limits::default())
    }

    /// A server held to `limits` (small ones make the limits cheap to reach).
    pub fn start_with_limits(seed: u64, limits: Limits) -> Harness {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let server = ProxyServer::bind_with_limits("127.0.0.1:0", seed, limits)
                    .await
                    .unwrap();
                ready_tx
                    .send((
                        server.local_addr().unwrap(),
                        tokio::runtime::Handle::current(),
                    ))
                    .unwrap();
                tokio::select! {
                    _ = server.serve() => {}
                    _ = stop_rx => {}
                }
            });
        });
        let (api, handle) = ready_rx.recv().unwrap();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(20)))
            .build()
            .into();
        Harness {
            api,
            handle,
            agent,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.api)
    }

    pub fn request(&self, method: &str, path: &str, body: Option<&str>) -> Answer {
        self.request_as(method, path, body, "toxiproxy-test")
    }

    pub fn request_as(&self, method: &str, path: &str, body: Option<&str>, agent: &str) -> Answer {
        let url = self.url(path);
        let result = match (method, body) {
            ("GET", _) => self.agent.get(&url).header("User-Agent", agent).call(),
            ("DELETE", _) => self.agent.delete(&url).header("User-Agent", agent).call(),
            ("POST", Some(body)) => self.agent.post(&url).header("User-Agent", agent).send(body),
            ("POST", None) => self
                .agent
                .post(&url)
                .header("User-Agent", agent)
                .send_empty(),
            ("PATCH", Some(body)) => self
                .agent
                .patch(&url)
                .header("User-Agent", agent)
                .send(body),
            (method, _) => panic!("unsupported method {method}"),
        };
        let mut response = result.unwrap_or_else(|error| panic!("{method} {path}: {error}"));
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer { status, body }
    }

    /// Sends any bytes as the body (not necessarily JSON, not necessarily UTF-8).
    pub fn request_bytes(&self, method: &str, path: &str, body: &[u8]) -> Answer {
        let url = self.url(path);
        let result = match method {
            "POST" => self.agent.post(&url).send(body),
            "PATCH" => self.agent.patch(&url).send(body),
            method => panic!("unsupported method {method}"),
        };
        let mut response = result.unwrap_or_else(|error| panic!("{method} {path}: {error}"));
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer { status, body }
    }

    pub fn get(&self, path: &str) -> Answer {
        self.request("GET", path, None)
    }

    pub fn post(&self, path: &str, body: &Value) -> Answer {
        self.request("POST", path, Some(&body.to_string()))
    }

    pub fn patch(&self, path: &str, body: &Value) -> Answer {
        self.request("PATCH", path, Some(&body.to_string()))
    }

    pub fn delete(&self, path: &str) -> Answer {
        self.request("DELETE", path, None)
    }

    /// Creates a TCP proxy to `upstream` on a free loopback port; returns its address.
    pub fn proxy_to(&self, name: &str, upstream: SocketAddr) -> SocketAddr {
        let answer = self.post(
            "/proxies",
            &serde_json::json!({"name": name, "listen": "127.0.0.1:0", "upstream": upstream.to_string()}),
        );
        assert_eq!(answer.status, 201, "{answer:?}");
        answer.body["listen"].as_str().unwrap().parse().unwrap()
    }

    pub fn add_toxic(&self, proxy: &str, toxic: &Value) -> Answer {
        let answer = self.post(&format!("/proxies/{proxy}/toxics"), toxic);
        assert_eq!(answer.status, 200, "{answer:?}");
        answer
    }

    /// An upstream that echoes every byte back.
    pub fn echo_server(&self) -> SocketAddr {
        self.serve_with(|mut stream| async move {
            let mut buffer = vec![0; 64 * 1024];
            loop {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(read) => {
                        if stream.write_all(&buffer[..read]).await.is_err() {
                            return;
                        }
                    }
                }
            }
        })
    }

    /// An upstream that writes `bytes` bytes (0..=255 repeating) and closes.
    pub fn source_server(&self, bytes: usize) -> SocketAddr {
        self.serve_with(move |mut stream| async move {
            let data: Vec<u8> = (0..bytes).map(|i| i as u8).collect();
            let _ = stream.write_all(&data).await;
            let _ = stream.shutdown().await;
            // Drain until the peer closes, so the close is not a reset.
            let mut sink = [0; 1024];
            while let Ok(read) = stream.read(&mut sink).await {
                if read == 0 {
                    break;
                }
            }
        })
    }

    pub fn serve_with<F, Fut>(&self, serve: F) -> SocketAddr
    where
        F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let listener = self
            .handle
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let address = listener.local_addr().unwrap();
        self.handle.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream));
            }
        });
        address
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A client connection with generous timeouts (the machine is shared).
pub fn connect(address: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&address, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// Sends `message` and waits until it has all come back; returns the round trip.
pub fn round_trip(stream: &mut TcpStream, message: &[u8]) -> Duration {
    let start = Instant::now();
    stream.write_all(message).unwrap();
    let mut back = vec![0; message.len()];
    stream.read_exact(&mut back).unwrap();
    assert_eq!(back, message);
    start.elapsed()
}

/// Reads until the end of stream or an error; returns the bytes and the error kind.
pub fn read_to_end(stream: &mut TcpStream) -> (Vec<u8>, Option<std::io::ErrorKind>) {
    let mut data = Vec::new();
    let mut buffer = vec![0; 64 * 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return (data, None),
            Ok(read) => data.extend_from_slice(&buffer[..read]),
            Err(error) => return (data, Some(error.kind())),
        }
    }
}

impl Harness {
    /// A UDP upstream that echoes every datagram back.
    pub fn udp_echo_server(&self) -> SocketAddr {
        let socket = self
            .handle
            .block_on(tokio::net::UdpSocket::bind("127.0.0.1:0"))
            .unwrap();
        let address = socket.local_addr().unwrap();
        self.handle.spawn(async move {
            let mut buffer = vec![0; 65_536];
            while let Ok((read, from)) = socket.recv_from(&mut buffer).await {
                let _ = socket.send_to(&buffer[..read], from).await;
            }
        });
        address
    }
}
