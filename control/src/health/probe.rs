//! One health probe of one backend: a TCP connect, or an HTTP/1.0 GET whose
//! status must be 2xx or 3xx. Written by hand over a tokio `TcpStream`: a
//! request line and a status line are all a health check needs.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::HealthCheck;

/// Bytes read at most while looking for the status line.
const MAX_STATUS_LINE: usize = 1024;

/// Why a probe failed.
#[derive(Debug)]
pub enum ProbeError {
    /// No answer within the timeout.
    Timeout(Duration),
    Connect(io::Error),
    /// The connection broke while sending the request or reading the answer.
    Io(io::Error),
    /// The answer does not start with an HTTP status line.
    NotHttp(String),
    /// An HTTP status other than 2xx or 3xx.
    Status(u16),
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout(t) => write!(f, "no answer within {}", humantime::format_duration(*t)),
            Self::Connect(e) => write!(f, "connect failed: {e}"),
            Self::Io(e) => write!(f, "connection failed: {e}"),
            Self::NotHttp(start) => write!(f, "answer is not HTTP: {start:?}"),
            Self::Status(code) => write!(f, "HTTP status {code}, expected 2xx or 3xx"),
        }
    }
}

impl std::error::Error for ProbeError {}

/// Probes `addr` (IPv4, or IPv6 as `[addr]:port`) with `check`, all of it
/// within `timeout`. `HealthCheck::None` always succeeds.
pub async fn probe(check: &HealthCheck, addr: IpAddr, timeout: Duration) -> Result<(), ProbeError> {
    let run = async {
        match check {
            HealthCheck::None => Ok(()),
            HealthCheck::Tcp { port } => connect(SocketAddr::from((addr, *port))).await.map(drop),
            HealthCheck::Http { port, path } => {
                let status = http_get(SocketAddr::from((addr, *port)), path).await?;
                if (200..400).contains(&status) {
                    Ok(())
                } else {
                    Err(ProbeError::Status(status))
                }
            }
        }
    };
    tokio::time::timeout(timeout, run)
        .await
        .unwrap_or(Err(ProbeError::Timeout(timeout)))
}

/// The Host header's value for a backend: an IPv6 address in brackets
/// (RFC 9110's authority form; a bare one's colons read as a port).
fn host_header(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    }
}

async fn connect(to: SocketAddr) -> Result<TcpStream, ProbeError> {
    TcpStream::connect(to).await.map_err(ProbeError::Connect)
}

/// Sends `GET path` and returns the status code of the answer.
async fn http_get(to: SocketAddr, path: &str) -> Result<u16, ProbeError> {
    let mut stream = connect(to).await?;
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: {}\r\nUser-Agent: rusty_rail-health\r\nConnection: close\r\n\r\n",
        host_header(to.ip())
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(ProbeError::Io)?;
    let mut answer = Vec::with_capacity(256);
    let mut chunk = [0u8; 256];
    while !answer.contains(&b'\n') && answer.len() < MAX_STATUS_LINE {
        let n = stream.read(&mut chunk).await.map_err(ProbeError::Io)?;
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&chunk[..n]);
    }
    parse_status_line(&answer)
}

