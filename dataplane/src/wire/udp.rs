//! UDP headers (RFC 768). The view wraps the datagram from its header on;
//! the length field says where the datagram ends.

use super::{checksum, ip_proto, Result, WireError};

/// Byte ranges of the UDP header fields.
mod field {
    use core::ops::Range;

    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const CHECKSUM: Range<usize> = 6..8;
}

/// Length of the UDP header.
pub const HEADER_LEN: usize = 8;

/// A view of a UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

// `len` is the header's length field, not a container size: an `is_empty`
// would mean nothing.
#[allow(clippy::len_without_is_empty)]
impl<T: AsRef<[u8]>> UdpPacket<T> {
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

    /// `Truncated` below 8 bytes or when the length field runs past the
    /// buffer; `Malformed` when the length field is below 8.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let field_len = usize::from(self.len());
        if field_len < HEADER_LEN {
            return Err(WireError::Malformed);
        }
        if field_len > len {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// Gives the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[0], b[1]])
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[2], b[3]])
    }

    /// Length field: header plus data, in bytes.
    #[inline]
    pub fn len(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[4], b[5]])
    }

    /// Checksum field (0 over IPv4: no checksum).
    #[inline]
    pub fn checksum(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[6], b[7]])
    }

    /// The data: bytes 8..length field.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }

    /// The datagram as the length field delimits it.
    #[inline]
    fn datagram(&self) -> &[u8] {
        &self.buffer.as_ref()[..usize::from(self.len())]
    }

    /// True when the checksum is 0 (IPv4 allows omitting it) or correct
    /// over the IPv4 pseudo-header and the datagram.
    #[inline]
    pub fn verify_checksum_v4(&self, src: [u8; 4], dst: [u8; 4]) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let pseudo = checksum::pseudo_header_v4(src, dst, ip_proto::UDP, self.len());
        checksum::fold(checksum::sum(self.datagram(), pseudo)) == 0xFFFF
    }

    /// True when the checksum is correct over the IPv6 pseudo-header and
    /// the datagram. A zero checksum is invalid over IPv6 (RFC 8200 8.1).
    #[inline]
    pub fn verify_checksum_v6(&self, src: &[u8; 16], dst: &[u8; 16]) -> bool {
        if self.checksum() == 0 {
            return false;
        }
        let pseudo = checksum::pseudo_header_v6(src, dst, ip_proto::UDP, u32::from(self.len()));
        checksum::fold(checksum::sum(self.datagram(), pseudo)) == 0xFFFF
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    /// Sets the source port.
    #[inline]
    pub fn set_src_port(&mut self, value: u16) {
        self.buffer.as_mut()[field::SRC_PORT].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the destination port.
    #[inline]
    pub fn set_dst_port(&mut self, value: u16) {
        self.buffer.as_mut()[field::DST_PORT].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the length field. It decides the datagram's end: check the
    /// length again before reading the payload.
    #[inline]
    pub fn set_len(&mut self, value: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&value.to_be_bytes());
    }

    /// Computes the checksum over the IPv4 pseudo-header and the datagram.
    /// A computed 0 is sent as `0xFFFF`, since 0 means "no checksum".
    #[inline]
    pub fn fill_checksum_v4(&mut self, src: [u8; 4], dst: [u8; 4]) {
        self.set_checksum(0);
        let pseudo = checksum::pseudo_header_v4(src, dst, ip_proto::UDP, self.len());
        let value = !checksum::fold(checksum::sum(self.datagram(), pseudo));
        self.set_checksum(nonzero(value));
    }

    /// Computes the checksum over the IPv6 pseudo-header and the datagram
    /// (0 becomes `0xFFFF`, as over IPv4).
    #[inline]
    pub fn fill_checksum_v6(&mut self, src: &[u8; 16], dst: &[u8; 16]) {
        self.set_checksum(0);
        let pseudo = checksum::pseudo_header_v6(src, dst, ip_proto::UDP, u32::from(self.len()));
        let value = !checksum::fold(checksum::sum(self.datagram(), pseudo));
        self.set_checksum(nonzero(value));
    }

    /// The data, writable (bytes 8..length field).
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

/// RFC 768: a computed checksum of 0 is transmitted as all ones.
#[inline]
fn nonzero(value: u16) -> u16 {
    if value == 0 {
        0xFFFF
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::UdpHeader;
    use proptest::prelude::*;

    const SRC: [u8; 4] = [192, 168, 0, 1];
    const DST: [u8; 4] = [192, 168, 0, 199];

    /// A DNS-looking datagram 12345 -> 53 with 4 data bytes.
    fn datagram() -> Vec<u8> {
        let data = [0xde, 0xad, 0xbe, 0xef];
        let header = UdpHeader::with_ipv4_checksum(
            12345,
            53,
            &etherparse::Ipv4Header {
                source: SRC,
                destination: DST,
                ..Default::default()
            },
            &data,
        )
        .unwrap();
        let mut bytes = header.to_bytes().to_vec();
        bytes.extend_from_slice(&data);
        bytes
    }

    #[test]
    fn parses_a_known_datagram() {
        let bytes = datagram();
        assert_eq!(bytes[..6], [0x30, 0x39, 0x00, 0x35, 0x00, 0x0c]);
        let packet = UdpPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.src_port(), 12345);
        assert_eq!(packet.dst_port(), 53);
        assert_eq!(packet.len(), 12);
        assert_eq!(packet.payload(), &[0xde, 0xad, 0xbe, 0xef]);
        assert!(packet.verify_checksum_v4(SRC, DST));
        assert!(!packet.verify_checksum_v4(SRC, [192, 168, 0, 2]));
    }

    #[test]
    fn payload_ends_at_the_length_field() {
        let mut bytes = datagram();
        bytes.extend_from_slice(&[0, 0]);
        let packet = UdpPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.payload(), &[0xde, 0xad, 0xbe, 0xef]);
        assert!(packet.verify_checksum_v4(SRC, DST));
    }

    #[test]
    fn zero_checksum_means_none_over_ipv4_and_invalid_over_ipv6() {
        let mut bytes = datagram();
        bytes[6..8].copy_from_slice(&[0, 0]);
        let packet = UdpPacket::new_checked(&bytes[..]).unwrap();
        assert!(packet.verify_checksum_v4(SRC, DST));
        assert!(!packet.verify_checksum_v6(&[0; 16], &[0; 16]));
    }

    #[test]
    fn a_computed_zero_checksum_is_sent_as_all_ones() {
        // Pick the data word so that the sum is 0xFFFF: the checksum
        // computes to 0 and must be sent as 0xFFFF.
        let mut bytes = vec![0u8; 10];
        bytes[4..6].copy_from_slice(&10u16.to_be_bytes());
        let pseudo = checksum::pseudo_header_v4(SRC, DST, ip_proto::UDP, 10);
        let partial = checksum::fold(checksum::sum(&bytes, pseudo));
        bytes[8..10].copy_from_slice(&(!partial).to_be_bytes());
        let mut packet = UdpPacket::new_checked(&mut bytes[..]).unwrap();
        packet.fill_checksum_v4(SRC, DST);
        assert_eq!(packet.checksum(), 0xFFFF);
        assert!(packet.verify_checksum_v4(SRC, DST));
    }

    #[test]
    fn setters_write_every_header_byte() {
        let expected = datagram();
        let mut buf = [0xA5u8; 12];
        buf[8..].copy_from_slice(&expected[8..]);
        let mut packet = UdpPacket::new_unchecked(&mut buf[..]);
        packet.set_src_port(12345);
        packet.set_dst_port(53);
        packet.set_len(12);
        packet.fill_checksum_v4(SRC, DST);
        packet.payload_mut()[0] = 0xde;
        assert_eq!(buf[..], expected[..]);
    }

    #[test]
    fn every_getter_reads_a_known_datagram_built_into_garbage() {
        // The datagram (12 bytes) and 4 bytes of garbage behind it.
        let mut buf = [0xA5u8; 16];
        let mut packet = UdpPacket::new_unchecked(&mut buf[..]);
        packet.set_src_port(12345);
        packet.set_dst_port(53);
        packet.set_len(12);
        packet
            .payload_mut()
            .copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        packet.fill_checksum_v4(SRC, DST);
        assert_eq!(buf[..12], datagram()[..]);
        assert_eq!(buf[12..], [0xA5; 4]);

        let packet = UdpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(packet.src_port(), 12345);
        assert_eq!(packet.dst_port(), 53);
        assert_eq!(packet.len(), 12);
        assert_eq!(packet.checksum(), 0xafb1);
        assert_eq!(packet.payload(), &[0xde, 0xad, 0xbe, 0xef]);
        assert!(packet.verify_checksum_v4(SRC, DST));
        assert!(!packet.verify_checksum_v4(SRC, [192, 168, 0, 2]));
    }

    #[test]
    fn rejects_every_truncation_and_a_length_below_eight() {
        let bytes = datagram();
        for len in 0..bytes.len() {
            assert_eq!(
                UdpPacket::new_checked(&bytes[..len]),
                Err(WireError::Truncated),
                "len {len}"
            );
        }
        let mut bytes = datagram();
        bytes[4..6].copy_from_slice(&7u16.to_be_bytes());
        assert_eq!(
            UdpPacket::new_checked(&bytes[..]),
            Err(WireError::Malformed)
        );
    }

    proptest! {
        #[test]
        fn agrees_with_etherparse(
            ports in any::<(u16, u16)>(),
            payload in proptest::collection::vec(any::<u8>(), 0..64),
            src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(),
            src6 in any::<[u8; 16]>(), dst6 in any::<[u8; 16]>(),
        ) {
            let mut header = UdpHeader {
                source_port: ports.0,
                destination_port: ports.1,
                length: (HEADER_LEN + payload.len()) as u16,
                checksum: 0,
            };
            header.checksum = header.calc_checksum_ipv4_raw(src, dst, &payload).unwrap();
            let mut bytes = header.to_bytes().to_vec();
            bytes.extend_from_slice(&payload);

            let packet = UdpPacket::new_checked(&bytes[..]).unwrap();
            prop_assert_eq!((packet.src_port(), packet.dst_port()), ports);
            prop_assert_eq!(packet.len(), header.length);
            prop_assert_eq!(packet.checksum(), header.checksum);
            prop_assert_eq!(packet.payload(), &payload[..]);
            prop_assert!(packet.verify_checksum_v4(src, dst));

            let mut ours = bytes.clone();
            let mut packet = UdpPacket::new_unchecked(&mut ours[..]);
            packet.fill_checksum_v6(&src6, &dst6);
            prop_assert_eq!(packet.checksum(), header.calc_checksum_ipv6_raw(src6, dst6, &payload).unwrap());
            prop_assert!(packet.verify_checksum_v6(&src6, &dst6));
            packet.fill_checksum_v4(src, dst);
            prop_assert_eq!(ours, bytes);
        }

        #[test]
        fn new_checked_never_panics_and_getters_read_the_bytes_they_name(
            bytes in proptest::collection::vec(any::<u8>(), 0..40), len in 0u16..48,
            src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(),
            src6 in any::<[u8; 16]>(), dst6 in any::<[u8; 16]>(),
        ) {
            let mut bytes = bytes;
            if bytes.len() >= 6 {
                bytes[4..6].copy_from_slice(&len.to_be_bytes());
            }
            if let Ok(packet) = UdpPacket::new_checked(&bytes[..]) {
                let be16 = |at: usize| u16::from_be_bytes([bytes[at], bytes[at + 1]]);
                let end = usize::from(len);
                prop_assert_eq!(packet.src_port(), be16(0));
                prop_assert_eq!(packet.dst_port(), be16(2));
                prop_assert_eq!(packet.len(), len);
                prop_assert_eq!(packet.checksum(), be16(6));
                prop_assert_eq!(packet.payload(), &bytes[8..end]);
                // etherparse's sums of the same datagram (it sends a computed 0 as
                // 0xFFFF, the same number in ones' complement).
                let theirs = UdpHeader {
                    source_port: be16(0),
                    destination_port: be16(2),
                    length: len,
                    checksum: be16(6),
                };
                let field = be16(6);
                let v4 = theirs.calc_checksum_ipv4_raw(src, dst, &bytes[8..end]).unwrap();
                let v6 = theirs.calc_checksum_ipv6_raw(src6, dst6, &bytes[8..end]).unwrap();
                let same = |sum: u16| field == sum || (field == 0 && sum == 0xFFFF);
                prop_assert_eq!(packet.verify_checksum_v4(src, dst), field == 0 || same(v4));
                prop_assert_eq!(packet.verify_checksum_v6(&src6, &dst6), field != 0 && same(v6));
            }
        }
    }
}
