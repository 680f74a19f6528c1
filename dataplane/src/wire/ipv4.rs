//! IPv4 headers (RFC 791).

use super::{checksum, Result, WireError};

/// Byte ranges of the IPv4 header fields.
mod field {
    use core::ops::Range;

    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const TOTAL_LEN: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLAGS_FRAG: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC_ADDR: Range<usize> = 12..16;
    pub const DST_ADDR: Range<usize> = 16..20;
}

/// Length of an IPv4 header without options.
pub const HEADER_LEN: usize = 20;

/// Flag bits and mask of the flags/fragment-offset word.
const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const FRAG_OFFSET_MASK: u16 = 0x1FFF;

/// A view of an IPv4 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
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

    /// Checks the layout fields against the buffer:
    ///
    /// - fewer than 20 bytes: `Truncated`;
    /// - version not 4, IHL below 5, or total length below the header
    ///   length: `Malformed`;
    /// - header or total length beyond the buffer: `Truncated`.
    ///
    /// Bytes beyond the total length (Ethernet padding) are allowed and are
    /// not part of [`payload`](Self::payload). The checksum is not checked
    /// here: see [`verify_checksum`](Self::verify_checksum).
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if self.version() != 4 || self.header_len() < HEADER_LEN {
            return Err(WireError::Malformed);
        }
        let total_len = usize::from(self.total_len());
        if total_len < self.header_len() {
            return Err(WireError::Malformed);
        }
        if self.header_len() > len || total_len > len {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// Gives the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// IP version (4 for a checked packet).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL * 4), options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0F) * 4
    }

    /// The DSCP and ECN byte (the old type-of-service).
    #[inline]
    pub fn dscp_ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }

    /// Total length: header plus payload, in bytes.
    #[inline]
    pub fn total_len(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[2], b[3]])
    }

    /// Identification, shared by the fragments of one datagram.
    #[inline]
    pub fn ident(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[4], b[5]])
    }

    #[inline]
    fn flags_frag(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[6], b[7]])
    }

    /// The don't-fragment flag.
    #[inline]
    pub fn dont_frag(&self) -> bool {
        self.flags_frag() & FLAG_DF != 0
    }

    /// The more-fragments flag.
    #[inline]
    pub fn more_frags(&self) -> bool {
        self.flags_frag() & FLAG_MF != 0
    }

    /// Fragment offset in bytes (the field counts 8-byte units).
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (self.flags_frag() & FRAG_OFFSET_MASK) << 3
    }

    /// True when this packet is a fragment: more fragments follow or it does
    /// not start at offset 0.
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.flags_frag() & (FLAG_MF | FRAG_OFFSET_MASK) != 0
    }

    /// Time to live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Protocol of the payload (see [`super::ip_proto`]).
    #[inline]
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    /// Header checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[10], b[11]])
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> [u8; 4] {
        let b = self.buffer.as_ref();
        [b[12], b[13], b[14], b[15]]
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> [u8; 4] {
        let b = self.buffer.as_ref();
        [b[16], b[17], b[18], b[19]]
    }

    /// The options: bytes 20..header length (empty without options).
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }

    /// True when the header checksum is correct.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        let header = &self.buffer.as_ref()[..self.header_len()];
        match <&[u8; 20]>::try_from(header) {
            Ok(plain) => checksum::fold(checksum::sum_ipv4_header(plain)) == 0xFFFF,
            Err(_) => checksum::checksum(header) == 0,
        }
    }

    /// The payload: bytes header length..total length. Ethernet padding
    /// behind the datagram is excluded.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..usize::from(self.total_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets version 4 and the header length (a multiple of 4 from 20 to 60).
    #[inline]
    pub fn set_version_and_header_len(&mut self, header_len: usize) {
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | ((header_len / 4) as u8 & 0x0F);
    }

    /// Sets the DSCP and ECN byte.
    #[inline]
    pub fn set_dscp_ecn(&mut self, value: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = value;
    }

    /// Sets the total length. It decides the payload's end: check the
    /// length again before reading the payload.
    #[inline]
    pub fn set_total_len(&mut self, value: u16) {
        self.buffer.as_mut()[field::TOTAL_LEN].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the identification.
    #[inline]
    pub fn set_ident(&mut self, value: u16) {
        self.buffer.as_mut()[field::IDENT].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the flags and the fragment offset (in bytes, a multiple of 8;
    /// the low 3 bits are dropped).
    #[inline]
    pub fn set_flags_and_frag_offset(&mut self, dont_frag: bool, more_frags: bool, offset: u16) {
        let mut word = (offset >> 3) & FRAG_OFFSET_MASK;
        if dont_frag {
            word |= FLAG_DF;
        }
        if more_frags {
            word |= FLAG_MF;
        }
        self.buffer.as_mut()[field::FLAGS_FRAG].copy_from_slice(&word.to_be_bytes());
    }

    /// Sets the time to live.
    #[inline]
    pub fn set_ttl(&mut self, value: u8) {
        self.buffer.as_mut()[field::TTL] = value;
    }

    /// Sets the protocol.
    #[inline]
    pub fn set_protocol(&mut self, value: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = value;
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the source address.
    #[inline]
    pub fn set_src_addr(&mut self, addr: [u8; 4]) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&addr);
    }

    /// Sets the destination address.
    #[inline]
    pub fn set_dst_addr(&mut self, addr: [u8; 4]) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&addr);
    }

    /// Recomputes the header checksum over the whole header (options
    /// included). For one changed field prefer [`checksum::update_u16`] /
    /// [`checksum::update_u32`].
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let header_len = self.header_len();
        let value = checksum::checksum(&self.buffer.as_ref()[..header_len]);
        self.set_checksum(value);
    }

    /// The payload, writable (bytes header length..total length).
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = self.header_len()..usize::from(self.total_len());
        &mut self.buffer.as_mut()[range]
    }
}

