//! Reproducible randomness (beyond Toxiproxy, whose `-seed` does nothing): every
//! random choice comes from a generator seeded from the server seed, the proxy's
//! name, the connection's number and the toxic, so the same seed and the same traffic
//! give the same faults whatever order the tasks run in.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// `SplitMix64`'s finaliser over two words: a cheap, well-spread seed combiner.
pub fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_add(0x9E37_79B9_7F4A_7C15).rotate_left(17);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a of a name, to fold proxy and toxic names into seeds.
pub fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xCBF2_9CE4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01B3)
    })
}

/// The toxicity roll of one toxic on one connection, in [0, 1): fixed for the pair,
/// whatever else changes on the proxy.
pub fn toxicity_roll(connection_seed: u64, toxic_uid: u64) -> f64 {
    StdRng::seed_from_u64(mix(connection_seed, toxic_uid)).gen::<f64>()
}

/// A generator for one purpose (`salt`) of one connection.
pub fn generator(connection_seed: u64, salt: u64) -> StdRng {
    StdRng::seed_from_u64(mix(connection_seed, salt))
}

/// A seed when none was given: different on every start.
pub fn random_seed() -> u64 {
    rand::random()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolls_depend_only_on_the_connection_and_the_toxic() {
        assert!((toxicity_roll(5, 1) - toxicity_roll(5, 1)).abs() < f64::EPSILON);
        let rolls: Vec<f64> = (0..1000).map(|c| toxicity_roll(c, 1)).collect();
        let below_half = rolls.iter().filter(|r| **r < 0.5).count();
        assert!((400..600).contains(&below_half), "{below_half}");
    }
}
