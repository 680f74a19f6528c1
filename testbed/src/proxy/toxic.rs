//! A toxic as configured on a proxy: Toxiproxy's `{name, type, stream, toxicity,
//! attributes}` plus our optional `clients` (targeting) and `duration` (self-removal).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::client_range::ClientRange;
use super::error::{shown, ApiError};
use super::limits::{short_text, MAX_CLIENT_RANGES};
use super::toxics::{ToxicKind, ToxicKindError};

/// The longest `duration` a toxic may be given: a week. Any longer is "until removed",
/// which is what leaving `duration` out says.
pub const MAX_TOXIC_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// The direction a toxic acts on: `upstream` is client to server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Upstream,
    Downstream,
}

impl Stream {
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        match text.to_ascii_lowercase().as_str() {
            "upstream" => Ok(Stream::Upstream),
            "downstream" => Ok(Stream::Downstream),
            _ => Err(ApiError::InvalidStream(text.to_owned())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Upstream => "upstream",
            Stream::Downstream => "downstream",
        }
    }
}

/// One toxic on one proxy. `uid` tells apart two toxics that had the same name at
/// different times, so a re-added toxic rolls its toxicity afresh.
#[derive(Debug, Clone, PartialEq)]
pub struct Toxic {
    pub uid: u64,
    pub name: String,
    pub stream: Stream,
    pub toxicity: f64,
    pub kind: ToxicKind,
    pub clients: Vec<ClientRange>,
    /// The `duration` text as given, and what it means.
    pub duration: Option<(String, Duration)>,
}

/// The JSON a client sends to create or update a toxic. Unknown fields are ignored,
/// as Toxiproxy does.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ToxicInput {
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub type_name: Option<String>,
    pub stream: Option<String>,
    pub toxicity: Option<f64>,
    pub attributes: Option<Value>,
    pub clients: Option<Vec<String>>,
    pub duration: Option<String>,
}

/// The JSON the API shows for a toxic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToxicView {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
    pub stream: String,
    pub toxicity: f64,
    pub attributes: Value,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clients: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
}

fn toxicity(value: f64) -> Result<f64, ApiError> {
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(ApiError::BadRequestBody(format!(
            "toxicity {value} is outside [0, 1]"
        )))
    }
}

fn clients(texts: &[String]) -> Result<Vec<ClientRange>, ApiError> {
    if texts.len() > MAX_CLIENT_RANGES {
        return Err(ApiError::BadRequestBody(format!(
            "clients has {} ranges; at most {MAX_CLIENT_RANGES} are accepted",
            texts.len()
        )));
    }
    texts
        .iter()
        .map(|text| {
            text.parse()
                .map_err(|error: super::client_range::ClientRangeError| {
                    ApiError::BadRequestBody(error.to_string())
                })
        })
        .collect()
}

fn duration(text: &str) -> Result<(String, Duration), ApiError> {
    let parsed = humantime::parse_duration(text).map_err(|error| {
        ApiError::BadRequestBody(format!(
            "duration {:?} is not a duration like \"30s\" or \"500ms\": {error}",
            shown(text)
        ))
    })?;
    if parsed > MAX_TOXIC_DURATION {
        return Err(ApiError::BadRequestBody(format!(
            "duration {:?} is above the maximum, {}",
            shown(text),
            humantime::format_duration(MAX_TOXIC_DURATION)
        )));
    }
    Ok((text.to_owned(), parsed))
}

#[allow(clippy::needless_pass_by_value)] // used as a map_err function
fn kind_error(error: ToxicKindError) -> ApiError {
    match error {
        ToxicKindError::UnknownType(_) => ApiError::InvalidToxicType(error.to_string()),
        ToxicKindError::BadAttributes { .. } => ApiError::BadRequestBody(error.to_string()),
    }
}

impl Toxic {
    /// A new toxic from the API's JSON, with Toxiproxy's defaults: `downstream`,
    /// toxicity 1, name `<type>_<stream>`.
    pub fn create(input: ToxicInput, uid: u64) -> Result<Toxic, ApiError> {
        let type_name = input.type_name.unwrap_or_default();
        let stream = match input.stream.as_deref() {
            None | Some("") => Stream::Downstream,
            Some(text) => Stream::parse(text)?,
        };
        let kind = ToxicKind::from_json(&type_name, input.attributes.unwrap_or(Value::Null))
            .map_err(kind_error)?;
        let name = match input.name {
            Some(name) if !name.is_empty() => name,
            _ => format!("{}_{}", kind.type_name(), stream.as_str()),
        };
        short_text("name", &name)?;
        Ok(Toxic {
            uid,
            name,
            stream,
            toxicity: toxicity(input.toxicity.unwrap_or(1.0))?,
            kind,
            clients: clients(&input.clients.unwrap_or_default())?,
            duration: input.duration.as_deref().map(duration).transpose()?,
        })
    }

