//! Ethernet II frames, optionally with one IEEE 802.1Q VLAN tag.

use super::{ethertype, Result, WireError};

/// Byte ranges of the Ethernet II header fields.
mod field {
    use core::ops::Range;

    pub const DESTINATION: Range<usize> = 0..6;
    pub const SOURCE: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
    /// 802.1Q tag control information (PCP, DEI, VID), present when tagged.
    pub const VLAN_TCI: Range<usize> = 14..16;
    /// The `EtherType` behind the 802.1Q tag.
    pub const INNER_ETHERTYPE: Range<usize> = 16..18;
}

/// Length of an untagged Ethernet II header.
pub const HEADER_LEN: usize = 14;
/// Length of an Ethernet II header with one 802.1Q tag.
pub const VLAN_HEADER_LEN: usize = 18;

/// The 12 VLAN ID bits of an 802.1Q tag control field.
const VID_MASK: u16 = 0x0FFF;

/// A view of an Ethernet II frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps `buffer` without checking it; getters may panic until
    /// [`check_len`](Self::check_len) succeeds.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let frame = Self::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    /// Checks that the buffer holds the whole header: 14 bytes, or 18 when
    /// the `EtherType` field announces an 802.1Q tag.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN || len < self.header_len() {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// Gives the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Destination MAC address.
    #[inline]
    pub fn dst(&self) -> [u8; 6] {
        let b = self.buffer.as_ref();
        [b[0], b[1], b[2], b[3], b[4], b[5]]
    }

    /// Source MAC address.
    #[inline]
    pub fn src(&self) -> [u8; 6] {
        let b = self.buffer.as_ref();
        [b[6], b[7], b[8], b[9], b[10], b[11]]
    }

    /// The `EtherType` field at bytes 12..14 (0x8100 for a tagged frame).
    #[inline]
    pub fn ethertype(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[12], b[13]])
    }

    /// True when the frame carries an 802.1Q tag.
    #[inline]
    pub fn is_vlan_tagged(&self) -> bool {
        self.ethertype() == ethertype::VLAN
    }

    /// The 12-bit VLAN ID of the (single) 802.1Q tag, `None` when untagged.
    #[inline]
    pub fn vlan_id(&self) -> Option<u16> {
        if self.is_vlan_tagged() {
            let b = self.buffer.as_ref();
            Some(u16::from_be_bytes([b[14], b[15]]) & VID_MASK)
        } else {
            None
        }
    }

    /// The `EtherType` of the payload: behind the tag when tagged, else the
    /// `EtherType` field itself. A second (`QinQ`) tag is not looked into.
    #[inline]
    pub fn inner_ethertype(&self) -> u16 {
        if self.is_vlan_tagged() {
            let b = self.buffer.as_ref();
            u16::from_be_bytes([b[16], b[17]])
        } else {
            self.ethertype()
        }
    }

    /// Header length: 18 when tagged, else 14.
    #[inline]
    pub fn header_len(&self) -> usize {
        if self.is_vlan_tagged() {
            VLAN_HEADER_LEN
        } else {
            HEADER_LEN
        }
    }

    /// The bytes after the header (including any Ethernet padding).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Sets the destination MAC address.
    #[inline]
    pub fn set_dst(&mut self, mac: [u8; 6]) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&mac);
    }

    /// Sets the source MAC address.
    #[inline]
    pub fn set_src(&mut self, mac: [u8; 6]) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&mac);
    }

    /// Sets the `EtherType` field at bytes 12..14. Setting or clearing
    /// 0x8100 changes the header length: check the length again after.
    #[inline]
    pub fn set_ethertype(&mut self, value: u16) {
        self.buffer.as_mut()[field::ETHERTYPE].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the VLAN ID of the tag, keeping its priority and DEI bits.
    /// Only meaningful on a tagged frame.
    #[inline]
    pub fn set_vlan_id(&mut self, vid: u16) {
        let b = self.buffer.as_mut();
        let tci = (u16::from_be_bytes([b[14], b[15]]) & !VID_MASK) | (vid & VID_MASK);
        b[field::VLAN_TCI].copy_from_slice(&tci.to_be_bytes());
    }

    /// Sets the `EtherType` behind the tag. Only meaningful on a tagged frame.
    #[inline]
    pub fn set_inner_ethertype(&mut self, value: u16) {
        self.buffer.as_mut()[field::INNER_ETHERTYPE].copy_from_slice(&value.to_be_bytes());
    }

    /// The bytes after the header, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        &mut self.buffer.as_mut()[start..]
    }
}

