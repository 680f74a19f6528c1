//! `testbed mconnect --server`: answers every connection (and with `--udp` every
//! datagram) with its name, as Nordix mconnect's server does.
//!
//! UDP answers leave from the address each datagram was sent to, so a client
//! of a VIP behind a direct-server-return balancer accepts them ([`ReplySocket`]).
//!
//! TCP: the name is written on accept and again after every read, so a client can ask
//! "who are you?" at any time on a held connection. One light task per connection, so
//! many thousands of connections cost little. A client that vanishes costs nothing
//! lasting: a closed or reset connection ends its task, TCP keepalive (set on the
//! listener, inherited by every accepted socket) ends connections whose peer disappeared
//! without a word, and a write that cannot complete in 10 s (a peer that never reads)
//! ends the connection too.

use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol as SockProtocol, SockAddr, Socket, TcpKeepalive, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use super::probe::{self, ProbeState};
use super::udp_reply::ReplySocket;

const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
const LISTEN_BACKLOG: i32 = 4096;
const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_RETRIES: u32 = 3;
/// Larger than any name and than what a client sends between two names.
const READ_BUFFER: usize = 1024;

/// How to run a server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where to listen (TCP, and UDP with `udp`); `[::]` listens on IPv4 too.
    pub address: SocketAddr,
    /// The name to answer with.
    pub name: String,
    pub udp: bool,
    /// Where to serve the HTTP liveness probe.
    pub probe: Option<SocketAddr>,
    /// Print `accepted PEER` (TCP) and `datagram PEER to ADDRESS` (UDP) on stdout for each
    /// connection or datagram, so that a test can see the addresses clients used.
    pub log_connections: bool,
}

/// Why a server could not start.
#[derive(Debug)]
pub struct ServerError {
    pub what: &'static str,
    pub address: SocketAddr,
    pub source: io::Error,
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot listen for {} on {}: {}",
            self.what, self.address, self.source
        )
    }
}

impl std::error::Error for ServerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// A bound server, ready to serve.
#[derive(Debug)]
pub struct Server {
    config: ServerConfig,
    tcp: TcpListener,
    udp: Option<ReplySocket>,
    probe: Option<TcpListener>,
}

impl Server {
    /// Binds every socket the configuration asks for. Must be called inside a runtime.
    pub fn bind(config: ServerConfig) -> Result<Self, ServerError> {
        let error = |what, address| {
            move |source| ServerError {
                what,
                address,
                source,
            }
        };
        let tcp = bind_tcp(config.address, true).map_err(error("TCP", config.address))?;
        // UDP takes the port TCP got, which differs from the configured one when that is 0.
        let udp = if config.udp {
            let address = tcp.local_addr().map_err(error("TCP", config.address))?;
            Some(bind_udp(address).map_err(error("UDP", address))?)
        } else {
            None
        };
        let probe = match config.probe {
            Some(address) => Some(bind_tcp(address, false).map_err(error("the probe", address))?),
            None => None,
        };
        Ok(Self {
            config,
            tcp,
            udp,
            probe,
        })
    }

    /// The bound TCP address (the actual port when 0 was asked for).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    pub fn probe_addr(&self) -> Option<io::Result<SocketAddr>> {
        self.probe.as_ref().map(TcpListener::local_addr)
    }

    /// One line naming what listens where, for logs and for tests to wait on.
    pub fn ready_line(&self) -> String {
        let mut line = format!(
            "mconnect server {} listening on tcp {}",
            self.config.name, self.config.address
        );
        if self.udp.is_some() {
            let _ = write!(line, " udp {}", self.config.address);
        }
        if let Some(probe) = self.config.probe {
            let _ = write!(line, " probe {probe}");
        }
        line
    }

    /// Serves until the process ends.
    pub async fn serve(self) {
        let name: Arc<[u8]> = Arc::from(self.config.name.as_bytes());
        let log = self.config.log_connections;
        if let Some(listener) = self.probe {
            tokio::spawn(probe::serve(
                listener,
                Arc::new(ProbeState::new(self.config.name.clone())),
            ));
        }
        if let Some(socket) = self.udp {
            tokio::spawn(serve_udp(socket, Arc::clone(&name), log));
        }
        serve_tcp(self.tcp, name, log).await;
    }
}

async fn serve_tcp(listener: TcpListener, name: Arc<[u8]>, log: bool) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                if log {
                    log_line(format_args!("accepted {peer}"));
                }
                tokio::spawn(serve_connection(stream, Arc::clone(&name)));
            }
            Err(error) => {
                // Out of descriptors or memory: back off instead of spinning; the
                // pending connections wait in the backlog.
                eprintln!("mconnect server: accept failed: {error}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

async fn serve_connection(mut stream: TcpStream, name: Arc<[u8]>) {
    let mut buf = [0u8; READ_BUFFER];
    if write_name(&mut stream, &name).await.is_err() {
        return;
    }
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if write_name(&mut stream, &name).await.is_err() {
            return;
        }
    }
}

async fn write_name(stream: &mut TcpStream, name: &[u8]) -> io::Result<()> {
    tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(name))
        .await
        .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
}

