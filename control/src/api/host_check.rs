//! The Host check. A web page can make a browser send requests to any
//! address, and through DNS rebinding (a name of the attacker's that first
//! resolves to the attacker's server, then to 127.0.0.1) read the answers
//! as if they came from that server. Such requests carry the attacker's
//! name in `Host`: the API answers only to its own address, loopback
//! addresses, `localhost` and the names in `RR_API_HOSTS`, on its own port.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// The Host values the API answers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHosts {
    bound: SocketAddr,
    /// Lower-case names besides `localhost`.
    names: Vec<String>,
}

impl AllowedHosts {
    /// An API listening on `bound` (its real port, not 0) that also answers
    /// to `names`.
    pub fn new(bound: SocketAddr, names: &[String]) -> Self {
        Self {
            bound,
            names: names.iter().map(|n| n.to_ascii_lowercase()).collect(),
        }
    }

    /// Whether a request with this `Host` header is for this API.
    ///
    /// Any address literal is accepted when the API listens on all
    /// addresses (rebinding needs a name, so an address cannot be one);
    /// otherwise the listening address and loopback addresses.
    pub fn allows(&self, host: &str) -> bool {
        let Some((name, port)) = split_host(host) else {
            return false;
        };
        if port != self.bound.port() {
            return false;
        }
        match name.parse::<IpAddr>() {
            Ok(ip) => self.bound.ip().is_unspecified() || ip == self.bound.ip() || ip.is_loopback(),
            Err(_) => name == "localhost" || self.names.contains(&name),
        }
    }

    /// What to send, for the refusal.
    fn example(&self) -> String {
        if self.bound.ip().is_unspecified() {
            format!("Host: <this machine's address>:{}", self.bound.port())
        } else {
            format!("Host: {}", self.bound)
        }
    }
}

/// `name[:port]` or `[v6][:port]`, lower-cased, without a final dot; the
/// port defaults to HTTP's 80.
fn split_host(host: &str) -> Option<(String, u16)> {
    let host = host.trim().to_ascii_lowercase();
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (v6.to_owned(), port)
    } else {
        match host.split_once(':') {
            Some((name, port)) => (name.to_owned(), Some(port)),
            None => (host.clone(), None),
        }
    };
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => 80,
    };
    let name = name.strip_suffix('.').map_or(name.clone(), str::to_owned);
    (!name.is_empty()).then_some((name, port))
}

/// The middleware: 421 Misdirected Request for a Host this API is not.
pub async fn check_host(
    State(allowed): State<Arc<AllowedHosts>>,
    request: Request,
    next: Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    match host {
        Some(host) if allowed.allows(host) => next.run(request).await,
        Some(host) => ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "Host {host:?} is not this API; send {}, or add the name to RR_API_HOSTS",
                allowed.example()
            ),
        )
        .into_response(),
        None => ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            format!("the request has no Host header; send {}", allowed.example()),
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> AllowedHosts {
        AllowedHosts::new(
            "127.0.0.1:9700".parse().unwrap(),
            &["LB1.example.net".into()],
        )
    }

    #[test]
    fn its_address_loopback_names_and_listed_names_on_its_port_are_allowed() {
        let hosts = loopback();
        for ok in [
            "127.0.0.1:9700",
            "localhost:9700",
            "LOCALHOST:9700",
            "localhost.:9700",
            "[::1]:9700",
            "127.0.0.2:9700",
            "lb1.example.net:9700",
        ] {
            assert!(hosts.allows(ok), "{ok}");
        }
    }

    #[test]
    fn other_names_ports_and_garbage_are_refused() {
        let hosts = loopback();
        for refused in [
            "evil.example:9700",
            "localhost.evil.example:9700",
            "127.0.0.1:80",
            "127.0.0.1",
            "localhost",
            "192.0.2.10:9700",
            "[::1:9700",
            "[::1]9700",
            ":9700",
            "localhost:x",
            "",
        ] {
            assert!(!hosts.allows(refused), "{refused}");
        }
    }

    #[test]
    fn an_api_on_all_addresses_answers_to_any_address_but_not_to_any_name() {
        let hosts = AllowedHosts::new("0.0.0.0:9700".parse().unwrap(), &[]);
        assert!(hosts.allows("192.0.2.10:9700"));
        assert!(hosts.allows("[2001:db8::1]:9700"));
        assert!(!hosts.allows("rebind.evil.example:9700"));
        let on_80 = AllowedHosts::new("192.0.2.10:80".parse().unwrap(), &[]);
        assert!(on_80.allows("192.0.2.10"), "no port means 80");
    }
}
