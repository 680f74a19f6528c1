//! IPv6 headers (RFC 8200) and the walk over the extension headers.

use super::{ip_proto, Result, WireError};

/// Byte ranges of the IPv6 fixed header fields.
mod field {
    use core::ops::Range;

    pub const VER_TC_FLOW: Range<usize> = 0..4;
    pub const PAYLOAD_LEN: Range<usize> = 4..6;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Range<usize> = 8..24;
    pub const DST_ADDR: Range<usize> = 24..40;
}

/// Length of the fixed IPv6 header.
pub const HEADER_LEN: usize = 40;

/// The most extension headers [`Ipv6Packet::upper_layer`] walks before it
/// gives up with `Malformed`. Real traffic carries two or three; a long
/// chain is a way to make a middlebox spend time or miss the ports.
pub const MAX_EXTENSION_HEADERS: usize = 8;

/// Length of a fragment extension header.
const FRAGMENT_HEADER_LEN: usize = 8;

/// A view of an IPv6 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

/// Where the upper-layer header of an IPv6 packet starts, found by
/// [`Ipv6Packet::upper_layer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Upper {
    /// Protocol of the upper layer (TCP, UDP, `ICMPv6`, ...), or of the
    /// fragmentable part for a non-first fragment.
    pub protocol: u8,
    /// Offset from the start of the IPv6 header to the upper-layer header
    /// (for a non-first fragment: to the fragment data).
    pub offset: usize,
    /// The fragment header's fields, when the packet has one.
    pub fragment: Option<Ipv6Fragment>,
}

/// The fields of an IPv6 fragment extension header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Fragment {
    /// Identification, shared by the fragments of one packet.
    pub ident: u32,
    /// Offset of this fragment's data in the fragmentable part, in bytes.
    pub offset: u16,
    /// The more-fragments flag.
    pub more: bool,
}

impl Ipv6Fragment {
    /// True when this fragment header really splits the packet (RFC 8200
    /// also allows an "atomic" fragment with offset 0 and no more
    /// fragments).
    #[inline]
    pub fn is_fragmenting(&self) -> bool {
        self.offset != 0 || self.more
    }
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wraps `buffer` without checking it; getters may panic until
    /// [`check_len`](Self::check_len) succeeds.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the fixed header against the buffer:
    ///
    /// - fewer than 40 bytes: `Truncated`;
    /// - version not 6: `Malformed`;
    /// - payload length 0 with a hop-by-hop header (a jumbogram, RFC 2675,
    ///   which is not supported): `Malformed`;
    /// - 40 + payload length beyond the buffer: `Truncated`.
    ///
    /// Extension headers are checked by [`upper_layer`](Self::upper_layer).
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if self.version() != 6 {
            return Err(WireError::Malformed);
        }
        if self.payload_len() == 0 && self.next_header() == ip_proto::IPV6_HOPOPTS {
            return Err(WireError::Malformed);
        }
        if HEADER_LEN + usize::from(self.payload_len()) > len {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// Gives the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    fn ver_tc_flow(&self) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// IP version (6 for a checked packet).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }

    /// Traffic class (DSCP and ECN).
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        (self.ver_tc_flow() >> 20) as u8
    }

    /// The 20-bit flow label.
    #[inline]
    pub fn flow_label(&self) -> u32 {
        self.ver_tc_flow() & 0x000F_FFFF
    }

