//! Finding a backend's next unclaimed entry: the hot loop of a table build.
//!
//! About `M ln M` probes are made in a build (late in the fill a backend
//! walks past dozens of taken entries), so each probe must be cheap: the
//! "taken" test reads a bitmap (8 KiB for the default size, so it stays in L1
//! while the `u16` entries are only written) and positions advance by
//! addition and one conditional subtraction, never a division. A scalar walk
//! is a chain of dependent, hard-to-predict branches; with AVX2 eight
//! positions are tested per gather and one branch.

use super::fill::Walker;

/// Entries already claimed, one bit each, in 32-bit words (the unit an AVX2
/// gather loads).
#[derive(Debug)]
pub(super) struct Claimed {
    words: Box<[u32]>,
}

impl Claimed {
    pub(super) fn new(size: u32) -> Self {
        Self {
            words: vec![0; size.div_ceil(32) as usize].into_boxed_slice(),
        }
    }

    #[inline(always)]
    pub(super) fn contains(&self, position: u32) -> bool {
        (self.words[(position / 32) as usize] >> (position % 32)) & 1 == 1
    }

    #[inline(always)]
    pub(super) fn insert(&mut self, position: u32) {
        self.words[(position / 32) as usize] |= 1 << (position % 32);
    }
}

/// The next position of a permutation: `(position + skip) mod size` for
/// `position, skip < size`, without a division. No overflow: `size ≤ 2^26`.
#[inline(always)]
pub(super) fn step(position: u32, skip: u32, size: u32) -> u32 {
    let next = position + skip;
    if next >= size {
        next - size
    } else {
        next
    }
}

/// A way to walk a permutation to its first unclaimed entry.
pub(super) trait Search {
    /// The first position of walker `index`'s permutation, starting at
    /// `start` (inclusive), that is not claimed. One must exist.
    fn first_unclaimed(
        &self,
        claimed: &Claimed,
        index: usize,
        walker: &Walker,
        size: u32,
        start: u32,
    ) -> u32;
}

/// One position at a time; any CPU.
#[derive(Debug)]
pub(super) struct Scalar;

impl Search for Scalar {
    #[inline(always)]
    fn first_unclaimed(
        &self,
        claimed: &Claimed,
        _index: usize,
        walker: &Walker,
        size: u32,
        start: u32,
    ) -> u32 {
        let mut position = start;
        while claimed.contains(position) {
            position = step(position, walker.skip, size);
        }
        position
    }
}

#[cfg(target_arch = "x86_64")]
pub(super) use avx2::Avx2;

// AVX2 lanes are `i32`; positions, sizes and strides are below 2^26, so
// moving them between `u32` and `i32` neither wraps nor loses a sign.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::cast_possible_wrap, clippy::cast_sign_loss)]
mod avx2 {
    use std::arch::x86_64::{
        __m256i, _mm256_add_epi32, _mm256_and_si256, _mm256_castsi256_ps, _mm256_cmpeq_epi32,
        _mm256_cvtsi256_si32, _mm256_i32gather_epi32, _mm256_min_epu32, _mm256_movemask_ps,
        _mm256_permutevar8x32_epi32, _mm256_set1_epi32, _mm256_setr_epi32, _mm256_setzero_si256,
        _mm256_sllv_epi32, _mm256_srli_epi32, _mm256_sub_epi32,
    };

    use super::{step, Claimed, Search, Walker};

    /// Eight positions per probe, AVX2 gathers from the bitmap.
    #[derive(Debug)]
    pub(in crate::maglev) struct Avx2 {
        /// Per walker: `k * skip mod M` for `k` in `0..8`.
        strides: Box<[[u32; 8]]>,
        /// Per walker: `8 * skip mod M`, from one group of eight to the next.
        leaps: Box<[u32]>,
    }

