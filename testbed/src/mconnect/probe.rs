//! `--probe ADDR`: the server's HTTP liveness endpoint, as mconnect documents it.
//!
//! `GET /healthz` answers `200` with `hostname,remote-address`. A request carrying
//! `X-Malfunction: yes` switches the server to malfunctioning, after which every probe
//! answers `500` until a request carries `X-Malfunction` with any other value. The switch
//! takes effect for the request that carries it, so `curl -H 'X-Malfunction: yes'`
//! already shows the 500. This is what the balancer's health checks are tested against.
//!
//! The HTTP is the least a health checker needs: one request per connection, the
//! head read up to 8 KiB within 5 s, the answer closes the connection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MAX_HEAD: usize = 8 * 1024;
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// The probe's state: the name it answers with and the malfunction switch.
#[derive(Debug)]
pub struct ProbeState {
    name: String,
    malfunction: AtomicBool,
}

/// A request head, as far as the probe cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeRequest {
    pub method: String,
    pub path: String,
    pub malfunction: Option<String>,
}

/// An answer: status code and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeAnswer {
    pub status: u16,
    pub body: String,
}

impl ProbeState {
    pub fn new(name: String) -> Self {
        Self {
            name,
            malfunction: AtomicBool::new(false),
        }
    }

    pub fn is_malfunctioning(&self) -> bool {
        self.malfunction.load(Ordering::Relaxed)
    }

    /// Applies the request's `X-Malfunction` header, then answers it.
    pub fn answer(&self, request: &ProbeRequest, remote: SocketAddr) -> ProbeAnswer {
        if let Some(value) = &request.malfunction {
            self.malfunction
                .store(value.eq_ignore_ascii_case("yes"), Ordering::Relaxed);
        }
        let answer = |status: u16, body: String| ProbeAnswer { status, body };
        if request.path != "/healthz" {
            return answer(
                404,
                format!(
                    "no such path `{}`; the probe serves /healthz\n",
                    request.path
                ),
            );
        }
        if request.method != "GET" {
            return answer(
                405,
                format!("method `{}` not allowed; use GET\n", request.method),
            );
        }
        if self.is_malfunctioning() {
            return answer(500, "malfunction\n".to_owned());
        }
        answer(200, format!("{},{remote}\n", self.name))
    }
}

/// Parses a request head (everything before the blank line).
pub fn parse_request(head: &str) -> Option<ProbeRequest> {
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let target = request_line.next()?;
    if !request_line.next()?.starts_with("HTTP/") {
        return None;
    }
    let path = target.split('?').next().unwrap_or(target).to_owned();
    let malfunction = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("x-malfunction"))
        .map(|(_, value)| value.trim().to_owned());
    Some(ProbeRequest {
        method,
        path,
        malfunction,
    })
}

/// Serves probes until the listener fails.
pub async fn serve(listener: TcpListener, state: Arc<ProbeState>) {
    loop {
        match listener.accept().await {
            Ok((stream, remote)) => {
                tokio::spawn(answer_connection(stream, remote, Arc::clone(&state)));
            }
            Err(error) => {
                eprintln!("mconnect probe: accept failed: {error}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

async fn answer_connection(mut stream: TcpStream, remote: SocketAddr, state: Arc<ProbeState>) {
    let Ok(Some(head)) = tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream)).await else {
        return;
    };
    let answer = match parse_request(&head) {
        Some(request) => state.answer(&request, remote),
        None => ProbeAnswer {
            status: 400,
            body: "not an HTTP/1 request\n".to_owned(),
        },
    };
    let _ = tokio::time::timeout(HEAD_TIMEOUT, stream.write_all(&render(&answer))).await;
}

/// Reads up to the blank line ending the head; `None` when the peer closes first, sends
/// more than `MAX_HEAD` bytes, or sends something that is not text.
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        head.extend_from_slice(&chunk[..read]);
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            head.truncate(end);
            return String::from_utf8(head).ok();
        }
        if head.len() > MAX_HEAD {
            return None;
        }
    }
}

fn render(answer: &ProbeAnswer) -> Vec<u8> {
    let reason = match answer.status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Internal Server Error",
    };
    format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        answer.status,
        answer.body.len(),
        answer.body
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str, malfunction: Option<&str>) -> ProbeRequest {
        ProbeRequest {
            method: "GET".into(),
            path: path.into(),
            malfunction: malfunction.map(Into::into),
        }
    }

    fn remote() -> SocketAddr {
        "[fd00::7]:40000".parse().unwrap()
    }

    #[test]
    fn healthz_answers_name_and_remote_address() {
        let state = ProbeState::new("server-1".into());
        assert_eq!(
            state.answer(&get("/healthz", None), remote()),
            ProbeAnswer {
                status: 200,
                body: "server-1,[fd00::7]:40000\n".into()
            }
        );
    }

    #[test]
    fn malfunction_yes_makes_every_later_probe_fail_until_another_value_clears_it() {
        let state = ProbeState::new("s".into());
        assert_eq!(
            state.answer(&get("/healthz", Some("yes")), remote()).status,
            500
        );
        assert_eq!(state.answer(&get("/healthz", None), remote()).status, 500);
        assert_eq!(state.answer(&get("/healthz", None), remote()).status, 500);
        assert_eq!(
            state.answer(&get("/healthz", Some("no")), remote()).status,
            200
        );
        assert_eq!(state.answer(&get("/healthz", None), remote()).status, 200);
    }

    #[test]
    fn unknown_paths_and_methods_are_refused_by_name() {
        let state = ProbeState::new("s".into());
        let missing = state.answer(&get("/metrics", None), remote());
        assert_eq!(missing.status, 404);
        assert!(missing.body.contains("/metrics"));
        let post = ProbeRequest {
            method: "POST".into(),
            ..get("/healthz", None)
        };
        assert_eq!(state.answer(&post, remote()).status, 405);
    }

    #[test]
    fn parses_path_without_query_and_the_malfunction_header_in_any_case() {
        let head =
            "GET /healthz?verbose=1 HTTP/1.1\r\nHost: x\r\nx-MALFUNCTION:  yes \r\nAccept: */*";
        assert_eq!(parse_request(head), Some(get("/healthz", Some("yes"))));
    }

    #[test]
    fn refuses_heads_that_are_not_http_requests() {
        assert_eq!(parse_request(""), None);
        assert_eq!(parse_request("GET /healthz"), None);
        assert_eq!(parse_request("GET /healthz SMTP/1.0"), None);
    }

    #[test]
    fn the_rendered_answer_has_length_and_closes() {
        let text = String::from_utf8(render(&ProbeAnswer {
            status: 500,
            body: "malfunction\n".into(),
        }))
        .unwrap();
        assert!(text.starts_with("HTTP/1.1 500 Internal Server Error\r\n"));
        assert!(text.contains("Content-Length: 12\r\n"));
        assert!(text.contains("Connection: close\r\n"));
        assert!(text.ends_with("\r\n\r\nmalfunction\n"));
    }
}
