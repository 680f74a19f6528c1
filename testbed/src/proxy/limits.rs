//! How much one server holds: proxies, toxics per proxy, connections per proxy, and
//! the size of what the API takes. Each count is checked where the thing is added,
//! under the lock that adds it, so no burst of requests can slip past it.
//!
//! Per-connection memory (bytes and pieces queued per direction) is bounded in
//! [`super::link`] and [`super::udp`]; toxic attributes in [`super::toxics::bounds`].

/// The count limits of a server (`--max-proxies`, `--max-toxics`,
/// `--max-connections`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Proxies on the server; one more is a 429.
    pub proxies: usize,
    /// Toxics on one proxy; one more is a 429.
    pub toxics_per_proxy: usize,
    /// Open TCP connections, or UDP sessions, of one proxy; one more is closed at once
    /// (TCP) or its datagram dropped (UDP), and counted in
    /// `testbed_proxy_refused_connections_total`.
    pub connections_per_proxy: usize,
}

/// 1024 proxies: each holds a listening socket, and a test suite uses tens.
pub const MAX_PROXIES: usize = 1024;
/// 64 toxics per proxy: every chunk of every connection walks the list.
pub const MAX_TOXICS_PER_PROXY: usize = 64;
/// 4096 connections per proxy: four descriptors each (two sockets and a splice
/// pipe), and up to ~9 MiB of queued data each under delaying toxics.
pub const MAX_CONNECTIONS_PER_PROXY: usize = 4096;

/// The largest request body the API reads; a longer one is a 413.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;
/// The longest proxy or toxic name, `listen` or `upstream` (a DNS name is at most
/// 253 bytes, so an address with its port fits).
pub const MAX_TEXT_BYTES: usize = 256;
/// The most `clients` ranges on one toxic: each connection checks them all.
pub const MAX_CLIENT_RANGES: usize = 64;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            proxies: MAX_PROXIES,
            toxics_per_proxy: MAX_TOXICS_PER_PROXY,
            connections_per_proxy: MAX_CONNECTIONS_PER_PROXY,
        }
    }
}

/// Refuses a name (or address) longer than [`MAX_TEXT_BYTES`], naming the field.
pub fn short_text(field: &str, text: &str) -> Result<(), super::ApiError> {
    if text.len() <= MAX_TEXT_BYTES {
        Ok(())
    } else {
        Err(super::ApiError::BadRequestBody(format!(
            "{field} {:?} is {} bytes; at most {MAX_TEXT_BYTES} are accepted",
            super::error::shown(text),
            text.len()
        )))
    }
}