    /// Payload length: everything after the fixed header, extension
    /// headers included.
    #[inline]
    pub fn payload_len(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[4], b[5]])
    }

    /// The header after the fixed header (an extension or the upper layer).
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    /// Hop limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> [u8; 16] {
        let mut addr = [0u8; 16];
        addr.copy_from_slice(&self.buffer.as_ref()[field::SRC_ADDR]);
        addr
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> [u8; 16] {
        let mut addr = [0u8; 16];
        addr.copy_from_slice(&self.buffer.as_ref()[field::DST_ADDR]);
        addr
    }

    /// The payload: bytes 40..40 + payload length (extension headers
    /// included, Ethernet padding excluded).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + usize::from(self.payload_len())]
    }

    /// Walks the extension headers to the upper-layer header.
    ///
    /// Knows hop-by-hop (only as the first), routing, fragment, destination
    /// options and AH. Any other next-header value ends the walk and is
    /// reported as the upper-layer protocol (including "no next header").
    /// A non-first fragment (offset not 0) ends the walk at its fragment
    /// header: what follows is fragment data, not headers.
    ///
    /// Errors: `Truncated` when an extension header does not fit in the
    /// payload; `Malformed` for a hop-by-hop header that is not first, a
    /// second fragment header, or more than [`MAX_EXTENSION_HEADERS`].
    #[inline]
    pub fn upper_layer(&self) -> Result<Ipv6Upper> {
        let b = self.buffer.as_ref();
        let end = HEADER_LEN + usize::from(self.payload_len());
        if end > b.len() {
            return Err(WireError::Truncated);
        }
        let mut protocol = self.next_header();
        let mut offset = HEADER_LEN;
        let mut fragment = None;
        let mut count = 0;
        loop {
            let kind = protocol;
            let len = match kind {
                ip_proto::IPV6_HOPOPTS | ip_proto::IPV6_ROUTE | ip_proto::IPV6_DSTOPTS => {
                    if kind == ip_proto::IPV6_HOPOPTS && count != 0 {
                        return Err(WireError::Malformed);
                    }
                    // Length field: 8-byte units, not counting the first 8.
                    (usize::from(length_field(b, offset, end)?) + 1) * 8
                }
                // RFC 4302: 4-byte units, minus 2.
                ip_proto::AH => (usize::from(length_field(b, offset, end)?) + 2) * 4,
                ip_proto::IPV6_FRAG => {
                    if fragment.is_some() {
                        return Err(WireError::Malformed);
                    }
                    FRAGMENT_HEADER_LEN
                }
                _ => {
                    return Ok(Ipv6Upper {
                        protocol,
                        offset,
                        fragment,
                    })
                }
            };
            count += 1;
            if count > MAX_EXTENSION_HEADERS {
                return Err(WireError::Malformed);
            }
            if offset + len > end {
                return Err(WireError::Truncated);
            }
            // Every extension header starts with its next-header byte.
            protocol = b[offset];
            if kind == ip_proto::IPV6_FRAG {
                let word = u16::from_be_bytes([b[offset + 2], b[offset + 3]]);
                let found = Ipv6Fragment {
                    ident: u32::from_be_bytes([
                        b[offset + 4],
                        b[offset + 5],
                        b[offset + 6],
                        b[offset + 7],
                    ]),
                    // The 13-bit offset counts 8-byte units and sits above 3
                    // flag bits, so masking the flags gives bytes.
                    offset: word & 0xFFF8,
                    more: word & 1 != 0,
                };
                fragment = Some(found);
                offset += len;
                if found.offset != 0 {
                    return Ok(Ipv6Upper {
                        protocol,
                        offset,
                        fragment,
                    });
                }
            } else {
                offset += len;
            }
        }
    }
}

/// The length byte (second byte) of the extension header at `offset`;
/// `Truncated` when even the minimal 8-byte header does not fit before
/// `end`.
#[inline]
fn length_field(b: &[u8], offset: usize, end: usize) -> Result<u8> {
    if offset + 8 > end {
        return Err(WireError::Truncated);
    }
    Ok(b[offset + 1])
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Sets version 6, the traffic class and the flow label (low 20 bits).
    #[inline]
    pub fn set_version_tc_flow(&mut self, traffic_class: u8, flow_label: u32) {
        let word = (6u32 << 28) | (u32::from(traffic_class) << 20) | (flow_label & 0x000F_FFFF);
        self.buffer.as_mut()[field::VER_TC_FLOW].copy_from_slice(&word.to_be_bytes());
    }

    /// Sets the payload length. It decides the payload's end: check the
    /// length again before reading the payload.
    #[inline]
    pub fn set_payload_len(&mut self, value: u16) {
        self.buffer.as_mut()[field::PAYLOAD_LEN].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the next header.
    #[inline]
    pub fn set_next_header(&mut self, value: u8) {
        self.buffer.as_mut()[field::NEXT_HEADER] = value;
    }

    /// Sets the hop limit.
    #[inline]
    pub fn set_hop_limit(&mut self, value: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = value;
    }

    /// Sets the source address.
    #[inline]
    pub fn set_src_addr(&mut self, addr: [u8; 16]) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&addr);
    }

    /// Sets the destination address.
    #[inline]
    pub fn set_dst_addr(&mut self, addr: [u8; 16]) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&addr);
    }

    /// The payload, writable (bytes 40..40 + payload length).
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = HEADER_LEN + usize::from(self.payload_len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

/// A fixed IPv6 header to emit (traffic class and flow label 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Repr {
    /// Source address.
    pub src: [u8; 16],
    /// Destination address.
    pub dst: [u8; 16],
    /// The header that follows.
    pub next_header: u8,
    /// Length of everything after the fixed header.
    pub payload_len: u16,
    /// Hop limit.
    pub hop_limit: u8,
}

