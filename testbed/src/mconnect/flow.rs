//! One client connection's socket, TCP or UDP, and the two questions it asks the
//! server: "who answered first?" and, on a held connection, "who are you now?".

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use socket2::{Domain, Protocol as SockProtocol, SockAddr, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

use super::output::Protocol;

/// Any bytes make the server answer; these are easy to spot in a capture.
const TCP_QUESTION: &[u8] = b"?";
const UDP_QUESTION: &[u8] = b"mconnect";
/// Larger than any name a server sends.
pub const REPLY_BUFFER: usize = 1024;

/// An open client connection.
#[derive(Debug)]
pub enum Flow {
    Tcp(TcpStream),
    Udp(UdpSocket),
}

impl Flow {
    /// Connects to `target`, from `source` when given (an address of a `--srccidr`
    /// range, which need not be configured on any interface).
    pub async fn open(
        protocol: Protocol,
        source: Option<IpAddr>,
        target: SocketAddr,
    ) -> io::Result<Self> {
        match protocol {
            Protocol::Tcp => {
                let socket = match target {
                    SocketAddr::V4(_) => TcpSocket::new_v4()?,
                    SocketAddr::V6(_) => TcpSocket::new_v6()?,
                };
                if let Some(source) = source {
                    allow_nonlocal_source(&socket, source)?;
                    socket.bind(SocketAddr::new(source, 0))?;
                }
                Ok(Self::Tcp(socket.connect(target).await?))
            }
            Protocol::Udp => {
                let socket = Socket::new(
                    Domain::for_address(target),
                    Type::DGRAM,
                    Some(SockProtocol::UDP),
                )?;
                let source = match source {
                    Some(source) => {
                        allow_nonlocal_source(&socket, source)?;
                        source
                    }
                    None if target.is_ipv4() => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    None => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                };
                socket.bind(&SockAddr::from(SocketAddr::new(source, 0)))?;
                socket.set_nonblocking(true)?;
                let socket = UdpSocket::from_std(socket.into())?;
                socket.connect(target).await?;
                Ok(Self::Udp(socket))
            }
        }
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Self::Tcp(stream) => stream.local_addr(),
            Self::Udp(socket) => socket.local_addr(),
        }
    }

    /// The server's first answer: a TCP server speaks on accept, a UDP server
    /// answers a datagram.
    pub async fn first_reply(&mut self) -> io::Result<String> {
        match self {
            Self::Tcp(stream) => read_name(stream).await,
            Self::Udp(socket) => {
                socket.send(UDP_QUESTION).await?;
                receive_name(socket).await
            }
        }
    }

    /// Asks the server for its name again, on the same connection.
    pub async fn ask(&mut self) -> io::Result<String> {
        match self {
            Self::Tcp(stream) => {
                stream.write_all(TCP_QUESTION).await?;
                read_name(stream).await
            }
            Self::Udp(socket) => {
                socket.send(UDP_QUESTION).await?;
                receive_name(socket).await
            }
        }
    }
}

async fn read_name(stream: &mut TcpStream) -> io::Result<String> {
    let mut buf = [0u8; REPLY_BUFFER];
    match stream.read(&mut buf).await? {
        0 => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "closed by the server",
        )),
        read => Ok(name_of(&buf[..read])),
    }
}

async fn receive_name(socket: &UdpSocket) -> io::Result<String> {
    let mut buf = [0u8; REPLY_BUFFER];
    let read = socket.recv(&mut buf).await?;
    Ok(name_of(&buf[..read]))
}

/// mconnect servers send the bare name; others may end it with a newline.
fn name_of(reply: &[u8]) -> String {
    String::from_utf8_lossy(reply).trim().to_owned()
}

/// Lets a socket bind an address no interface has (Linux `IP_FREEBIND`), so that
/// `--srccidr` works without `net.ipv4.ip_nonlocal_bind`; replies still need a route
/// back, such as the range assigned to `lo`.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn allow_nonlocal_source(socket: &impl std::os::fd::AsFd, source: IpAddr) -> io::Result<()> {
    let socket = socket2::SockRef::from(socket);
    match source {
        IpAddr::V4(_) => socket.set_freebind(true),
        IpAddr::V6(_) => socket.set_freebind_ipv6(true),
    }
}

/// Elsewhere the system setting (FreeBSD: `IP_BINDANY` privileges) decides.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn allow_nonlocal_source(_socket: &impl std::os::fd::AsFd, _source: IpAddr) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_never_fail_on_bad_utf8() {
        assert_eq!(name_of(b"server-1"), "server-1");
        assert_eq!(name_of(b"server-1\n"), "server-1");
        assert_eq!(name_of(b"s\xffx"), "s\u{fffd}x");
    }
}
