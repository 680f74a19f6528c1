//! SipHash-1-3 of four two-word messages at once, one per 64-bit lane of
//! an AVX2 register: the IPv4 flow hashes of a batch, four frames at a time.
//!
//! The hash is the specified one (keyed SipHash-1-3 of the words'
//! little-endian bytes, as `siphasher` computes it; a property test holds
//! every lane to it). Lanes only share the work: a round costs about 20
//! vector instructions for four hashes where the scalar round costs 14 for
//! one.

#[cfg(target_arch = "x86_64")]
pub use avx2::Avx2Sip13;

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m256i, _mm256_add_epi64, _mm256_extract_epi64, _mm256_or_si256, _mm256_set1_epi64x,
        _mm256_set_epi64x, _mm256_setr_epi8, _mm256_shuffle_epi32, _mm256_shuffle_epi8,
        _mm256_slli_epi64, _mm256_srli_epi64, _mm256_xor_si256,
    };

    /// Proof that the CPU has AVX2, with the keyed initial state.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Avx2Sip13 {
        k0: u64,
        k1: u64,
    }

    impl Avx2Sip13 {
        /// The four-lane hasher for key `(k0, k1)`, or `None` when the CPU
        /// lacks AVX2.
        pub fn detect(k0: u64, k1: u64) -> Option<Self> {
            std::arch::is_x86_feature_detected!("avx2").then_some(Self { k0, k1 })
        }

        /// The hashes of four two-word messages, in order.
        #[inline]
        pub fn hash(&self, messages: [[u64; 2]; 4]) -> [u64; 4] {
            // SAFETY: `Self` is only made by `detect`, after the CPU was
            // found to support AVX2, the one feature `hash_avx2` enables.
            unsafe { self.hash_avx2(messages) }
        }

        // The casts reinterpret bits between `u64` and the intrinsics' `i64`.
        #[allow(clippy::cast_possible_wrap, clippy::cast_sign_loss)]
        #[target_feature(enable = "avx2")]
        fn hash_avx2(&self, m: [[u64; 2]; 4]) -> [u64; 4] {
            let splat = |x: u64| _mm256_set1_epi64x(x as i64);
            // Lane i holds message i (`_mm256_set_epi64x` takes the top lane first).
            let word = |w: usize| {
                _mm256_set_epi64x(
                    m[3][w] as i64,
                    m[2][w] as i64,
                    m[1][w] as i64,
                    m[0][w] as i64,
                )
            };
            let mut v = crate::flow::sip_initial_state(self.k0, self.k1).map(splat);
            for w in [word(0), word(1), splat(16 << 56)] {
                v[3] = _mm256_xor_si256(v[3], w);
                round(&mut v);
                v[0] = _mm256_xor_si256(v[0], w);
            }
            v[2] = _mm256_xor_si256(v[2], splat(0xff));
            round(&mut v);
            round(&mut v);
            round(&mut v);
            let h = _mm256_xor_si256(_mm256_xor_si256(v[0], v[1]), _mm256_xor_si256(v[2], v[3]));
            [
                _mm256_extract_epi64::<0>(h) as u64,
                _mm256_extract_epi64::<1>(h) as u64,
                _mm256_extract_epi64::<2>(h) as u64,
                _mm256_extract_epi64::<3>(h) as u64,
            ]
        }
    }

    /// `SipRound` on four lanes.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn round(v: &mut [__m256i; 4]) {
        let [mut v0, mut v1, mut v2, mut v3] = *v;
        v0 = _mm256_add_epi64(v0, v1);
        v1 = _mm256_xor_si256(rotl::<13, 51>(v1), v0);
        v0 = rotl32(v0);
        v2 = _mm256_add_epi64(v2, v3);
        v3 = _mm256_xor_si256(rotl16(v3), v2);
        v0 = _mm256_add_epi64(v0, v3);
        v3 = _mm256_xor_si256(rotl::<21, 43>(v3), v0);
        v2 = _mm256_add_epi64(v2, v1);
        v1 = _mm256_xor_si256(rotl::<17, 47>(v1), v2);
        v2 = rotl32(v2);
        *v = [v0, v1, v2, v3];
    }

    /// Each lane rotated left by `L` bits (`R` is `64 - L`).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn rotl<const L: i32, const R: i32>(x: __m256i) -> __m256i {
        _mm256_or_si256(_mm256_slli_epi64::<L>(x), _mm256_srli_epi64::<R>(x))
    }

    /// Rotation by 32: swap the two 32-bit halves of each lane.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn rotl32(x: __m256i) -> __m256i {
        _mm256_shuffle_epi32::<0b10_11_00_01>(x)
    }

    /// Rotation by 16: every byte moves up two places within its lane.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn rotl16(x: __m256i) -> __m256i {
        let to = _mm256_setr_epi8(
            6, 7, 0, 1, 2, 3, 4, 5, 14, 15, 8, 9, 10, 11, 12, 13, //
            6, 7, 0, 1, 2, 3, 4, 5, 14, 15, 8, 9, 10, 11, 12, 13,
        );
        _mm256_shuffle_epi8(x, to)
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use proptest::prelude::*;

    use super::Avx2Sip13;
    use crate::flow::sip13_words as reference;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn every_lane_hashes_as_siphasher_does(k0: u64, k1: u64, messages: [[u64; 2]; 4]) {
            // Without AVX2 there is nothing to compare (and the pipeline
            // never uses this type).
            if let Some(x4) = Avx2Sip13::detect(k0, k1) {
                let expected = messages.map(|m| reference(k0, k1, m));
                prop_assert_eq!(x4.hash(messages), expected);
            }
        }
    }
}
