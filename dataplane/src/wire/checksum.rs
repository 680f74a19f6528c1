//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! [`sum`] returns an *unfolded* accumulator so that several pieces (a
//! pseudo-header, a header, a payload) can be chained before one [`fold`].
//! Chaining is only exact when every piece but the last has an even length,
//! which holds for all headers and pseudo-headers.

/// One's-complement accumulation of `data` as big-endian 16-bit words, added
/// to `initial`. An odd trailing byte is padded with a zero byte.
///
/// The result is congruent (mod `0xFFFF`) to the 16-bit one's-complement sum
/// and is zero only when `initial` and `data` are all zero; pass it to
/// [`fold`] to get the 16-bit sum.
#[inline]
pub fn sum(data: &[u8], initial: u32) -> u32 {
    if data.len() <= SHORT {
        return sum_short(data, initial);
    }
    // 2^16 = 1 (mod 0xFFFF), so adding 64-bit big-endian words with an
    // end-around carry gives the same one's-complement sum as adding 16-bit
    // words, four at a time.
    let mut acc = u64::from(initial);
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let word = u64::from_be_bytes([
            chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7],
        ]);
        let (s, carry) = acc.overflowing_add(word);
        acc = s + u64::from(carry);
    }
    let mut rest = chunks.remainder();
    let mut tail = 0u64;
    while let [a, b, more @ ..] = rest {
        tail += u64::from(u16::from_be_bytes([*a, *b]));
        rest = more;
    }
    if let [last] = rest {
        tail += u64::from(*last) << 8;
    }
    let (s, carry) = acc.overflowing_add(tail);
    acc = s + u64::from(carry);
    // 2^32 = 1 (mod 0xFFFF): folding the high half into the low half keeps
    // the value's class and keeps it non-zero when it was non-zero.
    acc = (acc >> 32) + (acc & 0xFFFF_FFFF);
    acc = (acc >> 32) + (acc & 0xFFFF_FFFF);
    acc as u32
}

/// Headers and small packets: below this length 32-bit words added into a
/// 64-bit accumulator cannot overflow, so no carry needs handling per word.
const SHORT: usize = 128;

#[inline]
fn sum_short(data: &[u8], initial: u32) -> u32 {
    let mut acc = u64::from(initial);
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        acc += u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    }
    match *words.remainder() {
        [a, b, c] => acc += u64::from(u16::from_be_bytes([a, b])) + (u64::from(c) << 8),
        [a, b] => acc += u64::from(u16::from_be_bytes([a, b])),
        [a] => acc += u64::from(a) << 8,
        _ => {}
    }
    let acc = (acc >> 32) + (acc & 0xFFFF_FFFF);
    let acc = (acc >> 32) + (acc & 0xFFFF_FFFF);
    acc as u32
}

/// [`sum`] of an option-less IPv4 header, the header every packet on the fast
/// path has: five 32-bit words added at once instead of a loop.
#[inline(always)]
pub fn sum_ipv4_header(h: &[u8; 20]) -> u32 {
    let word = |i: usize| u64::from(u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]));
    let acc = word(0) + word(4) + word(8) + word(12) + word(16);
    // Five 32-bit words fit in 35 bits; two folds bring the value under 2^32
    // in the same class modulo 0xFFFF, as `sum` leaves it.
    let acc = (acc >> 32) + (acc & 0xFFFF_FFFF);
    let acc = (acc >> 32) + (acc & 0xFFFF_FFFF);
    acc as u32
}

/// Folds the carries of an accumulator from [`sum`] into 16 bits. The result
/// is the one's-complement sum, not yet complemented.
#[inline]
pub fn fold(sum: u32) -> u16 {
    let s = (sum >> 16) + (sum & 0xFFFF);
    let s = (s >> 16) + (s & 0xFFFF);
    s as u16
}

/// Whether an accumulator folds to 0xFFFF, the sum of data that contains its
/// correct checksum: exactly when it is a nonzero multiple of 0xFFFF, which
/// a remainder by a constant (a multiply) tells without folding.
#[inline]
pub fn folds_to_ones(sum: u64) -> bool {
    sum != 0 && sum.is_multiple_of(0xFFFF)
}

