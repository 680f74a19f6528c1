//! `noop`: passes everything unchanged (useful to test the API and toxicity rolls).

use serde::{Deserialize, Serialize};

/// No attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Noop {}
