//! `blackhole` (beyond Toxiproxy): connections are accepted, but no byte is forwarded
//! in the toxic's direction and nothing is closed: data and the end of stream vanish.

use serde::{Deserialize, Serialize};

use super::bounds::Bounded;

/// No attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Blackhole {}

impl Bounded for Blackhole {
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}