/// The status code of `HTTP/1.x NNN ...`.
fn parse_status_line(answer: &[u8]) -> Result<u16, ProbeError> {
    let line_end = answer
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(answer.len());
    let line = String::from_utf8_lossy(&answer[..line_end]);
    let line = line.trim_end();
    let mut words = line.split(' ');
    let version = words.next().unwrap_or_default();
    let code = words.next().unwrap_or_default();
    if !version.starts_with("HTTP/") || code.len() != 3 {
        return Err(ProbeError::NotHttp(line.chars().take(64).collect()));
    }
    code.parse()
        .map_err(|_| ProbeError::NotHttp(line.chars().take(64).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A one-shot server on loopback that answers every connection with
    /// `answer` (after reading the request), and the port it listens on.
    async fn server(answer: &'static [u8]) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(answer).await;
            }
        });
        port
    }

    fn http(port: u16, path: &str) -> HealthCheck {
        HealthCheck::Http {
            port,
            path: path.into(),
        }
    }

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn status_lines_are_parsed_strictly() {
        assert_eq!(
            parse_status_line(b"HTTP/1.1 204 No Content\r\n").unwrap(),
            204
        );
        assert_eq!(parse_status_line(b"HTTP/1.0 302").unwrap(), 302);
        assert!(matches!(
            parse_status_line(b"SSH-2.0-OpenSSH\r\n"),
            Err(ProbeError::NotHttp(_))
        ));
        assert!(matches!(
            parse_status_line(b"HTTP/1.1 2000 x"),
            Err(ProbeError::NotHttp(_))
        ));
        assert!(matches!(
            parse_status_line(b""),
            Err(ProbeError::NotHttp(_))
        ));
    }

    #[tokio::test]
    async fn a_tcp_probe_succeeds_on_a_listening_port_and_fails_on_a_closed_one() {
        let port = server(b"").await;
        probe(&HealthCheck::Tcp { port }, LOCAL, SECOND)
            .await
            .unwrap();
        let closed = {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap().port()
        };
        let err = probe(&HealthCheck::Tcp { port: closed }, LOCAL, SECOND)
            .await
            .unwrap_err();
        assert!(err.to_string().starts_with("connect failed: "), "{err}");
    }

    #[tokio::test]
    async fn an_http_probe_accepts_2xx_and_3xx_only() {
        let ok = server(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").await;
        let moved = server(b"HTTP/1.0 301 Moved\r\n\r\n").await;
        let missing = server(b"HTTP/1.1 404 Not Found\r\n\r\n").await;
        let garbage = server(b"hello\n").await;
        probe(&http(ok, "/"), LOCAL, SECOND).await.unwrap();
        probe(&http(moved, "/x"), LOCAL, SECOND).await.unwrap();
        let err = probe(&http(missing, "/"), LOCAL, SECOND).await.unwrap_err();
        assert_eq!(err.to_string(), "HTTP status 404, expected 2xx or 3xx");
        let err = probe(&http(garbage, "/"), LOCAL, SECOND).await.unwrap_err();
        assert_eq!(err.to_string(), "answer is not HTTP: \"hello\"");
    }

    /// The port of `listener` and the first request it receives, answered
    /// with 200.
    fn first_request(listener: TcpListener) -> (u16, tokio::task::JoinHandle<String>) {
        let port = listener.local_addr().unwrap().port();
        let request = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 1024];
            let n = s.read(&mut buf).await.unwrap();
            s.write_all(b"HTTP/1.0 200 OK\r\n\r\n").await.unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        (port, request)
    }

    #[tokio::test]
    async fn an_http_probe_sends_the_path_in_a_get() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (port, request) = first_request(listener);
        probe(&http(port, "/ready?deep=1"), LOCAL, SECOND)
            .await
            .unwrap();
        let request = request.await.unwrap();
        assert!(
            request.starts_with("GET /ready?deep=1 HTTP/1.0\r\nHost: 127.0.0.1\r\n"),
            "{request}"
        );
    }

    #[tokio::test]
    async fn a_server_that_never_answers_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // Accepted by the kernel's backlog, never answered.
        let timeout = Duration::from_millis(100);
        let err = probe(&http(port, "/"), LOCAL, timeout).await.unwrap_err();
        assert_eq!(err.to_string(), "no answer within 100ms");
        drop(listener);
    }

    #[tokio::test]
    async fn an_ipv6_backend_is_probed_at_bracketed_address_and_port() {
        let listener = match TcpListener::bind("[::1]:0").await {
            Ok(listener) => listener,
            Err(e) => {
                let _ = host::capability::machine_lacks(format!("IPv6 loopback ([::1]): {e}"));
                return;
            }
        };
        let (port, request) = first_request(listener);
        let v6 = IpAddr::V6(std::net::Ipv6Addr::LOCALHOST);
        probe(&http(port, "/healthz"), v6, SECOND).await.unwrap();
        let request = request.await.unwrap();
        assert!(
            request.starts_with("GET /healthz HTTP/1.0\r\nHost: [::1]\r\n"),
            "{request}"
        );
    }
}
