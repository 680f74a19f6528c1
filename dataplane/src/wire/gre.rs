//! GRE headers (RFC 2784, with the key and sequence number of RFC 2890).
//!
//! Layout: a 16-bit flags/version word, the protocol type, then the optional
//! 4-byte fields in this order: checksum + reserved1 (C), key (K),
//! sequence number (S).
//!
//! [`GrePacket::check_len`] only checks lengths. A set routing bit, other
//! reserved bits or a version other than 0 are reported by their getters;
//! the pipeline turns them into its own drop reasons.

use super::{checksum, Result, WireError};

/// Byte ranges of the fixed GRE fields.
mod field {
    use core::ops::Range;

    pub const FLAGS_VERSION: Range<usize> = 0..2;
    pub const PROTOCOL_TYPE: Range<usize> = 2..4;
    /// The first optional field starts here.
    pub const OPTIONAL: usize = 4;
}

/// Length of a GRE header without optional fields.
pub const BASE_HEADER_LEN: usize = 4;
/// Length of each optional field (checksum + reserved1, key, sequence).
const OPTION_LEN: usize = 4;

/// Checksum present (C).
pub const FLAG_CHECKSUM: u16 = 0x8000;
/// Routing present (R, RFC 1701); must be zero under RFC 2784.
pub const FLAG_ROUTING: u16 = 0x4000;
/// Key present (K, RFC 2890).
pub const FLAG_KEY: u16 = 0x2000;
/// Sequence number present (S, RFC 2890).
pub const FLAG_SEQUENCE: u16 = 0x1000;
/// Bits of the first 13 that RFC 2784/2890 require to be zero: all but
/// C, K and S (so R, strict source route, recursion control and flags).
pub const RESERVED0_MASK: u16 = 0x4FF8;
/// The 3 version bits.
pub const VERSION_MASK: u16 = 0x0007;

/// A view of a GRE packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrePacket<T: AsRef<[u8]>> {
    buffer: T,
}

/// Header length for the given presence flags.
#[inline]
const fn header_len_for(checksum: bool, key: bool, sequence: bool) -> usize {
    BASE_HEADER_LEN + OPTION_LEN * (checksum as usize + key as usize + sequence as usize)
}

impl<T: AsRef<[u8]>> GrePacket<T> {
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

