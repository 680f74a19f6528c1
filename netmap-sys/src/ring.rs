//! The ring arithmetic of `netmap_user.h`, as safe functions of the ring's
//! fields rather than of a `struct netmap_ring *`: a caller reads `head`,
//! `tail`, `num_slots` once (they live in memory shared with the kernel)
//! and computes with the copies.
//!
//! Each function gives the C macro's or inline function's result for every
//! input, valid or not, without panicking: the kernel rejects a ring whose
//! `head` or `cur` is out of range at the next sync, and a user must not
//! crash before that on a value it computed from a bad one.

/// `nm_ring_next`: the slot after `i` in a ring of `num_slots` slots.
#[inline]
pub const fn nm_ring_next(num_slots: u32, i: u32) -> u32 {
    let next = i.wrapping_add(1);
    if next == num_slots {
        0
    } else {
        next
    }
}

/// `nm_ring_empty`: no slot between `head` and `tail` (RX: nothing
/// received; TX: no free slot).
#[inline]
pub const fn nm_ring_empty(head: u32, tail: u32) -> bool {
    head == tail
}

/// `nm_ring_space`: slots from `head` to `tail` (RX: frames received; TX:
/// slots free to fill). For `head` and `tail` below `num_slots` this is
/// `(tail - head) mod num_slots`.
#[inline]
pub const fn nm_ring_space(num_slots: u32, head: u32, tail: u32) -> u32 {
    // As C computes it: `int ret = tail - head; if (ret < 0) ret += num_slots;`
    // The sign bit of the difference is C's `ret < 0`.
    let diff = tail.wrapping_sub(head);
    if diff & 0x8000_0000 != 0 {
        diff.wrapping_add(num_slots)
    } else {
        diff
    }
}

/// `nm_tx_pending`: a TX ring still holds slots the kernel has not sent
/// (when all are sent, `tail` is the slot just before `head`).
#[inline]
pub const fn nm_tx_pending(num_slots: u32, head: u32, tail: u32) -> bool {
    nm_ring_next(num_slots, tail) != head
}

/// `NETMAP_BUF`: the byte offset of buffer `index` from the start of its
/// ring, `buf_ofs + index * nr_buf_size`; `None` when that overflows.
///
/// The result is only an offset: whether it lies inside the mapped region
/// is for the caller to check against the region's length.
#[inline]
pub const fn netmap_buf_offset(buf_ofs: i64, nr_buf_size: u32, index: u32) -> Option<i64> {
    let Some(relative) = (index as i64).checked_mul(nr_buf_size as i64) else {
        return None;
    };
    buf_ofs.checked_add(relative)
}

/// `NETMAP_ROFFSET`: the packet's offset in its buffer, kept in the bits of
/// `netmap_slot::ptr` that `netmap_ring::offset_mask` selects (0 when the
/// port was registered without `NETMAP_REQ_OPT_OFFSETS`).
#[inline]
pub const fn netmap_roffset(ptr: u64, offset_mask: u64) -> u64 {
    ptr & offset_mask
}

