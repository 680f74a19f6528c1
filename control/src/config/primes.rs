//! Primality for Maglev's table size, which must be prime so that every
//! backend's permutation (offset + j * skip mod M) visits every slot.

/// True when `n` is prime. Trial division: table sizes are at most a few
/// million, so this takes microseconds.
pub fn is_prime(n: u64) -> bool {
    if n < 4 {
        return n >= 2;
    }
    if n.is_multiple_of(2) || n.is_multiple_of(3) {
        return false;
    }
    // Every prime above 3 is 6k +- 1.
    let mut d = 5u64;
    while d.saturating_mul(d) <= n {
        if n.is_multiple_of(d) || n.is_multiple_of(d + 2) {
            return false;
        }
        d += 6;
    }
    true
}

/// The largest prime below `n` and the smallest prime above it, each only if
/// it is at most `max`.
pub fn nearest_primes(n: u64, max: u64) -> (Option<u64>, Option<u64>) {
    let below = (2..n.min(max.saturating_add(1)))
        .rev()
        .find(|&p| is_prime(p));
    let above = (n.saturating_add(1)..=max).find(|&p| is_prime(p));
    (below, above)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_numbers_are_classified_correctly() {
        let primes: Vec<u64> = (0..50).filter(|&n| is_prime(n)).collect();
        assert_eq!(
            primes,
            [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47]
        );
    }

    #[test]
    fn maglev_table_sizes_are_prime() {
        // The sizes the Maglev paper uses, and the largest prime below 2^24.
        for p in [251, 4093, 65_537, 655_373, 16_777_213] {
            assert!(is_prime(p), "{p}");
        }
        for n in [65_536, 65_535, 16_777_215, 25, 49, 1_000_001] {
            assert!(!is_prime(n), "{n}");
        }
    }

    #[test]
    fn nearest_primes_bracket_a_composite() {
        assert_eq!(
            nearest_primes(65_536, u64::MAX),
            (Some(65_521), Some(65_537))
        );
        assert_eq!(nearest_primes(1000, u64::MAX), (Some(997), Some(1009)));
    }

    #[test]
    fn nearest_primes_stay_within_bounds() {
        assert_eq!(nearest_primes(2, 100), (None, Some(3)));
        assert_eq!(
            nearest_primes(16_777_214, 16_777_213),
            (Some(16_777_213), None)
        );
        assert_eq!(nearest_primes(0, 100), (None, Some(2)));
    }
}