    /// `Truncated` when the buffer is shorter than 4 bytes or than the
    /// header its C, K and S flags announce. Nothing else is checked.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < BASE_HEADER_LEN || self.header_len() > len {
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
    fn flags_version(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The checksum-present flag (C).
    #[inline]
    pub fn checksum_present(&self) -> bool {
        self.flags_version() & FLAG_CHECKSUM != 0
    }

    /// The RFC 1701 routing-present flag (R). Not supported: under RFC 2784
    /// it is a reserved bit that must be zero.
    #[inline]
    pub fn routing_present(&self) -> bool {
        self.flags_version() & FLAG_ROUTING != 0
    }

    /// The key-present flag (K).
    #[inline]
    pub fn key_present(&self) -> bool {
        self.flags_version() & FLAG_KEY != 0
    }

    /// The sequence-number-present flag (S).
    #[inline]
    pub fn seq_present(&self) -> bool {
        self.flags_version() & FLAG_SEQUENCE != 0
    }

    /// The reserved bits that must be zero ([`RESERVED0_MASK`]), in place
    /// (not shifted); non-zero means a sender speaking RFC 1701 or garbage.
    #[inline]
    pub fn reserved0(&self) -> u16 {
        self.flags_version() & RESERVED0_MASK
    }

    /// The version (0 for GRE, 1 for PPTP's enhanced GRE).
    #[inline]
    pub fn version(&self) -> u8 {
        (self.flags_version() & VERSION_MASK) as u8
    }

    /// The protocol type: the `EtherType` of the payload.
    #[inline]
    pub fn protocol_type(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[2], b[3]])
    }

    /// Header length: 4, plus 4 for each of C, K and S.
    #[inline]
    pub fn header_len(&self) -> usize {
        header_len_for(
            self.checksum_present(),
            self.key_present(),
            self.seq_present(),
        )
    }

    #[inline]
    fn key_offset(&self) -> usize {
        field::OPTIONAL + OPTION_LEN * usize::from(self.checksum_present())
    }

    #[inline]
    fn sequence_offset(&self) -> usize {
        self.key_offset() + OPTION_LEN * usize::from(self.key_present())
    }

    #[inline]
    fn u32_at(&self, at: usize) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }

    /// The checksum field, when C is set.
    #[inline]
    pub fn checksum(&self) -> Option<u16> {
        if self.checksum_present() {
            let b = self.buffer.as_ref();
            Some(u16::from_be_bytes([b[4], b[5]]))
        } else {
            None
        }
    }

    /// The key, when K is set.
    #[inline]
    pub fn key(&self) -> Option<u32> {
        if self.key_present() {
            Some(self.u32_at(self.key_offset()))
        } else {
            None
        }
    }

    /// The sequence number, when S is set.
    #[inline]
    pub fn sequence(&self) -> Option<u32> {
        if self.seq_present() {
            Some(self.u32_at(self.sequence_offset()))
        } else {
            None
        }
    }

    /// The encapsulated packet: everything after the header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }

    /// True when C is clear (nothing to verify) or the checksum over the
    /// header and payload (the whole buffer) is correct.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        !self.checksum_present() || checksum::checksum(self.buffer.as_ref()) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> GrePacket<T> {
    /// Sets the C, K and S flags, clearing the reserved bits and keeping
    /// the version. This moves the optional fields: set them after.
    #[inline]
    pub fn set_flags(&mut self, checksum: bool, key: bool, sequence: bool) {
        let mut word = self.flags_version() & VERSION_MASK;
        if checksum {
            word |= FLAG_CHECKSUM;
        }
        if key {
            word |= FLAG_KEY;
        }
        if sequence {
            word |= FLAG_SEQUENCE;
        }
        self.buffer.as_mut()[field::FLAGS_VERSION].copy_from_slice(&word.to_be_bytes());
    }

    /// Sets the version bits (low 3 bits of `version`).
    #[inline]
    pub fn set_version(&mut self, version: u8) {
        let word = (self.flags_version() & !VERSION_MASK) | (u16::from(version) & VERSION_MASK);
        self.buffer.as_mut()[field::FLAGS_VERSION].copy_from_slice(&word.to_be_bytes());
    }

    /// Sets the protocol type.
    #[inline]
    pub fn set_protocol_type(&mut self, value: u16) {
        self.buffer.as_mut()[field::PROTOCOL_TYPE].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the checksum field and zeroes reserved1. Only meaningful when C
    /// is set.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        let at = field::OPTIONAL;
        let b = self.buffer.as_mut();
        b[at..at + 2].copy_from_slice(&value.to_be_bytes());
        b[at + 2..at + 4].copy_from_slice(&[0, 0]);
    }

    /// Sets the key. Only meaningful when K is set.
    #[inline]
    pub fn set_key(&mut self, value: u32) {
        let at = self.key_offset();
        self.buffer.as_mut()[at..at + 4].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the sequence number. Only meaningful when S is set.
    #[inline]
    pub fn set_sequence(&mut self, value: u32) {
        let at = self.sequence_offset();
        self.buffer.as_mut()[at..at + 4].copy_from_slice(&value.to_be_bytes());
    }

    /// Computes the checksum over the header and payload (the whole
    /// buffer). Only meaningful when C is set.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let value = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(value);
    }

    /// The encapsulated packet, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        &mut self.buffer.as_mut()[start..]
    }
}

/// A version-0 GRE header to emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GreRepr {
    /// `EtherType` of the payload.
    pub protocol_type: u16,
    /// The key, if any (sets K).
    pub key: Option<u32>,
    /// The sequence number, if any (sets S).
    pub sequence: Option<u32>,
    /// Whether to carry a checksum (sets C).
    pub checksum: bool,
}

impl GreRepr {
    /// Length of the header this repr emits.
    #[inline]
    pub const fn header_len(&self) -> usize {
        header_len_for(self.checksum, self.key.is_some(), self.sequence.is_some())
    }

