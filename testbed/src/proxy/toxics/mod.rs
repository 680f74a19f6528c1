//! The toxics: one file per toxic with its attributes and what it does to the bytes,
//! and this registry, the one place that maps a type name to a toxic.
//!
//! Toxiproxy's: [`latency`], [`bandwidth`], [`slow_close`], [`timeout`],
//! [`reset_peer`], [`slicer`], [`limit_data`], [`noop`]. Ours: [`accept_delay`] and
//! [`blackhole`] (connect phase and silence), and for UDP proxies [`loss`],
//! [`duplicate`] and [`reorder`] (UDP proxies also take `latency`).

pub mod accept_delay;
pub mod bandwidth;
pub mod blackhole;
pub mod bounds;
pub mod duplicate;
pub mod latency;
pub mod limit_data;
pub mod loss;
pub mod noop;
pub mod reorder;
pub mod reset_peer;
pub mod slicer;
pub mod slow_close;
pub mod timeout;

use std::fmt;
use std::time::Instant;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::error::{clipped, shown};
use bounds::Bounded;

pub use accept_delay::AcceptDelay;
pub use bandwidth::Bandwidth;
pub use blackhole::Blackhole;
pub use duplicate::Duplicate;
pub use latency::Latency;
pub use limit_data::LimitData;
pub use loss::Loss;
pub use noop::Noop;
pub use reorder::Reorder;
pub use reset_peer::ResetPeer;
pub use slicer::Slicer;
pub use slow_close::SlowClose;
pub use timeout::Timeout;

/// A toxic's type and attributes.
#[derive(Debug, Clone, PartialEq)]
pub enum ToxicKind {
    Latency(Latency),
    Bandwidth(Bandwidth),
    SlowClose(SlowClose),
    Timeout(Timeout),
    ResetPeer(ResetPeer),
    Slicer(Slicer),
    LimitData(LimitData),
    Noop(Noop),
    AcceptDelay(AcceptDelay),
    Blackhole(Blackhole),
    Loss(Loss),
    Duplicate(Duplicate),
    Reorder(Reorder),
}

/// Every type name the registry knows, as the API spells them.
pub const TOXIC_TYPES: &[&str] = &[
    "latency",
    "bandwidth",
    "slow_close",
    "timeout",
    "reset_peer",
    "slicer",
    "limit_data",
    "noop",
    "accept_delay",
    "blackhole",
    "loss",
    "duplicate",
    "reorder",
];

/// Why a type name and attributes do not make a toxic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToxicKindError {
    UnknownType(String),
    BadAttributes { type_name: String, message: String },
}

impl fmt::Display for ToxicKindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ToxicKindError::UnknownType(name) => write!(
                f,
                "unknown toxic type {:?}; known types: {}",
                shown(name),
                TOXIC_TYPES.join(", ")
            ),
            ToxicKindError::BadAttributes { type_name, message } => {
                write!(f, "attributes of a {type_name} toxic: {message}")
            }
        }
    }
}

impl std::error::Error for ToxicKindError {}

/// Reads a toxic's attributes and checks their bounds. serde's message says what was
/// expected but not where, so a failure is tried again field by field to name it.
fn attributes<T: DeserializeOwned + Bounded>(
    type_name: &str,
    value: Value,
) -> Result<T, ToxicKindError> {
    let bad = |message: String| ToxicKindError::BadAttributes {
        type_name: type_name.to_owned(),
        message,
    };
    let Value::Object(fields) = value else {
        return Err(bad(format!(
            "attributes must be an object, got {}",
            shown(&value.to_string())
        )));
    };
    let parsed: T = match serde_json::from_value(Value::Object(fields.clone())) {
        Ok(parsed) => parsed,
        Err(error) => {
            let culprit = fields.iter().find(|(name, field)| {
                let alone = serde_json::json!({ name.as_str(): field });
                serde_json::from_value::<T>(alone).is_err()
            });
            let error = clipped(&error.to_string(), 300);
            return Err(bad(match culprit {
                Some((name, _)) => format!("{}: {error}", shown(name)),
                None => error,
            }));
        }
    };
    parsed.check().map_err(bad)?;
    Ok(parsed)
}