    /// This toxic with an update applied: attributes sent replace those attributes
    /// only, `toxicity`, `clients` and `duration` replace theirs; name, type and
    /// stream stay (as in Toxiproxy).
    pub fn updated(&self, input: ToxicInput) -> Result<Toxic, ApiError> {
        let mut next = self.clone();
        if let Some(update) = input.attributes {
            let mut merged = match self.kind.attributes() {
                Value::Object(map) => map,
                _ => Map::new(),
            };
            match update {
                Value::Object(fields) => merged.extend(fields),
                Value::Null => {}
                other => {
                    return Err(ApiError::BadRequestBody(format!(
                        "attributes must be an object, got {}",
                        shown(&other.to_string())
                    )))
                }
            }
            next.kind = ToxicKind::from_json(self.kind.type_name(), Value::Object(merged))
                .map_err(kind_error)?;
        }
        if let Some(value) = input.toxicity {
            next.toxicity = toxicity(value)?;
        }
        if let Some(texts) = input.clients {
            next.clients = clients(&texts)?;
        }
        if let Some(text) = input.duration {
            next.duration = Some(duration(&text)?);
        }
        Ok(next)
    }

    pub fn view(&self) -> ToxicView {
        ToxicView {
            name: self.name.clone(),
            type_name: self.kind.type_name().to_owned(),
            stream: self.stream.as_str().to_owned(),
            toxicity: self.toxicity,
            attributes: self.kind.attributes(),
            clients: self.clients.iter().map(ToString::to_string).collect(),
            duration: self.duration.as_ref().map(|(text, _)| text.clone()),
        }
    }

    /// Whether the toxic may act on a connection from `source` (before the roll).
    pub fn targets(&self, source: std::net::IpAddr) -> bool {
        self.clients.is_empty() || self.clients.iter().any(|range| range.contains(source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input(value: Value) -> ToxicInput {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn defaults_are_downstream_full_toxicity_and_type_stream_name() {
        let toxic = Toxic::create(input(json!({"type": "latency"})), 1).unwrap();
        assert_eq!(toxic.name, "latency_downstream");
        assert_eq!(toxic.stream, Stream::Downstream);
        assert!((toxic.toxicity - 1.0).abs() < f64::EPSILON);
        let up = Toxic::create(input(json!({"type": "noop", "stream": "upstream"})), 2).unwrap();
        assert_eq!(up.name, "noop_upstream");
    }

    #[test]
    fn an_update_merges_attributes_and_keeps_the_rest() {
        let toxic = Toxic::create(
            input(json!({"type": "latency", "attributes": {"latency": 100, "jitter": 5}})),
            1,
        )
        .unwrap();
        let next = toxic
            .updated(input(
                json!({"attributes": {"latency": 7}, "toxicity": 0.5}),
            ))
            .unwrap();
        assert_eq!(next.view().attributes, json!({"latency": 7, "jitter": 5}));
        assert!((next.toxicity - 0.5).abs() < f64::EPSILON);
        assert_eq!(next.name, toxic.name);
        assert_eq!(next.uid, toxic.uid);
    }

    #[test]
    fn bad_streams_types_toxicities_clients_and_durations_are_refused() {
        let cases = [
            (
                json!({"type": "latency", "stream": "sideways"}),
                400,
                "stream was invalid",
            ),
            (json!({"type": "lag"}), 400, "invalid toxic type"),
            (json!({}), 400, "invalid toxic type"),
            (
                json!({"type": "noop", "toxicity": 1.5}),
                400,
                "bad request body",
            ),
            (
                json!({"type": "noop", "clients": ["nowhere"]}),
                400,
                "bad request body",
            ),
            (
                json!({"type": "noop", "duration": "soon"}),
                400,
                "bad request body",
            ),
        ];
        for (body, status, message) in cases {
            let error = Toxic::create(input(body.clone()), 1).unwrap_err();
            assert_eq!(error.status(), status, "{body}");
            assert!(error.to_string().starts_with(message), "{body}: {error}");
        }
    }
}