/// The folded 16-bit sum of a 64-bit accumulator known to be nonzero, by a
/// remainder by a constant instead of four folding steps (for a nonzero
/// sum, folding gives `1 + (sum - 1) mod 0xFFFF`). Given zero it returns 1, not 0: callers
/// pass sums that include a nonzero constant.
#[inline]
pub fn fold64_nonzero(sum: u64) -> u16 {
    (sum.wrapping_sub(1) % 0xFFFF + 1) as u16
}

/// The RFC 1071 Internet checksum of `data`: the complement of its folded
/// one's-complement sum. A buffer that contains a correct checksum field
/// checksums to zero.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(data, 0))
}

/// The unfolded sum of the IPv4 pseudo-header (RFC 793/768): source,
/// destination, zero byte, protocol, transport length. Use it as the
/// `initial` of [`sum`] over the transport header and payload.
#[inline]
pub fn pseudo_header_v4(src: [u8; 4], dst: [u8; 4], proto: u8, len: u16) -> u32 {
    u32::from(u16::from_be_bytes([src[0], src[1]]))
        + u32::from(u16::from_be_bytes([src[2], src[3]]))
        + u32::from(u16::from_be_bytes([dst[0], dst[1]]))
        + u32::from(u16::from_be_bytes([dst[2], dst[3]]))
        + u32::from(proto)
        + u32::from(len)
}

/// The unfolded sum of the IPv6 pseudo-header (RFC 8200 section 8.1):
/// source, destination, 32-bit upper-layer length, three zero bytes, next
/// header.
#[inline]
pub fn pseudo_header_v6(src: &[u8; 16], dst: &[u8; 16], proto: u8, len: u32) -> u32 {
    let addrs = sum(dst, sum(src, 0));
    // Each term is below 2^17 and `addrs` is a folded u32, so no overflow can
    // happen; fold once to stay far from it anyway.
    u32::from(fold(addrs)) + (len >> 16) + (len & 0xFFFF) + u32::from(proto)
}

/// Updates `checksum` after one 16-bit word of the covered data changed from
/// `old` to `new` (RFC 1624 equation 3: `HC' = ~(~HC + ~m + m')`).
///
/// The result may differ from a full recomputation only by the
/// one's-complement equivalence of `0x0000` and `0xFFFF`; both verify.
#[inline]
pub fn update_u16(checksum: u16, old: u16, new: u16) -> u16 {
    let s = u32::from(!checksum) + u32::from(!old) + u32::from(new);
    !fold(s)
}

/// Updates `checksum` after a 32-bit field (an IPv4 address) of the covered
/// data changed from `old` to `new`, the field starting at an even offset.
#[inline]
pub fn update_u32(checksum: u16, old: [u8; 4], new: [u8; 4]) -> u16 {
    let s = u32::from(!checksum)
        + u32::from(!u16::from_be_bytes([old[0], old[1]]))
        + u32::from(!u16::from_be_bytes([old[2], old[3]]))
        + u32::from(u16::from_be_bytes([new[0], new[1]]))
        + u32::from(u16::from_be_bytes([new[2], new[3]]));
    !fold(s)
}

