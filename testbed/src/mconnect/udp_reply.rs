//! UDP answers that leave from the address the request was sent to.
//!
//! Behind a direct-server-return balancer the server holds the service's
//! address (the VIP, on a tunnel device or `lo`) besides its own, and the
//! client's connected UDP socket accepts only datagrams from the VIP. A socket
//! bound to the wildcard address lets the kernel pick the reply's source by
//! the route back to the client: the server's own address, which the client
//! drops. So the socket asks for each datagram's destination (`IP_PKTINFO`,
//! `IPV6_RECVPKTINFO`) and hands it back as the source of the answer.
//!
//! Why not one socket bound per local address: addresses come and go while
//! the server runs (a tunnel endpoint puts the VIP on its device after the
//! server started, an operator adds a VIP), and a socket per address sees
//! only the ones present at start. The wildcard socket with packet info
//! answers correctly for every address, present or future, with one socket.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd};

use nix::sys::socket::{
    recvmsg, sendmsg, setsockopt, sockopt, ControlMessage, ControlMessageOwned, MsgFlags,
    SockaddrStorage,
};
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Where a datagram was sent to, as the kernel reported it.
#[derive(Debug, Clone, Copy)]
enum Destination {
    /// `ipi_spec_dst`: the request's destination for unicast, the receiving
    /// interface's address for a broadcast (a valid source either way).
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

/// One datagram received: its length, its sender, and where it was sent.
#[derive(Debug, Clone, Copy)]
pub struct Request {
    /// Bytes received (the test reads it; the server answers whatever came).
    #[cfg_attr(not(test), allow(dead_code))]
    pub len: usize,
    pub peer: SocketAddr,
    destination: Option<Destination>,
}

impl Request {
    /// The address the datagram was sent to, when the kernel said.
    pub fn destination(&self) -> Option<std::net::IpAddr> {
        self.destination.map(|d| match d {
            Destination::V4(a) => a.into(),
            Destination::V6(a) => a.into(),
        })
    }
}

/// A UDP socket that answers from each request's destination address.
#[derive(Debug)]
pub struct ReplySocket {
    socket: UdpSocket,
}

impl ReplySocket {
    /// Asks the kernel for every datagram's destination on `socket`.
    pub fn new(socket: UdpSocket) -> io::Result<Self> {
        let local = socket.local_addr()?;
        let fd = socket.as_fd();
        if local.is_ipv4() {
            setsockopt(&fd, sockopt::Ipv4PacketInfo, &true)?;
        } else {
            setsockopt(&fd, sockopt::Ipv6RecvPacketInfo, &true)?;
            // A dual-stack socket reports IPv4 datagrams with IPv4's option;
            // an IPv6-only socket refuses it and never gets IPv4 anyway.
            let _ = setsockopt(&fd, sockopt::Ipv4PacketInfo, &true);
        }
        Ok(Self { socket })
    }

    /// Receives one datagram into `buf` (truncated to its size).
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<Request> {
        let fd = self.socket.as_raw_fd();
        self.socket
            .async_io(Interest::READABLE, || {
                let mut iov = [IoSliceMut::new(buf)];
                let mut space = nix::cmsg_space!(libc::in_pktinfo, libc::in6_pktinfo);
                let message =
                    recvmsg::<SockaddrStorage>(fd, &mut iov, Some(&mut space), MsgFlags::empty())?;
                let mut destination = None;
                for cmsg in message.cmsgs()? {
                    match cmsg {
                        ControlMessageOwned::Ipv4PacketInfo(info) => {
                            destination = Some(Destination::V4(Ipv4Addr::from(u32::from_be(
                                info.ipi_spec_dst.s_addr,
                            ))));
                        }
                        ControlMessageOwned::Ipv6PacketInfo(info) => {
                            destination =
                                Some(Destination::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr)));
                        }
                        _ => {}
                    }
                }
                let peer = message
                    .address
                    .as_ref()
                    .and_then(socket_addr)
                    .ok_or_else(|| io::Error::other("a datagram without a sender address"))?;
                Ok(Request {
                    len: message.bytes,
                    peer,
                    destination,
                })
            })
            .await
    }

    /// Sends `data` to the request's sender, from the request's destination.
    pub async fn reply(&self, data: &[u8], request: &Request) -> io::Result<()> {
        let fd = self.socket.as_raw_fd();
        let v4_info;
        let v6_info;
        let mut cmsgs = Vec::with_capacity(1);
        match request.destination {
            // A multicast destination is no valid source: the kernel picks one.
            Some(Destination::V4(source)) if !source.is_multicast() => {
                v4_info = libc::in_pktinfo {
                    // Index 0: the route back to the client picks the way out,
                    // not the (tunnel) device the request came in on.
                    ipi_ifindex: 0,
                    ipi_spec_dst: libc::in_addr {
                        s_addr: u32::from(source).to_be(),
                    },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                cmsgs.push(ControlMessage::Ipv4PacketInfo(&v4_info));
            }
            Some(Destination::V6(source)) if !source.is_multicast() => {
                v6_info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr {
                        s6_addr: source.octets(),
                    },
                    ipi6_ifindex: 0,
                };
                cmsgs.push(ControlMessage::Ipv6PacketInfo(&v6_info));
            }
            _ => {}
        }
        let peer = SockaddrStorage::from(request.peer);
        self.socket
            .async_io(Interest::WRITABLE, || {
                sendmsg(
                    fd,
                    &[IoSlice::new(data)],
                    &cmsgs,
                    MsgFlags::empty(),
                    Some(&peer),
                )
                .map(drop)
                .map_err(io::Error::from)
            })
            .await
    }
}

fn socket_addr(address: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = address.as_sockaddr_in() {
        return Some(SocketAddrV4::from(*v4).into());
    }
    address
        .as_sockaddr_in6()
        .map(|v6| SocketAddrV6::from(*v6).into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A server on the wildcard address; the client sends to 127.0.0.2,
    /// which the route back to the client would not pick as the source
    /// (it picks 127.0.0.1), as the VIP behind a DSR balancer.
    async fn answered_from_the_address_asked(bind: &str) {
        let server = ReplySocket::new(UdpSocket::bind(bind).await.unwrap()).unwrap();
        let port = server.socket.local_addr().unwrap().port();
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let asked: SocketAddr = ([127, 0, 0, 2], port).into();
        client.connect(asked).await.unwrap();
        client.send(b"who").await.unwrap();
        let mut buf = [0u8; 16];
        let request = tokio::time::timeout(Duration::from_secs(5), server.recv(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf[..request.len], b"who");
        let seen = match request.destination().unwrap() {
            std::net::IpAddr::V6(a) => a.to_ipv4_mapped().unwrap().into(),
            v4 @ std::net::IpAddr::V4(_) => v4,
        };
        assert_eq!(seen, asked.ip());
        server.reply(b"s1", &request).await.unwrap();
        // The connected client accepts only datagrams from 127.0.0.2.
        let read = tokio::time::timeout(Duration::from_secs(5), client.recv(&mut buf))
            .await
            .expect("the reply came from the address the request was sent to")
            .unwrap();
        assert_eq!(&buf[..read], b"s1");
    }

    #[tokio::test]
    async fn an_ipv4_wildcard_socket_answers_from_the_destination() {
        answered_from_the_address_asked("0.0.0.0:0").await;
    }

    #[tokio::test]
    async fn a_dual_stack_socket_answers_ipv4_from_the_destination() {
        answered_from_the_address_asked("[::]:0").await;
    }
}
