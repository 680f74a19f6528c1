//! Wire formats: typed, zero-copy views over packet bytes.
//!
//! Each format follows the smoltcp `src/wire/` pattern:
//!
//! - `Xxx<T: AsRef<[u8]>>` wraps a buffer; field byte ranges live in a private
//!   `mod field`.
//! - `new_unchecked` wraps without looking; `check_len` validates the lengths
//!   (and the few fields needed to know the lengths); `new_checked` is both.
//!   After `check_len` returned `Ok`, no getter and no `payload()` can panic.
//! - Getters need `T: AsRef<[u8]>`, setters `T: AsMut<[u8]>`.
//! - `XxxRepr` structs, where present, describe a header to `emit`.
//!
//! Everything here sits on the per-packet path: no allocation, fixed-offset
//! byte reads, `#[inline]` accessors.

pub mod checksum;
pub mod ethernet;
pub mod gre;
pub mod icmpv4;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod partial_checksum;
pub mod tcp;
pub mod udp;

pub use ethernet::EthernetFrame;
pub use gre::{GrePacket, GreRepr};
pub use icmpv4::Icmpv4Packet;
pub use icmpv6::Icmpv6Packet;
pub use ipv4::{Ipv4Packet, Ipv4Repr};
pub use ipv6::{Ipv6Fragment, Ipv6Packet, Ipv6Repr, Ipv6Upper, MAX_EXTENSION_HEADERS};
pub use tcp::TcpPacket;
pub use udp::UdpPacket;

use core::fmt;

/// Why a buffer could not be viewed as a packet of some format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// The buffer ends before the header (or the length it announces) does.
    Truncated,
    /// A field that decides the layout holds a value the format forbids
    /// (wrong version, a header length below the minimum, ...).
    Malformed,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Truncated => {
                f.write_str("packet truncated: the buffer ends before the header or the length it announces")
            }
            WireError::Malformed => f.write_str(
                "packet malformed: a version or length field holds a value the format does not allow",
            ),
        }
    }
}

impl std::error::Error for WireError {}

/// Result of parsing a wire format.
pub type Result<T> = core::result::Result<T, WireError>;

/// `EtherType` values the data plane looks at.
pub mod ethertype {
    /// Internet Protocol version 4.
    pub const IPV4: u16 = 0x0800;
    /// Internet Protocol version 6.
    pub const IPV6: u16 = 0x86DD;
    /// Address Resolution Protocol.
    pub const ARP: u16 = 0x0806;
    /// IEEE 802.1Q VLAN tag.
    pub const VLAN: u16 = 0x8100;
}

/// IP protocol numbers (IPv4 `protocol`, IPv6 `next header`).
pub mod ip_proto {
    /// IPv6 hop-by-hop options extension header.
    pub const IPV6_HOPOPTS: u8 = 0;
    /// Internet Control Message Protocol (v4).
    pub const ICMP: u8 = 1;
    /// Transmission Control Protocol.
    pub const TCP: u8 = 6;
    /// User Datagram Protocol.
    pub const UDP: u8 = 17;
    /// IPv6 routing extension header.
    pub const IPV6_ROUTE: u8 = 43;
    /// IPv6 fragment extension header.
    pub const IPV6_FRAG: u8 = 44;
    /// Generic Routing Encapsulation.
    pub const GRE: u8 = 47;
    /// IP Authentication Header.
    pub const AH: u8 = 51;
    /// Internet Control Message Protocol for IPv6.
    pub const ICMPV6: u8 = 58;
    /// IPv6 "no next header".
    pub const IPV6_NONXT: u8 = 59;
    /// IPv6 destination options extension header.
    pub const IPV6_DSTOPTS: u8 = 60;
}

/// The source and destination ports of a transport header: its first four
/// bytes, the same layout for TCP, UDP and SCTP. Needs only those four bytes,
/// so it works on the 8 header bytes an ICMP error is guaranteed to quote.
/// `None` when `l4` is shorter than 4 bytes.
#[inline]
pub fn transport_ports(l4: &[u8]) -> Option<(u16, u16)> {
    match l4 {
        [s0, s1, d0, d1, ..] => Some((
            u16::from_be_bytes([*s0, *s1]),
            u16::from_be_bytes([*d0, *d1]),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_ports_reads_the_first_four_bytes_big_endian() {
        assert_eq!(
            transport_ports(&[0x30, 0x39, 0x00, 0x50, 0xff]),
            Some((12345, 80))
        );
        assert_eq!(
            transport_ports(&[0x30, 0x39, 0x00, 0x50]),
            Some((12345, 80))
        );
    }

    #[test]
    fn transport_ports_is_none_below_four_bytes() {
        for len in 0..4 {
            assert_eq!(transport_ports(&[1, 2, 3][..len]), None);
        }
    }

    #[test]
    fn wire_error_messages_say_what_went_wrong() {
        assert!(WireError::Truncated.to_string().contains("truncated"));
        assert!(WireError::Malformed.to_string().contains("malformed"));
    }
}
