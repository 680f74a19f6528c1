//! TCP headers (RFC 9293). The view wraps one whole segment (header and
//! data, exactly the IP payload): the checksum covers all of it.

use super::{checksum, ip_proto, Result, WireError};

/// Byte ranges of the TCP header fields.
mod field {
    use core::ops::Range;

    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const SEQ_NUMBER: Range<usize> = 4..8;
    pub const ACK_NUMBER: Range<usize> = 8..12;
    /// Data offset (high 4 bits) and the NS flag (low bit).
    pub const DATA_OFFSET: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: Range<usize> = 14..16;
    pub const CHECKSUM: Range<usize> = 16..18;
    pub const URGENT: Range<usize> = 18..20;
}

/// Length of a TCP header without options.
pub const HEADER_LEN: usize = 20;

/// Flag bits of byte 13.
pub mod flags {
    /// No more data from the sender.
    pub const FIN: u8 = 0x01;
    /// Synchronize sequence numbers.
    pub const SYN: u8 = 0x02;
    /// Reset the connection.
    pub const RST: u8 = 0x04;
    /// Push.
    pub const PSH: u8 = 0x08;
    /// The acknowledgment number is valid.
    pub const ACK: u8 = 0x10;
    /// The urgent pointer is valid.
    pub const URG: u8 = 0x20;
    /// ECN echo.
    pub const ECE: u8 = 0x40;
    /// Congestion window reduced.
    pub const CWR: u8 = 0x80;
}

