//! [`classify`](super::classify) and the flow hash of eight frames at once,
//! one frame per 64-bit lane of AVX-512 registers.
//!
//! Each frame's first 64 bytes from the ethertype on (fewer when the frame
//! is shorter: a masked load reads nothing past its end) go into one
//! register, and the eight registers are transposed so that register `k`
//! holds every frame's `k`-th 64-bit word. Each of `classify`'s checks is
//! then an instruction or two for all eight frames instead of a few per
//! frame, and the flow words go to the eight-lane hasher without a trip
//! through memory. A property test holds every lane to `classify` and
//! `FlowHasher::ipv4`.

// The casts reinterpret bits between `u64` and the intrinsics' `i64`.
#![allow(clippy::cast_possible_wrap)]

use std::arch::x86_64::{
    __m512i, _mm512_add_epi64, _mm512_and_si512, _mm512_cmpeq_epu64_mask, _mm512_cmpge_epu64_mask,
    _mm512_cmpgt_epu64_mask, _mm512_cmple_epu64_mask, _mm512_loadu_epi64, _mm512_maskz_loadu_epi8,
    _mm512_or_si512, _mm512_set1_epi64, _mm512_set_epi64, _mm512_setzero_si512,
    _mm512_shuffle_epi8, _mm512_shuffle_i64x2, _mm512_slli_epi64, _mm512_srli_epi64,
    _mm512_storeu_epi64, _mm512_sub_epi64, _mm512_test_epi64_mask, _mm512_testn_epi64_mask,
    _mm512_unpackhi_epi64, _mm512_unpacklo_epi64, _mm512_xor_si512,
};

use super::{Window, L4, MIN_LEN, OUTER, TCP, UDP, WINDOW};
use crate::flow::Avx512Sip13;
use crate::frame::Frame;

/// Bytes of a frame one register holds, from `WINDOW` on.
const ROW: usize = 64;

/// Proof that the CPU has AVX-512F and AVX-512BW.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Avx512Fast(());