impl ToxicKind {
    /// The registry: builds a toxic from its type name and its `attributes` object
    /// (`null` for none). Unknown attributes are ignored, as Toxiproxy does.
    pub fn from_json(type_name: &str, value: Value) -> Result<Self, ToxicKindError> {
        let value = if value.is_null() {
            Value::Object(serde_json::Map::new())
        } else {
            value
        };
        let kind = match type_name {
            "latency" => ToxicKind::Latency(attributes(type_name, value)?),
            "bandwidth" => ToxicKind::Bandwidth(attributes(type_name, value)?),
            "slow_close" => ToxicKind::SlowClose(attributes(type_name, value)?),
            "timeout" => ToxicKind::Timeout(attributes(type_name, value)?),
            "reset_peer" => ToxicKind::ResetPeer(attributes(type_name, value)?),
            "slicer" => ToxicKind::Slicer(attributes(type_name, value)?),
            "limit_data" => ToxicKind::LimitData(attributes(type_name, value)?),
            "noop" => ToxicKind::Noop(attributes(type_name, value)?),
            "accept_delay" => ToxicKind::AcceptDelay(attributes(type_name, value)?),
            "blackhole" => ToxicKind::Blackhole(attributes(type_name, value)?),
            "loss" => ToxicKind::Loss(attributes(type_name, value)?),
            "duplicate" => ToxicKind::Duplicate(attributes(type_name, value)?),
            "reorder" => ToxicKind::Reorder(attributes(type_name, value)?),
            other => return Err(ToxicKindError::UnknownType(other.to_owned())),
        };
        Ok(kind)
    }

    /// The type name, as the API shows it.
    pub fn type_name(&self) -> &'static str {
        match self {
            ToxicKind::Latency(_) => "latency",
            ToxicKind::Bandwidth(_) => "bandwidth",
            ToxicKind::SlowClose(_) => "slow_close",
            ToxicKind::Timeout(_) => "timeout",
            ToxicKind::ResetPeer(_) => "reset_peer",
            ToxicKind::Slicer(_) => "slicer",
            ToxicKind::LimitData(_) => "limit_data",
            ToxicKind::Noop(_) => "noop",
            ToxicKind::AcceptDelay(_) => "accept_delay",
            ToxicKind::Blackhole(_) => "blackhole",
            ToxicKind::Loss(_) => "loss",
            ToxicKind::Duplicate(_) => "duplicate",
            ToxicKind::Reorder(_) => "reorder",
        }
    }

    /// The attributes object, as the API shows it.
    pub fn attributes(&self) -> Value {
        fn json(value: &impl Serialize) -> Value {
            serde_json::to_value(value).unwrap_or(Value::Null)
        }
        match self {
            ToxicKind::Latency(t) => json(t),
            ToxicKind::Bandwidth(t) => json(t),
            ToxicKind::SlowClose(t) => json(t),
            ToxicKind::Timeout(t) => json(t),
            ToxicKind::ResetPeer(t) => json(t),
            ToxicKind::Slicer(t) => json(t),
            ToxicKind::LimitData(t) => json(t),
            ToxicKind::Noop(t) => json(t),
            ToxicKind::AcceptDelay(t) => json(t),
            ToxicKind::Blackhole(t) => json(t),
            ToxicKind::Loss(t) => json(t),
            ToxicKind::Duplicate(t) => json(t),
            ToxicKind::Reorder(t) => json(t),
        }
    }
}

/// Bytes on their way through a link's toxics: when they arrived from the socket and
/// the earliest time they may be written out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub data: Vec<u8>,
    pub arrived: Instant,
    pub not_before: Instant,
}

impl Piece {
    pub fn new(data: Vec<u8>, arrived: Instant) -> Self {
        Piece {
            data,
            arrived,
            not_before: arrived,
        }
    }

    /// Cuts into pieces of at most `size` bytes, all with this piece's times.
    pub fn split(self, size: usize) -> Vec<Piece> {
        let size = size.max(1);
        if self.data.len() <= size {
            return vec![self];
        }
        self.data
            .chunks(size)
            .map(|part| Piece {
                data: part.to_vec(),
                arrived: self.arrived,
                not_before: self.not_before,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_listed_type_round_trips_through_the_registry() {
        for name in TOXIC_TYPES {
            let kind = ToxicKind::from_json(name, Value::Null).unwrap();
            assert_eq!(kind.type_name(), *name);
            assert_eq!(ToxicKind::from_json(name, kind.attributes()).unwrap(), kind);
        }
    }

    #[test]
    fn unknown_types_and_wrong_attribute_types_are_refused_with_the_reason() {
        let error = ToxicKind::from_json("lag", Value::Null).unwrap_err();
        assert!(error.to_string().contains("latency, bandwidth"), "{error}");
        let error = ToxicKind::from_json("latency", json!({"latency": "slow"})).unwrap_err();
        assert!(matches!(error, ToxicKindError::BadAttributes { .. }));
        let error = ToxicKind::from_json("loss", json!({"probability": 2.0})).unwrap_err();
        assert!(error.to_string().contains("outside [0, 1]"), "{error}");
    }

    #[test]
    fn missing_attributes_default_to_zero_and_unknown_ones_are_ignored() {
        let kind = ToxicKind::from_json("latency", json!({"jitter": 5, "colour": "red"})).unwrap();
        assert_eq!(
            kind,
            ToxicKind::Latency(Latency {
                latency: 0,
                jitter: 5
            })
        );
    }
}
