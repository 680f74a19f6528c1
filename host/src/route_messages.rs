//! FreeBSD's routing messages (`<net/route.h>`, amd64), read from bytes: the
//! answer to an `RTM_GET` (the route toward an address) and the ARP table
//! as `sysctl net.route.0.inet.flags.llinfo` dumps it (what `arp -an`
//! reads). Plain byte parsing, so it is compiled and tested everywhere; the
//! socket and the sysctl that produce the bytes are in `route_socket`
//! (FreeBSD only).
//!
//! Every length comes from the kernel and is checked before it is used: a
//! short or inconsistent message ends the parse with what was read before
//! it, never a read out of bounds.

use std::net::Ipv4Addr;

/// `sizeof(struct rt_msghdr)` on amd64: 40 bytes of header, then
/// `struct rt_metrics` (14 `u_long`s).
pub const RT_MSGHDR_LEN: usize = 152;
/// `RTM_VERSION`.
pub const RTM_VERSION: u8 = 5;
/// `RTM_GET`.
pub const RTM_GET: u8 = 4;
/// `RTF_UP`, `RTF_HOST`: a request for a usable route to one address.
const RTF_UP: i32 = 0x1;
const RTF_HOST: i32 = 0x4;
/// `RTF_GATEWAY`: the destination is reached through `RTA_GATEWAY`.
pub const RTF_GATEWAY: i32 = 0x2;
/// `RTF_STATIC`: on an ARP entry, a permanent one.
pub const RTF_STATIC: i32 = 0x800;
/// `RTA_DST`, `RTA_GATEWAY`, `RTA_IFP`: the addresses read here.
pub const RTA_DST: i32 = 0x1;
pub const RTA_GATEWAY: i32 = 0x2;
pub const RTA_IFP: i32 = 0x10;
/// `sizeof(struct sockaddr_dl)`.
const SOCKADDR_DL_LEN: usize = 54;
/// `AF_INET` and `AF_LINK` as FreeBSD numbers them.
pub const AF_INET: u8 = 2;
pub const AF_LINK: u8 = 18;
/// `RTA_*` bits: up to eight addresses follow the header, in bit order.
const RTAX_MAX: u32 = 8;

// Field offsets in struct rt_msghdr.
const MSGLEN: usize = 0;
const VERSION: usize = 2;
const TYPE: usize = 3;
const INDEX: usize = 4;
const FLAGS: usize = 8;
const ADDRS: usize = 12;
const PID: usize = 16;
const SEQ: usize = 20;
const ERRNO: usize = 24;

/// One message's header fields that matter here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub version: u8,
    pub kind: u8,
    /// The interface (`rtm_index`).
    pub index: u16,
    pub flags: i32,
    pub pid: i32,
    pub seq: i32,
    pub errno: i32,
}

/// The route toward an address: its gateway (none when on-link) and the
/// outgoing interface's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteAnswer {
    pub gateway: Option<Ipv4Addr>,
    pub interface: u32,
}

