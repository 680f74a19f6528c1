//! The forwarding table's backend lookups, as tests.

use super::*;

fn backend(slot: u16, mac: Option<[u8; 6]>, generation: u16) -> BackendSpec {
    BackendSpec {
        slot,
        addr: Ipv4Addr::new(10, 1, 0, slot as u8).into(),
        weight: 1,
        mac,
        generation,
    }
}

/// Slots 0 and 2 usable (generations 3 and 4), slot 1 empty, slot 3 without a MAC.
fn table() -> ForwardingTable {
    ForwardingTable::build(&ForwardingSpec {
        lb_ipv4: Ipv4Addr::new(10, 0, 0, 1),
        lb_ipv6: None,
        lb_mac: [2, 0, 0, 0, 0, 1],
        vips: vec![],
        backends: vec![
            backend(0, Some([2, 0, 0, 0, 1, 0]), 3),
            backend(2, Some([2, 0, 0, 0, 1, 2]), 4),
            backend(3, None, 5),
        ],
        seed: 1,
        table_size: 7,
        mtu: 1500,
        generation: 1,
    })
    .unwrap()
}

#[test]
fn a_usable_backend_is_found_by_its_slot_and_current_generation() {
    let t = table();
    assert_eq!(t.backend(0, 3), Some(&t.backends()[0]));
    assert_eq!(t.backend(2, 4), Some(&t.backends()[2]));
}

#[test]
fn a_stale_generation_finds_no_backend() {
    let t = table();
    assert_eq!(t.backend(0, 2), None);
    assert_eq!(t.backend(2, 5), None);
}

#[test]
fn empty_slots_backends_without_a_mac_and_slots_past_the_last_find_nothing() {
    let t = table();
    assert_eq!(t.backend(1, 0), None);
    assert_eq!(t.backend(3, 5), None);
    for slot in [4, 1000, u16::MAX] {
        assert_eq!(t.backend(slot, 0), None, "slot {slot}");
    }
}

#[test]
fn the_packet_path_s_view_holds_the_same_backends_and_empty_slots_beyond() {
    let t = table();
    for (slot, b) in t.backends().iter().enumerate() {
        assert_eq!(t.every_slot.get(slot as u16), b, "slot {slot}");
    }
    assert_eq!(*t.every_slot.get(4), BackendSlot::EMPTY);
    assert_eq!(*t.every_slot.get(u16::MAX), BackendSlot::EMPTY);
}

#[test]
fn a_backend_s_ethernet_addresses_are_its_next_hop_then_the_balancer() {
    let t = table();
    assert_eq!(
        t.backends()[2].ethernet,
        [2, 0, 0, 0, 1, 2, 2, 0, 0, 0, 0, 1]
    );
}

#[test]
fn a_backend_s_outer_addresses_are_the_balancer_then_the_backend() {
    let t = table();
    assert_eq!(t.backends()[2].outer_addresses, [10, 0, 0, 1, 10, 1, 0, 2]);
}
