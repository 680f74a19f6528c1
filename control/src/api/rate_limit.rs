//! Requests per second per client: a token bucket for each client address
//! (IPv6 by /64), refilled continuously, holding at most a burst. A request
//! finding the bucket empty is answered 429 with `Retry-After`, before any
//! other check, so that guessing tokens is as slow as anything else.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::client::ClientAddr;
use super::error::ApiError;

/// Clients tracked before the idle ones (full buckets) are forgotten: a
/// bound on memory whatever number of addresses a client sends from.
const MAX_TRACKED: usize = 4096;

/// Every client's bucket.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    /// `per_second` requests per client, `burst` at once (at least 1).
    pub fn new(per_second: u32, burst: u32) -> Self {
        Self {
            per_second: f64::from(per_second.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `client`'s bucket at `now`, or says how long
    /// until one is there.
    pub fn take(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        // Plain numbers: consistent whatever panicked while holding the lock.
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(&client) {
            buckets.retain(|_, b| self.refilled(*b, now) < self.burst);
        }
        let bucket = buckets.entry(client).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let tokens = self.refilled(*bucket, now);
        if tokens < 1.0 {
            *bucket = Bucket { tokens, at: now };
            return Err(Duration::from_secs_f64((1.0 - tokens) / self.per_second));
        }
        *bucket = Bucket {
            tokens: tokens - 1.0,
            at: now,
        };
        Ok(())
    }

    fn refilled(&self, bucket: Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        (bucket.tokens + elapsed * self.per_second).min(self.burst)
    }
}

/// The middleware: 429 for a client over its rate (requests without a
/// [`ClientAddr`], which only tests make, pass).
pub async fn limit_rate(
    State(limiter): State<Arc<RateLimiter>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(client) = request.extensions().get::<ClientAddr>().copied() else {
        return next.run(request).await;
    };
    match limiter.take(client.key(), Instant::now()) {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            // Whole seconds, as Retry-After has them, rounded up.
            let seconds = (wait.as_millis() as u64).div_ceil(1000).max(1);
            let mut response = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "more than {} requests per second from {}; retry after {seconds} s (RR_API_RATE sets the rate)",
                    limiter.per_second,
                    client.key()
                ),
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn a_client_gets_its_burst_then_its_rate() {
        let limiter = RateLimiter::new(10, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            limiter.take(ip(1), t0).unwrap();
        }
        let wait = limiter.take(ip(1), t0).unwrap_err();
        assert!(
            wait <= Duration::from_millis(100) && wait > Duration::ZERO,
            "{wait:?}"
        );
        limiter
            .take(ip(2), t0)
            .expect("another client has its own bucket");
        limiter
            .take(ip(1), t0 + Duration::from_millis(100))
            .expect("one more after a tenth of a second at 10/s");
        assert!(limiter
            .take(ip(1), t0 + Duration::from_millis(100))
            .is_err());
        for _ in 0..3 {
            limiter.take(ip(1), t0 + Duration::from_secs(60)).unwrap();
        }
        assert!(
            limiter.take(ip(1), t0 + Duration::from_secs(60)).is_err(),
            "an idle minute refills the burst, no more"
        );
    }

    #[test]
    fn idle_clients_are_forgotten_when_many_are_tracked() {
        let limiter = RateLimiter::new(1, 1);
        let t0 = Instant::now();
        for i in 0..MAX_TRACKED as u32 {
            limiter.take(IpAddr::from(i.to_be_bytes()), t0).unwrap();
        }
        let later = t0 + Duration::from_secs(5);
        limiter.take(ip(200), later).unwrap();
        assert_eq!(limiter.buckets.lock().unwrap().len(), 1);
    }
}