/// Updates `checksum` after several 16-bit words of the covered data changed
/// at once: `old` and `new` are the plain sums of those words before and
/// after (RFC 1624 eqn. 3 applied to the sums, which is one fold instead of
/// one per word).
#[inline]
pub fn update_sum(checksum: u16, old: u32, new: u32) -> u16 {
    let s = u32::from(!checksum) + u32::from(!fold(old)) + u32::from(fold(new));
    !fold(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`fold`] for an accumulator of up to 64 bits, step by step (2^32 is
    /// 1 modulo 0xFFFF, so adding its 32-bit halves keeps its class): the
    /// reference the remainder forms are held to.
    fn fold64(sum: u64) -> u16 {
        let s = (sum >> 32) + (sum & 0xFFFF_FFFF);
        let s = (s >> 32) + (s & 0xFFFF_FFFF);
        fold(s as u32)
    }
    use proptest::prelude::*;

    /// Plain RFC 1071 reference: 16-bit words, folding as we go.
    fn reference_sum(data: &[u8]) -> u16 {
        let mut acc: u32 = 0;
        for pair in data.chunks(2) {
            let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
            acc += u32::from(word);
            acc = (acc & 0xFFFF) + (acc >> 16);
        }
        acc as u16
    }

    /// True when two checksums are the same one's-complement number.
    fn equivalent(a: u16, b: u16) -> bool {
        a == b || (a | b == 0xFFFF && (a == 0 || b == 0))
    }

    #[test]
    fn checksum_matches_the_rfc_1071_example() {
        // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&data, 0)), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn checksum_of_a_known_ipv4_header_verifies_to_zero() {
        // A real IPv4 header with checksum 0xb861.
        let header = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&header), 0);
        let mut zeroed = header;
        zeroed[10] = 0;
        zeroed[11] = 0;
        assert_eq!(checksum(&zeroed), 0xb861);
    }

    #[test]
    fn odd_trailing_byte_is_padded_with_zero() {
        assert_eq!(fold(sum(&[0x12, 0x34, 0x56], 0)), 0x1234 + 0x5600);
        assert_eq!(fold(sum(&[0xab], 0)), 0xab00);
    }

    #[test]
    fn empty_data_returns_the_initial_value() {
        assert_eq!(sum(&[], 0), 0);
        assert_eq!(fold(sum(&[], 0x1_2345)), 0x2346);
    }

    #[test]
    fn fold_folds_every_carry() {
        assert_eq!(fold(0xFFFF_FFFF), 0xFFFF);
        assert_eq!(fold(0x0001_FFFF), 0x0001);
        assert_eq!(fold(0x0002_FFFE), 0x0001);
    }

    #[test]
    fn pseudo_header_v4_sums_addresses_protocol_and_length() {
        let s = pseudo_header_v4([10, 0, 0, 1], [10, 0, 0, 2], 6, 20);
        assert_eq!(s, 0x0a00 + 0x0001 + 0x0a00 + 0x0002 + 6 + 20);
    }

    #[test]
    fn pseudo_header_v6_equals_summing_the_laid_out_pseudo_header() {
        let src = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let dst = [
            0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0,
        ];
        let mut laid_out = [0u8; 40];
        laid_out[..16].copy_from_slice(&src);
        laid_out[16..32].copy_from_slice(&dst);
        laid_out[32..36].copy_from_slice(&0x0001_0203u32.to_be_bytes());
        laid_out[39] = 17;
        assert_eq!(
            fold(pseudo_header_v6(&src, &dst, 17, 0x0001_0203)),
            fold(sum(&laid_out, 0))
        );
    }

    proptest! {
        #[test]
        fn update_sum_of_several_words_matches_a_full_recompute(
            mut data in proptest::collection::vec(any::<u8>(), 20..60),
            changes in proptest::collection::vec((0usize..10, any::<u16>()), 1..5),
        ) {
            let len = data.len() & !1;
            data[10..12].copy_from_slice(&[0, 0]);
            let cs = checksum(&data[..len]);
            data[10..12].copy_from_slice(&cs.to_be_bytes());
            let word = |d: &[u8], i: usize| u32::from(u16::from_be_bytes([d[2 * i], d[2 * i + 1]]));
            let mut indices: Vec<usize> = changes.iter().map(|(i, _)| *i).filter(|i| *i != 5).collect();
            indices.sort_unstable();
            indices.dedup();
            let old: u32 = indices.iter().map(|i| word(&data, *i)).sum();
            for (i, v) in &changes {
                if indices.contains(i) {
                    data[2 * i..2 * i + 2].copy_from_slice(&v.to_be_bytes());
                }
            }
            let new: u32 = indices.iter().map(|i| word(&data, *i)).sum();
            let updated = update_sum(cs, old, new);
            data[10..12].copy_from_slice(&updated.to_be_bytes());
            prop_assert_eq!(checksum(&data[..len]), 0);
        }

        #[test]
        fn the_ipv4_header_fast_path_agrees_with_the_reference(header in any::<[u8; 20]>()) {
            prop_assert_eq!(fold(sum_ipv4_header(&header)), reference_sum(&header));
        }

        #[test]
        fn the_remainder_forms_agree_with_folding(x: u64) {
            prop_assert_eq!(folds_to_ones(x), fold64(x) == 0xFFFF);
            if x != 0 {
                prop_assert_eq!(fold64_nonzero(x), fold64(x));
            }
        }

        #[test]
        fn fold64_keeps_the_class_modulo_0xffff_and_zero_only_for_zero(x: u64) {
            let folded = fold64(x);
            prop_assert_eq!(u64::from(folded) % 0xFFFF, x % 0xFFFF);
            prop_assert_eq!(folded == 0, x == 0);
        }

        #[test]
        fn sum_agrees_with_the_word_by_word_reference(
            data in proptest::collection::vec(any::<u8>(), 0..200)
        ) {
            prop_assert_eq!(fold(sum(&data, 0)), reference_sum(&data));
        }

        #[test]
        fn sum_chains_over_even_length_pieces(
            a in proptest::collection::vec(any::<u16>(), 0..40),
            b in proptest::collection::vec(any::<u8>(), 0..80),
        ) {
            let a: Vec<u8> = a.iter().flat_map(|w| w.to_be_bytes()).collect();
            let whole: Vec<u8> = a.iter().chain(b.iter()).copied().collect();
            prop_assert_eq!(fold(sum(&b, sum(&a, 0))), fold(sum(&whole, 0)));
        }

        #[test]
        fn update_u16_agrees_with_a_full_recompute(
            words in proptest::collection::vec(any::<u16>(), 2..64),
            pick in any::<prop::sample::Index>(),
            new in any::<u16>(),
        ) {
            // Word 0 holds the checksum; any other word changes.
            let mut data: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
            data[0] = 0;
            data[1] = 0;
            let before = checksum(&data);
            data[..2].copy_from_slice(&before.to_be_bytes());
            let i = 1 + pick.index(words.len() - 1);
            let old = u16::from_be_bytes([data[2 * i], data[2 * i + 1]]);
            data[2 * i..2 * i + 2].copy_from_slice(&new.to_be_bytes());

            let updated = update_u16(before, old, new);
            data[..2].copy_from_slice(&updated.to_be_bytes());
            prop_assert_eq!(checksum(&data), 0);
            data[..2].copy_from_slice(&[0, 0]);
            let recomputed = checksum(&data);
            prop_assert!(equivalent(updated, recomputed), "{updated:#06x} vs {recomputed:#06x}");
        }

        #[test]
        fn update_u32_agrees_with_a_full_recompute(
            words in proptest::collection::vec(any::<u16>(), 3..64),
            pick in any::<prop::sample::Index>(),
            new in any::<[u8; 4]>(),
        ) {
            let mut data: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
            data[0] = 0;
            data[1] = 0;
            let before = checksum(&data);
            data[..2].copy_from_slice(&before.to_be_bytes());
            // A 32-bit field at any even offset after the checksum word.
            let i = 1 + pick.index(words.len() - 2);
            let at = 2 * i;
            let old = [data[at], data[at + 1], data[at + 2], data[at + 3]];
            data[at..at + 4].copy_from_slice(&new);

            let updated = update_u32(before, old, new);
            data[..2].copy_from_slice(&updated.to_be_bytes());
            prop_assert_eq!(checksum(&data), 0);
            data[..2].copy_from_slice(&[0, 0]);
            let recomputed = checksum(&data);
            prop_assert!(equivalent(updated, recomputed), "{updated:#06x} vs {recomputed:#06x}");
        }

        #[test]
        fn update_u16_with_an_unchanged_word_keeps_an_equivalent_checksum(
            c in any::<u16>(), w in any::<u16>()
        ) {
            prop_assert!(equivalent(update_u16(c, w, w), c));
        }
    }
}