impl Ipv6Repr {
    /// Writes the 40-byte fixed header into `buf[..40]`.
    ///
    /// # Panics
    /// When `buf` is shorter than [`HEADER_LEN`]; the caller sizes its own
    /// output buffer.
    pub fn emit(&self, buf: &mut [u8]) {
        let mut packet = Ipv6Packet::new_unchecked(&mut buf[..HEADER_LEN]);
        packet.set_version_tc_flow(0, 0);
        packet.set_payload_len(self.payload_len);
        packet.set_next_header(self.next_header);
        packet.set_hop_limit(self.hop_limit);
        packet.set_src_addr(self.src);
        packet.set_dst_addr(self.dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{IpNumber, Ipv6ExtensionsSlice, Ipv6Header};
    use proptest::prelude::*;

    const SRC: [u8; 16] = [
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
    ];
    const DST: [u8; 16] = [
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02,
    ];

    /// A UDP packet `2001:db8::1` -> `2001:db8::2`, traffic class 0xb8 (EF),
    /// flow label 0x12345, hop limit 64, 8 bytes of UDP header, no data.
    const UDP_PACKET: [u8; 48] = [
        0x6b, 0x81, 0x23, 0x45, // version 6, TC 0xb8, flow 0x12345
        0x00, 0x08, 0x11, 0x40, // payload length 8, UDP, hop limit 64
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, //
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, //
        0x30, 0x39, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00, // UDP 12345 -> 53
    ];

    /// Appends an 8-byte extension header of `kind` whose next header is
    /// `next`. AH gets a 4-byte ICV so that it is 16 bytes.
    fn push_ext(bytes: &mut Vec<u8>, kind: u8, next: u8, fragment: (u16, bool, u32)) {
        match kind {
            ip_proto::IPV6_FRAG => {
                let (offset, more, ident) = fragment;
                bytes.extend_from_slice(&[next, 0]);
                bytes.extend_from_slice(&(offset | u16::from(more)).to_be_bytes());
                bytes.extend_from_slice(&ident.to_be_bytes());
            }
            ip_proto::AH => {
                bytes.extend_from_slice(&[next, 2, 0, 0]);
                bytes.extend_from_slice(&[0xA5; 12]);
            }
            ip_proto::IPV6_ROUTE => {
                // Type 0 style header, 24 bytes: length field 2.
                bytes.extend_from_slice(&[next, 2, 0, 0]);
                bytes.extend_from_slice(&[0; 20]);
            }
            _ => bytes.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]),
        }
    }

    /// A packet whose extension chain is `kinds`, then `upper` with `data`.
    fn build(kinds: &[u8], upper: u8, fragment: (u16, bool, u32), data: &[u8]) -> Vec<u8> {
        let mut bytes = UDP_PACKET[..40].to_vec();
        bytes[6] = kinds.first().copied().unwrap_or(upper);
        for (i, &kind) in kinds.iter().enumerate() {
            let next = kinds.get(i + 1).copied().unwrap_or(upper);
            push_ext(&mut bytes, kind, next, fragment);
        }
        bytes.extend_from_slice(data);
        let payload_len = (bytes.len() - HEADER_LEN) as u16;
        bytes[4..6].copy_from_slice(&payload_len.to_be_bytes());
        bytes
    }

    #[test]
    fn parses_a_known_header() {
        let packet = Ipv6Packet::new_checked(&UDP_PACKET[..]).unwrap();
        assert_eq!(packet.version(), 6);
        assert_eq!(packet.traffic_class(), 0xb8);
        assert_eq!(packet.flow_label(), 0x12345);
        assert_eq!(packet.payload_len(), 8);
        assert_eq!(packet.next_header(), ip_proto::UDP);
        assert_eq!(packet.hop_limit(), 64);
        assert_eq!(packet.src_addr(), SRC);
        assert_eq!(packet.dst_addr(), DST);
        assert_eq!(packet.payload(), &UDP_PACKET[40..]);
        assert_eq!(
            packet.upper_layer(),
            Ok(Ipv6Upper {
                protocol: ip_proto::UDP,
                offset: 40,
                fragment: None
            })
        );
    }

