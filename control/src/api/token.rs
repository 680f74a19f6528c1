//! The bearer token: required on every request that changes the balancer
//! (anything but GET and HEAD), and on reads too when asked, except
//! `/healthz`, which routers and orchestrators poll without secrets.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::config::ApiToken;

/// When the token is asked for.
#[derive(Debug, Clone, Default)]
pub struct TokenPolicy {
    /// `None`: no token is asked for (a loopback API without one).
    pub token: Option<ApiToken>,
    /// Reads need it too (`RR_API_TOKEN_READS`).
    pub on_reads: bool,
}

impl TokenPolicy {
    fn needed_for(&self, method: &Method, path: &str) -> bool {
        let read = *method == Method::GET || *method == Method::HEAD;
        !read || (self.on_reads && path != "/healthz")
    }
}

/// The token an `Authorization: Bearer <token>` header presents.
fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let scheme = value.get(..7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| value[7..].trim_ascii())
}

/// The middleware: 401 with `WWW-Authenticate: Bearer` where the token is
/// needed and not presented, or presented wrong.
pub async fn require_token(
    State(policy): State<Arc<TokenPolicy>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = &policy.token else {
        return next.run(request).await;
    };
    if !policy.needed_for(request.method(), request.uri().path()) {
        return next.run(request).await;
    }
    let (message, challenge) = match bearer(request.headers()) {
        Some(presented) if token.matches(presented) => return next.run(request).await,
        Some(_) => (
            "the token sent is not the API's token; send Authorization: Bearer <the token in RR_API_TOKEN_FILE or RR_API_TOKEN>",
            r#"Bearer realm="rusty_rail", error="invalid_token""#,
        ),
        None => (
            "this request needs the API token; send Authorization: Bearer <the token in RR_API_TOKEN_FILE or RR_API_TOKEN>",
            r#"Bearer realm="rusty_rail""#,
        ),
    };
    let mut response = ApiError::new(StatusCode::UNAUTHORIZED, message).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_always_need_the_token_and_reads_only_when_asked() {
        let writes_only = TokenPolicy {
            token: None,
            on_reads: false,
        };
        let all = TokenPolicy {
            token: None,
            on_reads: true,
        };
        for method in [Method::POST, Method::PATCH, Method::DELETE, Method::PUT] {
            assert!(writes_only.needed_for(&method, "/backends"));
        }
        assert!(!writes_only.needed_for(&Method::GET, "/backends"));
        assert!(all.needed_for(&Method::GET, "/backends"));
        assert!(all.needed_for(&Method::HEAD, "/metrics"));
        assert!(!all.needed_for(&Method::GET, "/healthz"));
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "bEaReR  abc ".parse().unwrap());
        assert_eq!(bearer(&headers), Some(&b"abc"[..]));
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&headers), None);
    }
}
