//! `slicer`: cuts every chunk into pieces of `average_size` ± `size_variation` bytes,
//! `delay` microseconds apart, to exercise a peer's handling of short reads.

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::bounds::{self, later, Bounded, MAX_MICROS, MAX_SLICE_BYTES};
use super::Piece;

/// Attributes: `average_size` and `size_variation` in bytes (at most 1 MiB), `delay`
/// in µs (at most an hour).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Slicer {
    pub average_size: u64,
    pub size_variation: u64,
    pub delay: u64,
}

impl Bounded for Slicer {
    fn check(&self) -> Result<(), String> {
        bounds::at_most("average_size", self.average_size, MAX_SLICE_BYTES, "bytes")?;
        bounds::at_most(
            "size_variation",
            self.size_variation,
            MAX_SLICE_BYTES,
            "bytes",
        )?;
        bounds::at_most("delay", self.delay, MAX_MICROS, "µs")
    }
}

impl Slicer {
    /// The shortest slice `piece_size` can draw (the last of a chunk may be shorter).
    pub fn smallest_slice(&self) -> usize {
        let average = self.average_size.max(1);
        let variation = self.size_variation.min(self.average_size);
        usize::try_from(average - variation)
            .unwrap_or(usize::MAX)
            .max(1)
    }

    /// One piece size: `average_size ± size_variation`, at least one byte.
    pub fn piece_size(&self, rng: &mut impl Rng) -> usize {
        let average = self.average_size.max(1) as i128;
        let variation = self.size_variation.min(self.average_size) as i128;
        let offset = if variation == 0 {
            0
        } else {
            rng.gen_range(-variation..=variation)
        };
        usize::try_from(average + offset).unwrap_or(1).max(1)
    }

    /// Cuts every piece; successive slices of one chunk are `delay` µs apart.
    pub fn apply(&self, pieces: Vec<Piece>, rng: &mut impl Rng) -> Vec<Piece> {
        let gap = Duration::from_micros(self.delay);
        let mut out = Vec::new();
        for piece in pieces {
            let mut rest = piece.data.as_slice();
            let mut when = piece.not_before;
            while !rest.is_empty() {
                let size = self.piece_size(rng).min(rest.len());
                let (head, tail) = rest.split_at(size);
                out.push(Piece {
                    data: head.to_vec(),
                    arrived: piece.arrived,
                    not_before: when,
                });
                when = later(when, gap);
                rest = tail;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use std::time::Instant;

    #[test]
    fn slices_are_average_plus_or_minus_variation_and_keep_every_byte() {
        let toxic = Slicer {
            average_size: 10,
            size_variation: 4,
            delay: 100,
        };
        let data: Vec<u8> = (0..=255).collect();
        let now = Instant::now();
        let out = toxic.apply(
            vec![Piece::new(data.clone(), now)],
            &mut StdRng::seed_from_u64(3),
        );
        let joined: Vec<u8> = out.iter().flat_map(|p| p.data.clone()).collect();
        assert_eq!(joined, data);
        let last = out.len() - 1;
        assert!(out[..last].iter().all(|p| (6..=14).contains(&p.data.len())));
        assert_eq!(
            out[1].not_before - out[0].not_before,
            Duration::from_micros(100)
        );
    }
}
