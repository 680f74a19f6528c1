//! Frames as a server receives them, read with a packet socket in its
//! namespace, and the checks every forwarded frame must pass.

use std::net::Ipv4Addr;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dataplane::wire::checksum::checksum;

use super::lab::in_namespace;

/// Starts capturing up to `max` GRE frames arriving in `ns`, for at most `limit`.
pub fn start(ns: &str, max: usize, limit: Duration) -> JoinHandle<Vec<Vec<u8>>> {
    start_matching(ns, max, limit, is_gre)
}

/// An IPv4 frame carrying GRE.
pub fn is_gre(frame: &[u8]) -> bool {
    frame.len() > 34 && frame[12..14] == [0x08, 0x00] && frame[23] == 47
}

/// An IPv4 frame carrying ICMP from `from`.
pub fn is_icmp_from(frame: &[u8], from: Ipv4Addr) -> bool {
    frame.len() > 34
        && frame[12..14] == [0x08, 0x00]
        && frame[23] == 1
        && frame[26..30] == from.octets()
}

/// Starts capturing up to `max` IPv4 frames for which `keep` holds, arriving
/// in `ns`, for at most `limit`.
pub fn start_matching(
    ns: &str,
    max: usize,
    limit: Duration,
    keep: impl Fn(&[u8]) -> bool + Send + 'static,
) -> JoinHandle<Vec<Vec<u8>>> {
    let ns = ns.to_owned();
    std::thread::spawn(move || in_namespace(&ns, move || capture_here(max, limit, keep)))
}

fn capture_here(max: usize, limit: Duration, keep: impl Fn(&[u8]) -> bool) -> Vec<Vec<u8>> {
    let protocol = (libc::ETH_P_IP as u16).to_be();
    // SAFETY: plain socket call; checked below.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(protocol)) };
    assert!(
        fd >= 0,
        "packet socket: {}",
        std::io::Error::last_os_error()
    );
    let timeout = libc::timeval {
        tv_sec: 0,
        tv_usec: 100_000,
    };
    // SAFETY: timeout is a valid timeval for the call.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&raw const timeout).cast(),
            size_of::<libc::timeval>() as u32,
        );
    }
    let deadline = Instant::now() + limit;
    let mut frames = Vec::new();
    let mut buffer = vec![0u8; 65_536];
    while frames.len() < max && Instant::now() < deadline {
        // SAFETY: buffer is writable for its length.
        let n = unsafe { libc::recv(fd, buffer.as_mut_ptr().cast(), buffer.len(), 0) };
        let Ok(n) = usize::try_from(n) else {
            continue;
        };
        if keep(&buffer[..n]) {
            frames.push(buffer[..n].to_vec());
        }
    }
    // SAFETY: fd is ours.
    unsafe { libc::close(fd) };
    frames
}

/// Checks one forwarded frame: outer IPv4 from `lb` to `backend` with a
/// correct header checksum, GRE version 0 carrying IPv4, and an inner TCP or
/// UDP checksum that verifies. Returns what is wrong.
pub fn check_forwarded(frame: &[u8], lb: Ipv4Addr, backend: Ipv4Addr) -> Result<(), String> {
    let ip = &frame[14..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    if checksum(&ip[..ihl]) != 0 {
        return Err("outer IPv4 header checksum is wrong".into());
    }
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    if (src, dst) != (lb, backend) {
        return Err(format!("outer {src} -> {dst}, expected {lb} -> {backend}"));
    }
    let gre = &ip[ihl..];
    if gre[0..2] != [0, 0] || gre[2..4] != [0x08, 0x00] {
        return Err(format!("GRE header {:02x?}", &gre[..4]));
    }
    let inner = &gre[4..];
    let inner_ihl = usize::from(inner[0] & 0x0f) * 4;
    if checksum(&inner[..inner_ihl]) != 0 {
        return Err("inner IPv4 header checksum is wrong".into());
    }
    let total = usize::from(u16::from_be_bytes([inner[2], inner[3]]));
    let l4 = &inner[inner_ihl..total];
    let mut pseudo = Vec::with_capacity(12 + l4.len());
    pseudo.extend_from_slice(&inner[12..20]);
    pseudo.extend_from_slice(&[0, inner[9]]);
    pseudo.extend_from_slice(&(l4.len() as u16).to_be_bytes());
    pseudo.extend_from_slice(l4);
    if checksum(&pseudo) != 0 {
        return Err(format!("inner protocol {} checksum is wrong", inner[9]));
    }
    Ok(())
}
