//! Primality for Maglev table sizes.
//!
//! A Maglev permutation `offset + j * skip (mod M)` visits every entry only
//! when `skip` and `M` are coprime; a prime `M` makes that true for every
//! `skip` in `1..M`. Sizes are chosen once, from configuration, so these
//! functions favour being exact for all of `u32` over being clever.

/// Witnesses that make Miller–Rabin exact for every `n < 4_759_123_141`,
/// which covers all of `u32` (Jaeschke, 1993).
const MILLER_RABIN_WITNESSES: [u64; 3] = [2, 7, 61];

/// Small primes tried by division first: they settle most composites at once
/// and, reaching the largest witness, guarantee every witness is below `n`
/// in the Miller–Rabin rounds (a witness that is a multiple of `n` proves nothing).
const SMALL_PRIMES: [u32; 18] = [
    2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61,
];

/// Whether `n` is prime. Exact for every `u32`.
pub fn is_prime(n: u32) -> bool {
    if n < 2 {
        return false;
    }
    for p in SMALL_PRIMES {
        if n.is_multiple_of(p) {
            return n == p;
        }
    }
    let n = u64::from(n);
    let twos = (n - 1).trailing_zeros();
    let odd = (n - 1) >> twos;
    'witness: for a in MILLER_RABIN_WITNESSES {
        let mut x = pow_mod(a, odd, n);
        if x == 1 || x == n - 1 {
            continue;
        }
        for _ in 1..twos {
            // Both factors are below n < 2^32, so the product fits in u64.
            x = x * x % n;
            if x == n - 1 {
                continue 'witness;
            }
        }
        return false;
    }
    true
}

/// The largest prime below `n` and the smallest prime above it (`n` itself is
/// never returned). `None` where no such `u32` prime exists.
pub fn nearest_primes(n: u32) -> (Option<u32>, Option<u32>) {
    let below = (2..n).rev().find(|&candidate| is_prime(candidate));
    let above = n
        .checked_add(1)
        .and_then(|start| (start..=u32::MAX).find(|&candidate| is_prime(candidate)));
    (below, above)
}

/// `base^exponent mod modulus` by square-and-multiply; `modulus < 2^32`.
fn pow_mod(base: u64, mut exponent: u64, modulus: u64) -> u64 {
    let mut result = 1;
    let mut base = base % modulus;
    while exponent > 0 {
        if exponent & 1 == 1 {
            result = result * base % modulus;
        }
        base = base * base % modulus;
        exponent >>= 1;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn is_prime_by_trial_division(n: u32) -> bool {
        let n = u64::from(n);
        n >= 2 && (2..=n.isqrt()).all(|d| n % d != 0)
    }

    #[test]
    fn small_numbers_are_classified_like_trial_division() {
        for n in 0..20_000 {
            assert_eq!(is_prime(n), is_prime_by_trial_division(n), "n = {n}");
        }
    }

    #[test]
    fn known_table_sizes_and_extremes_are_classified() {
        for prime in [65_537, 655_373, 67_108_859, 4_294_967_291] {
            assert!(is_prime(prime), "{prime} is prime");
        }
        // 3215031751 = 151 * 751 * 28351 is a strong pseudoprime to bases 2, 3, 5, 7.
        for composite in [65_536, 655_372, 3_215_031_751, u32::MAX] {
            assert!(!is_prime(composite), "{composite} is composite");
        }
    }

    #[test]
    fn nearest_primes_straddle_a_power_of_two() {
        assert_eq!(nearest_primes(65_536), (Some(65_521), Some(65_537)));
        assert_eq!(nearest_primes(65_537), (Some(65_521), Some(65_539)));
    }

    #[test]
    fn nearest_primes_are_none_past_the_ends_of_u32() {
        assert_eq!(nearest_primes(0), (None, Some(2)));
        assert_eq!(nearest_primes(2), (None, Some(3)));
        assert_eq!(nearest_primes(3), (Some(2), Some(5)));
        assert_eq!(nearest_primes(u32::MAX), (Some(4_294_967_291), None));
        assert_eq!(nearest_primes(4_294_967_291), (Some(4_294_967_279), None));
    }

    proptest! {
        #[test]
        fn is_prime_agrees_with_trial_division(n in any::<u32>()) {
            prop_assert_eq!(is_prime(n), is_prime_by_trial_division(n));
        }

        #[test]
        fn nearest_primes_have_no_prime_between_them(n in 0u32..100_000_000) {
            let (below, above) = nearest_primes(n);
            if let Some(below) = below {
                prop_assert!(below < n && is_prime(below));
                prop_assert!((below + 1..n).all(|m| !is_prime(m)));
            } else {
                prop_assert!(n <= 2);
            }
            let above = above.expect("a prime exists above every n below 100 million");
            prop_assert!(above > n && is_prime(above));
            prop_assert!((n + 1..above).all(|m| !is_prime(m)));
        }
    }
}
