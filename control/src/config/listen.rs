//! `RR_API`: where the HTTP API listens, or that it does not.

use std::net::SocketAddr;

use super::error::{ConfigError, Problem, Setting};

/// The API's listening address; `None` when disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiListen(pub Option<SocketAddr>);

/// The default: loopback only, so that the API is not reachable from the
/// network unless asked for.
pub const DEFAULT_API: &str = "127.0.0.1:9700";

/// `ip:port`, or `none` / `off` to run without the API.
pub fn parse_api_listen(s: &str) -> Result<ApiListen, ConfigError> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("none") || t.eq_ignore_ascii_case("off") {
        return Ok(ApiListen(None));
    }
    t.parse()
        .map(|addr| ApiListen(Some(addr)))
        .map_err(|_| ConfigError::invalid(Setting::Api, s, Problem::NotSocketAddr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_listens_on_an_address_or_is_off() {
        assert_eq!(
            parse_api_listen(DEFAULT_API).unwrap(),
            ApiListen(Some("127.0.0.1:9700".parse().unwrap()))
        );
        assert_eq!(
            parse_api_listen("[::1]:80").unwrap(),
            ApiListen(Some("[::1]:80".parse().unwrap()))
        );
        assert_eq!(parse_api_listen("none").unwrap(), ApiListen(None));
        assert_eq!(parse_api_listen("OFF").unwrap(), ApiListen(None));
    }

    #[test]
    fn a_bad_api_address_says_what_is_accepted() {
        assert_eq!(
            parse_api_listen("localhost").unwrap_err().to_string(),
            "RR_API: \"localhost\" is not an ip:port address; expected ip:port such as \
             127.0.0.1:9700 or [::1]:9700, or none / off"
        );
    }
}