/// An option-less IPv4 header to emit, e.g. the outer header of a GRE
/// tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Repr {
    /// Source address.
    pub src: [u8; 4],
    /// Destination address.
    pub dst: [u8; 4],
    /// Protocol of the payload.
    pub protocol: u8,
    /// Payload length in bytes; at most [`Ipv4Repr::MAX_PAYLOAD_LEN`].
    pub payload_len: u16,
    /// Time to live.
    pub ttl: u8,
    /// Identification.
    pub ident: u16,
    /// The don't-fragment flag.
    pub dont_frag: bool,
}

impl Ipv4Repr {
    /// The largest payload whose total length still fits the 16-bit field.
    pub const MAX_PAYLOAD_LEN: u16 = u16::MAX - HEADER_LEN as u16;

    /// Writes a 20-byte header (DSCP/ECN 0, not a fragment) with a correct
    /// checksum into `buf[..20]`.
    ///
    /// # Panics
    /// When `buf` is shorter than [`HEADER_LEN`]. The caller keeps
    /// `payload_len` within [`Self::MAX_PAYLOAD_LEN`] (checked in debug
    /// builds): it sizes the packet it builds.
    pub fn emit(&self, buf: &mut [u8]) {
        debug_assert!(self.payload_len <= Self::MAX_PAYLOAD_LEN);
        let mut packet = Ipv4Packet::new_unchecked(&mut buf[..HEADER_LEN]);
        packet.set_version_and_header_len(HEADER_LEN);
        packet.set_dscp_ecn(0);
        packet.set_total_len(self.payload_len.wrapping_add(HEADER_LEN as u16));
        packet.set_ident(self.ident);
        packet.set_flags_and_frag_offset(self.dont_frag, false, 0);
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src);
        packet.set_dst_addr(self.dst);
        packet.fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ip_proto;
    use etherparse::{IpDscp, IpEcn, IpFragOffset, IpNumber, Ipv4Header, Ipv4Options};
    use proptest::prelude::*;