    impl Avx2 {
        /// Precomputes the strides, or `None` when the CPU lacks AVX2.
        pub(in crate::maglev) fn detect(walkers: &[Walker], size: u32) -> Option<Self> {
            if !std::arch::is_x86_feature_detected!("avx2") {
                return None;
            }
            let strides: Box<[[u32; 8]]> = walkers
                .iter()
                .map(|walker| {
                    let mut multiples = [0; 8];
                    for k in 1..8 {
                        multiples[k] = step(multiples[k - 1], walker.skip, size);
                    }
                    multiples
                })
                .collect();
            let leaps = strides
                .iter()
                .zip(walkers)
                .map(|(multiples, walker)| step(multiples[7], walker.skip, size))
                .collect();
            Some(Self { strides, leaps })
        }

        /// `(positions + add) mod size` lane by lane, for lanes below `size`:
        /// the unsigned minimum of `x` and `x - size` is `x - size` exactly
        /// when `x ≥ size` (otherwise the subtraction wraps to a huge value).
        #[target_feature(enable = "avx2")]
        fn advance(positions: __m256i, add: __m256i, size: __m256i) -> __m256i {
            let sum = _mm256_add_epi32(positions, add);
            _mm256_min_epu32(sum, _mm256_sub_epi32(sum, size))
        }

        #[target_feature(enable = "avx2")]
        fn search(&self, claimed: &Claimed, index: usize, size: u32, start: u32) -> u32 {
            let multiples = self.strides[index];
            let size_lanes = _mm256_set1_epi32(size as i32);
            let leap = _mm256_set1_epi32(self.leaps[index] as i32);
            let mut positions = Self::advance(
                _mm256_set1_epi32(start as i32),
                _mm256_setr_epi32(
                    multiples[0] as i32,
                    multiples[1] as i32,
                    multiples[2] as i32,
                    multiples[3] as i32,
                    multiples[4] as i32,
                    multiples[5] as i32,
                    multiples[6] as i32,
                    multiples[7] as i32,
                ),
                size_lanes,
            );
            let low_five = _mm256_set1_epi32(31);
            let one = _mm256_set1_epi32(1);
            loop {
                let word_indices = _mm256_srli_epi32::<5>(positions);
                // SAFETY: every lane of `positions` is below `size`, so every
                // word index is below `ceil(size / 32) = words.len()`: all
                // eight 4-byte loads are inside the bitmap.
                let words = unsafe {
                    _mm256_i32gather_epi32::<4>(claimed.words.as_ptr().cast(), word_indices)
                };
                let bits = _mm256_sllv_epi32(one, _mm256_and_si256(positions, low_five));
                let unclaimed =
                    _mm256_cmpeq_epi32(_mm256_and_si256(words, bits), _mm256_setzero_si256());
                let mask = _mm256_movemask_ps(_mm256_castsi256_ps(unclaimed));
                if mask != 0 {
                    let lane = _mm256_set1_epi32(mask.trailing_zeros() as i32);
                    return _mm256_cvtsi256_si32(_mm256_permutevar8x32_epi32(positions, lane))
                        as u32;
                }
                positions = Self::advance(positions, leap, size_lanes);
            }
        }
    }

    impl Search for Avx2 {
        #[inline(always)]
        fn first_unclaimed(
            &self,
            claimed: &Claimed,
            index: usize,
            _walker: &Walker,
            size: u32,
            start: u32,
        ) -> u32 {
            // SAFETY: an `Avx2` exists only once `detect` has seen AVX2 on this CPU.
            unsafe { self.search(claimed, index, size, start) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_wraps_without_division() {
        assert_eq!(step(3, 4, 7), 0);
        assert_eq!(step(2, 4, 7), 6);
        assert_eq!(step(6, 6, 7), 5);
    }

    #[test]
    fn claimed_positions_are_remembered_across_word_boundaries() {
        let mut claimed = Claimed::new(65);
        for position in [0, 31, 32, 64] {
            assert!(!claimed.contains(position));
            claimed.insert(position);
            assert!(claimed.contains(position));
        }
        assert!(!claimed.contains(33));
    }
}