/// One ARP-table entry: its address, its MAC (`None` while incomplete), the
/// interface, and whether it is permanent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpEntry {
    pub addr: Ipv4Addr,
    pub mac: Option<[u8; 6]>,
    pub interface: u32,
    pub permanent: bool,
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn i32_at(bytes: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_ne_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// Splits the first message off `bytes`: its header, its address bytes,
/// and the rest. `None` when the message is shorter than a header or than
/// its own `rtm_msglen` says.
fn split_message(bytes: &[u8]) -> Option<(Header, i32, &[u8], &[u8])> {
    let length = usize::from(u16_at(bytes, MSGLEN)?);
    if length < RT_MSGHDR_LEN || length > bytes.len() {
        return None;
    }
    let message = &bytes[..length];
    let header = Header {
        version: *message.get(VERSION)?,
        kind: *message.get(TYPE)?,
        index: u16_at(message, INDEX)?,
        flags: i32_at(message, FLAGS)?,
        pid: i32_at(message, PID)?,
        seq: i32_at(message, SEQ)?,
        errno: i32_at(message, ERRNO)?,
    };
    let addrs = i32_at(message, ADDRS)?;
    Some((header, addrs, &message[RT_MSGHDR_LEN..], &bytes[length..]))
}

/// The addresses after a header, by `RTA_*` bit: each a sockaddr of
/// `sa_len` bytes, padded to a multiple of 8 (`SA_SIZE`; an empty one takes
/// 8). Missing or truncated ones are `None`.
fn addresses(mut bytes: &[u8], addrs: i32) -> [Option<&[u8]>; RTAX_MAX as usize] {
    let mut found = [None; RTAX_MAX as usize];
    for (bit, slot) in found.iter_mut().enumerate() {
        if addrs & (1 << bit) == 0 {
            continue;
        }
        let Some(&length) = bytes.first() else {
            break;
        };
        let length = usize::from(length);
        let padded = if length == 0 {
            8
        } else {
            length.next_multiple_of(8)
        };
        if length > bytes.len() {
            break;
        }
        *slot = Some(&bytes[..length]);
        bytes = bytes.get(padded..).unwrap_or(&[]);
    }
    found
}

/// The IPv4 address of a `sockaddr_in` (length, family, port, address).
fn ipv4_of(sockaddr: &[u8]) -> Option<Ipv4Addr> {
    if sockaddr.get(1) != Some(&AF_INET) {
        return None;
    }
    let octets: [u8; 4] = sockaddr.get(4..8)?.try_into().ok()?;
    Some(Ipv4Addr::from(octets))
}

/// The link address of a `sockaddr_dl` when it is six bytes (Ethernet):
/// after the 8-byte header and the interface name.
fn mac_of(sockaddr: &[u8]) -> Option<[u8; 6]> {
    if sockaddr.get(1) != Some(&AF_LINK) || *sockaddr.get(6)? != 6 {
        return None;
    }
    let start = 8 + usize::from(*sockaddr.get(5)?);
    sockaddr.get(start..start + 6)?.try_into().ok()
}

/// The answer to our `RTM_GET` among the messages in `bytes` (a routing
/// socket also carries others' messages): the one of type `RTM_GET` with
/// our `pid` and `seq`. `Err(errno)` when the kernel answered with an error
/// (`ESRCH`: no route), `Ok(None)` when the answer is not in `bytes`.
pub fn route_answer(bytes: &[u8], pid: i32, seq: i32) -> Result<Option<RouteAnswer>, i32> {
    let mut rest = bytes;
    while let Some((header, addrs, addresses_bytes, next)) = split_message(rest) {
        rest = next;
        if header.version != RTM_VERSION
            || header.kind != RTM_GET
            || header.pid != pid
            || header.seq != seq
        {
            continue;
        }
        if header.errno != 0 {
            return Err(header.errno);
        }
        let found = addresses(addresses_bytes, addrs);
        let gateway = if header.flags & RTF_GATEWAY != 0 {
            found[1].and_then(ipv4_of)
        } else {
            None
        };
        // The interface is the RTA_IFP link address's index (what
        // `route get` prints); rtm_index says the same where it is filled.
        let interface = found[4]
            .and_then(|ifp| u16_at(ifp, 2).filter(|_| ifp.get(1) == Some(&AF_LINK)))
            .filter(|&index| index != 0)
            .unwrap_or(header.index);
        return Ok(Some(RouteAnswer {
            gateway,
            interface: u32::from(interface),
        }));
    }
    Ok(None)
}

/// The entries of an ARP-table dump (`NET_RT_FLAGS`, `RTF_LLINFO`). A
/// message that is not an IPv4 entry is skipped; a truncated one ends the
/// list.
pub fn arp_entries(bytes: &[u8]) -> Vec<ArpEntry> {
    let mut entries = Vec::new();
    let mut rest = bytes;
    while let Some((header, addrs, addresses_bytes, next)) = split_message(rest) {
        rest = next;
        if header.version != RTM_VERSION {
            continue;
        }
        let found = addresses(addresses_bytes, addrs);
        let Some(addr) = found[0].and_then(ipv4_of) else {
            continue;
        };
        entries.push(ArpEntry {
            addr,
            mac: found[1].and_then(mac_of),
            interface: u32::from(header.index),
            permanent: header.flags & RTF_STATIC != 0,
        });
    }
    entries
}

/// Builds an `RTM_GET` request for `dst` with `seq`, as `route -n get`
/// does: a header, the `sockaddr_in` (`RTA_DST`), and an empty
/// `sockaddr_dl` (`RTA_IFP`) asking for the outgoing interface.
pub fn route_request(dst: Ipv4Addr, seq: i32) -> Vec<u8> {
    let mut message = vec![0u8; RT_MSGHDR_LEN + 16 + SOCKADDR_DL_LEN.next_multiple_of(8)];
    let length = message.len() as u16;
    message[MSGLEN..MSGLEN + 2].copy_from_slice(&length.to_ne_bytes());
    message[VERSION] = RTM_VERSION;
    message[TYPE] = RTM_GET;
    message[FLAGS..FLAGS + 4].copy_from_slice(&(RTF_UP | RTF_HOST).to_ne_bytes());
    message[ADDRS..ADDRS + 4].copy_from_slice(&(RTA_DST | RTA_IFP).to_ne_bytes());
    message[SEQ..SEQ + 4].copy_from_slice(&seq.to_ne_bytes());
    let sockaddr = &mut message[RT_MSGHDR_LEN..];
    sockaddr[0] = 16;
    sockaddr[1] = AF_INET;
    sockaddr[4..8].copy_from_slice(&dst.octets());
    let link = &mut sockaddr[16..];
    link[0] = SOCKADDR_DL_LEN as u8;
    link[1] = AF_LINK;
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message as the kernel writes it: header fields, then sockaddrs
    /// each padded to 8 bytes; the rest of the header is garbage, so a
    /// field read from the wrong place shows.
    fn message(kind: u8, index: u16, flags: i32, pid: i32, seq: i32, errno: i32) -> Vec<u8> {
        let mut m = vec![0xa5u8; RT_MSGHDR_LEN];
        m[VERSION] = RTM_VERSION;
        m[TYPE] = kind;
        m[INDEX..INDEX + 2].copy_from_slice(&index.to_ne_bytes());
        m[FLAGS..FLAGS + 4].copy_from_slice(&flags.to_ne_bytes());
        m[ADDRS..ADDRS + 4].copy_from_slice(&0i32.to_ne_bytes());
        m[PID..PID + 4].copy_from_slice(&pid.to_ne_bytes());
        m[SEQ..SEQ + 4].copy_from_slice(&seq.to_ne_bytes());
        m[ERRNO..ERRNO + 4].copy_from_slice(&errno.to_ne_bytes());
        m
    }

    fn with_addresses(mut m: Vec<u8>, sockaddrs: &[(i32, Vec<u8>)]) -> Vec<u8> {
        let mut addrs = 0;
        for (bit, sockaddr) in sockaddrs {
            addrs |= bit;
            let padded = sockaddr.len().next_multiple_of(8).max(8);
            m.extend_from_slice(sockaddr);
            m.resize(m.len() + padded - sockaddr.len(), 0xee);
        }
        m[ADDRS..ADDRS + 4].copy_from_slice(&addrs.to_ne_bytes());
        let length = m.len() as u16;
        m[MSGLEN..MSGLEN + 2].copy_from_slice(&length.to_ne_bytes());
        m
    }

    fn sockaddr_in(addr: [u8; 4]) -> Vec<u8> {
        let mut s = vec![16, AF_INET, 0, 0];
        s.extend_from_slice(&addr);
        s.extend_from_slice(&[0; 8]);
        s
    }

    /// A `sockaddr_dl` as an ARP dump carries it: name length 0, address
    /// length 6 (0 while incomplete), 54 bytes long.
    fn sockaddr_dl(index: u16, mac: Option<[u8; 6]>) -> Vec<u8> {
        let mut s = vec![0u8; 54];
        s[0] = 54;
        s[1] = AF_LINK;
        s[2..4].copy_from_slice(&index.to_ne_bytes());
        s[4] = 6; // IFT_ETHER
        if let Some(mac) = mac {
            s[6] = 6;
            s[8..14].copy_from_slice(&mac);
        }
        s
    }

    const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x42];

    #[test]
    fn an_arp_dump_gives_address_mac_interface_and_permanence() {
        let mut dump = with_addresses(
            message(RTM_GET, 3, 0x400, 0, 0, 0),
            &[
                (RTA_DST, sockaddr_in([10, 0, 2, 1])),
                (RTA_GATEWAY, sockaddr_dl(3, Some(MAC))),
            ],
        );
        dump.extend(with_addresses(
            message(RTM_GET, 3, 0x400, 0, 0, 0),
            &[
                (RTA_DST, sockaddr_in([10, 0, 2, 2])),
                (RTA_GATEWAY, sockaddr_dl(3, None)),
            ],
        ));
        dump.extend(with_addresses(
            message(RTM_GET, 4, 0x400 | RTF_STATIC, 0, 0, 0),
            &[
                (RTA_DST, sockaddr_in([10, 0, 3, 1])),
                (RTA_GATEWAY, sockaddr_dl(4, Some(MAC))),
            ],
        ));
        let entries = arp_entries(&dump);
        assert_eq!(
            entries,
            vec![
                ArpEntry {
                    addr: Ipv4Addr::new(10, 0, 2, 1),
                    mac: Some(MAC),
                    interface: 3,
                    permanent: false
                },
                ArpEntry {
                    addr: Ipv4Addr::new(10, 0, 2, 2),
                    mac: None,
                    interface: 3,
                    permanent: false
                },
                ArpEntry {
                    addr: Ipv4Addr::new(10, 0, 3, 1),
                    mac: Some(MAC),
                    interface: 4,
                    permanent: true
                },
            ]
        );
    }

    #[test]
    fn a_truncated_dump_keeps_the_whole_entries_before_the_cut() {
        let one = with_addresses(
            message(RTM_GET, 3, 0, 0, 0, 0),
            &[
                (RTA_DST, sockaddr_in([10, 0, 2, 1])),
                (RTA_GATEWAY, sockaddr_dl(3, Some(MAC))),
            ],
        );
        let mut dump = one.clone();
        dump.extend_from_slice(&one);
        for cut in 0..dump.len() {
            let entries = arp_entries(&dump[..cut]);
            let whole = cut / one.len();
            assert_eq!(entries.len(), whole, "cut at {cut}");
        }
        // A length field beyond the buffer or below a header stops the parse.
        let mut lying = one.clone();
        lying[MSGLEN..MSGLEN + 2].copy_from_slice(&u16::MAX.to_ne_bytes());
        assert!(arp_entries(&lying).is_empty());
        lying[MSGLEN..MSGLEN + 2].copy_from_slice(&10u16.to_ne_bytes());
        assert!(arp_entries(&lying).is_empty());
    }

    #[test]
    fn a_route_answer_is_ours_by_pid_and_sequence_and_names_its_gateway() {
        let ours = |flags, seq| {
            with_addresses(
                message(RTM_GET, 7, flags, 99, seq, 0),
                &[
                    (RTA_DST, sockaddr_in([10, 1, 0, 5])),
                    (RTA_GATEWAY, sockaddr_in([10, 0, 2, 254])),
                ],
            )
        };
        // Another process's answer first, then ours.
        let mut bytes = with_addresses(message(RTM_GET, 1, RTF_GATEWAY, 12, 1, 0), &[]);
        bytes.extend(ours(RTF_GATEWAY, 1));
        assert_eq!(
            route_answer(&bytes, 99, 1),
            Ok(Some(RouteAnswer {
                gateway: Some(Ipv4Addr::new(10, 0, 2, 254)),
                interface: 7
            }))
        );
        // On-link: the gateway address is the interface's, not a next hop.
        let on_link = with_addresses(
            message(RTM_GET, 7, 0, 99, 2, 0),
            &[
                (RTA_DST, sockaddr_in([10, 0, 2, 5])),
                (RTA_GATEWAY, sockaddr_dl(7, None)),
            ],
        );
        assert_eq!(
            route_answer(&on_link, 99, 2),
            Ok(Some(RouteAnswer {
                gateway: None,
                interface: 7
            }))
        );
        assert_eq!(route_answer(&ours(RTF_GATEWAY, 1), 99, 2), Ok(None));
        // RTA_IFP's index counts over rtm_index.
        let with_ifp = with_addresses(
            message(RTM_GET, 0, 0, 99, 4, 0),
            &[
                (RTA_DST, sockaddr_in([10, 0, 2, 5])),
                (RTA_GATEWAY, sockaddr_dl(9, None)),
                (RTA_IFP, sockaddr_dl(9, None)),
            ],
        );
        assert_eq!(
            route_answer(&with_ifp, 99, 4).map(|a| a.map(|a| a.interface)),
            Ok(Some(9))
        );
        let refused = with_addresses(message(RTM_GET, 0, 0, 99, 3, libc::ESRCH), &[]);
        assert_eq!(route_answer(&refused, 99, 3), Err(libc::ESRCH));
    }

    #[test]
    fn a_request_is_a_header_and_the_destination() {
        let request = route_request(Ipv4Addr::new(10, 1, 0, 5), 42);
        assert_eq!(request.len(), RT_MSGHDR_LEN + 16 + 56);
        assert_eq!(
            usize::from(u16_at(&request, MSGLEN).unwrap()),
            request.len()
        );
        assert_eq!((request[VERSION], request[TYPE]), (RTM_VERSION, RTM_GET));
        assert_eq!(i32_at(&request, ADDRS), Some(RTA_DST | RTA_IFP));
        let found = addresses(&request[RT_MSGHDR_LEN..], RTA_DST | RTA_IFP);
        assert_eq!(found[4].map(<[u8]>::len), Some(SOCKADDR_DL_LEN));
        assert_eq!(i32_at(&request, SEQ), Some(42));
        assert_eq!(
            ipv4_of(&request[RT_MSGHDR_LEN..]),
            Some(Ipv4Addr::new(10, 1, 0, 5))
        );
    }
}
