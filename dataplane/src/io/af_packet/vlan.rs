//! Putting back the 802.1Q tag the kernel took out of a received frame.
//!
//! The receive path strips a VLAN tag into the socket buffer's metadata before
//! packet sockets see the frame (hardware offload or `skb_vlan_untag`), and
//! the ring reports it in `tp_vlan_tci`/`tp_vlan_tpid`. The pipeline parses
//! frames as they were on the wire, so the tag is written back into the
//! headroom: the two MAC addresses move 4 bytes forward and the tag goes
//! between them and the `EtherType`.

/// Bytes of an 802.1Q tag (TPID + TCI).
const TAG_LEN: usize = 4;
/// Bytes of the destination and source MAC addresses that precede the tag.
const MACS_LEN: usize = 12;

/// Rewrites the frame `buf[head..head + len]` with the tag `tpid`/`tci` after
/// its MAC addresses; returns the new `(head, len)`, or `None` (buffer
/// untouched) when there is no headroom for the tag or no Ethernet header.
pub(super) fn reinsert_tag(
    buf: &mut [u8],
    head: usize,
    len: usize,
    tpid: u16,
    tci: u16,
) -> Option<(usize, usize)> {
    if head < TAG_LEN || len < MACS_LEN || head + len > buf.len() {
        return None;
    }
    let new_head = head - TAG_LEN;
    buf.copy_within(head..head + MACS_LEN, new_head);
    let tag = new_head + MACS_LEN;
    buf[tag..tag + 2].copy_from_slice(&tpid.to_be_bytes());
    buf[tag + 2..tag + TAG_LEN].copy_from_slice(&tci.to_be_bytes());
    Some((new_head, len + TAG_LEN))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_goes_between_the_mac_addresses_and_the_ethertype() {
        let mut buf = [0xEEu8; 40];
        let untagged: Vec<u8> = (1..=12).chain([0x08, 0x00, 0x45, 0x00]).collect();
        buf[10..10 + untagged.len()].copy_from_slice(&untagged);
        let (head, len) = reinsert_tag(&mut buf, 10, untagged.len(), 0x8100, 0x2064).unwrap();
        assert_eq!((head, len), (6, untagged.len() + 4));
        let expected: Vec<u8> = (1..=12)
            .chain([0x81, 0x00, 0x20, 0x64, 0x08, 0x00, 0x45, 0x00])
            .collect();
        assert_eq!(&buf[head..head + len], &expected[..]);
    }

    #[test]
    fn no_headroom_for_the_tag_leaves_the_frame_alone() {
        let mut buf = [7u8; 32];
        let before = buf;
        assert_eq!(reinsert_tag(&mut buf, 3, 20, 0x8100, 1), None);
        assert_eq!(buf, before);
    }

    #[test]
    fn a_frame_shorter_than_two_mac_addresses_is_refused() {
        let mut buf = [7u8; 32];
        assert_eq!(reinsert_tag(&mut buf, 8, 11, 0x8100, 1), None);
    }

    #[test]
    fn a_view_outside_the_buffer_is_refused() {
        let mut buf = [7u8; 32];
        assert_eq!(reinsert_tag(&mut buf, 8, 30, 0x8100, 1), None);
    }
}
