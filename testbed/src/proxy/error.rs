//! The API's errors: Toxiproxy's messages and status codes, with the detail after a
//! colon (as Toxiproxy joins its errors), so clients that match on either keep working.

use std::fmt;

/// Everything a proxy or toxic operation can refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// Malformed JSON, a wrong type or an out-of-range value; the detail says which.
    BadRequestBody(String),
    /// A required field (`name`, `upstream`) was missing or empty.
    MissingField(&'static str),
    ProxyNotFound(String),
    ProxyAlreadyExists(String),
    InvalidStream(String),
    InvalidToxicType(String),
    ToxicAlreadyExists(String),
    ToxicNotFound(String),
    /// The listen address could not be bound (taken, not local...).
    Listen {
        address: String,
        message: String,
    },
}

impl ApiError {
    /// The HTTP status Toxiproxy answers with.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::BadRequestBody(_)
            | ApiError::MissingField(_)
            | ApiError::InvalidStream(_)
            | ApiError::InvalidToxicType(_) => 400,
            ApiError::ProxyNotFound(_) | ApiError::ToxicNotFound(_) => 404,
            ApiError::ProxyAlreadyExists(_) | ApiError::ToxicAlreadyExists(_) => 409,
            ApiError::Listen { .. } => 500,
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::BadRequestBody(detail) => write!(f, "bad request body: {detail}"),
            ApiError::MissingField(field) => write!(f, "missing required field: {field}"),
            ApiError::ProxyNotFound(name) => write!(f, "proxy not found: {name}"),
            ApiError::ProxyAlreadyExists(name) => write!(f, "proxy already exists: {name}"),
            ApiError::InvalidStream(stream) => write!(
                f,
                "stream was invalid, can be either upstream or downstream: got {stream:?}"
            ),
            ApiError::InvalidToxicType(detail) => write!(f, "invalid toxic type: {detail}"),
            ApiError::ToxicAlreadyExists(name) => write!(f, "toxic already exists: {name}"),
            ApiError::ToxicNotFound(name) => write!(f, "toxic not found: {name}"),
            ApiError::Listen { address, message } => {
                write!(f, "listen {address}: {message}")
            }
        }
    }
}

impl std::error::Error for ApiError {}
