//! `blackhole` (beyond Toxiproxy): connections are accepted, but no byte is forwarded
//! in the toxic's direction and nothing is closed: data and the end of stream vanish.

use serde::{Deserialize, Serialize};

/// No attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Blackhole {}
