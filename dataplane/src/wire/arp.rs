//! ARP for IPv4 over Ethernet (RFC 826), the only kind the data plane answers.

use super::{ethertype, Result, WireError};

/// Byte ranges of the ARP fields, for 6-byte hardware and 4-byte protocol
/// addresses.
mod field {
    use core::ops::Range;

    pub const HARDWARE_TYPE: Range<usize> = 0..2;
    pub const PROTOCOL_TYPE: Range<usize> = 2..4;
    pub const HW_LEN: usize = 4;
    pub const PROTO_LEN: usize = 5;
    pub const OPERATION: Range<usize> = 6..8;
    pub const SENDER_HW: Range<usize> = 8..14;
    pub const SENDER_IP: Range<usize> = 14..18;
    pub const TARGET_HW: Range<usize> = 18..24;
    pub const TARGET_IP: Range<usize> = 24..28;
}

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = 28;
/// ARP hardware type for Ethernet.
pub const HARDWARE_ETHERNET: u16 = 1;
/// ARP operation: who has `target_ip`?
pub const OP_REQUEST: u16 = 1;
/// ARP operation: `sender_ip` is at `sender_hw`.
pub const OP_REPLY: u16 = 2;

/// A view of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
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

    /// Checks the buffer holds 28 bytes (else `Truncated`) and that the
    /// address lengths are 6 and 4, the only layout these getters read
    /// (else `Malformed`).
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < PACKET_LEN {
            return Err(WireError::Truncated);
        }
        if self.hw_len() != 6 || self.proto_len() != 4 {
            return Err(WireError::Malformed);
        }
        Ok(())
    }

    /// Gives the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Hardware type (1 for Ethernet).
    #[inline]
    pub fn hardware_type(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[0], b[1]])
    }

    /// Protocol type (0x0800 for IPv4).
    #[inline]
    pub fn protocol_type(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[2], b[3]])
    }

    /// Hardware address length in bytes.
    #[inline]
    pub fn hw_len(&self) -> u8 {
        self.buffer.as_ref()[field::HW_LEN]
    }

    /// Protocol address length in bytes.
    #[inline]
    pub fn proto_len(&self) -> u8 {
        self.buffer.as_ref()[field::PROTO_LEN]
    }

    /// Operation ([`OP_REQUEST`], [`OP_REPLY`], ...).
    #[inline]
    pub fn operation(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[6], b[7]])
    }

    /// Sender hardware (MAC) address.
    #[inline]
    pub fn sender_hw(&self) -> [u8; 6] {
        let b = self.buffer.as_ref();
        [b[8], b[9], b[10], b[11], b[12], b[13]]
    }

    /// Sender protocol (IPv4) address.
    #[inline]
    pub fn sender_ip(&self) -> [u8; 4] {
        let b = self.buffer.as_ref();
        [b[14], b[15], b[16], b[17]]
    }

    /// Target hardware (MAC) address.
    #[inline]
    pub fn target_hw(&self) -> [u8; 6] {
        let b = self.buffer.as_ref();
        [b[18], b[19], b[20], b[21], b[22], b[23]]
    }

    /// Target protocol (IPv4) address.
    #[inline]
    pub fn target_ip(&self) -> [u8; 4] {
        let b = self.buffer.as_ref();
        [b[24], b[25], b[26], b[27]]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    /// Sets the hardware type.
    #[inline]
    pub fn set_hardware_type(&mut self, value: u16) {
        self.buffer.as_mut()[field::HARDWARE_TYPE].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the protocol type.
    #[inline]
    pub fn set_protocol_type(&mut self, value: u16) {
        self.buffer.as_mut()[field::PROTOCOL_TYPE].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the hardware address length.
    #[inline]
    pub fn set_hw_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::HW_LEN] = value;
    }

    /// Sets the protocol address length.
    #[inline]
    pub fn set_proto_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::PROTO_LEN] = value;
    }

    /// Sets the operation.
    #[inline]
    pub fn set_operation(&mut self, value: u16) {
        self.buffer.as_mut()[field::OPERATION].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the sender hardware address.
    #[inline]
    pub fn set_sender_hw(&mut self, mac: [u8; 6]) {
        self.buffer.as_mut()[field::SENDER_HW].copy_from_slice(&mac);
    }

    /// Sets the sender protocol address.
    #[inline]
    pub fn set_sender_ip(&mut self, ip: [u8; 4]) {
        self.buffer.as_mut()[field::SENDER_IP].copy_from_slice(&ip);
    }

    /// Sets the target hardware address.
    #[inline]
    pub fn set_target_hw(&mut self, mac: [u8; 6]) {
        self.buffer.as_mut()[field::TARGET_HW].copy_from_slice(&mac);
    }

    /// Sets the target protocol address.
    #[inline]
    pub fn set_target_ip(&mut self, ip: [u8; 4]) {
        self.buffer.as_mut()[field::TARGET_IP].copy_from_slice(&ip);
    }
}

/// The meaning of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArpRepr {
    /// [`OP_REQUEST`], [`OP_REPLY`], or another operation code.
    pub operation: u16,
    /// Sender MAC address.
    pub sender_hw: [u8; 6],
    /// Sender IPv4 address.
    pub sender_ip: [u8; 4],
    /// Target MAC address (ignored in a request, usually zero).
    pub target_hw: [u8; 6],
    /// Target IPv4 address.
    pub target_ip: [u8; 4],
}