/// A view of a TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
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

    /// `Truncated` below 20 bytes or when the header (data offset) runs
    /// past the buffer; `Malformed` for a data offset below 5.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if self.header_len() < HEADER_LEN {
            return Err(WireError::Malformed);
        }
        if self.header_len() > len {
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

    /// Sequence number.
    #[inline]
    pub fn seq_number(&self) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_be_bytes([b[4], b[5], b[6], b[7]])
    }

    /// Acknowledgment number (meaningful when [`ack_flag`](Self::ack_flag)).
    #[inline]
    pub fn ack_number(&self) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_be_bytes([b[8], b[9], b[10], b[11]])
    }

    /// Header length in bytes (data offset * 4), options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFFSET] >> 4) * 4
    }

    /// The eight flag bits of byte 13 (see [`flags`]).
    #[inline]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// FIN flag.
    #[inline]
    pub fn fin(&self) -> bool {
        self.flags() & flags::FIN != 0
    }

    /// SYN flag.
    #[inline]
    pub fn syn(&self) -> bool {
        self.flags() & flags::SYN != 0
    }

    /// RST flag.
    #[inline]
    pub fn rst(&self) -> bool {
        self.flags() & flags::RST != 0
    }

    /// PSH flag.
    #[inline]
    pub fn psh(&self) -> bool {
        self.flags() & flags::PSH != 0
    }

    /// ACK flag.
    #[inline]
    pub fn ack_flag(&self) -> bool {
        self.flags() & flags::ACK != 0
    }

    /// URG flag.
    #[inline]
    pub fn urg(&self) -> bool {
        self.flags() & flags::URG != 0
    }

    /// ECE flag.
    #[inline]
    pub fn ece(&self) -> bool {
        self.flags() & flags::ECE != 0
    }

    /// CWR flag.
    #[inline]
    pub fn cwr(&self) -> bool {
        self.flags() & flags::CWR != 0
    }

    /// Window size.
    #[inline]
    pub fn window(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[14], b[15]])
    }

    /// Checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[16], b[17]])
    }

    /// Urgent pointer.
    #[inline]
    pub fn urgent_ptr(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[18], b[19]])
    }

    /// The options: bytes 20..header length.
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }

    /// The segment data after the header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }

    /// True when the checksum over the IPv4 pseudo-header and the whole
    /// segment is correct.
    #[inline]
    pub fn verify_checksum_v4(&self, src: [u8; 4], dst: [u8; 4]) -> bool {
        let b = self.buffer.as_ref();
        let pseudo = checksum::pseudo_header_v4(src, dst, ip_proto::TCP, b.len() as u16);
        checksum::fold(checksum::sum(b, pseudo)) == 0xFFFF
    }

    /// True when the checksum over the IPv6 pseudo-header and the whole
    /// segment is correct.
    #[inline]
    pub fn verify_checksum_v6(&self, src: &[u8; 16], dst: &[u8; 16]) -> bool {
        let b = self.buffer.as_ref();
        let pseudo = checksum::pseudo_header_v6(src, dst, ip_proto::TCP, b.len() as u32);
        checksum::fold(checksum::sum(b, pseudo)) == 0xFFFF
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
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

    /// Sets the sequence number.
    #[inline]
    pub fn set_seq_number(&mut self, value: u32) {
        self.buffer.as_mut()[field::SEQ_NUMBER].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the acknowledgment number.
    #[inline]
    pub fn set_ack_number(&mut self, value: u32) {
        self.buffer.as_mut()[field::ACK_NUMBER].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the header length (a multiple of 4 from 20 to 60), keeping the
    /// NS bit. It decides where the payload starts: check the length again.
    #[inline]
    pub fn set_header_len(&mut self, header_len: usize) {
        let b = self.buffer.as_mut();
        b[field::DATA_OFFSET] = (((header_len / 4) as u8) << 4) | (b[field::DATA_OFFSET] & 0x0F);
    }

    /// Sets the eight flag bits of byte 13.
    #[inline]
    pub fn set_flags(&mut self, value: u8) {
        self.buffer.as_mut()[field::FLAGS] = value;
    }

    /// Sets the window size.
    #[inline]
    pub fn set_window(&mut self, value: u16) {
        self.buffer.as_mut()[field::WINDOW].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the urgent pointer.
    #[inline]
    pub fn set_urgent_ptr(&mut self, value: u16) {
        self.buffer.as_mut()[field::URGENT].copy_from_slice(&value.to_be_bytes());
    }

    /// Computes the checksum over the IPv4 pseudo-header and the segment.
    #[inline]
    pub fn fill_checksum_v4(&mut self, src: [u8; 4], dst: [u8; 4]) {
        self.set_checksum(0);
        let b = self.buffer.as_ref();
        let pseudo = checksum::pseudo_header_v4(src, dst, ip_proto::TCP, b.len() as u16);
        let value = !checksum::fold(checksum::sum(b, pseudo));
        self.set_checksum(value);
    }

    /// Computes the checksum over the IPv6 pseudo-header and the segment.
    #[inline]
    pub fn fill_checksum_v6(&mut self, src: &[u8; 16], dst: &[u8; 16]) {
        self.set_checksum(0);
        let b = self.buffer.as_ref();
        let pseudo = checksum::pseudo_header_v6(src, dst, ip_proto::TCP, b.len() as u32);
        let value = !checksum::fold(checksum::sum(b, pseudo));
        self.set_checksum(value);
    }

    /// The segment data, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        &mut self.buffer.as_mut()[start..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::TcpHeader;
    use proptest::prelude::*;

    const SRC: [u8; 4] = [10, 0, 0, 1];
    const DST: [u8; 4] = [10, 0, 0, 2];

    /// A SYN from port 40000 to 80 with an MSS option of 1460; checksum for
    /// 10.0.0.1 -> 10.0.0.2.
    fn syn() -> Vec<u8> {
        let mut header = TcpHeader::new(40000, 80, 0x0102_0304, 64240);
        header.syn = true;
        header.set_options_raw(&[2, 4, 0x05, 0xb4]).unwrap();
        header.checksum = header.calc_checksum_ipv4_raw(SRC, DST, &[]).unwrap();
        header.to_bytes().to_vec()
    }

    #[test]
    fn parses_a_syn_with_options() {
        let bytes = syn();
        #[rustfmt::skip]
        let expected_prefix = [
            0x9c, 0x40, 0x00, 0x50, // ports 40000 -> 80
            0x01, 0x02, 0x03, 0x04, // seq
            0x00, 0x00, 0x00, 0x00, // ack
            0x60, 0x02, 0xfa, 0xf0, // offset 6, SYN, window 64240
        ];
        assert_eq!(bytes[..16], expected_prefix);
        let packet = TcpPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.src_port(), 40000);
        assert_eq!(packet.dst_port(), 80);
        assert_eq!(packet.seq_number(), 0x0102_0304);
        assert_eq!(packet.ack_number(), 0);
        assert_eq!(packet.header_len(), 24);
        assert!(packet.syn());
        assert!(!packet.ack_flag() && !packet.fin() && !packet.rst());
        assert_eq!(packet.window(), 64240);
        assert_eq!(packet.options(), &[2, 4, 0x05, 0xb4]);
        assert_eq!(packet.payload(), &[] as &[u8]);
        assert!(packet.verify_checksum_v4(SRC, DST));
        assert!(!packet.verify_checksum_v4(SRC, [10, 0, 0, 3]));
    }

    #[test]
    fn setters_write_every_header_byte() {
        let expected = syn();
        let mut buf = [0xA5u8; 24];
        let mut packet = TcpPacket::new_unchecked(&mut buf[..]);
        packet.set_src_port(40000);
        packet.set_dst_port(80);
        packet.set_seq_number(0x0102_0304);
        packet.set_ack_number(0);
        buf[12] = 0; // clear the NS bit the garbage left
        let mut packet = TcpPacket::new_unchecked(&mut buf[..]);
        packet.set_header_len(24);
        packet.set_flags(flags::SYN);
        packet.set_window(64240);
        packet.set_urgent_ptr(0);
        packet.into_inner()[20..24].copy_from_slice(&[2, 4, 0x05, 0xb4]);
        let mut packet = TcpPacket::new_checked(&mut buf[..]).unwrap();
        packet.fill_checksum_v4(SRC, DST);
        assert_eq!(buf[..], expected[..]);
    }

    /// Every field distinct and non-zero: 40000 -> 80, seq 0x01020304, ack
    /// 0x0a0b0c0d, offset 6 (an MSS option), CWR URG ACK PSH FIN, window 64240,
    /// urgent pointer 23, two data bytes; checksum for 10.0.0.1 -> 10.0.0.2.
    #[rustfmt::skip]
    const DISTINCT: [u8; 26] = [
        0x9c, 0x40, 0x00, 0x50, 0x01, 0x02, 0x03, 0x04, 0x0a, 0x0b, 0x0c, 0x0d,
        0x60, 0xb9, 0xfa, 0xf0, 0xf3, 0x06, 0x00, 0x17, 0x02, 0x04, 0x05, 0xb4,
        0xde, 0xad,
    ];

    #[test]
    fn every_getter_reads_a_known_segment_built_into_garbage() {
        let mut buf = [0xA5u8; 26];
        buf[12] = 0; // the NS bit and reserved bits: not header fields we set
        buf[20..].copy_from_slice(&DISTINCT[20..]);
        let mut packet = TcpPacket::new_unchecked(&mut buf[..]);
        packet.set_src_port(40000);
        packet.set_dst_port(80);
        packet.set_seq_number(0x0102_0304);
        packet.set_ack_number(0x0a0b_0c0d);
        packet.set_header_len(24);
        packet.set_flags(flags::CWR | flags::URG | flags::ACK | flags::PSH | flags::FIN);
        packet.set_window(64240);
        packet.set_urgent_ptr(23);
        packet.fill_checksum_v4(SRC, DST);
        assert_eq!(buf, DISTINCT);

        let packet = TcpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(packet.src_port(), 40000);
        assert_eq!(packet.dst_port(), 80);
        assert_eq!(packet.seq_number(), 0x0102_0304);
        assert_eq!(packet.ack_number(), 0x0a0b_0c0d);
        assert_eq!(packet.header_len(), 24);
        assert_eq!(packet.flags(), 0xb9);
        assert!(packet.fin());
        assert!(!packet.syn());
        assert!(!packet.rst());
        assert!(packet.psh());
        assert!(packet.ack_flag());
        assert!(packet.urg());
        assert!(!packet.ece());
        assert!(packet.cwr());
        assert_eq!(packet.window(), 64240);
        assert_eq!(packet.checksum(), 0xf306);
        assert_eq!(packet.urgent_ptr(), 23);
        assert_eq!(packet.options(), &[2, 4, 0x05, 0xb4]);
        assert_eq!(packet.payload(), &[0xde, 0xad]);
        assert!(packet.verify_checksum_v4(SRC, DST));
        assert!(!packet.verify_checksum_v4(SRC, [10, 0, 0, 3]));
    }

    #[test]
    fn rejects_every_truncation() {
        let bytes = syn();
        for len in 0..bytes.len() {
            assert_eq!(
                TcpPacket::new_checked(&bytes[..len]),
                Err(WireError::Truncated),
                "len {len}"
            );
        }
    }

    #[test]
    fn rejects_a_data_offset_below_five() {
        let mut bytes = syn();
        bytes[12] = 0x40;
        assert_eq!(
            TcpPacket::new_checked(&bytes[..]),
            Err(WireError::Malformed)
        );
    }

    proptest! {
        #[test]
        fn agrees_with_etherparse(
            ports in any::<(u16, u16)>(),
            seq in any::<u32>(),
            ack in any::<u32>(),
            flag_bits in any::<u8>(),
            window in any::<u16>(),
            urgent in any::<u16>(),
            option_words in 0usize..=10,
            payload in proptest::collection::vec(any::<u8>(), 0..64),
            src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(),
            src6 in any::<[u8; 16]>(), dst6 in any::<[u8; 16]>(),
        ) {
            let mut header = TcpHeader::new(ports.0, ports.1, seq, window);
            header.acknowledgment_number = ack;
            header.fin = flag_bits & flags::FIN != 0;
            header.syn = flag_bits & flags::SYN != 0;
            header.rst = flag_bits & flags::RST != 0;
            header.psh = flag_bits & flags::PSH != 0;
            header.ack = flag_bits & flags::ACK != 0;
            header.urg = flag_bits & flags::URG != 0;
            header.ece = flag_bits & flags::ECE != 0;
            header.cwr = flag_bits & flags::CWR != 0;
            header.urgent_pointer = urgent;
            header.set_options_raw(&[1u8; 40][..option_words * 4]).unwrap();
            header.checksum = header.calc_checksum_ipv4_raw(src, dst, &payload).unwrap();
            let mut bytes = header.to_bytes().to_vec();
            bytes.extend_from_slice(&payload);

            let packet = TcpPacket::new_checked(&bytes[..]).unwrap();
            prop_assert_eq!((packet.src_port(), packet.dst_port()), ports);
            prop_assert_eq!(packet.seq_number(), seq);
            prop_assert_eq!(packet.ack_number(), ack);
            prop_assert_eq!(packet.header_len(), header.header_len());
            prop_assert_eq!(packet.flags(), flag_bits);
            prop_assert_eq!(
                (packet.fin(), packet.syn(), packet.rst(), packet.psh()),
                (header.fin, header.syn, header.rst, header.psh)
            );
            prop_assert_eq!(
                (packet.ack_flag(), packet.urg(), packet.ece(), packet.cwr()),
                (header.ack, header.urg, header.ece, header.cwr)
            );
            prop_assert_eq!(packet.window(), window);
            prop_assert_eq!(packet.urgent_ptr(), urgent);
            prop_assert_eq!(packet.checksum(), header.checksum);
            prop_assert_eq!(packet.options(), header.options.as_slice());
            prop_assert_eq!(packet.payload(), &payload[..]);
            prop_assert!(packet.verify_checksum_v4(src, dst));

            let mut ours = bytes.clone();
            let mut packet = TcpPacket::new_unchecked(&mut ours[..]);
            packet.fill_checksum_v6(&src6, &dst6);
            let v6 = header.calc_checksum_ipv6_raw(src6, dst6, &payload).unwrap();
            prop_assert_eq!(packet.checksum(), v6);
            prop_assert!(packet.verify_checksum_v6(&src6, &dst6));
            packet.fill_checksum_v4(src, dst);
            prop_assert_eq!(ours, bytes);
        }

        #[test]
        fn new_checked_never_panics_and_getters_read_the_bytes_they_name(
            bytes in proptest::collection::vec(any::<u8>(), 0..80),
            src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(),
        ) {
            if let Ok(packet) = TcpPacket::new_checked(&bytes[..]) {
                let be16 = |at: usize| u16::from_be_bytes([bytes[at], bytes[at + 1]]);
                let be32 = |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
                let header_len = usize::from(bytes[12] >> 4) * 4;
                prop_assert_eq!(packet.src_port(), be16(0));
                prop_assert_eq!(packet.dst_port(), be16(2));
                prop_assert_eq!(packet.seq_number(), be32(4));
                prop_assert_eq!(packet.ack_number(), be32(8));
                prop_assert_eq!(packet.header_len(), header_len);
                prop_assert_eq!(packet.flags(), bytes[13]);
                let bit = |n: u8| bytes[13] & (1 << n) != 0;
                prop_assert_eq!(
                    [packet.fin(), packet.syn(), packet.rst(), packet.psh()],
                    [bit(0), bit(1), bit(2), bit(3)]
                );
                prop_assert_eq!(
                    [packet.ack_flag(), packet.urg(), packet.ece(), packet.cwr()],
                    [bit(4), bit(5), bit(6), bit(7)]
                );
                prop_assert_eq!(packet.window(), be16(14));
                prop_assert_eq!(packet.checksum(), be16(16));
                prop_assert_eq!(packet.urgent_ptr(), be16(18));
                prop_assert_eq!(packet.options(), &bytes[20..header_len]);
                prop_assert_eq!(packet.payload(), &bytes[header_len..]);
                // etherparse's sum of the same segment; 0 and 0xFFFF are the
                // same number in ones' complement.
                let theirs = TcpHeader::from_slice(&bytes).unwrap().0;
                let sum = theirs.calc_checksum_ipv4_raw(src, dst, &bytes[header_len..]).unwrap();
                let field = be16(16);
                let same = field == sum || (field | sum == 0xFFFF && (field == 0 || sum == 0));
                prop_assert_eq!(packet.verify_checksum_v4(src, dst), same);
            }
        }
    }
}
