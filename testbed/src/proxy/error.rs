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
    /// The listen address could not be bound. `client_fault` when the address is one
    /// this machine cannot have (400); taken or out of descriptors stays a 500, as in
    /// Toxiproxy.
    Listen {
        address: String,
        message: String,
        client_fault: bool,
    },
    /// A count limit (proxies per server, toxics per proxy) is reached.
    LimitReached {
        what: &'static str,
        limit: usize,
        /// What to do about it.
        hint: &'static str,
    },
}

/// Caps text echoed in an error (a name, a stream, a type): a hostile body can send a
/// megabyte-long value, and the answer need not repeat it.
pub fn shown(text: &str) -> String {
    clipped(text, 64)
}

/// `text` cut to `most` characters, saying how long it was: for messages that quote
/// what they were sent (serde's do).
pub fn clipped(text: &str, most: usize) -> String {
    match text.char_indices().nth(most) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}... ({} bytes)", &text[..end], text.len()),
    }
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
            ApiError::Listen { client_fault, .. } => {
                if *client_fault {
                    400
                } else {
                    500
                }
            }
            // Not 409: Toxiproxy's clients read 409 as "already exists".
            ApiError::LimitReached { .. } => 429,
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::BadRequestBody(detail) => write!(f, "bad request body: {detail}"),
            ApiError::MissingField(field) => write!(f, "missing required field: {field}"),
            ApiError::ProxyNotFound(name) => write!(f, "proxy not found: {}", shown(name)),
            ApiError::ProxyAlreadyExists(name) => {
                write!(f, "proxy already exists: {}", shown(name))
            }
            ApiError::InvalidStream(stream) => write!(
                f,
                "stream was invalid, can be either upstream or downstream: got {:?}",
                shown(stream)
            ),
            ApiError::InvalidToxicType(detail) => write!(f, "invalid toxic type: {detail}"),
            ApiError::ToxicAlreadyExists(name) => {
                write!(f, "toxic already exists: {}", shown(name))
            }
            ApiError::ToxicNotFound(name) => write!(f, "toxic not found: {}", shown(name)),
            ApiError::Listen {
                address, message, ..
            } => write!(f, "listen {}: {message}", shown(address)),
            ApiError::LimitReached { what, limit, hint } => {
                write!(f, "limit reached: at most {limit} {what}; {hint}")
            }
        }
    }
}

impl std::error::Error for ApiError {}