impl Avx512Fast {
    /// `None` when the CPU lacks AVX-512F or AVX-512BW.
    pub fn detect() -> Option<Self> {
        (std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw"))
        .then_some(Self(()))
    }

    /// Of the first eight `frames`: bit `i` is set when `classify` takes
    /// `frames[i]` (for a balancer at `lb_ipv4`), and then `hashes[i]` is
    /// its flow's hash under `hasher`; the other hashes are unspecified.
    #[inline]
    // `self` carries no data: it is the proof that the CPU has the features.
    #[allow(clippy::unused_self)]
    pub fn classify_and_hash(
        self,
        hasher: &Avx512Sip13,
        frames: &[Frame<'_>],
        lb_ipv4: [u8; 4],
        hashes: &mut [u64; 8],
    ) -> u8 {
        // SAFETY: `Self` is only made by `detect`, after the CPU was found to
        // have AVX-512F and AVX-512BW, the features the function enables.
        unsafe { classify_and_hash_avx512(hasher, frames, lb_ipv4, hashes) }
    }
}

#[target_feature(enable = "avx512f,avx512bw")]
fn classify_and_hash_avx512(
    hasher: &Avx512Sip13,
    frames: &[Frame<'_>],
    lb_ipv4: [u8; 4],
    hashes: &mut [u64; 8],
) -> u8 {
    let splat = |x: u64| _mm512_set1_epi64(x as i64);
    let mut rows = [_mm512_setzero_si512(); 8];
    let mut lens = [0u64; 8];
    // Bit `i`: frame `i` exists and is long enough for the fast path.
    let mut present = 0u8;
    for (lane, frame) in frames.iter().take(8).enumerate() {
        let data = frame.data();
        if data.len() < MIN_LEN {
            continue;
        }
        present |= 1 << lane;
        lens[lane] = data.len() as u64;
        // 54 to 64 bytes: MIN_LEN - WINDOW at least.
        let take = (data.len() - WINDOW).min(ROW);
        let bytes = u64::MAX >> (ROW - take);
        // SAFETY: the mask selects bytes WINDOW..WINDOW + take of `data`,
        // all inside it; a masked load does not touch the bytes it leaves
        // out, so nothing past the frame is read.
        rows[lane] = unsafe { _mm512_maskz_loadu_epi8(bytes, data.as_ptr().add(WINDOW).cast()) };
    }
    // w[k]: every frame's bytes WINDOW + 8k .. WINDOW + 8k + 8, little-endian.
    let w = transpose(&rows);
    // SAFETY: `lens` is 64 readable bytes (an unaligned load).
    let lens = unsafe { _mm512_loadu_epi64(lens.as_ptr().cast()) };

    // The fixed fields: words 0 to 3 of the window and its 16-bit tail.
    let (mask, want) = Window::expected(lb_ipv4);
    let mut mismatch = _mm512_xor_si512(
        _mm512_and_si512(w[4], splat(u64::from(mask.tail))),
        splat(u64::from(want.tail)),
    );
    for (word, (mask, want)) in w.iter().zip(mask.words.iter().zip(want.words)) {
        let off = _mm512_xor_si512(_mm512_and_si512(*word, splat(*mask)), splat(want));
        mismatch = _mm512_or_si512(mismatch, off);
    }
    let mut ok = present & _mm512_testn_epi64_mask(mismatch, mismatch);
    // The outer TTL (word 1, byte 2) is at least 2.
    ok &= _mm512_test_epi64_mask(w[1], splat(0xFE << 16));

    // Lengths: the outer packet within the frame, the inner one filling the
    // GRE payload as the general path reads it.
    let outer_len = be16_at_byte4(w[0]);
    let inner_len = be16_at_byte4(w[3]);
    ok &= _mm512_cmple_epu64_mask(_mm512_add_epi64(outer_len, splat(OUTER as u64)), lens);
    ok &= _mm512_cmple_epu64_mask(_mm512_add_epi64(inner_len, splat(24)), outer_len);
    ok &= _mm512_cmpge_epu64_mask(inner_len, splat(28));

    // The outer header's checksum, summed as `Window::outer_header_sum`
    // does and folded (`checksum::folds_to_ones`).
    let low32 = splat(0xFFFF_FFFF);
    let sum = _mm512_add_epi64(
        _mm512_add_epi64(_mm512_srli_epi64::<16>(w[0]), _mm512_srli_epi64::<32>(w[1])),
        _mm512_add_epi64(
            _mm512_and_si512(w[1], low32),
            _mm512_add_epi64(_mm512_srli_epi64::<32>(w[2]), _mm512_and_si512(w[2], low32)),
        ),
    );
    ok &= folds_to_ones(sum);

    // The transport header: inner protocol at word 4, byte 3.
    let protocol = _mm512_and_si512(_mm512_srli_epi64::<24>(w[4]), splat(0xFF));
    let l4_len = _mm512_sub_epi64(inner_len, splat(20));
    // TCP: the data offset, the high nibble of byte L4 + 12 (word 7, byte
    // 2), read only from a frame that has that byte.
    let data_offset =
        _mm512_slli_epi64::<2>(_mm512_and_si512(_mm512_srli_epi64::<20>(w[7]), splat(0xF)));
    let tcp = _mm512_cmpeq_epu64_mask(protocol, splat(u64::from(TCP)))
        & _mm512_cmpge_epu64_mask(l4_len, splat(20))
        & _mm512_cmpgt_epu64_mask(lens, splat((L4 + 12) as u64))
        & _mm512_cmpge_epu64_mask(data_offset, splat(20))
        & _mm512_cmple_epu64_mask(data_offset, l4_len);
    // UDP: the length field (word 6, bytes 2 and 3).
    let udp_len = _mm512_or_si512(
        _mm512_and_si512(_mm512_srli_epi64::<8>(w[6]), splat(0xFF00)),
        _mm512_and_si512(_mm512_srli_epi64::<24>(w[6]), splat(0xFF)),
    );
    let udp = _mm512_cmpeq_epu64_mask(protocol, splat(u64::from(UDP)))
        & _mm512_cmpge_epu64_mask(udp_len, splat(8))
        & _mm512_cmple_epu64_mask(udp_len, l4_len);
    ok &= tcp | udp;

    // The flow words, as `classify` makes them: the inner addresses (bytes
    // 50..58: word 4's last two bytes, word 5's first six) big-endian, and
    // the ports (bytes 58..62) big-endian in the high half of the second
    // word, above the protocol and the IPv4 marker.
    let addresses = bswap64(_mm512_or_si512(
        _mm512_srli_epi64::<48>(w[4]),
        _mm512_slli_epi64::<16>(w[5]),
    ));
    let ports = _mm512_and_si512(
        _mm512_or_si512(_mm512_srli_epi64::<48>(w[5]), _mm512_slli_epi64::<16>(w[6])),
        low32,
    );
    let second = _mm512_or_si512(
        _mm512_or_si512(bswap64(ports), _mm512_slli_epi64::<24>(protocol)),
        splat(4),
    );
    let hash = hasher.hash_lanes(addresses, second);
    // SAFETY: `hashes` is 64 writable bytes (an unaligned store).
    unsafe { _mm512_storeu_epi64(hashes.as_mut_ptr().cast(), hash) };
    ok
}

/// [`checksum::folds_to_ones`](crate::wire::checksum::folds_to_ones) of
/// every lane, for sums below 2^63.
#[inline]
#[target_feature(enable = "avx512f")]
fn folds_to_ones(sum: __m512i) -> u8 {
    let splat = |x: u64| _mm512_set1_epi64(x as i64);
    // One 32-bit and two 16-bit folds leave a value congruent to the sum
    // modulo 0xFFFF, zero only for a zero sum, and at most 0x10001: it is
    // 0xFFFF exactly when the sum is a nonzero multiple of 0xFFFF.
    let mut sum = _mm512_add_epi64(
        _mm512_and_si512(sum, splat(0xFFFF_FFFF)),
        _mm512_srli_epi64::<32>(sum),
    );
    for _ in 0..2 {
        sum = _mm512_add_epi64(
            _mm512_and_si512(sum, splat(0xFFFF)),
            _mm512_srli_epi64::<16>(sum),
        );
    }
    _mm512_cmpeq_epu64_mask(sum, splat(0xFFFF))
}

/// The big-endian 16-bit field at bytes 4 and 5 of every lane.
#[inline]
#[target_feature(enable = "avx512f")]
fn be16_at_byte4(v: __m512i) -> __m512i {
    _mm512_or_si512(
        _mm512_and_si512(_mm512_srli_epi64::<24>(v), _mm512_set1_epi64(0xFF00)),
        _mm512_and_si512(_mm512_srli_epi64::<40>(v), _mm512_set1_epi64(0xFF)),
    )
}

/// Every lane's bytes in reverse order.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn bswap64(v: __m512i) -> __m512i {
    // Byte indices within each 128-bit block, lowest byte first.
    let (low, high) = (0x0001_0203_0405_0607, 0x0809_0a0b_0c0d_0e0f);
    _mm512_shuffle_epi8(
        v,
        _mm512_set_epi64(high, low, high, low, high, low, high, low),
    )
}

/// The 8 x 8 transpose of 64-bit words: lane `j` of output `k` is lane `k`
/// of input `j`.
#[inline]
#[target_feature(enable = "avx512f")]
fn transpose(r: &[__m512i; 8]) -> [__m512i; 8] {
    // Pairs of rows interleaved: t0 = r0[0] r1[0] r0[2] r1[2] ... r0[6] r1[6].
    let t0 = _mm512_unpacklo_epi64(r[0], r[1]);
    let t1 = _mm512_unpackhi_epi64(r[0], r[1]);
    let t2 = _mm512_unpacklo_epi64(r[2], r[3]);
    let t3 = _mm512_unpackhi_epi64(r[2], r[3]);
    let t4 = _mm512_unpacklo_epi64(r[4], r[5]);
    let t5 = _mm512_unpackhi_epi64(r[4], r[5]);
    let t6 = _mm512_unpacklo_epi64(r[6], r[7]);
    let t7 = _mm512_unpackhi_epi64(r[6], r[7]);
    // 128-bit blocks 0 and 2 (0x88) or 1 and 3 (0xDD) of each operand:
    // u0 = r0[0] r1[0] r0[4] r1[4] r2[0] r3[0] r2[4] r3[4].
    let u0 = _mm512_shuffle_i64x2::<0x88>(t0, t2);
    let u1 = _mm512_shuffle_i64x2::<0xDD>(t0, t2);
    let u2 = _mm512_shuffle_i64x2::<0x88>(t1, t3);
    let u3 = _mm512_shuffle_i64x2::<0xDD>(t1, t3);
    let u4 = _mm512_shuffle_i64x2::<0x88>(t4, t6);
    let u5 = _mm512_shuffle_i64x2::<0xDD>(t4, t6);
    let u6 = _mm512_shuffle_i64x2::<0x88>(t5, t7);
    let u7 = _mm512_shuffle_i64x2::<0xDD>(t5, t7);
    [
        _mm512_shuffle_i64x2::<0x88>(u0, u4),
        _mm512_shuffle_i64x2::<0x88>(u2, u6),
        _mm512_shuffle_i64x2::<0x88>(u1, u5),
        _mm512_shuffle_i64x2::<0x88>(u3, u7),
        _mm512_shuffle_i64x2::<0xDD>(u0, u4),
        _mm512_shuffle_i64x2::<0xDD>(u2, u6),
        _mm512_shuffle_i64x2::<0xDD>(u1, u5),
        _mm512_shuffle_i64x2::<0xDD>(u3, u7),
    ]
}

#[cfg(test)]
mod tests {
    use core::net::{IpAddr, Ipv4Addr};

    use host::capability::{require, Need};
    use proptest::prelude::*;

    use super::Avx512Fast;
    use crate::flow::FlowHasher;
    use crate::forwarding::{ForwardingSpec, ForwardingTable};
    use crate::frame::Frame;
    use crate::pipeline::fast_path::{classify, OUTER};
    use crate::wire::checksum;
    use synth::{ClientFlow, Transport, Tunnel};

    const LB: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 10);

    /// The proof of AVX-512F and BW, or `None` after reporting the skip (a
    /// CPU feature, so an allowed one): without it there is nothing to
    /// compare, and the pipeline never uses this type.
    fn avx512_or_skip() -> Option<Avx512Fast> {
        require(&[Need::Avx512]).ok()?;
        Some(Avx512Fast::detect().expect("the host crate and detect agree on AVX-512F and BW"))
    }

    fn table(seed: u64) -> ForwardingTable {
        ForwardingTable::build(&ForwardingSpec {
            lb_ipv4: LB,
            lb_ipv6: None,
            lb_mac: [2, 0, 0, 0, 0, 1],
            vips: vec![],
            backends: vec![],
            seed,
            table_size: 7,
            mtu: 1500,
            generation: 1,
        })
        .unwrap()
    }

    /// Header bytes whose values `classify` checks against bounds: outer
    /// length, TTL, inner length, protocol, UDP length, TCP data offset.
    const CHECKED: [usize; 9] = [16, 17, 22, 40, 41, 47, 62, 63, 70];

    /// One damaged byte: anywhere in the headers or at a checked field, set
    /// to any value, to a value near a bound, or one off what it was.
    fn damage() -> impl Strategy<Value = (usize, u8, Option<i8>)> {
        (
            prop_oneof![0usize..80, proptest::sample::select(&CHECKED[..])],
            prop_oneof![
                any::<u8>(),
                proptest::sample::select(&[0u8, 1, 2, 6, 8, 17, 0x14, 0x1c, 0x50, 0xff][..])
            ],
            prop_oneof![Just(None), Just(Some(1i8)), Just(Some(-1i8))],
        )
    }

    /// A fast-path GRE frame, then damaged (with the outer checksum made
    /// right again or not, so that damage to the outer header also reaches
    /// the checks after the checksum's) and cut short.
    fn frame() -> impl Strategy<Value = Vec<u8>> {
        (
            any::<bool>(),
            any::<([u8; 4], u16, u16)>(),
            proptest::collection::vec(any::<u8>(), 0..40),
            proptest::collection::vec(damage(), 0..3),
            any::<bool>(),
            prop_oneof![Just(0usize), 0usize..40],
        )
            .prop_map(|(udp, (client, sport, dport), payload, damage, fix, cut)| {
                let flow = ClientFlow {
                    src: IpAddr::V4(client.into()),
                    dst: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
                    transport: if udp { Transport::Udp } else { Transport::Tcp },
                    src_port: sport,
                    dst_port: dport,
                };
                let mut frame =
                    Tunnel::new(Ipv4Addr::new(10, 0, 0, 1), LB).encapsulate(&flow.packet(&payload));
                for (at, value, nudge) in damage {
                    if let Some(byte) = frame.get_mut(at) {
                        *byte = nudge.map_or(value, |n| byte.wrapping_add_signed(n));
                    }
                }
                if fix {
                    frame[OUTER + 10..OUTER + 12].fill(0);
                    let sum = checksum::checksum(&frame[OUTER..OUTER + 20]);
                    frame[OUTER + 10..OUTER + 12].copy_from_slice(&sum.to_be_bytes());
                }
                frame.truncate(frame.len() - cut.min(frame.len()));
                frame
            })
    }

    #[test]
    fn every_lane_classifies_and_hashes_as_the_scalar_fast_path_does() {
        let Some(simd) = avx512_or_skip() else {
            return;
        };
        proptest!(ProptestConfig::with_cases(3000), |(
            frames in proptest::collection::vec(frame(), 1..=8),
            seed in any::<u64>(),
        )| {
            let table = table(seed);
            let x8 = table.hasher.x8().expect("AVX-512F");
            let mut bufs = frames.clone();
            let views: Vec<Frame<'_>> = bufs.iter_mut().map(|b| Frame::whole(b)).collect();
            let mut hashes = [0u64; 8];
            let fast = simd.classify_and_hash(x8, &views, table.lb_ipv4, &mut hashes);
            for (i, frame) in frames.iter().enumerate() {
                let expected = classify(frame, &table).map(|flow| FlowHasher::ipv4(&table.hasher, flow.words));
                let got = (fast & (1 << i) != 0).then_some(hashes[i]);
                prop_assert_eq!(got, expected, "frame {} of {}: {:02x?}", i, frames.len(), frame);
            }
            prop_assert_eq!(u32::from(fast) >> frames.len(), 0, "lanes past the frames");
        });
    }

    /// Sums the folds must get right: zero, 0xFFFF and its multiples, and
    /// the values just around them at every fold's width.
    fn sum() -> impl Strategy<Value = u64> {
        prop_oneof![
            0u64..(1 << 50),
            (0u64..(1 << 34)).prop_map(|k| k * 0xFFFF),
            (0u64..(1 << 34), -2i64..=2).prop_map(|(k, d)| (k * 0xFFFF).wrapping_add_signed(d)),
            proptest::sample::select(
                &[
                    0u64,
                    0xFFFF,
                    0x1FFFE,
                    0xFFFF_FFFF,
                    0x1_FFFF_FFFE,
                    0xFFFF_0000_FFFF
                ][..]
            ),
        ]
    }

    #[test]
    fn every_lane_folds_to_ones_as_the_checksum_module_does() {
        if avx512_or_skip().is_none() {
            return;
        }
        proptest!(|(sums in proptest::array::uniform8(sum()))| {
            // SAFETY: the CPU has AVX-512F (checked above); `sums` is 64 readable bytes.
            let got = unsafe { super::folds_to_ones(core::arch::x86_64::_mm512_loadu_epi64(sums.as_ptr().cast())) };
            for (i, &sum) in sums.iter().enumerate() {
                prop_assert_eq!(got & (1 << i) != 0, checksum::folds_to_ones(sum), "sum {:#x}", sum);
            }
        });
    }

    #[test]
    fn undamaged_frames_all_take_the_fast_path() {
        let Some(simd) = avx512_or_skip() else {
            return;
        };
        let table = table(3);
        let x8 = table.hasher.x8().expect("AVX-512F");
        let mut bufs: Vec<Vec<u8>> = (0..8u16)
            .map(|i| {
                let flow = ClientFlow {
                    src: IpAddr::V4(Ipv4Addr::new(198, 51, 100, i as u8)),
                    dst: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
                    transport: if i % 2 == 0 {
                        Transport::Tcp
                    } else {
                        Transport::Udp
                    },
                    src_port: 1000 + i,
                    dst_port: 80,
                };
                Tunnel::new(Ipv4Addr::new(10, 0, 0, 1), LB).encapsulate(&flow.packet(b"x"))
            })
            .collect();
        let expected: Vec<u64> = bufs
            .iter()
            .map(|b| table.hasher.ipv4(classify(b, &table).unwrap().words))
            .collect();
        let views: Vec<Frame<'_>> = bufs.iter_mut().map(|b| Frame::whole(b)).collect();
        let mut hashes = [0u64; 8];
        assert_eq!(
            simd.classify_and_hash(x8, &views, table.lb_ipv4, &mut hashes),
            0xFF
        );
        assert_eq!(hashes.to_vec(), expected);
    }
}
