//! `ICMPv6` (RFC 4443): the 8-byte header shared by every message. The
//! checksum covers an IPv6 pseudo-header, so it needs the addresses.

use super::{checksum, ip_proto, Result, WireError};

/// Byte ranges of the `ICMPv6` header fields.
mod field {
    use core::ops::Range;

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const REST_OF_HEADER: Range<usize> = 4..8;
}

/// Length of the `ICMPv6` header, rest-of-header included.
pub const HEADER_LEN: usize = 8;

/// Destination unreachable (an error).
pub const DEST_UNREACHABLE: u8 = 1;
/// Packet too big (an error); the rest of header is the MTU.
pub const PACKET_TOO_BIG: u8 = 2;
/// Time exceeded (an error).
pub const TIME_EXCEEDED: u8 = 3;
/// Parameter problem (an error).
pub const PARAM_PROBLEM: u8 = 4;
/// Echo request.
pub const ECHO_REQUEST: u8 = 128;
/// Echo reply.
pub const ECHO_REPLY: u8 = 129;

/// A view of an `ICMPv6` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmpv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
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

    /// `Truncated` below the 8-byte header.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// Gives the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Message type.
    #[inline]
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// Message code.
    #[inline]
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[2], b[3]])
    }

    /// Bytes 4..8: the MTU of "packet too big", the pointer of a parameter
    /// problem, identifier and sequence of an echo.
    #[inline]
    pub fn rest_of_header(&self) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_be_bytes([b[4], b[5], b[6], b[7]])
    }

    /// True for error messages (types below 128), whose payload quotes as
    /// much of the offending packet as fits in the minimum MTU.
    #[inline]
    pub fn is_error(&self) -> bool {
        self.msg_type() < 128
    }

    /// Everything after the 8-byte header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    /// True when the checksum over the IPv6 pseudo-header and the whole
    /// message is correct.
    #[inline]
    pub fn verify_checksum(&self, src: &[u8; 16], dst: &[u8; 16]) -> bool {
        let b = self.buffer.as_ref();
        let pseudo = checksum::pseudo_header_v6(src, dst, ip_proto::ICMPV6, b.len() as u32);
        checksum::fold(checksum::sum(b, pseudo)) == 0xFFFF
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv6Packet<T> {
    /// Sets the message type.
    #[inline]
    pub fn set_msg_type(&mut self, value: u8) {
        self.buffer.as_mut()[field::TYPE] = value;
    }

    /// Sets the message code.
    #[inline]
    pub fn set_msg_code(&mut self, value: u8) {
        self.buffer.as_mut()[field::CODE] = value;
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets bytes 4..8.
    #[inline]
    pub fn set_rest_of_header(&mut self, value: u32) {
        self.buffer.as_mut()[field::REST_OF_HEADER].copy_from_slice(&value.to_be_bytes());
    }

    /// Computes the checksum over the IPv6 pseudo-header and the message.
    #[inline]
    pub fn fill_checksum(&mut self, src: &[u8; 16], dst: &[u8; 16]) {
        self.set_checksum(0);
        let b = self.buffer.as_ref();
        let pseudo = checksum::pseudo_header_v6(src, dst, ip_proto::ICMPV6, b.len() as u32);
        let value = !checksum::fold(checksum::sum(b, pseudo));
        self.set_checksum(value);
    }

    /// Everything after the header, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{Icmpv6Header, Icmpv6Slice, Icmpv6Type};
    use proptest::prelude::*;

    const SRC: [u8; 16] = [
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
    ];
    const DST: [u8; 16] = [
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02,
    ];

    /// "Packet too big, MTU 1280" quoting the start of an IPv6 packet.
    fn packet_too_big() -> Vec<u8> {
        let quoted = [0x60, 0, 0, 0, 0x05, 0xa0, 0x11, 0x40];
        let header =
            Icmpv6Header::with_checksum(Icmpv6Type::PacketTooBig { mtu: 1280 }, SRC, DST, &quoted)
                .unwrap();
        let mut bytes = header.to_bytes().to_vec();
        bytes.extend_from_slice(&quoted);
        bytes
    }

    #[test]
    fn parses_packet_too_big() {
        let bytes = packet_too_big();
        assert_eq!(bytes[..8], [2, 0, bytes[2], bytes[3], 0, 0, 0x05, 0x00]);
        let packet = Icmpv6Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.msg_type(), PACKET_TOO_BIG);
        assert_eq!(packet.msg_code(), 0);
        assert_eq!(packet.rest_of_header(), 1280);
        assert!(packet.is_error());
        assert_eq!(packet.payload(), &bytes[8..]);
        assert!(packet.verify_checksum(&SRC, &DST));
        assert!(!packet.verify_checksum(&DST, &DST));
    }

    #[test]
    fn echo_messages_are_not_errors() {
        for msg_type in [ECHO_REQUEST, ECHO_REPLY] {
            let bytes = [msg_type, 0, 0, 0, 0, 1, 0, 2];
            assert!(!Icmpv6Packet::new_checked(&bytes[..]).unwrap().is_error());
        }
        for msg_type in [DEST_UNREACHABLE, TIME_EXCEEDED, PARAM_PROBLEM] {
            let bytes = [msg_type, 0, 0, 0, 0, 0, 0, 0];
            assert!(Icmpv6Packet::new_checked(&bytes[..]).unwrap().is_error());
        }
    }

    #[test]
    fn every_getter_reads_a_known_message_built_into_garbage() {
        let expected = packet_too_big();
        let mut buf = vec![0xA5u8; expected.len()];
        buf[8..].copy_from_slice(&expected[8..]);
        let mut packet = Icmpv6Packet::new_unchecked(&mut buf[..]);
        packet.set_msg_type(PACKET_TOO_BIG);
        packet.set_msg_code(0);
        packet.set_rest_of_header(1280);
        packet.fill_checksum(&SRC, &DST);
        assert_eq!(buf, expected);

        let packet = Icmpv6Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(packet.msg_type(), 2);
        assert_eq!(packet.msg_code(), 0);
        assert_eq!(
            packet.checksum(),
            u16::from_be_bytes([expected[2], expected[3]])
        );
        assert_ne!(packet.checksum(), 0);
        assert_eq!(packet.rest_of_header(), 0x0000_0500);
        assert!(packet.is_error());
        assert_eq!(packet.payload(), &[0x60, 0, 0, 0, 0x05, 0xa0, 0x11, 0x40]);
        assert!(packet.verify_checksum(&SRC, &DST));
    }

    #[test]
    fn rejects_every_truncation() {
        let bytes = packet_too_big();
        for len in 0..HEADER_LEN {
            assert_eq!(
                Icmpv6Packet::new_checked(&bytes[..len]),
                Err(WireError::Truncated),
                "len {len}"
            );
        }
    }

    proptest! {
        #[test]
        fn agrees_with_etherparse(
            bytes in proptest::collection::vec(any::<u8>(), 8..64),
            src in any::<[u8; 16]>(), dst in any::<[u8; 16]>(),
        ) {
            let mut bytes = bytes;
            let mut packet = Icmpv6Packet::new_checked(&mut bytes[..]).unwrap();
            packet.fill_checksum(&src, &dst);
            let theirs = Icmpv6Slice::from_slice(&bytes).unwrap();
            prop_assert!(theirs.is_checksum_valid(src, dst));
            let packet = Icmpv6Packet::new_checked(&bytes[..]).unwrap();
            prop_assert!(packet.verify_checksum(&src, &dst));
            prop_assert_eq!(packet.msg_type(), theirs.type_u8());
            prop_assert_eq!(packet.msg_code(), theirs.code_u8());
            prop_assert_eq!(packet.checksum(), theirs.checksum());
            prop_assert_eq!(packet.rest_of_header().to_be_bytes(), theirs.bytes5to8());
            prop_assert_eq!(packet.payload(), theirs.payload());
        }

        #[test]
        fn new_checked_never_panics_and_getters_read_the_bytes_they_name(
            bytes in proptest::collection::vec(any::<u8>(), 0..24),
            src in any::<[u8; 16]>(), dst in any::<[u8; 16]>(),
        ) {
            if let Ok(packet) = Icmpv6Packet::new_checked(&bytes[..]) {
                prop_assert_eq!(packet.msg_type(), bytes[0]);
                prop_assert_eq!(packet.msg_code(), bytes[1]);
                prop_assert_eq!(packet.checksum(), u16::from_be_bytes([bytes[2], bytes[3]]));
                prop_assert_eq!(
                    packet.rest_of_header(),
                    u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]])
                );
                prop_assert_eq!(packet.is_error(), bytes[0] < 128);
                prop_assert_eq!(packet.payload(), &bytes[8..]);
                let theirs = Icmpv6Slice::from_slice(&bytes).unwrap();
                prop_assert_eq!(packet.verify_checksum(&src, &dst), theirs.is_checksum_valid(src, dst));
            }
        }
    }
}