    #[test]
    fn payload_excludes_trailing_bytes() {
        let mut bytes = UDP_PACKET.to_vec();
        bytes.extend_from_slice(&[0xEE; 6]);
        let packet = Ipv6Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.payload(), &UDP_PACKET[40..]);
    }

    #[test]
    fn emit_and_setters_write_every_header_byte() {
        let mut buf = [0xA5u8; 42];
        let repr = Ipv6Repr {
            src: SRC,
            dst: DST,
            next_header: ip_proto::UDP,
            payload_len: 8,
            hop_limit: 64,
        };
        repr.emit(&mut buf);
        let mut expected = UDP_PACKET[..40].to_vec();
        expected[..4].copy_from_slice(&[0x60, 0, 0, 0]);
        assert_eq!(buf[..40], expected[..]);
        assert_eq!(buf[40..], [0xA5, 0xA5]);

        let mut packet = Ipv6Packet::new_unchecked(&mut buf[..]);
        // Bits above the 20-bit flow label are dropped.
        packet.set_version_tc_flow(0xb8, 0xFFF1_2345);
        assert_eq!(packet.traffic_class(), 0xb8);
        assert_eq!(packet.flow_label(), 0x12345);
        assert_eq!(buf[..40], UDP_PACKET[..40]);
    }

    #[test]
    fn every_getter_reads_a_known_packet_built_into_garbage() {
        // The packet (40 + 8 bytes) and 4 bytes of garbage behind it.
        let mut buf = [0xA5u8; 52];
        let mut packet = Ipv6Packet::new_unchecked(&mut buf[..]);
        packet.set_version_tc_flow(0xb8, 0x12345);
        packet.set_payload_len(8);
        packet.set_next_header(ip_proto::UDP);
        packet.set_hop_limit(64);
        packet.set_src_addr(SRC);
        packet.set_dst_addr(DST);
        packet.payload_mut().copy_from_slice(&UDP_PACKET[40..]);
        assert_eq!(buf[..48], UDP_PACKET);
        assert_eq!(buf[48..], [0xA5; 4]);

        let packet = Ipv6Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(packet.version(), 6);
        assert_eq!(packet.traffic_class(), 0xb8);
        assert_eq!(packet.flow_label(), 0x12345);
        assert_eq!(packet.payload_len(), 8);
        assert_eq!(packet.next_header(), ip_proto::UDP);
        assert_eq!(packet.hop_limit(), 64);
        assert_eq!(packet.src_addr(), SRC);
        assert_eq!(packet.dst_addr(), DST);
        assert_eq!(packet.payload(), &UDP_PACKET[40..]);
        assert_eq!(
            packet.upper_layer(),
            Ok(Ipv6Upper {
                protocol: ip_proto::UDP,
                offset: 40,
                fragment: None
            })
        );
    }

    #[test]
    fn walks_hop_by_hop_destination_routing_fragment_and_ah() {
        let kinds = [
            ip_proto::IPV6_HOPOPTS,
            ip_proto::IPV6_DSTOPTS,
            ip_proto::IPV6_ROUTE,
            ip_proto::IPV6_FRAG,
            ip_proto::AH,
            ip_proto::IPV6_DSTOPTS,
        ];
        let bytes = build(&kinds, ip_proto::TCP, (0, true, 0xdead_beef), &[0; 20]);
        let packet = Ipv6Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            packet.upper_layer(),
            Ok(Ipv6Upper {
                protocol: ip_proto::TCP,
                offset: 40 + 8 + 8 + 24 + 8 + 16 + 8,
                fragment: Some(Ipv6Fragment {
                    ident: 0xdead_beef,
                    offset: 0,
                    more: true
                }),
            })
        );
    }

    #[test]
    fn a_non_first_fragment_stops_at_the_fragment_header() {
        // What follows the fragment header is data that happens to look like
        // a hop-by-hop header; it must not be walked.
        let bytes = build(
            &[ip_proto::IPV6_DSTOPTS, ip_proto::IPV6_FRAG],
            ip_proto::UDP,
            (1448, false, 7),
            &[0, 0xff, 0, 0, 0, 0, 0, 0],
        );
        let packet = Ipv6Packet::new_checked(&bytes[..]).unwrap();
        let upper = packet.upper_layer().unwrap();
        assert_eq!(upper.protocol, ip_proto::UDP);
        assert_eq!(upper.offset, 56);
        assert_eq!(
            upper.fragment,
            Some(Ipv6Fragment {
                ident: 7,
                offset: 1448,
                more: false
            })
        );
        assert!(upper.fragment.unwrap().is_fragmenting());
    }

    #[test]
    fn no_next_header_ends_the_walk() {
        let bytes = build(
            &[ip_proto::IPV6_DSTOPTS],
            ip_proto::IPV6_NONXT,
            (0, false, 0),
            &[],
        );
        let packet = Ipv6Packet::new_checked(&bytes[..]).unwrap();
        let upper = packet.upper_layer().unwrap();
        assert_eq!((upper.protocol, upper.offset), (ip_proto::IPV6_NONXT, 48));
    }

    #[test]
    fn eight_extension_headers_are_walked_and_nine_are_malformed() {
        let eight = [ip_proto::IPV6_DSTOPTS; MAX_EXTENSION_HEADERS];
        let bytes = build(&eight, ip_proto::UDP, (0, false, 0), &[0; 8]);
        let upper = Ipv6Packet::new_checked(&bytes[..])
            .unwrap()
            .upper_layer()
            .unwrap();
        assert_eq!(upper.offset, 40 + 8 * 8);
        let nine = [ip_proto::IPV6_DSTOPTS; MAX_EXTENSION_HEADERS + 1];
        let bytes = build(&nine, ip_proto::UDP, (0, false, 0), &[0; 8]);
        let packet = Ipv6Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.upper_layer(), Err(WireError::Malformed));
    }

    #[test]
    fn hop_by_hop_after_the_first_header_is_malformed() {
        let kinds = [ip_proto::IPV6_DSTOPTS, ip_proto::IPV6_HOPOPTS];
        let bytes = build(&kinds, ip_proto::UDP, (0, false, 0), &[0; 8]);
        let packet = Ipv6Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.upper_layer(), Err(WireError::Malformed));
    }

    #[test]
    fn a_second_fragment_header_is_malformed() {
        let kinds = [ip_proto::IPV6_FRAG, ip_proto::IPV6_FRAG];
        let bytes = build(&kinds, ip_proto::UDP, (0, true, 1), &[0; 8]);
        let packet = Ipv6Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.upper_layer(), Err(WireError::Malformed));
    }

    #[test]
    fn an_extension_header_cut_by_the_payload_length_is_truncated() {
        let kinds = [ip_proto::IPV6_HOPOPTS, ip_proto::IPV6_ROUTE, ip_proto::AH];
        let bytes = build(&kinds, ip_proto::UDP, (0, false, 0), &[]);
        let full = bytes.len() - HEADER_LEN;
        for payload_len in 1..full {
            let mut cut = bytes.clone();
            cut[4..6].copy_from_slice(&(payload_len as u16).to_be_bytes());
            let packet = Ipv6Packet::new_checked(&cut[..]).unwrap();
            assert_eq!(
                packet.upper_layer(),
                Err(WireError::Truncated),
                "payload_len {payload_len}"
            );
        }
    }

    #[test]
    fn rejects_every_truncation() {
        for len in 0..UDP_PACKET.len() {
            assert_eq!(
                Ipv6Packet::new_checked(&UDP_PACKET[..len]),
                Err(WireError::Truncated),
                "len {len}"
            );
        }
    }

    #[test]
    fn rejects_a_wrong_version_and_jumbograms() {
        let mut bytes = UDP_PACKET;
        bytes[0] = 0x4b;
        assert_eq!(
            Ipv6Packet::new_checked(&bytes[..]),
            Err(WireError::Malformed)
        );
        let mut bytes = UDP_PACKET;
        bytes[4..6].copy_from_slice(&[0, 0]);
        bytes[6] = ip_proto::IPV6_HOPOPTS;
        assert_eq!(
            Ipv6Packet::new_checked(&bytes[..]),
            Err(WireError::Malformed)
        );
    }

    /// Extension kinds for generated chains (hop-by-hop only goes first).
    fn ext_kind() -> impl Strategy<Value = u8> {
        prop_oneof![
            Just(ip_proto::IPV6_DSTOPTS),
            Just(ip_proto::IPV6_ROUTE),
            Just(ip_proto::AH),
        ]
    }

    proptest! {
        #[test]
        fn upper_layer_agrees_with_etherparse(
            hop_by_hop in any::<bool>(),
            middle in proptest::collection::vec(ext_kind(), 0..6),
            fragment_at in proptest::option::of(any::<prop::sample::Index>()),
            frag_offset in 0u16..8192,
            more in any::<bool>(),
            ident in any::<u32>(),
            upper in prop_oneof![Just(ip_proto::TCP), Just(ip_proto::UDP), Just(ip_proto::ICMPV6)],
            data in proptest::collection::vec(any::<u8>(), 0..32),
        ) {
            let mut kinds = Vec::new();
            if hop_by_hop {
                kinds.push(ip_proto::IPV6_HOPOPTS);
            }
            kinds.extend_from_slice(&middle);
            // A non-first fragment goes last: etherparse would walk on into
            // the fragment data, which we (correctly) do not.
            let frag_offset = frag_offset << 3;
            if let Some(at) = fragment_at {
                let at = if frag_offset != 0 {
                    kinds.len()
                } else {
                    usize::from(hop_by_hop) + at.index(middle.len() + 1)
                };
                kinds.insert(at, ip_proto::IPV6_FRAG);
            }
            let bytes = build(&kinds, upper, (frag_offset, more, ident), &data);

            let packet = Ipv6Packet::new_checked(&bytes[..]).unwrap();
            let (header, rest) = Ipv6Header::from_slice(&bytes).unwrap();
            prop_assert_eq!(packet.traffic_class(), header.traffic_class);
            prop_assert_eq!(packet.flow_label(), header.flow_label.value());
            prop_assert_eq!(packet.payload_len(), header.payload_length);
            prop_assert_eq!(packet.next_header(), header.next_header.0);
            prop_assert_eq!(packet.hop_limit(), header.hop_limit);
            prop_assert_eq!(packet.src_addr(), header.source);
            prop_assert_eq!(packet.dst_addr(), header.destination);
            prop_assert_eq!(packet.payload(), rest);

            let (exts, protocol, after) =
                Ipv6ExtensionsSlice::from_slice(IpNumber(packet.next_header()), rest).unwrap();
            let ours = packet.upper_layer().unwrap();
            prop_assert_eq!(ours.protocol, protocol.0);
            prop_assert_eq!(ours.offset, HEADER_LEN + exts.slice().len());
            prop_assert_eq!(&bytes[ours.offset..], after);
            prop_assert_eq!(ours.fragment.is_some_and(|f| f.is_fragmenting()), exts.is_fragmenting_payload());
            if fragment_at.is_some() {
                prop_assert_eq!(ours.fragment, Some(Ipv6Fragment { ident, offset: frag_offset, more }));
            } else {
                prop_assert_eq!(ours.fragment, None);
            }
        }

        #[test]
        fn new_checked_never_panics_and_getters_read_the_bytes_they_name(
            bytes in proptest::collection::vec(any::<u8>(), 40..120),
            payload_len in 0u16..90,
            first_header in prop_oneof![Just(0u8), Just(43), Just(44), Just(51), Just(60), any::<u8>()],
            chain in proptest::collection::vec(prop_oneof![Just(0u8), Just(43), Just(44), Just(51), Just(60)], 0..12),
        ) {
            let mut bytes = bytes;
            bytes[0] = 0x60;
            bytes[4..6].copy_from_slice(&payload_len.to_be_bytes());
            bytes[6] = first_header;
            // Sprinkle extension-header numbers where next-header bytes of
            // 8-byte headers would be, so that the walk gets somewhere.
            for (i, kind) in chain.iter().enumerate() {
                if let Some(byte) = bytes.get_mut(40 + 8 * i) {
                    *byte = *kind;
                }
            }
            if let Ok(packet) = Ipv6Packet::new_checked(&bytes[..]) {
                let first = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
                prop_assert_eq!(packet.version(), 6);
                prop_assert_eq!(packet.traffic_class(), (first >> 20) as u8);
                prop_assert_eq!(packet.flow_label(), first & 0xF_FFFF);
                prop_assert_eq!(packet.payload_len(), payload_len);
                prop_assert_eq!(packet.next_header(), first_header);
                prop_assert_eq!(packet.hop_limit(), bytes[7]);
                prop_assert_eq!(&packet.src_addr()[..], &bytes[8..24]);
                prop_assert_eq!(&packet.dst_addr()[..], &bytes[24..40]);
                prop_assert_eq!(packet.payload(), &bytes[40..40 + usize::from(payload_len)]);
                if let Ok(upper) = packet.upper_layer() {
                    prop_assert!(upper.offset <= HEADER_LEN + usize::from(packet.payload_len()));
                }
            }
        }
    }
}
