//! `listen` and `upstream` addresses, checked when the API receives them.
//!
//! A listen address is bound while the API holds the proxy list's lock, so it is
//! never a name to look up (a slow resolver would hang every API call): `IP:PORT`,
//! `[IPv6]:PORT`, `localhost:PORT`, or `:PORT` (every IPv4 address, like Go's
//! `:PORT`); empty means `127.0.0.1:0`. An upstream is dialled per connection, off the
//! API's path, so it may be a name: `HOST:PORT` with a port from 1 to 65535.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::error::{shown, ApiError};
use super::limits::short_text;

fn refused(field: &str, text: &str, accepted: &str) -> ApiError {
    ApiError::BadRequestBody(format!("{field} {:?} is not {accepted}", shown(text)))
}

/// The address to bind for a `listen` text.
pub fn listen_address(text: &str) -> Result<SocketAddr, ApiError> {
    short_text("listen", text)?;
    let accepted = "IP:PORT, [IPv6]:PORT, localhost:PORT or :PORT with a port from 0 to 65535 (names other than localhost are not looked up)";
    let text = text.trim();
    if text.is_empty() {
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    }
    if let Ok(address) = text.parse::<SocketAddr>() {
        return Ok(address);
    }
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| refused("listen", text, accepted))?;
    let port: u16 = port
        .parse()
        .map_err(|_| refused("listen", text, accepted))?;
    let ip = match host {
        "" => Ipv4Addr::UNSPECIFIED,
        host if host.eq_ignore_ascii_case("localhost") => Ipv4Addr::LOCALHOST,
        _ => return Err(refused("listen", text, accepted)),
    };
    Ok(SocketAddr::from((ip, port)))
}

/// Whether `host` could be a DNS name: letters, digits, `-`, `_` and dots.
fn is_host_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'))
}

/// Checks an `upstream` text.
pub fn check_upstream(text: &str) -> Result<(), ApiError> {
    short_text("upstream", text)?;
    let accepted =
        "HOST:PORT (a name, an IPv4 address or an [IPv6] address, and a port from 1 to 65535)";
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| refused("upstream", text, accepted))?;
    let port_ok = port.parse::<u16>().is_ok_and(|port| port != 0);
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(inside) => inside.parse::<std::net::Ipv6Addr>().is_ok(),
        // An unbracketed IPv6 address cannot be told from its port.
        None => {
            host.parse::<Ipv4Addr>().is_ok()
                || (is_host_name(host) && host.parse::<IpAddr>().is_err())
        }
    };
    if port_ok && host_ok {
        Ok(())
    } else {
        Err(refused("upstream", text, accepted))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_takes_literals_localhost_and_bare_ports_but_never_looks_names_up() {
        let ok = |text: &str| listen_address(text).unwrap().to_string();
        assert_eq!(ok(""), "127.0.0.1:0");
        assert_eq!(ok("127.0.0.1:26379"), "127.0.0.1:26379");
        assert_eq!(ok("[::1]:0"), "[::1]:0");
        assert_eq!(ok("localhost:80"), "127.0.0.1:80");
        assert_eq!(ok(":8080"), "0.0.0.0:8080");
        for bad in [
            "example.com:80",
            "127.0.0.1",
            "127.0.0.1:65536",
            "127.0.0.1:-1",
            "::1:80",
            "localhost",
            &"a".repeat(300),
        ] {
            let error = listen_address(bad).unwrap_err();
            assert_eq!(error.status(), 400, "{bad}");
            assert!(error.to_string().contains("listen"), "{error}");
        }
    }

    #[test]
    fn upstream_is_host_and_a_port_that_can_be_dialled() {
        for good in ["127.0.0.1:9", "redis:6379", "db.internal:5432", "[::1]:80"] {
            assert!(check_upstream(good).is_ok(), "{good}");
        }
        for bad in [
            "127.0.0.1",
            "127.0.0.1:0",
            "127.0.0.1:70000",
            ":80",
            "::1:80",
            "two words:80",
            "[nope]:80",
            &format!("{}:80", "a".repeat(300)),
        ] {
            let error = check_upstream(bad).unwrap_err();
            assert!(error.to_string().contains("upstream"), "{bad}: {error}");
        }
    }
}
