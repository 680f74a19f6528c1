//! SipHash-1-3 of eight two-word messages at once, one per 64-bit lane of
//! an AVX-512 register: the IPv4 flow hashes of a batch, eight frames at a
//! time.
//!
//! Same hash as [`super::sip13_x4`] (keyed SipHash-1-3 of the words'
//! little-endian bytes, as `siphasher` computes it; a property test holds
//! every lane to it), but AVX-512 rotates a lane in one instruction where
//! AVX2 needs three, and holds twice the lanes: a round is 14 vector
//! instructions for eight hashes.

#[cfg(target_arch = "x86_64")]
pub use avx512::Avx512Sip13;

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::{
        __m512i, _mm512_add_epi64, _mm512_loadu_epi64, _mm512_permutex2var_epi64, _mm512_rol_epi64,
        _mm512_set1_epi64, _mm512_setr_epi64, _mm512_storeu_epi64, _mm512_xor_si512,
    };

    /// Proof that the CPU has AVX-512F, with the keyed initial state.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Avx512Sip13 {
        k0: u64,
        k1: u64,
    }

    impl Avx512Sip13 {
        /// The eight-lane hasher for key `(k0, k1)`, or `None` when the CPU
        /// lacks AVX-512F.
        pub fn detect(k0: u64, k1: u64) -> Option<Self> {
            std::arch::is_x86_feature_detected!("avx512f").then_some(Self { k0, k1 })
        }

        /// The hashes of eight two-word messages, in order.
        #[inline]
        pub fn hash(&self, messages: &[[u64; 2]; 8]) -> [u64; 8] {
            // SAFETY: `Self` is only made by `detect`, after the CPU was
            // found to support AVX-512F, the one feature `hash_avx512` enables.
            unsafe { self.hash_avx512(messages) }
        }

        #[target_feature(enable = "avx512f")]
        fn hash_avx512(&self, m: &[[u64; 2]; 8]) -> [u64; 8] {
            // The messages as they lie in memory: first word, second word,
            // first word, ... Two permutes pick every first and every second
            // word, so that lane i holds message i.
            // SAFETY: `m` is 128 readable bytes; the first load reads its
            // first 64, the second its last 64 (unaligned loads).
            let (low, high) = unsafe {
                let at = m.as_ptr().cast::<i64>();
                (_mm512_loadu_epi64(at), _mm512_loadu_epi64(at.add(8)))
            };
            let firsts = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
            let seconds = _mm512_setr_epi64(1, 3, 5, 7, 9, 11, 13, 15);
            let h = self.hash_lanes(
                _mm512_permutex2var_epi64(low, firsts, high),
                _mm512_permutex2var_epi64(low, seconds, high),
            );
            let mut out = [0u64; 8];
            // SAFETY: `out` is 64 writable bytes (an unaligned store).
            unsafe { _mm512_storeu_epi64(out.as_mut_ptr().cast::<i64>(), h) };
            out
        }

        /// The hashes of eight two-word messages whose first words are the
        /// lanes of `first` and second words the lanes of `second`, for
        /// callers that hold the words in registers already.
        // The casts reinterpret bits between `u64` and the intrinsics' `i64`.
        #[allow(clippy::cast_possible_wrap)]
        #[inline]
        #[target_feature(enable = "avx512f")]
        pub fn hash_lanes(&self, first: __m512i, second: __m512i) -> __m512i {
            let splat = |x: u64| _mm512_set1_epi64(x as i64);
            let words = [first, second, splat(16 << 56)];
            let mut v = crate::flow::sip_initial_state(self.k0, self.k1).map(splat);
            for w in words {
                v[3] = _mm512_xor_si512(v[3], w);
                round(&mut v);
                v[0] = _mm512_xor_si512(v[0], w);
            }
            v[2] = _mm512_xor_si512(v[2], splat(0xff));
            round(&mut v);
            round(&mut v);
            round(&mut v);
            _mm512_xor_si512(_mm512_xor_si512(v[0], v[1]), _mm512_xor_si512(v[2], v[3]))
        }
    }

    /// `SipRound` on eight lanes.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn round(v: &mut [__m512i; 4]) {
        let [mut v0, mut v1, mut v2, mut v3] = *v;
        v0 = _mm512_add_epi64(v0, v1);
        v1 = _mm512_xor_si512(_mm512_rol_epi64::<13>(v1), v0);
        v0 = _mm512_rol_epi64::<32>(v0);
        v2 = _mm512_add_epi64(v2, v3);
        v3 = _mm512_xor_si512(_mm512_rol_epi64::<16>(v3), v2);
        v0 = _mm512_add_epi64(v0, v3);
        v3 = _mm512_xor_si512(_mm512_rol_epi64::<21>(v3), v0);
        v2 = _mm512_add_epi64(v2, v1);
        v1 = _mm512_xor_si512(_mm512_rol_epi64::<17>(v1), v2);
        v2 = _mm512_rol_epi64::<32>(v2);
        *v = [v0, v1, v2, v3];
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use proptest::prelude::*;

    use super::Avx512Sip13;
    use crate::flow::sip13_words as reference;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn every_lane_hashes_as_siphasher_does(k0: u64, k1: u64, messages: [[u64; 2]; 8]) {
            // Without AVX-512 there is nothing to compare (and the pipeline
            // never uses this type).
            if let Some(x8) = Avx512Sip13::detect(k0, k1) {
                let expected = messages.map(|m| reference(k0, k1, m));
                prop_assert_eq!(x8.hash(&messages), expected);
            }
        }
    }
}
