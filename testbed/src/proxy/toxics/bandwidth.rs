//! `bandwidth`: at most `rate` KB/s (1 KB = 1000 bytes) in the toxic's direction.
//!
//! Pieces are cut to at most 20 ms worth of bytes and scheduled back to back, so the
//! rate holds within 2% over any second; an idle link earns no burst credit.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::bounds::{later, Bounded};
use super::Piece;

/// Attributes: `rate` in KB/s; 0 means unlimited, as in Toxiproxy; any u64 (the
/// byte rate saturates, which is unlimited in effect).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Bandwidth {
    pub rate: u64,
}

impl Bounded for Bandwidth {
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

impl Bandwidth {
    /// The size pieces are cut to (the last of a chunk may be shorter); None if
    /// nothing is cut.
    pub fn piece_size(&self) -> Option<usize> {
        (self.rate > 0).then(|| {
            usize::try_from(self.rate.saturating_mul(1000) / 50)
                .unwrap_or(usize::MAX)
                .max(1)
        })
    }

    /// Splits and schedules the pieces; `next_free` is when the link may send again.
    pub fn apply(&self, pieces: Vec<Piece>, next_free: &mut Option<Instant>) -> Vec<Piece> {
        let Some(max_piece) = self.piece_size() else {
            return pieces;
        };
        let bytes_per_second = self.rate.saturating_mul(1000);
        let mut out = Vec::with_capacity(pieces.len());
        for piece in pieces {
            for part in piece.split(max_piece) {
                let start = next_free.map_or(part.not_before, |free| free.max(part.not_before));
                let cost =
                    Duration::from_secs_f64(part.data.len() as f64 / bytes_per_second as f64);
                // The piece leaves when the link is free; the link is busy for its cost after.
                *next_free = Some(later(start, cost));
                out.push(Piece {
                    not_before: start,
                    ..part
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_of_data_is_spread_over_a_second() {
        let now = Instant::now();
        let toxic = Bandwidth { rate: 100 };
        let mut next = None;
        let out = toxic.apply(vec![Piece::new(vec![0; 100_000], now)], &mut next);
        assert_eq!(out.len(), 50, "20 ms pieces");
        assert!(out.iter().all(|p| p.data.len() == 2_000));
        assert_eq!(out[49].not_before - now, Duration::from_millis(980));
        assert_eq!(next.unwrap() - now, Duration::from_secs(1));
    }

    #[test]
    fn rate_zero_passes_everything_at_once() {
        let now = Instant::now();
        let mut next = None;
        let out = Bandwidth { rate: 0 }.apply(vec![Piece::new(vec![0; 5000], now)], &mut next);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].not_before, now);
    }
}
