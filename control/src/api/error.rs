//! API errors: a status and a JSON body `{"error": "..."}` that says what
//! went wrong and what to send instead.

use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::backends::BackendError;

/// A refused request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// A body axum could not read as `T`, explained with the body to send.
    pub fn body(rejection: &JsonRejection, expected: &str) -> Self {
        let status = rejection.status();
        let message = match rejection {
            JsonRejection::MissingJsonContentType(_) => {
                format!(
                    "the body must be JSON with Content-Type: application/json; send {expected}"
                )
            }
            _ => format!("{}; send {expected}", rejection.body_text()),
        };
        Self::new(status, message)
    }
}

impl From<BackendError> for ApiError {
    fn from(e: BackendError) -> Self {
        let status = match e {
            BackendError::Unknown(_) | BackendError::UnknownService(_) => StatusCode::NOT_FOUND,
            BackendError::WeightOutOfRange(_) => StatusCode::BAD_REQUEST,
            BackendError::Exists(_)
            | BackendError::Full
            | BackendError::TooManyServices
            | BackendError::Table(_)
            | BackendError::Ipv6WithoutLbIpv6(_)
            | BackendError::ServiceExists(_) => StatusCode::CONFLICT,
        };
        let hint = match e {
            BackendError::Unknown(_) => "; GET /backends lists the backends",
            BackendError::Exists(_) => "; PATCH /backends/{ip} changes it",
            BackendError::UnknownService(_) => "; GET /services lists the services",
            _ => "",
        };
        Self::new(status, format!("{e}{hint}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.message });
        (self.status, Json(body)).into_response()
    }
}