impl ArpRepr {
    /// Reads a checked packet. `Malformed` unless the hardware type is
    /// Ethernet and the protocol type IPv4: other address families would
    /// reuse the lengths with a different meaning.
    pub fn parse<T: AsRef<[u8]>>(packet: &ArpPacket<T>) -> Result<Self> {
        packet.check_len()?;
        if packet.hardware_type() != HARDWARE_ETHERNET || packet.protocol_type() != ethertype::IPV4
        {
            return Err(WireError::Malformed);
        }
        Ok(Self {
            operation: packet.operation(),
            sender_hw: packet.sender_hw(),
            sender_ip: packet.sender_ip(),
            target_hw: packet.target_hw(),
            target_ip: packet.target_ip(),
        })
    }

    /// Writes the 28-byte packet into `buf[..28]`.
    ///
    /// # Panics
    /// When `buf` is shorter than [`PACKET_LEN`]; the caller sizes its own
    /// output buffer.
    pub fn emit(&self, buf: &mut [u8]) {
        let mut packet = ArpPacket::new_unchecked(&mut buf[..PACKET_LEN]);
        packet.set_hardware_type(HARDWARE_ETHERNET);
        packet.set_protocol_type(ethertype::IPV4);
        packet.set_hw_len(6);
        packet.set_proto_len(4);
        packet.set_operation(self.operation);
        packet.set_sender_hw(self.sender_hw);
        packet.set_sender_ip(self.sender_ip);
        packet.set_target_hw(self.target_hw);
        packet.set_target_ip(self.target_ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{ArpEthIpv4Packet, ArpOperation, ArpPacketSlice};
    use proptest::prelude::*;

    /// "Who has 192.168.1.1? Tell 192.168.1.100", as sent by a Linux host.
    const REQUEST: [u8; 28] = [
        0x00, 0x01, // Ethernet
        0x08, 0x00, // IPv4
        0x06, 0x04, // address lengths
        0x00, 0x01, // request
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // sender MAC
        0xc0, 0xa8, 0x01, 0x64, // 192.168.1.100
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // target MAC unknown
        0xc0, 0xa8, 0x01, 0x01, // 192.168.1.1
    ];

    fn request_repr() -> ArpRepr {
        ArpRepr {
            operation: OP_REQUEST,
            sender_hw: [0x52, 0x54, 0x00, 0x12, 0x34, 0x56],
            sender_ip: [192, 168, 1, 100],
            target_hw: [0; 6],
            target_ip: [192, 168, 1, 1],
        }
    }

    #[test]
    fn parses_a_request() {
        let packet = ArpPacket::new_checked(&REQUEST[..]).unwrap();
        assert_eq!(packet.hardware_type(), HARDWARE_ETHERNET);
        assert_eq!(packet.protocol_type(), ethertype::IPV4);
        assert_eq!(packet.hw_len(), 6);
        assert_eq!(packet.proto_len(), 4);
        assert_eq!(ArpRepr::parse(&packet), Ok(request_repr()));
    }

    #[test]
    fn emit_writes_every_byte_of_the_request() {
        let mut buf = [0xA5u8; 30];
        request_repr().emit(&mut buf);
        assert_eq!(buf[..28], REQUEST);
        assert_eq!(buf[28..], [0xA5, 0xA5]);
    }

    #[test]
    fn rejects_every_truncation() {
        for len in 0..PACKET_LEN {
            assert_eq!(
                ArpPacket::new_checked(&REQUEST[..len]),
                Err(WireError::Truncated),
                "len {len}"
            );
        }
    }

    #[test]
    fn rejects_address_lengths_other_than_6_and_4() {
        let mut bytes = REQUEST;
        bytes[4] = 8;
        assert_eq!(
            ArpPacket::new_checked(&bytes[..]),
            Err(WireError::Malformed)
        );
        let mut bytes = REQUEST;
        bytes[5] = 16;
        assert_eq!(
            ArpPacket::new_checked(&bytes[..]),
            Err(WireError::Malformed)
        );
    }

    #[test]
    fn repr_parse_rejects_non_ethernet_ipv4_types() {
        let mut bytes = REQUEST;
        bytes[1] = 6; // IEEE 802
        let packet = ArpPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(ArpRepr::parse(&packet), Err(WireError::Malformed));
        let mut bytes = REQUEST;
        bytes[2] = 0x86;
        bytes[3] = 0xdd;
        let packet = ArpPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(ArpRepr::parse(&packet), Err(WireError::Malformed));
    }

    proptest! {
        #[test]
        fn emitted_packets_agree_with_etherparse(
            operation in any::<u16>(),
            sender_hw in any::<[u8; 6]>(),
            sender_ip in any::<[u8; 4]>(),
            target_hw in any::<[u8; 6]>(),
            target_ip in any::<[u8; 4]>(),
        ) {
            let repr = ArpRepr { operation, sender_hw, sender_ip, target_hw, target_ip };
            let mut buf = [0xA5u8; PACKET_LEN];
            repr.emit(&mut buf);
            let theirs = ArpEthIpv4Packet {
                operation: ArpOperation(operation),
                sender_mac: sender_hw,
                sender_ipv4: sender_ip,
                target_mac: target_hw,
                target_ipv4: target_ip,
            };
            prop_assert_eq!(buf, theirs.to_bytes());
            let parsed = ArpPacketSlice::from_slice(&buf).unwrap().to_packet().try_eth_ipv4().unwrap();
            prop_assert_eq!(parsed, theirs);
        }

        #[test]
        fn new_checked_never_panics_and_getters_work_after_ok(
            bytes in proptest::collection::vec(any::<u8>(), 0..40)
        ) {
            if let Ok(packet) = ArpPacket::new_checked(&bytes[..]) {
                let _ = (packet.hardware_type(), packet.protocol_type(), packet.operation());
                let _ = (packet.sender_hw(), packet.sender_ip(), packet.target_hw(), packet.target_ip());
                let _ = ArpRepr::parse(&packet);
            }
        }
    }
}
