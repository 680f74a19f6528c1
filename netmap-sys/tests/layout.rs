//! The size and offset of every field of every structure, as netmap's
//! `sys/net/netmap.h` lays them out on LP64 targets (Linux and FreeBSD on
//! `x86_64` and `aarch64`). The numbers are worked out from the header's
//! declarations, not from this crate, so they hold the checked-in
//! declarations and the bindgen-generated ones alike.
#![cfg(target_pointer_width = "64")]

use core::mem::{align_of, offset_of, size_of, MaybeUninit};

use netmap_sys::{
    netmap_if, netmap_ring, netmap_slot, nmreq_header, nmreq_opt_offsets, nmreq_option,
    nmreq_port_info_get, nmreq_register, timeval,
};

fn size_of_pointee<T>(_: *const T) -> usize {
    size_of::<T>()
}

/// Asserts `field` of `ty` is at `offset` and `size` bytes long.
macro_rules! field {
    ($ty:ty, $field:ident, $offset:expr, $size:expr) => {{
        assert_eq!(
            offset_of!($ty, $field),
            $offset,
            concat!("offset of ", stringify!($ty), "::", stringify!($field))
        );
        let value = MaybeUninit::<$ty>::uninit();
        // SAFETY: only the field's address is computed, inside the
        // allocation of `value`; nothing is read.
        let field = unsafe { &raw const (*value.as_ptr()).$field };
        assert_eq!(
            size_of_pointee(field),
            $size,
            concat!("size of ", stringify!($ty), "::", stringify!($field))
        );
    }};
}

#[test]
fn bindings_source_is_reported() {
    let source = netmap_sys::BINDINGS_SOURCE;
    assert!(
        source == "checked-in" || source.starts_with("bindgen:"),
        "{source}"
    );
}

#[test]
fn a_slot_is_16_bytes() {
    assert_eq!(size_of::<netmap_slot>(), 16);
    assert_eq!(align_of::<netmap_slot>(), 8);
    field!(netmap_slot, buf_idx, 0, 4);
    field!(netmap_slot, len, 4, 2);
    field!(netmap_slot, flags, 6, 2);
    field!(netmap_slot, ptr, 8, 8);
}

#[test]
fn timeval_is_two_64_bit_words() {
    assert_eq!(size_of::<timeval>(), 16);
    field!(timeval, tv_sec, 0, 8);
    field!(timeval, tv_usec, 8, 8);
}

#[test]
fn a_ring_header_is_256_bytes_and_its_slots_follow() {
    // sem[128] is aligned to NM_CACHE_ALIGN (128): it starts at 128, after
    // 56 bytes of padding behind buf_align, and the slots at 256.
    assert_eq!(size_of::<netmap_ring>(), 256);
    assert_eq!(align_of::<netmap_ring>(), 128);
    field!(netmap_ring, buf_ofs, 0, 8);
    field!(netmap_ring, num_slots, 8, 4);
    field!(netmap_ring, nr_buf_size, 12, 4);
    field!(netmap_ring, ringid, 16, 2);
    field!(netmap_ring, dir, 18, 2);
    field!(netmap_ring, head, 20, 4);
    field!(netmap_ring, cur, 24, 4);
    field!(netmap_ring, tail, 28, 4);
    field!(netmap_ring, flags, 32, 4);
    // 4 bytes of padding: timeval is 8-aligned.
    field!(netmap_ring, ts, 40, 16);
    field!(netmap_ring, offset_mask, 56, 8);
    field!(netmap_ring, buf_align, 64, 8);
    field!(netmap_ring, sem, 128, 128);
    field!(netmap_ring, slot, 256, 0);
}

#[test]
fn an_interface_is_56_bytes_and_its_ring_offsets_follow() {
    assert_eq!(size_of::<netmap_if>(), 56);
    assert_eq!(align_of::<netmap_if>(), 8);
    field!(netmap_if, ni_name, 0, 16);
    field!(netmap_if, ni_version, 16, 4);
    field!(netmap_if, ni_flags, 20, 4);
    field!(netmap_if, ni_tx_rings, 24, 4);
    field!(netmap_if, ni_rx_rings, 28, 4);
    field!(netmap_if, ni_bufs_head, 32, 4);
    field!(netmap_if, ni_host_tx_rings, 36, 4);
    field!(netmap_if, ni_host_rx_rings, 40, 4);
    field!(netmap_if, ni_spare1, 44, 12);
    // ssize_t ring_ofs[]: 8-byte entries from byte 56.
    field!(netmap_if, ring_ofs, 56, 0);
    assert_eq!(align_of::<netmap_if>(), size_of::<isize>());
}