async fn serve_udp(socket: ReplySocket, name: Arc<[u8]>, log: bool) {
    let mut buf = [0u8; READ_BUFFER];
    loop {
        match socket.recv(&mut buf).await {
            Ok(request) => {
                if log {
                    match request.destination() {
                        Some(to) => log_line(format_args!("datagram {} to {to}", request.peer)),
                        None => log_line(format_args!("datagram {}", request.peer)),
                    }
                }
                // A lost answer is what UDP allows; the client counts it as a failed read.
                let _ = socket.reply(&name, &request).await;
            }
            Err(error) => {
                eprintln!("mconnect server: UDP receive failed: {error}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

fn log_line(line: std::fmt::Arguments<'_>) {
    // Logging is for tests and debugging; a closed stdout must not stop serving.
    let _ = writeln!(io::stdout().lock(), "{line}");
}

fn socket_for(address: SocketAddr, kind: Type, protocol: SockProtocol) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(address), kind, Some(protocol))?;
    if address.is_ipv6() && address.ip().is_unspecified() {
        // `[::]` means every address, IPv4 included, whatever the system default.
        socket.set_only_v6(false)?;
    }
    socket.set_nonblocking(true)?;
    Ok(socket)
}

fn bind_tcp(address: SocketAddr, keepalive: bool) -> io::Result<TcpListener> {
    let socket = socket_for(address, Type::STREAM, SockProtocol::TCP)?;
    // A restarted server must get its port back while old connections sit in TIME_WAIT.
    socket.set_reuse_address(true)?;
    if keepalive {
        socket.set_tcp_keepalive(
            &TcpKeepalive::new()
                .with_time(KEEPALIVE_IDLE)
                .with_interval(KEEPALIVE_INTERVAL)
                .with_retries(KEEPALIVE_RETRIES),
        )?;
    }
    socket.bind(&SockAddr::from(address))?;
    socket.listen(LISTEN_BACKLOG)?;
    TcpListener::from_std(socket.into())
}

/// A UDP socket that answers from the address each datagram was sent to
/// (the VIP behind a direct-server-return balancer; see [`ReplySocket`]).
fn bind_udp(address: SocketAddr) -> io::Result<ReplySocket> {
    let socket = socket_for(address, Type::DGRAM, SockProtocol::UDP)?;
    socket.set_reuse_address(true)?;
    socket.bind(&SockAddr::from(address))?;
    ReplySocket::new(UdpSocket::from_std(socket.into())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(udp: bool) -> ServerConfig {
        ServerConfig {
            address: "127.0.0.1:0".parse().unwrap(),
            name: "server-x".into(),
            udp,
            probe: None,
            log_connections: false,
        }
    }

    #[tokio::test]
    async fn writes_its_name_on_accept_and_after_every_read() {
        let server = Server::bind(config(false)).unwrap();
        let address = server.local_addr().unwrap();
        tokio::spawn(server.serve());
        let mut stream = TcpStream::connect(address).await.unwrap();
        let mut buf = [0u8; 64];
        let read = stream.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..read], b"server-x");
        for _ in 0..3 {
            stream.write_all(b"?").await.unwrap();
            let read = stream.read(&mut buf).await.unwrap();
            assert_eq!(&buf[..read], b"server-x");
        }
    }

    #[tokio::test]
    async fn a_closed_connection_ends_its_task_without_disturbing_others() {
        let server = Server::bind(config(false)).unwrap();
        let address = server.local_addr().unwrap();
        tokio::spawn(server.serve());
        for _ in 0..50 {
            drop(TcpStream::connect(address).await.unwrap());
        }
        let mut stream = TcpStream::connect(address).await.unwrap();
        let mut buf = [0u8; 64];
        let read = stream.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..read], b"server-x");
    }

    #[tokio::test]
    async fn with_udp_every_datagram_is_answered_with_the_name() {
        let server = Server::bind(config(true)).unwrap();
        let address = server.local_addr().unwrap();
        tokio::spawn(server.serve());
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        client.connect(address).await.unwrap();
        let mut buf = [0u8; 64];
        for _ in 0..3 {
            client.send(b"hello").await.unwrap();
            let read = tokio::time::timeout(Duration::from_secs(5), client.recv(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(&buf[..read], b"server-x");
        }
    }

    #[tokio::test]
    async fn binding_a_taken_port_names_the_address() {
        let first = Server::bind(config(false)).unwrap();
        let taken = first.local_addr().unwrap();
        let mut second = config(false);
        second.address = taken;
        // Both have SO_REUSEADDR, but Linux still refuses two listeners on one port.
        let error = Server::bind(second).unwrap_err();
        assert!(error.to_string().contains(&taken.to_string()), "{error}");
    }
}
