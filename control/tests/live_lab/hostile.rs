//! Hostile traffic at the balancer, sent from the router's back interface
//! with a packet socket: random frames, truncated and malformed GRE, a wrong
//! GRE version, TTL 1, and inner fragments out of order.

use std::ffi::CString;
use std::net::{IpAddr, Ipv4Addr};

use etherparse::{IpNumber, Ipv4Header};
use rand::{Rng, SeedableRng};
use synth::{fragment_ipv4, ClientFlow, Transport, Tunnel};

use super::lab::{in_namespace, Lab, PORT, VIP};

/// What was sent, and what the balancer should count for it.
pub struct Sent {
    /// Drop reason and how many frames were sent that must land there.
    pub expected_drops: Vec<(&'static str, u64)>,
    /// Inner fragments sent before their first fragment.
    pub early_fragments: u64,
}

const EACH: u64 = 50;

/// The MAC of `ifname` in `host`.
fn mac_of(lab: &Lab, host: &str, ifname: &str) -> [u8; 6] {
    let out = lab.exec(host, &["cat", &format!("/sys/class/net/{ifname}/address")]);
    let text = String::from_utf8_lossy(&out.stdout);
    let mut mac = [0u8; 6];
    for (byte, part) in mac.iter_mut().zip(text.trim().split(':')) {
        *byte = u8::from_str_radix(part, 16).expect("a MAC in sysfs");
    }
    mac
}

pub fn send_all(lab: &Lab) -> Sent {
    let router = lab.back(1);
    let balancer = lab.balancer_ip(1);
    let tunnel = Tunnel {
        eth_src: mac_of(lab, "r", "eth1"),
        eth_dst: mac_of(lab, "lb1", "eth0"),
        ..Tunnel::new(router, balancer)
    };
    let vip: Ipv4Addr = VIP.parse().unwrap();
    let flow = |port: u16| ClientFlow {
        src: IpAddr::V4(lab.front(2)),
        dst: IpAddr::V4(vip),
        transport: Transport::Udp,
        src_port: port,
        dst_port: PORT,
    };
    let mut frames = Vec::new();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    // Random bytes behind the balancer's MAC.
    for _ in 0..200 {
        let len = rng.gen_range(14..300);
        let mut frame: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        frame[..6].copy_from_slice(&tunnel.eth_dst);
        frames.push(frame);
    }
    for i in 0..EACH as u16 {
        let good = tunnel.encapsulate(&flow(20_000 + i).packet(b"hostile"));
        // GRE version 1 (PPTP's), not ours.
        let mut version = good.clone();
        version[35] |= 1;
        frames.push(version);
        // A GRE header cut to two bytes, the IPv4 lengths saying so.
        frames.push(outer_only(&tunnel, &good[34..36]));
        // An inner IPv4 header cut short.
        frames.push(outer_only(
            &tunnel,
            &[&good[34..38], &good[38..46]].concat(),
        ));
        // Outer TTL 1: forwarding would need to send it with TTL 0.
        frames.push(Tunnel { ttl: 1, ..tunnel }.encapsulate(&flow(21_000 + i).packet(b"ttl")));
    }
    // Inner fragments of 20 datagrams, last first.
    let mut early = 0;
    for i in 0..20u16 {
        let mut packet = flow(22_000 + i).packet(&[0x5a; 2000]);
        // A datagram id of its own (the fragments recompute the checksum).
        packet[4..6].copy_from_slice(&(1000 + i).to_be_bytes());
        let fragments = fragment_ipv4(&packet, 800);
        early += fragments.len() as u64 - 1;
        for fragment in fragments.iter().rev() {
            frames.push(tunnel.encapsulate(fragment));
        }
    }
    send_from(&lab.ns("r"), "eth1", &frames);
    Sent {
        expected_drops: vec![
            ("bad_gre_version", EACH),
            ("truncated_gre", EACH),
            ("truncated_inner_ipv4", EACH),
            ("ttl_expired", EACH),
        ],
        early_fragments: early,
    }
}

/// An outer IPv4 + Ethernet frame around `payload` (protocol GRE).
fn outer_only(tunnel: &Tunnel, payload: &[u8]) -> Vec<u8> {
    let mut ip = Ipv4Header::new(
        payload.len() as u16,
        64,
        IpNumber(47),
        tunnel.outer_src.octets(),
        tunnel.outer_dst.octets(),
    )
    .expect("small");
    ip.header_checksum = ip.calc_header_checksum();
    let mut frame = Vec::new();
    frame.extend_from_slice(&tunnel.eth_dst);
    frame.extend_from_slice(&tunnel.eth_src);
    frame.extend_from_slice(&0x0800u16.to_be_bytes());
    frame.extend_from_slice(&ip.to_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// Sends raw frames on `ifname` inside namespace `ns` (a packet socket
/// belongs to its creator's namespace).
fn send_from(ns: &str, ifname: &str, frames: &[Vec<u8>]) {
    let ifname = ifname.to_owned();
    let frames = frames.to_vec();
    let namespace = ns.to_owned();
    in_namespace(ns, move || {
        let name = CString::new(ifname).unwrap();
        // SAFETY: name is NUL-terminated.
        let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
        assert!(index > 0, "interface in {namespace}");
        // SAFETY: plain socket call; checked below.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
        assert!(fd >= 0, "packet socket");
        // SAFETY: all-zero is a valid sockaddr_ll.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_ifindex = i32::try_from(index).expect("interface index");
        addr.sll_halen = 6;
        for (n, frame) in frames.iter().enumerate() {
            // SAFETY: frame and addr are valid for the call.
            let sent = unsafe {
                libc::sendto(
                    fd,
                    frame.as_ptr().cast(),
                    frame.len(),
                    0,
                    (&raw const addr).cast(),
                    size_of::<libc::sockaddr_ll>() as u32,
                )
            };
            assert!(
                sent >= 0,
                "sending frame {n}: {}",
                std::io::Error::last_os_error()
            );
            if n % 64 == 63 {
                // Let the balancer's ring keep up; this is about content, not rate.
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        }
        // SAFETY: fd is ours.
        unsafe { libc::close(fd) };
    });
}