    /// A UDP datagram header from 192.168.0.1 to 192.168.0.199, total length
    /// 115, DF set, TTL 64, checksum 0xb861.
    const HEADER: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];

    fn datagram() -> Vec<u8> {
        let mut bytes = vec![0u8; 115];
        bytes[..20].copy_from_slice(&HEADER);
        bytes[20] = 0x11;
        bytes
    }

    fn repr() -> Ipv4Repr {
        Ipv4Repr {
            src: [192, 168, 0, 1],
            dst: [192, 168, 0, 199],
            protocol: ip_proto::UDP,
            payload_len: 95,
            ttl: 64,
            ident: 0,
            dont_frag: true,
        }
    }

    #[test]
    fn parses_a_known_header() {
        let bytes = datagram();
        let packet = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.version(), 4);
        assert_eq!(packet.header_len(), 20);
        assert_eq!(packet.dscp_ecn(), 0);
        assert_eq!(packet.total_len(), 115);
        assert_eq!(packet.ident(), 0);
        assert!(packet.dont_frag());
        assert!(!packet.more_frags());
        assert_eq!(packet.frag_offset(), 0);
        assert!(!packet.is_fragment());
        assert_eq!(packet.ttl(), 64);
        assert_eq!(packet.protocol(), ip_proto::UDP);
        assert_eq!(packet.checksum(), 0xb861);
        assert_eq!(packet.src_addr(), [192, 168, 0, 1]);
        assert_eq!(packet.dst_addr(), [192, 168, 0, 199]);
        assert_eq!(packet.options(), &[] as &[u8]);
        assert!(packet.verify_checksum());
        assert_eq!(packet.payload().len(), 95);
        assert_eq!(packet.payload()[0], 0x11);
    }

    /// Every field distinct and non-zero: IHL 6 (a router-alert option), DSCP/ECN
    /// 0xb9, total length 32, ident 0x1234, MF and offset 0x155 units (2728
    /// bytes), TTL 60, UDP, 10.1.2.3 -> 192.0.2.77, checksum 0xe735.
    #[rustfmt::skip]
    const DISTINCT: [u8; 24] = [
        0x46, 0xb9, 0x00, 0x20, 0x12, 0x34, 0x21, 0x55, 0x3c, 0x11, 0xe7, 0x35,
        0x0a, 0x01, 0x02, 0x03, 0xc0, 0x00, 0x02, 0x4d, 0x94, 0x04, 0x00, 0x00,
    ];

    #[test]
    fn every_getter_reads_a_known_packet_built_into_garbage() {
        // The datagram (24 + 8 bytes) and 4 bytes of garbage behind it.
        let mut buf = [0xA5u8; 36];
        buf[20..24].copy_from_slice(&DISTINCT[20..]);
        let mut packet = Ipv4Packet::new_unchecked(&mut buf[..]);
        packet.set_version_and_header_len(24);
        packet.set_dscp_ecn(0xb9);
        packet.set_total_len(32);
        packet.set_ident(0x1234);
        packet.set_flags_and_frag_offset(false, true, 2728);
        packet.set_ttl(60);
        packet.set_protocol(ip_proto::UDP);
        packet.set_src_addr([10, 1, 2, 3]);
        packet.set_dst_addr([192, 0, 2, 77]);
        packet
            .payload_mut()
            .copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        packet.fill_checksum();
        assert_eq!(buf[..24], DISTINCT);
        assert_eq!(buf[32..], [0xA5; 4]);

        let packet = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(packet.version(), 4);
        assert_eq!(packet.header_len(), 24);
        assert_eq!(packet.dscp_ecn(), 0xb9);
        assert_eq!(packet.total_len(), 32);
        assert_eq!(packet.ident(), 0x1234);
        assert!(!packet.dont_frag());
        assert!(packet.more_frags());
        assert_eq!(packet.frag_offset(), 2728);
        assert!(packet.is_fragment());
        assert_eq!(packet.ttl(), 60);
        assert_eq!(packet.protocol(), ip_proto::UDP);
        assert_eq!(packet.checksum(), 0xe735);
        assert_eq!(packet.src_addr(), [10, 1, 2, 3]);
        assert_eq!(packet.dst_addr(), [192, 0, 2, 77]);
        assert_eq!(packet.options(), &[0x94, 0x04, 0x00, 0x00]);
        assert!(packet.verify_checksum());
        assert_eq!(packet.payload(), &[1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn payload_excludes_ethernet_padding() {
        let mut bytes = [0u8; 46];
        let mut small = repr();
        small.payload_len = 8;
        small.emit(&mut bytes);
        bytes[20..28].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        let packet = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.payload(), &[1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn frag_offset_is_in_bytes_and_any_fragment_is_a_fragment() {
        let mut bytes = datagram();
        let mut packet = Ipv4Packet::new_unchecked(&mut bytes[..]);
        packet.set_flags_and_frag_offset(false, false, 1480);
        assert_eq!(packet.frag_offset(), 1480);
        assert!(packet.is_fragment(), "last fragment");
        packet.set_flags_and_frag_offset(false, true, 0);
        assert!(packet.is_fragment(), "first fragment");
        assert!(packet.more_frags());
        assert!(!packet.dont_frag());
        packet.set_flags_and_frag_offset(true, false, 0);
        assert!(!packet.is_fragment(), "whole datagram");
    }

    #[test]
    fn emit_writes_the_known_header_into_garbage() {
        let mut buf = [0xA5u8; 22];
        repr().emit(&mut buf);
        assert_eq!(buf[..20], HEADER);
        assert_eq!(buf[20..], [0xA5, 0xA5]);
    }

    #[test]
    fn setters_and_fill_checksum_keep_the_header_valid() {
        let mut bytes = datagram();
        let mut packet = Ipv4Packet::new_checked(&mut bytes[..]).unwrap();
        packet.set_ttl(63);
        packet.set_src_addr([10, 0, 0, 1]);
        packet.set_dst_addr([10, 0, 0, 2]);
        packet.set_ident(0x1234);
        packet.set_protocol(ip_proto::TCP);
        assert!(!packet.verify_checksum());
        packet.fill_checksum();
        assert!(packet.verify_checksum());
        assert_eq!(packet.ttl(), 63);
        assert_eq!(packet.src_addr(), [10, 0, 0, 1]);
        assert_eq!(packet.dst_addr(), [10, 0, 0, 2]);
        assert_eq!(packet.ident(), 0x1234);
        assert_eq!(packet.protocol(), ip_proto::TCP);
        packet.payload_mut()[0] = 0x99;
        assert_eq!(bytes[20], 0x99);
    }

    #[test]
    fn incremental_ttl_update_matches_fill_checksum() {
        let mut bytes = datagram();
        let mut packet = Ipv4Packet::new_checked(&mut bytes[..]).unwrap();
        let old = u16::from_be_bytes([packet.ttl(), packet.protocol()]);
        packet.set_ttl(packet.ttl() - 1);
        let new = u16::from_be_bytes([packet.ttl(), packet.protocol()]);
        packet.set_checksum(checksum::update_u16(packet.checksum(), old, new));
        assert!(packet.verify_checksum());
    }

    #[test]
    fn rejects_every_truncation() {
        let bytes = datagram();
        for len in 0..bytes.len() {
            assert_eq!(
                Ipv4Packet::new_checked(&bytes[..len]),
                Err(WireError::Truncated),
                "len {len}"
            );
        }
    }

    #[test]
    fn rejects_bad_version_ihl_and_total_length() {
        let mut bytes = datagram();
        bytes[0] = 0x65;
        assert_eq!(
            Ipv4Packet::new_checked(&bytes[..]),
            Err(WireError::Malformed)
        );
        bytes[0] = 0x44;
        assert_eq!(
            Ipv4Packet::new_checked(&bytes[..]),
            Err(WireError::Malformed)
        );
        bytes[0] = 0x45;
        bytes[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(
            Ipv4Packet::new_checked(&bytes[..]),
            Err(WireError::Malformed)
        );
        bytes[0] = 0x46;
        bytes[2..4].copy_from_slice(&22u16.to_be_bytes());
        assert_eq!(
            Ipv4Packet::new_checked(&bytes[..]),
            Err(WireError::Malformed)
        );
        bytes[2..4].copy_from_slice(&116u16.to_be_bytes());
        assert_eq!(
            Ipv4Packet::new_checked(&bytes[..]),
            Err(WireError::Truncated)
        );
    }

    #[test]
    fn parses_options() {
        let mut header =
            Ipv4Header::new(4, 64, IpNumber(ip_proto::UDP), [1, 2, 3, 4], [5, 6, 7, 8]).unwrap();
        header.options = Ipv4Options::from([0x94, 0x04, 0x00, 0x00]); // router alert
        header.set_payload_len(4).unwrap();
        header.header_checksum = header.calc_header_checksum();
        let mut bytes = header.to_bytes().to_vec();
        bytes.extend_from_slice(&[9, 9, 9, 9]);
        let packet = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.header_len(), 24);
        assert_eq!(packet.options(), &[0x94, 0x04, 0x00, 0x00]);
        assert_eq!(packet.payload(), &[9, 9, 9, 9]);
        assert!(packet.verify_checksum());
    }

    prop_compose! {
        fn etherparse_header()(
            dscp in 0u8..64,
            ecn in 0u8..4,
            payload_len in 0u16..64,
            ident in any::<u16>(),
            dont_fragment in any::<bool>(),
            more_fragments in any::<bool>(),
            offset in 0u16..8192,
            ttl in any::<u8>(),
            protocol in any::<u8>(),
            source in any::<[u8; 4]>(),
            destination in any::<[u8; 4]>(),
            options_words in 0usize..=10,
            option_byte in any::<u8>(),
        ) -> Ipv4Header {
            let mut header = Ipv4Header::new(payload_len, ttl, IpNumber(protocol), source, destination).unwrap();
            header.dscp = IpDscp::try_new(dscp).unwrap();
            header.ecn = IpEcn::try_new(ecn).unwrap();
            header.identification = ident;
            header.dont_fragment = dont_fragment;
            header.more_fragments = more_fragments;
            header.fragment_offset = IpFragOffset::try_new(offset).unwrap();
            header.options = Ipv4Options::try_from(&[option_byte; 40][..options_words * 4]).unwrap();
            header.set_payload_len(usize::from(payload_len)).unwrap();
            header.header_checksum = header.calc_header_checksum();
            header
        }
    }

    proptest! {
        #[test]
        fn getters_agree_with_etherparse(header in etherparse_header(), padding in 0usize..8) {
            let mut bytes = header.to_bytes().to_vec();
            let payload_len = usize::from(header.payload_len().unwrap());
            bytes.extend((0..payload_len + padding).map(|i| i as u8));
            let packet = Ipv4Packet::new_checked(&bytes[..]).unwrap();
            prop_assert_eq!(packet.header_len(), header.header_len());
            prop_assert_eq!(packet.dscp_ecn(), header.dscp.value() << 2 | header.ecn.value());
            prop_assert_eq!(packet.total_len(), header.total_len);
            prop_assert_eq!(packet.ident(), header.identification);
            prop_assert_eq!(packet.dont_frag(), header.dont_fragment);
            prop_assert_eq!(packet.more_frags(), header.more_fragments);
            prop_assert_eq!(packet.frag_offset(), header.fragment_offset.byte_offset());
            prop_assert_eq!(packet.is_fragment(), header.is_fragmenting_payload());
            prop_assert_eq!(packet.ttl(), header.time_to_live);
            prop_assert_eq!(packet.protocol(), header.protocol.0);
            prop_assert_eq!(packet.checksum(), header.header_checksum);
            prop_assert_eq!(packet.src_addr(), header.source);
            prop_assert_eq!(packet.dst_addr(), header.destination);
            prop_assert_eq!(packet.options(), header.options.as_slice());
            prop_assert!(packet.verify_checksum());
            prop_assert_eq!(packet.payload().len(), payload_len);

            let mut copy = bytes.clone();
            let mut ours = Ipv4Packet::new_unchecked(&mut copy[..]);
            ours.set_checksum(0xA5A5);
            ours.fill_checksum();
            prop_assert_eq!(copy, bytes);
        }

        #[test]
        fn emit_agrees_with_etherparse(
            src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(), protocol in any::<u8>(),
            payload_len in 0u16..=Ipv4Repr::MAX_PAYLOAD_LEN, ttl in any::<u8>(),
            ident in any::<u16>(), dont_frag in any::<bool>(),
        ) {
            let repr = Ipv4Repr { src, dst, protocol, payload_len, ttl, ident, dont_frag };
            let mut buf = [0xA5u8; HEADER_LEN];
            repr.emit(&mut buf);
            let (header, _) = Ipv4Header::from_slice(&buf).unwrap();
            prop_assert_eq!(header.source, src);
            prop_assert_eq!(header.destination, dst);
            prop_assert_eq!(header.protocol.0, protocol);
            prop_assert_eq!(header.payload_len().unwrap(), payload_len);
            prop_assert_eq!(header.time_to_live, ttl);
            prop_assert_eq!(header.identification, ident);
            prop_assert_eq!(header.dont_fragment, dont_frag);
            prop_assert!(!header.is_fragmenting_payload());
            prop_assert_eq!(header.header_checksum, header.calc_header_checksum());
        }

        #[test]
        fn new_checked_never_panics_and_getters_read_the_bytes_they_name(
            bytes in proptest::collection::vec(any::<u8>(), 0..80), version_ihl in 0x45u8..0x50,
            total_len in 0u16..90,
        ) {
            let mut bytes = bytes;
            if let Some(first) = bytes.first_mut() {
                *first = version_ihl;
            }
            if let Some(field) = bytes.get_mut(2..4) {
                field.copy_from_slice(&total_len.to_be_bytes());
            }
            if let Ok(packet) = Ipv4Packet::new_checked(&bytes[..]) {
                let be16 = |at: usize| u16::from_be_bytes([bytes[at], bytes[at + 1]]);
                let header_len = usize::from(version_ihl & 0x0F) * 4;
                prop_assert_eq!(packet.version(), 4);
                prop_assert_eq!(packet.header_len(), header_len);
                prop_assert_eq!(packet.dscp_ecn(), bytes[1]);
                prop_assert_eq!(packet.total_len(), total_len);
                prop_assert_eq!(packet.ident(), be16(4));
                prop_assert_eq!(packet.dont_frag(), bytes[6] & 0x40 != 0);
                prop_assert_eq!(packet.more_frags(), bytes[6] & 0x20 != 0);
                prop_assert_eq!(packet.frag_offset(), (be16(6) & 0x1FFF) * 8);
                prop_assert_eq!(packet.is_fragment(), bytes[6] & 0x20 != 0 || be16(6) & 0x1FFF != 0);
                prop_assert_eq!(packet.ttl(), bytes[8]);
                prop_assert_eq!(packet.protocol(), bytes[9]);
                prop_assert_eq!(packet.checksum(), be16(10));
                prop_assert_eq!(&packet.src_addr()[..], &bytes[12..16]);
                prop_assert_eq!(&packet.dst_addr()[..], &bytes[16..20]);
                prop_assert_eq!(packet.options(), &bytes[20..header_len]);
                prop_assert_eq!(packet.payload(), &bytes[header_len..usize::from(total_len)]);
                prop_assert_eq!(
                    packet.verify_checksum(),
                    checksum::fold(checksum::sum(&bytes[..header_len], 0)) == 0xFFFF
                );
            }
        }
    }
}
