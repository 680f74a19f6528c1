//! ICMP for IPv4 (RFC 792): the 8-byte header shared by every message.
//! For error messages the payload is the quoted offending packet.

use super::{checksum, Result, WireError};

/// Byte ranges of the ICMP header fields.
mod field {
    use core::ops::Range;

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const REST_OF_HEADER: Range<usize> = 4..8;
}

/// Length of the ICMP header, rest-of-header included.
pub const HEADER_LEN: usize = 8;

/// Echo reply.
pub const ECHO_REPLY: u8 = 0;
/// Destination unreachable (an error).
pub const DEST_UNREACHABLE: u8 = 3;
/// Destination-unreachable code: fragmentation needed and DF set; the
/// rest of header carries the next-hop MTU (RFC 1191).
pub const FRAG_NEEDED: u8 = 4;
/// Source quench (an error, deprecated by RFC 6633).
pub const SOURCE_QUENCH: u8 = 4;
/// Redirect (an error).
pub const REDIRECT: u8 = 5;
/// Echo request.
pub const ECHO_REQUEST: u8 = 8;
/// Time exceeded (an error).
pub const TIME_EXCEEDED: u8 = 11;
/// Parameter problem (an error).
pub const PARAM_PROBLEM: u8 = 12;

/// A view of an `ICMPv4` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmpv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
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

    /// Bytes 4..8: identifier and sequence for echo, the next-hop MTU in the
    /// low 16 bits for "fragmentation needed", the pointer in the top byte
    /// for a parameter problem.
    #[inline]
    pub fn rest_of_header(&self) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_be_bytes([b[4], b[5], b[6], b[7]])
    }

    /// The next-hop MTU of a "fragmentation needed" message (bytes 6..8).
    #[inline]
    pub fn next_hop_mtu(&self) -> u16 {
        self.rest_of_header() as u16
    }

    /// True for error messages, whose payload quotes the offending packet.
    #[inline]
    pub fn is_error(&self) -> bool {
        matches!(
            self.msg_type(),
            DEST_UNREACHABLE | SOURCE_QUENCH | REDIRECT | TIME_EXCEEDED | PARAM_PROBLEM
        )
    }

    /// Everything after the 8-byte header: for errors, the quoted IP header
    /// and at least 8 bytes of its payload.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    /// True when the checksum over the whole message is correct.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::checksum(self.buffer.as_ref()) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
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

    /// Computes the checksum over the whole message.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let value = checksum::checksum(self.buffer.as_ref());
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
    use etherparse::Icmpv4Slice;
    use proptest::prelude::*;

    /// "Fragmentation needed, next-hop MTU 1400" quoting the first 28 bytes
    /// of a UDP datagram 10.0.0.1:12345 -> 10.0.0.2:53.
    #[rustfmt::skip]
    const FRAG_NEEDED_MSG: [u8; 36] = [
        0x03, 0x04, 0xe2, 0x5b, 0x00, 0x00, 0x05, 0x78, // type 3 code 4, MTU 1400
        0x45, 0x00, 0x05, 0xdc, 0x00, 0x01, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00,
        0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x02, // quoted IPv4 header
        0x30, 0x39, 0x00, 0x35, 0x05, 0xc8, 0x00, 0x00, // quoted UDP header
    ];

    #[test]
    fn parses_frag_needed_with_the_quoted_packet() {
        let packet = Icmpv4Packet::new_checked(&FRAG_NEEDED_MSG[..]).unwrap();
        assert_eq!(packet.msg_type(), DEST_UNREACHABLE);
        assert_eq!(packet.msg_code(), FRAG_NEEDED);
        assert_eq!(packet.rest_of_header(), 1400);
        assert_eq!(packet.next_hop_mtu(), 1400);
        assert!(packet.is_error());
        assert_eq!(packet.payload(), &FRAG_NEEDED_MSG[8..]);
        assert_eq!(packet.payload()[0], 0x45);
        assert!(packet.verify_checksum());
    }

    #[test]
    fn echo_messages_are_not_errors() {
        for msg_type in [ECHO_REQUEST, ECHO_REPLY] {
            let bytes = [msg_type, 0, 0, 0, 0, 1, 0, 2];
            assert!(!Icmpv4Packet::new_checked(&bytes[..]).unwrap().is_error());
        }
        for msg_type in [DEST_UNREACHABLE, TIME_EXCEEDED, PARAM_PROBLEM] {
            let bytes = [msg_type, 0, 0, 0, 0, 0, 0, 0];
            assert!(Icmpv4Packet::new_checked(&bytes[..]).unwrap().is_error());
        }
    }

    #[test]
    fn every_getter_reads_a_known_message_built_into_garbage() {
        let mut buf = [0xA5u8; 36];
        buf[8..].copy_from_slice(&FRAG_NEEDED_MSG[8..]);
        let mut packet = Icmpv4Packet::new_unchecked(&mut buf[..]);
        packet.set_msg_type(DEST_UNREACHABLE);
        packet.set_msg_code(FRAG_NEEDED);
        packet.set_rest_of_header(1400);
        packet.fill_checksum();
        assert_eq!(buf, FRAG_NEEDED_MSG);

        let packet = Icmpv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(packet.msg_type(), 3);
        assert_eq!(packet.msg_code(), 4);
        assert_eq!(packet.checksum(), 0xe25b);
        assert_eq!(packet.rest_of_header(), 0x0000_0578);
        assert_eq!(packet.next_hop_mtu(), 1400);
        assert!(packet.is_error());
        assert_eq!(packet.payload(), &FRAG_NEEDED_MSG[8..]);
        assert!(packet.verify_checksum());
    }

    #[test]
    fn rejects_every_truncation() {
        for len in 0..HEADER_LEN {
            assert_eq!(
                Icmpv4Packet::new_checked(&FRAG_NEEDED_MSG[..len]),
                Err(WireError::Truncated),
                "len {len}"
            );
        }
    }

    proptest! {
        #[test]
        fn agrees_with_etherparse(bytes in proptest::collection::vec(any::<u8>(), 8..64)) {
            // etherparse insists that timestamp messages (types 13 and 14) are
            // exactly 20 bytes; we do not interpret them, so leave them out.
            prop_assume!(!matches!(bytes[0], 13 | 14));
            let mut bytes = bytes;
            let mut packet = Icmpv4Packet::new_checked(&mut bytes[..]).unwrap();
            packet.fill_checksum();
            prop_assert!(packet.verify_checksum());
            let theirs = Icmpv4Slice::from_slice(&bytes).unwrap();
            let packet = Icmpv4Packet::new_checked(&bytes[..]).unwrap();
            prop_assert_eq!(packet.msg_type(), theirs.type_u8());
            prop_assert_eq!(packet.msg_code(), theirs.code_u8());
            prop_assert_eq!(packet.checksum(), theirs.checksum());
            prop_assert_eq!(packet.rest_of_header().to_be_bytes(), theirs.bytes5to8());
            // Our checksum covers the bytes as they are; etherparse's own
            // recomputation re-serialises its header, which zeroes the unused
            // words of some types (time exceeded), so it is only comparable
            // when those words are zero.
            if theirs.bytes5to8() == [0; 4] {
                let mut header = theirs.header();
                header.update_checksum(theirs.payload());
                prop_assert_eq!(packet.checksum(), header.checksum);
            }
        }

        #[test]
        fn new_checked_never_panics_and_getters_read_the_bytes_they_name(
            bytes in proptest::collection::vec(any::<u8>(), 0..24)
        ) {
            if let Ok(packet) = Icmpv4Packet::new_checked(&bytes[..]) {
                prop_assert_eq!(packet.msg_type(), bytes[0]);
                prop_assert_eq!(packet.msg_code(), bytes[1]);
                prop_assert_eq!(packet.checksum(), u16::from_be_bytes([bytes[2], bytes[3]]));
                prop_assert_eq!(
                    packet.rest_of_header(),
                    u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]])
                );
                prop_assert_eq!(packet.next_hop_mtu(), u16::from_be_bytes([bytes[6], bytes[7]]));
                // RFC 792's error types: unreachable, source quench, redirect, time
                // exceeded, parameter problem.
                prop_assert_eq!(packet.is_error(), [3, 4, 5, 11, 12].contains(&bytes[0]));
                prop_assert_eq!(packet.payload(), &bytes[8..]);
                prop_assert_eq!(
                    packet.verify_checksum(),
                    checksum::fold(checksum::sum(&bytes, 0)) == 0xFFFF
                );
            }
        }
    }
}