    /// Writes the header at the front of `packet`, which is the whole GRE
    /// packet: [`header_len`](Self::header_len) bytes of room followed by
    /// the payload, already in place. With `checksum` set, the checksum is
    /// computed over all of `packet`, so pass exactly header + payload;
    /// without it only the header bytes are touched.
    ///
    /// # Panics
    /// When `packet` is shorter than the header; the caller sizes the
    /// packet it builds.
    #[inline]
    pub fn emit(&self, packet: &mut [u8]) {
        let mut gre = GrePacket::new_unchecked(packet);
        gre.set_flags(self.checksum, self.key.is_some(), self.sequence.is_some());
        gre.set_version(0);
        gre.set_protocol_type(self.protocol_type);
        if let Some(key) = self.key {
            gre.set_key(key);
        }
        if let Some(sequence) = self.sequence {
            gre.set_sequence(sequence);
        }
        if self.checksum {
            gre.fill_checksum();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ethertype;
    use proptest::prelude::*;

    /// A keyed GRE header carrying IPv4, key 42, then 4 payload bytes.
    const KEYED: [u8; 12] = [
        0x20, 0x00, 0x08, 0x00, // K, version 0, IPv4
        0x00, 0x00, 0x00, 0x2a, // key 42
        0x45, 0x00, 0x00, 0x14,
    ];

    /// C, K and S set, carrying IPv6: checksum 0x6514 over the whole packet
    /// (worked out by hand below), key 0x01020304, sequence 7.
    const FULL: [u8; 20] = [
        0xb0, 0x00, 0x86, 0xdd, // C K S, version 0, IPv6
        0x65, 0x14, 0x00, 0x00, // checksum, reserved1
        0x01, 0x02, 0x03, 0x04, // key
        0x00, 0x00, 0x00, 0x07, // sequence
        0x60, 0x00, 0x00, 0x00, // payload
    ];

    #[test]
    fn full_header_checksum_is_the_hand_computed_one() {
        // 0xb000 + 0x86dd + 0x0102 + 0x0304 + 0x0007 + 0x6000 = 0x1_9aea,
        // folded 0x9aeb, complemented 0x6514.
        assert_eq!(checksum::fold(checksum::sum(&FULL, 0)), 0xFFFF);
        let mut zeroed = FULL;
        zeroed[4..6].copy_from_slice(&[0, 0]);
        assert_eq!(checksum::checksum(&zeroed), 0x6514);
    }

    #[test]
    fn parses_a_keyed_header() {
        let packet = GrePacket::new_checked(&KEYED[..]).unwrap();
        assert!(!packet.checksum_present());
        assert!(!packet.routing_present());
        assert!(packet.key_present());
        assert!(!packet.seq_present());
        assert_eq!(packet.reserved0(), 0);
        assert_eq!(packet.version(), 0);
        assert_eq!(packet.protocol_type(), ethertype::IPV4);
        assert_eq!(packet.header_len(), 8);
        assert_eq!(packet.checksum(), None);
        assert_eq!(packet.key(), Some(42));
        assert_eq!(packet.sequence(), None);
        assert_eq!(packet.payload(), &KEYED[8..]);
        assert!(packet.verify_checksum());
    }

    #[test]
    fn parses_a_header_with_checksum_key_and_sequence() {
        let packet = GrePacket::new_checked(&FULL[..]).unwrap();
        assert_eq!(packet.header_len(), 16);
        assert_eq!(packet.protocol_type(), ethertype::IPV6);
        assert_eq!(packet.checksum(), Some(0x6514));
        assert_eq!(packet.key(), Some(0x0102_0304));
        assert_eq!(packet.sequence(), Some(7));
        assert_eq!(packet.payload(), &[0x60, 0, 0, 0]);
        assert!(packet.verify_checksum());
        let mut corrupted = FULL;
        corrupted[19] = 1;
        assert!(!GrePacket::new_checked(&corrupted[..])
            .unwrap()
            .verify_checksum());
    }

    #[test]
    fn sequence_without_key_follows_the_checksum() {
        let bytes = [0x90, 0x00, 0x08, 0x00, 0, 0, 0, 0, 0, 0, 0, 9];
        let packet = GrePacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.key(), None);
        assert_eq!(packet.sequence(), Some(9));
    }

    #[test]
    fn reports_routing_reserved_bits_and_version_without_rejecting() {
        let bytes = [0x40, 0x81, 0x88, 0x0b];
        let packet = GrePacket::new_checked(&bytes[..]).unwrap();
        assert!(packet.routing_present());
        assert_eq!(packet.reserved0(), 0x4080);
        assert_eq!(packet.version(), 1);
        assert_eq!(packet.header_len(), 4);
    }

    #[test]
    fn emit_writes_the_full_header_into_garbage() {
        let mut buf = [0xA5u8; 20];
        buf[16..].copy_from_slice(&FULL[16..]);
        let repr = GreRepr {
            protocol_type: ethertype::IPV6,
            key: Some(0x0102_0304),
            sequence: Some(7),
            checksum: true,
        };
        assert_eq!(repr.header_len(), 16);
        repr.emit(&mut buf);
        assert_eq!(buf, FULL);
    }

    #[test]
    fn every_getter_reads_a_known_packet_built_into_garbage() {
        let mut buf = [0xA5u8; 20];
        buf[16..].copy_from_slice(&FULL[16..]);
        let mut packet = GrePacket::new_unchecked(&mut buf[..]);
        packet.set_flags(true, true, true);
        packet.set_version(0);
        packet.set_protocol_type(ethertype::IPV6);
        packet.set_key(0x0102_0304);
        packet.set_sequence(7);
        packet.fill_checksum();
        assert_eq!(buf, FULL);

        let packet = GrePacket::new_checked(&buf[..]).unwrap();
        assert!(packet.checksum_present());
        assert!(!packet.routing_present());
        assert!(packet.key_present());
        assert!(packet.seq_present());
        assert_eq!(packet.reserved0(), 0);
        assert_eq!(packet.version(), 0);
        assert_eq!(packet.protocol_type(), ethertype::IPV6);
        assert_eq!(packet.header_len(), 16);
        assert_eq!(packet.checksum(), Some(0x6514));
        assert_eq!(packet.key(), Some(0x0102_0304));
        assert_eq!(packet.sequence(), Some(7));
        assert_eq!(packet.payload(), &[0x60, 0, 0, 0]);
        assert!(packet.verify_checksum());
    }

    #[test]
    fn emit_without_checksum_touches_only_the_header() {
        let mut buf = [0xA5u8; 12];
        let repr = GreRepr {
            protocol_type: ethertype::IPV4,
            key: Some(42),
            sequence: None,
            checksum: false,
        };
        repr.emit(&mut buf);
        assert_eq!(buf[..8], KEYED[..8]);
        assert_eq!(buf[8..], [0xA5; 4]);
    }

    #[test]
    fn rejects_every_truncation() {
        for len in 0..16 {
            assert_eq!(
                GrePacket::new_checked(&FULL[..len]),
                Err(WireError::Truncated),
                "len {len}"
            );
        }
        for len in 0..8 {
            assert_eq!(
                GrePacket::new_checked(&KEYED[..len]),
                Err(WireError::Truncated),
                "len {len}"
            );
        }
    }

    proptest! {
        #[test]
        fn emit_then_parse_round_trips(
            protocol_type in any::<u16>(),
            key in proptest::option::of(any::<u32>()),
            sequence in proptest::option::of(any::<u32>()),
            checksum in any::<bool>(),
            payload in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let repr = GreRepr { protocol_type, key, sequence, checksum };
            let mut buf = vec![0xA5u8; repr.header_len()];
            buf.extend_from_slice(&payload);
            repr.emit(&mut buf);
            let packet = GrePacket::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(packet.header_len(), repr.header_len());
            prop_assert_eq!(packet.version(), 0);
            prop_assert_eq!(packet.reserved0(), 0);
            prop_assert!(!packet.routing_present());
            prop_assert_eq!(packet.protocol_type(), protocol_type);
            prop_assert_eq!(packet.key(), key);
            prop_assert_eq!(packet.sequence(), sequence);
            prop_assert_eq!(packet.checksum().is_some(), checksum);
            prop_assert!(packet.verify_checksum());
            prop_assert_eq!(packet.payload(), &payload[..]);
        }

        #[test]
        fn new_checked_never_panics_and_getters_read_the_bytes_they_name(
            bytes in proptest::collection::vec(any::<u8>(), 0..24)
        ) {
            if let Ok(packet) = GrePacket::new_checked(&bytes[..]) {
                let flags = u16::from_be_bytes([bytes[0], bytes[1]]);
                let (c, k, s) = (flags & 0x8000 != 0, flags & 0x2000 != 0, flags & 0x1000 != 0);
                prop_assert_eq!(packet.checksum_present(), c);
                prop_assert_eq!(packet.routing_present(), flags & 0x4000 != 0);
                prop_assert_eq!(packet.key_present(), k);
                prop_assert_eq!(packet.seq_present(), s);
                prop_assert_eq!(packet.reserved0(), flags & 0x4FF8);
                prop_assert_eq!(packet.version(), bytes[1] & 0x07);
                prop_assert_eq!(packet.protocol_type(), u16::from_be_bytes([bytes[2], bytes[3]]));
                // The optional words follow the base header in the order C, K, S.
                let word = |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
                let mut at = 4;
                let mut next = |present: bool| {
                    let value = present.then(|| word(at));
                    at += if present { 4 } else { 0 };
                    value
                };
                let (checksum_word, key, sequence) = (next(c), next(k), next(s));
                prop_assert_eq!(packet.checksum(), checksum_word.map(|w| (w >> 16) as u16));
                prop_assert_eq!(packet.key(), key);
                prop_assert_eq!(packet.sequence(), sequence);
                prop_assert_eq!(packet.header_len(), at);
                prop_assert_eq!(packet.payload(), &bytes[at..]);
                prop_assert_eq!(
                    packet.verify_checksum(),
                    !c || checksum::fold(checksum::sum(&bytes, 0)) == 0xFFFF
                );
            }
        }
    }
}
