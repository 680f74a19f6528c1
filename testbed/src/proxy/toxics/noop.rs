//! `noop`: passes everything unchanged (useful to test the API and toxicity rolls).

use serde::{Deserialize, Serialize};

use super::bounds::Bounded;

/// No attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Noop {}

impl Bounded for Noop {
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}
