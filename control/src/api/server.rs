//! The API's accept loop: hyper's HTTP/1 connections around the axum
//! router, with the limits `axum::serve` does not have.
//!
//! - A connection takes a [`ConnectionSlot`] when accepted; with none free
//!   (overall, or for its client) it is answered 503 and closed at once, so
//!   an idle flood holds at most `max_connections` descriptors.
//! - hyper's header timer runs whenever a connection waits for a request's
//!   headers, from its opening and again after each response: it bounds both
//!   a slow sender of headers and an idle kept-alive connection.
//! - Bodies are read within their own limits by the router ([`super::body`]).
//! - A descriptor shortage on accept (EMFILE) pauses accepting briefly
//!   instead of spinning; the health checks, which need descriptors too,
//!   are the reason the cap is far below the process's limit.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt;

use super::client::ClientAddr;
use super::connections::{ConnectionSlots, Refusal};
use super::limits::ApiLimits;

/// Largest request head hyper buffers (request line and headers); larger
/// heads are answered 431.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Pause after an accept failed for lack of descriptors or memory.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// At most one warning per this interval about refused connections.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` within `limits` until `shutdown` completes,
/// then lets the connections finish their requests in flight.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ApiLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let slots = ConnectionSlots::new(limits.max_connections, limits.max_connections_per_client);
    let (closing, closing_seen) = watch::channel(false);
    let mut warned = Warnings::default();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                warned.accept_failed(&e);
                if is_resource_shortage(&e) {
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
                continue;
            }
        };
        let slot = match slots.try_take(peer.ip()) {
            Ok(slot) => slot,
            Err(refusal) => {
                warned.refused(refusal, peer, &limits);
                refuse(&stream, refusal);
                continue;
            }
        };
        let app = app.clone();
        let closing = closing_seen.clone();
        tokio::spawn(async move {
            serve_connection(stream, peer, app, &limits, closing).await;
            drop(slot);
        });
    }
    drop(listener);
    closing.send_replace(true);
    slots.all_closed().await;
    Ok(())
}

/// One connection, until the client closes it, a timeout does, or the
/// server shuts down (after the request in flight).
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: &ApiLimits,
    mut closing: watch::Receiver<bool>,
) {
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(ClientAddr(peer));
        let app = app.clone();
        async move { app.oneshot(request).await }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEAD_BYTES);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        () = shutting_down(&mut closing) => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// Completes once the server shuts down.
async fn shutting_down(closing: &mut watch::Receiver<bool>) {
    // An error means the server is gone: shut down as well.
    let _ = closing.wait_for(|closing| *closing).await;
}

/// Answers 503 without waiting (what fits in the socket's buffer, which
/// this short answer always does) and closes.
fn refuse(stream: &TcpStream, refusal: Refusal) {
    let body = match refusal {
        Refusal::Full => {
            r#"{"error": "the API has as many connections open as it accepts (RR_API_MAX_CONNECTIONS); retry in a moment"}"#
        }
        Refusal::ClientFull => {
            r#"{"error": "this client has its share of the API's connections open (a quarter of RR_API_MAX_CONNECTIONS); close some, or reuse one"}"#
        }
    };
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.try_write(answer.as_bytes());
}

fn is_resource_shortage(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Rate-limited warnings: a flood must not become a flood of log lines.
#[derive(Debug, Default)]
struct Warnings {
    last: Option<Instant>,
    suppressed: u64,
}

impl Warnings {
    fn due(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|at| now.duration_since(at) < WARN_EVERY)
        {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }

    fn refused(&mut self, refusal: Refusal, peer: SocketAddr, limits: &ApiLimits) {
        if let Some(suppressed) = self.due() {
            tracing::warn!(
                client = %peer,
                ?refusal,
                max_connections = limits.max_connections,
                per_client = limits.max_connections_per_client,
                suppressed,
                "API: connection refused, the connection cap is reached"
            );
        }
    }

    fn accept_failed(&mut self, e: &io::Error) {
        if let Some(suppressed) = self.due() {
            tracing::warn!(error = %e, suppressed, "API: accepting a connection failed");
        }
    }
}
