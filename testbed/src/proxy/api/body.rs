//! Request bodies and responses: JSON in and out, errors as `{"error", "status"}`.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::proxy::error::{clipped, ApiError};

/// Parses a body as Toxiproxy does: any content type, unknown fields ignored.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // serde quotes the string it could not use, however long.
    serde_json::from_slice(body)
        .map_err(|error| ApiError::BadRequestBody(clipped(&error.to_string(), 300)))
}

pub fn json(status: StatusCode, value: &impl Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (status, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(error) => StatusCode::INTERNAL_SERVER_ERROR
            .with_message(&error.to_string())
            .into_response(),
    }
}

trait WithMessage {
    fn with_message(self, message: &str) -> Response;
}

impl WithMessage for StatusCode {
    fn with_message(self, message: &str) -> Response {
        (self, message.to_owned()).into_response()
    }
}

pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

pub fn error(error: &ApiError) -> Response {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json(
        status,
        &serde_json::json!({"error": error.to_string(), "status": error.status()}),
    )
}

/// Either a response or an error response.
pub fn respond(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(|failure| error(&failure))
}
