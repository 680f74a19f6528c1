//! `limit_data`: passes the first `bytes` bytes in its direction, then closes the
//! connection.

use serde::{Deserialize, Serialize};

use super::bounds::Bounded;
use super::Piece;

/// Attributes: `bytes`, the number of bytes let through before the close (any u64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LimitData {
    pub bytes: u64,
}

impl Bounded for LimitData {
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

impl LimitData {
    /// Truncates the pieces to what is left of the allowance; true when it is used up.
    pub fn apply(&self, pieces: &mut Vec<Piece>, passed: &mut u64) -> bool {
        let mut kept = Vec::with_capacity(pieces.len());
        for mut piece in pieces.drain(..) {
            let left = self.bytes.saturating_sub(*passed);
            if left == 0 {
                break;
            }
            if piece.data.len() as u64 > left {
                piece.data.truncate(left as usize);
            }
            *passed = passed.saturating_add(piece.data.len() as u64);
            kept.push(piece);
        }
        *pieces = kept;
        *passed >= self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn lets_exactly_the_allowance_through_then_reports_the_end() {
        let now = Instant::now();
        let toxic = LimitData { bytes: 15 };
        let mut passed = 0;
        let mut first = vec![Piece::new(vec![0; 10], now)];
        assert!(!toxic.apply(&mut first, &mut passed));
        let mut second = vec![Piece::new(vec![0; 10], now), Piece::new(vec![0; 3], now)];
        assert!(toxic.apply(&mut second, &mut passed));
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].data.len(), 5);
        assert_eq!(passed, 15);
    }
}