#[test]
fn the_request_header_is_88_bytes() {
    assert_eq!(size_of::<nmreq_header>(), 88);
    assert_eq!(align_of::<nmreq_header>(), 8);
    field!(nmreq_header, nr_version, 0, 2);
    field!(nmreq_header, nr_reqtype, 2, 2);
    field!(nmreq_header, nr_reserved, 4, 4);
    field!(nmreq_header, nr_name, 8, 64);
    field!(nmreq_header, nr_options, 72, 8);
    field!(nmreq_header, nr_body, 80, 8);
}

#[test]
fn the_register_body_is_56_bytes() {
    assert_eq!(size_of::<nmreq_register>(), 56);
    field!(nmreq_register, nr_offset, 0, 8);
    field!(nmreq_register, nr_memsize, 8, 8);
    field!(nmreq_register, nr_tx_slots, 16, 4);
    field!(nmreq_register, nr_rx_slots, 20, 4);
    field!(nmreq_register, nr_tx_rings, 24, 2);
    field!(nmreq_register, nr_rx_rings, 26, 2);
    field!(nmreq_register, nr_host_tx_rings, 28, 2);
    field!(nmreq_register, nr_host_rx_rings, 30, 2);
    field!(nmreq_register, nr_mem_id, 32, 2);
    field!(nmreq_register, nr_ringid, 34, 2);
    field!(nmreq_register, nr_mode, 36, 4);
    field!(nmreq_register, nr_extra_bufs, 40, 4);
    // 4 bytes of padding: nr_flags is 8-aligned.
    field!(nmreq_register, nr_flags, 48, 8);
}

#[test]
fn an_option_header_is_24_bytes() {
    assert_eq!(size_of::<nmreq_option>(), 24);
    field!(nmreq_option, nro_next, 0, 8);
    field!(nmreq_option, nro_reqtype, 8, 4);
    field!(nmreq_option, nro_status, 12, 4);
    field!(nmreq_option, nro_size, 16, 8);
}

#[test]
fn the_offsets_option_is_56_bytes() {
    assert_eq!(size_of::<nmreq_opt_offsets>(), 56);
    field!(nmreq_opt_offsets, nro_opt, 0, 24);
    field!(nmreq_opt_offsets, nro_max_offset, 24, 8);
    field!(nmreq_opt_offsets, nro_initial_offset, 32, 8);
    field!(nmreq_opt_offsets, nro_offset_bits, 40, 4);
    field!(nmreq_opt_offsets, nro_tx_align, 44, 4);
    field!(nmreq_opt_offsets, nro_min_gap, 48, 8);
}

#[test]
fn the_port_info_body_is_32_bytes() {
    assert_eq!(size_of::<nmreq_port_info_get>(), 32);
    field!(nmreq_port_info_get, nr_memsize, 0, 8);
    field!(nmreq_port_info_get, nr_tx_slots, 8, 4);
    field!(nmreq_port_info_get, nr_rx_slots, 12, 4);
    field!(nmreq_port_info_get, nr_tx_rings, 16, 2);
    field!(nmreq_port_info_get, nr_rx_rings, 18, 2);
    field!(nmreq_port_info_get, nr_host_tx_rings, 20, 2);
    field!(nmreq_port_info_get, nr_host_rx_rings, 22, 2);
    field!(nmreq_port_info_get, nr_mem_id, 24, 2);
    field!(nmreq_port_info_get, pad, 26, 6);
}

#[test]
fn request_structures_start_zeroed() {
    let header = nmreq_header::default();
    assert_eq!(header.nr_version, 0);
    assert!(header.nr_name.iter().all(|&c| c == 0));
    assert_eq!(header.nr_body, 0);
    let register = nmreq_register::default();
    assert_eq!((register.nr_mode, register.nr_flags), (0, 0));
}