/// `NETMAP_WOFFSET`: `ptr` with its offset bits replaced by `offset`
/// (truncated to the mask); the other bits are kept.
#[inline]
pub const fn netmap_woffset(ptr: u64, offset_mask: u64, offset: u64) -> u64 {
    (ptr & !offset_mask) | (offset & offset_mask)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Slots from `head` to `tail`, counted by walking the ring.
    fn walked(num_slots: u32, head: u32, tail: u32) -> u32 {
        let mut steps = 0;
        let mut i = head;
        while i != tail {
            i = nm_ring_next(num_slots, i);
            steps += 1;
        }
        steps
    }

    #[test]
    fn next_wraps_at_num_slots() {
        assert_eq!(nm_ring_next(4, 0), 1);
        assert_eq!(nm_ring_next(4, 2), 3);
        assert_eq!(nm_ring_next(4, 3), 0);
        assert_eq!(nm_ring_next(1, 0), 0);
    }

    #[test]
    fn next_of_out_of_range_values_is_computed_as_c_does() {
        // i + 1 wraps to 0 in u32, as in C; never a panic.
        assert_eq!(nm_ring_next(4, u32::MAX), 0);
        assert_eq!(nm_ring_next(4, 7), 8);
        assert_eq!(nm_ring_next(0, u32::MAX), 0);
    }

    #[test]
    fn space_counts_from_head_to_tail_across_the_wrap() {
        assert_eq!(nm_ring_space(8, 2, 5), 3);
        assert_eq!(nm_ring_space(8, 6, 1), 3);
        assert_eq!(nm_ring_space(8, 3, 3), 0);
        assert_eq!(nm_ring_space(8, 0, 7), 7);
        assert_eq!(nm_ring_space(8, 1, 0), 7);
    }

    #[test]
    fn a_tx_ring_with_everything_sent_has_tail_just_before_head() {
        // A fresh TX ring: head 0, tail num_slots - 1 (one slot stays empty).
        assert!(!nm_tx_pending(8, 0, 7));
        assert_eq!(nm_ring_space(8, 0, 7), 7);
        assert!(nm_tx_pending(8, 3, 7));
        assert!(!nm_tx_pending(8, 3, 2));
    }

    #[test]
    fn buffer_offsets_add_index_times_size_to_buf_ofs() {
        assert_eq!(netmap_buf_offset(4096, 2048, 0), Some(4096));
        assert_eq!(netmap_buf_offset(4096, 2048, 3), Some(4096 + 3 * 2048));
        // Rings after the buffer pool have a negative buf_ofs.
        assert_eq!(netmap_buf_offset(-8192, 2048, 2), Some(-4096));
        assert_eq!(
            netmap_buf_offset(i64::MAX - 10, 2048, 1),
            None,
            "overflow is reported, not wrapped"
        );
        assert_eq!(
            netmap_buf_offset(0, 1 << 16, u32::MAX),
            Some(i64::from(u32::MAX) << 16)
        );
        assert_eq!(netmap_buf_offset(0, u32::MAX, u32::MAX), None, "beyond i64");
    }

    #[test]
    fn offsets_live_in_the_masked_bits_of_ptr() {
        let mask = 0xfff;
        let ptr = netmap_woffset(0xdead_0000_0000_0123, mask, 0x42);
        assert_eq!(ptr, 0xdead_0000_0000_0042);
        assert_eq!(netmap_roffset(ptr, mask), 0x42);
        assert_eq!(
            netmap_woffset(0, mask, 0x1_0042),
            0x42,
            "truncated to the mask"
        );
        assert_eq!(netmap_roffset(ptr, 0), 0, "no offsets without the option");
    }

    proptest! {
        #[test]
        fn space_agrees_with_the_modular_model(
            num_slots in 1u32..=1 << 20,
            head_seed: u32,
            tail_seed: u32,
        ) {
            let head = head_seed % num_slots;
            let tail = tail_seed % num_slots;
            let model = (u64::from(tail) + u64::from(num_slots) - u64::from(head))
                % u64::from(num_slots);
            prop_assert_eq!(u64::from(nm_ring_space(num_slots, head, tail)), model);
            prop_assert_eq!(nm_ring_empty(head, tail), model == 0);
        }

        #[test]
        fn space_is_the_number_of_next_steps_from_head_to_tail(
            num_slots in 1u32..=64,
            head_seed: u32,
            tail_seed: u32,
        ) {
            let head = head_seed % num_slots;
            let tail = tail_seed % num_slots;
            prop_assert_eq!(nm_ring_space(num_slots, head, tail), walked(num_slots, head, tail));
        }

        #[test]
        fn next_stays_in_range_and_visits_every_slot(num_slots in 1u32..=4096, start_seed: u32) {
            let start = start_seed % num_slots;
            let mut i = start;
            for _ in 0..num_slots {
                i = nm_ring_next(num_slots, i);
                prop_assert!(i < num_slots);
            }
            prop_assert_eq!(i, start, "num_slots steps come back to the start");
        }

        #[test]
        fn filling_a_tx_ring_moves_head_and_leaves_pending(
            num_slots in 2u32..=1024,
            head_seed: u32,
            fill_seed: u32,
        ) {
            // A TX ring with everything sent: tail is just before head.
            let head = head_seed % num_slots;
            let tail = (head + num_slots - 1) % num_slots;
            prop_assert!(!nm_tx_pending(num_slots, head, tail));
            let fill = 1 + fill_seed % (num_slots - 1);
            let mut new_head = head;
            for _ in 0..fill {
                new_head = nm_ring_next(num_slots, new_head);
            }
            prop_assert_eq!(nm_ring_space(num_slots, new_head, tail), num_slots - 1 - fill);
            prop_assert!(nm_tx_pending(num_slots, new_head, tail));
        }

        #[test]
        fn arbitrary_fields_never_panic(num_slots: u32, head: u32, tail: u32, ofs: i64, size: u32) {
            let _ = nm_ring_space(num_slots, head, tail);
            let _ = nm_ring_next(num_slots, head);
            let _ = nm_tx_pending(num_slots, head, tail);
            let _ = netmap_buf_offset(ofs, size, head);
        }
    }
}
