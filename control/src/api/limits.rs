//! How much of the balancer one API client can hold: connections, time and
//! requests. The API shares the process with the health checks and the
//! workers; these bounds keep a flood of API clients from taking the file
//! descriptors, threads or time the probes need.

use std::time::Duration;

use crate::config::{ApiAccessArgs, DEFAULT_MAX_CONNECTIONS, DEFAULT_RATE};

/// The API's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiLimits {
    /// Connections open at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// Connections open at once from one client address (one IPv6 /64), so
    /// that one client cannot take every connection from the others.
    pub max_connections_per_client: usize,
    /// Time a connection has to send a request's headers, counted from its
    /// opening or from the previous response: also how long a kept-alive
    /// connection may sit idle. Then it is closed.
    pub header_timeout: Duration,
    /// Time a request has to send its body once its headers are in; then
    /// it is answered 408.
    pub body_timeout: Duration,
    /// Largest request body read (the API's JSON bodies are tens of bytes);
    /// larger ones are answered 413.
    pub max_body_bytes: usize,
    /// Requests per second per client address, refilled continuously.
    pub rate_per_second: u32,
    /// Requests a client may send at once before the rate applies.
    pub burst: u32,
}

/// Header timeout: a person typing a request by hand in telnet would need
/// more; every HTTP client sends its headers in one write.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Body timeout: a JSON body of tens of bytes arrives in one round trip.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest body: the largest valid one is under 100 bytes.
pub const MAX_BODY_BYTES: usize = 4096;

impl Default for ApiLimits {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_CONNECTIONS, DEFAULT_RATE)
    }
}

impl ApiLimits {
    /// The limits for `max_connections` and `rate_per_second`; the rest
    /// follows from them: a quarter of the connections per client, bursts
    /// of twice the rate.
    pub fn new(max_connections: usize, rate_per_second: u32) -> Self {
        Self {
            max_connections,
            max_connections_per_client: max_connections.div_ceil(4),
            header_timeout: HEADER_TIMEOUT,
            body_timeout: BODY_TIMEOUT,
            max_body_bytes: MAX_BODY_BYTES,
            rate_per_second,
            burst: rate_per_second.saturating_mul(2),
        }
    }

    /// `RR_API_MAX_CONNECTIONS` and `RR_API_RATE`.
    pub fn from_args(args: &ApiAccessArgs) -> Self {
        Self::new(args.api_max_connections, args.api_rate)
    }
}