/// Writes an untagged Ethernet II header into `buf[..14]`.
///
/// # Panics
/// When `buf` is shorter than [`HEADER_LEN`]; the caller sizes its own
/// output buffer, this is not an input check.
#[inline]
pub fn emit_header(buf: &mut [u8], dst: [u8; 6], src: [u8; 6], ethertype: u16) {
    buf[field::DESTINATION].copy_from_slice(&dst);
    buf[field::SOURCE].copy_from_slice(&src);
    buf[field::ETHERTYPE].copy_from_slice(&ethertype.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{Ethernet2Header, SingleVlanHeader};
    use proptest::prelude::*;

    const DST: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
    const SRC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];

    /// An untagged IPv4 frame header followed by two payload bytes.
    const UNTAGGED: [u8; 16] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // dst
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // src
        0x08, 0x00, // IPv4
        0xde, 0xad,
    ];

    /// A frame tagged with priority 5, DEI set, VLAN 0x123, carrying IPv6.
    const TAGGED: [u8; 19] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // dst
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // src
        0x81, 0x00, // 802.1Q
        0xb1, 0x23, // PCP 5, DEI 1, VID 0x123
        0x86, 0xdd, // IPv6
        0x60,
    ];

    #[test]
    fn parses_an_untagged_frame() {
        let frame = EthernetFrame::new_checked(&UNTAGGED[..]).unwrap();
        assert_eq!(frame.dst(), DST);
        assert_eq!(frame.src(), SRC);
        assert_eq!(frame.ethertype(), ethertype::IPV4);
        assert_eq!(frame.inner_ethertype(), ethertype::IPV4);
        assert_eq!(frame.vlan_id(), None);
        assert_eq!(frame.header_len(), HEADER_LEN);
        assert_eq!(frame.payload(), &[0xde, 0xad]);
    }

    #[test]
    fn parses_a_single_vlan_tag() {
        let frame = EthernetFrame::new_checked(&TAGGED[..]).unwrap();
        assert_eq!(frame.ethertype(), ethertype::VLAN);
        assert_eq!(frame.vlan_id(), Some(0x123));
        assert_eq!(frame.inner_ethertype(), ethertype::IPV6);
        assert_eq!(frame.header_len(), VLAN_HEADER_LEN);
        assert_eq!(frame.payload(), &[0x60]);
    }

    #[test]
    fn emit_header_overwrites_every_header_byte() {
        let mut buf = [0xA5u8; 16];
        emit_header(&mut buf, DST, SRC, ethertype::IPV4);
        assert_eq!(buf[..14], UNTAGGED[..14]);
        assert_eq!(buf[14..], [0xA5, 0xA5]);
    }

    #[test]
    fn setters_write_the_tagged_header() {
        let mut buf = [0xA5u8; 19];
        let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
        frame.set_dst(DST);
        frame.set_src(SRC);
        frame.set_ethertype(ethertype::VLAN);
        frame.payload_mut()[0] = 0x60;
        let b = frame.into_inner();
        b[14..16].copy_from_slice(&[0xb0, 0x00]);
        let mut frame = EthernetFrame::new_checked(b).unwrap();
        frame.set_vlan_id(0xF123);
        frame.set_inner_ethertype(ethertype::IPV6);
        assert_eq!(&buf, &TAGGED);
    }

    #[test]
    fn rejects_every_truncation() {
        for len in 0..UNTAGGED.len() {
            let r = EthernetFrame::new_checked(&UNTAGGED[..len]);
            assert_eq!(r.is_ok(), len >= HEADER_LEN, "len {len}");
        }
        for len in 0..VLAN_HEADER_LEN {
            assert_eq!(
                EthernetFrame::new_checked(&TAGGED[..len]),
                Err(WireError::Truncated),
                "len {len}"
            );
        }
    }

    proptest! {
        #[test]
        fn agrees_with_etherparse(bytes in proptest::collection::vec(any::<u8>(), 0..40), tag in any::<bool>()) {
            let mut bytes = bytes;
            if tag && bytes.len() >= 14 {
                bytes[12..14].copy_from_slice(&ethertype::VLAN.to_be_bytes());
            }
            let Ok(frame) = EthernetFrame::new_checked(&bytes[..]) else {
                prop_assert!(bytes.len() < 18);
                return Ok(());
            };
            let (eth, rest) = Ethernet2Header::from_slice(&bytes).unwrap();
            prop_assert_eq!(frame.dst(), eth.destination);
            prop_assert_eq!(frame.src(), eth.source);
            prop_assert_eq!(frame.ethertype(), eth.ether_type.0);
            if frame.vlan_id().is_some() {
                let (vlan, rest) = SingleVlanHeader::from_slice(rest).unwrap();
                prop_assert_eq!(frame.vlan_id(), Some(vlan.vlan_id.value()));
                prop_assert_eq!(frame.inner_ethertype(), vlan.ether_type.0);
                prop_assert_eq!(frame.payload(), rest);
            } else {
                prop_assert_eq!(frame.inner_ethertype(), eth.ether_type.0);
                prop_assert_eq!(frame.payload(), rest);
            }
        }
    }
}
