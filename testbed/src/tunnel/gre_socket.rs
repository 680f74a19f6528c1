//! A raw `IPPROTO_GRE` socket. Sending: we give GRE header + inner packet and
//! the kernel builds the outer IPv4 header (IPv6 on the IPv6 socket). Receiving: every GRE packet
//! addressed to this namespace, outer IPv4 header included; or, on the IPv6
//! socket ([`GreSocket::open_v6`]), every GRE over IPv6 packet, without its
//! outer header (IPv6 raw sockets never deliver it). Having one open
//! also stops the kernel from answering GRE with ICMP protocol-unreachable,
//! since a raw socket counts as a handler for the protocol.

use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, RawFd};

use dataplane::wire::ip_proto;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// An open raw GRE socket.
#[derive(Debug)]
pub struct GreSocket {
    socket: Socket,
}

impl GreSocket {
    /// Opens the router's socket toward remotes of `local`'s family: IPv6
    /// when `ipv6` (GRE over IPv6), else IPv4; with `local`, packets leave
    /// with that source address. Blocking (see [`open`](Self::open)).
    pub fn open_sender(ipv6: bool, local: Option<IpAddr>) -> io::Result<Self> {
        match (ipv6, local) {
            (false, None) => Self::open(None, false),
            (false, Some(IpAddr::V4(a))) => Self::open(Some(a), false),
            (true, None) => Self::open_v6(None, false),
            (true, Some(IpAddr::V6(a))) => Self::open_v6(Some(a), false),
            (_, Some(a)) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("--local {a} is not of the --remote balancers' family"),
            )),
        }
    }

    /// Opens the socket; with `local`, packets leave with that source
    /// address (it must be an address of this host). The router side sends
    /// blocking (a full send buffer slows reading from the tun instead of
    /// dropping); the server side receives non-blocking, in batches.
    pub fn open(local: Option<Ipv4Addr>, nonblocking: bool) -> io::Result<Self> {
        let socket = Socket::new(
            Domain::IPV4,
            Type::RAW,
            Some(Protocol::from(i32::from(ip_proto::GRE))),
        )
        .map_err(|e| io::Error::new(e.kind(), format!("raw IPPROTO_GRE socket: {e}")))?;
        socket.set_nonblocking(nonblocking)?;
        if let Some(local) = local {
            socket
                .bind(&SockAddr::from(SocketAddrV4::new(local, 0)))
                .map_err(|e| io::Error::new(e.kind(), format!("bind to --local {local}: {e}")))?;
        }
        Ok(Self { socket })
    }

    /// Opens a raw GRE socket for IPv6: the server side's, non-blocking, to
    /// receive GRE over IPv6 (GRE header and inner packet only); the
    /// router's, blocking, to send it (from `local` when given).
    pub fn open_v6(local: Option<Ipv6Addr>, nonblocking: bool) -> io::Result<Self> {
        let socket = Socket::new(
            Domain::IPV6,
            Type::RAW,
            Some(Protocol::from(i32::from(ip_proto::GRE))),
        )
        .map_err(|e| io::Error::new(e.kind(), format!("raw IPv6 IPPROTO_GRE socket: {e}")))?;
        socket.set_nonblocking(nonblocking)?;
        if let Some(local) = local {
            socket
                .bind(&SockAddr::from(SocketAddrV6::new(local, 0, 0, 0)))
                .map_err(|e| io::Error::new(e.kind(), format!("bind to --local {local}: {e}")))?;
        }
        Ok(Self { socket })
    }

    /// Makes the socket discard everything it would receive. A raw socket
    /// gets a copy of every GRE packet to this host; the sending side never
    /// reads, so without this its receive queue would sit full of copies.
    /// (A one-instruction classic BPF program: `ret #0`.)
    pub fn discard_received(&self) -> io::Result<()> {
        let drop_all = libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: 0,
        };
        self.socket.attach_filter(&[drop_all])
    }

    /// Sends one GRE packet (header + payload) to `remote`.
    #[inline]
    pub fn send_to(&self, gre: &[u8], remote: &SockAddr) -> io::Result<usize> {
        self.socket.send_to(gre, remote)
    }

    /// Receives one packet, outer IPv4 header included; `WouldBlock` when none.
    #[inline]
    pub fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.socket.read(buf)
    }

    /// The socket address of a remote, computed once at start (port 0: a
    /// raw socket's protocol is its own).
    pub fn remote(address: IpAddr) -> SockAddr {
        SockAddr::from(SocketAddr::new(address, 0))
    }
}

impl AsRawFd for GreSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}
