//! Who may use the API, through real HTTP on loopback: the token on
//! changes (and on reads when asked), and the Host check against DNS
//! rebinding.

mod common;

use common::*;
use control::api::ApiState;
use control::config::ApiToken;

const TOKEN: &str = "3f8a61c0d2b94e7aa5c1d0e9f7b26a44";

fn token() -> ApiToken {
    ApiToken::new(TOKEN).unwrap()
}

/// `method path` with `headers` (each ending in CRLF) and an optional JSON body.
async fn request(
    server: &Server,
    method: &str,
    path: &str,
    headers: &str,
    body: Option<&str>,
) -> Answer {
    let body_headers = body.map_or(String::new(), |b| {
        format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        )
    });
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{headers}{body_headers}\r\n{}",
        server.addr,
        body.unwrap_or("")
    );
    send_raw(server.addr, &request).await
}

fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}\r\n")
}

fn assert_unauthorized(a: &Answer, what: &str) {
    assert_eq!(a.status, 401, "{what}: {}", a.body);
    let challenge = a.header("www-authenticate").unwrap_or_default();
    assert!(challenge.starts_with("Bearer"), "{what}: {challenge:?}");
    assert!(
        a.error()
            .contains("send Authorization: Bearer <the token in RR_API_TOKEN_FILE"),
        "{what}: {}",
        a.error()
    );
}

#[tokio::test]
async fn changes_need_the_token_and_reads_do_not_unless_asked() {
    let p = publisher(2);
    let server = serve(ApiState::new(p.clone(), workers(1)).with_token(Some(token()), false)).await;
    let add = r#"{"ip": "10.1.0.7"}"#;
    let patch = r#"{"drain": true}"#;
    let changes = [
        ("POST", "/backends", Some(add)),
        ("PATCH", "/backends/10.1.0.1", Some(patch)),
        ("DELETE", "/backends/10.1.0.2", None),
    ];
    for (method, path, body) in changes {
        let a = request(&server, method, path, "", body).await;
        assert_unauthorized(&a, &format!("{method} without a token"));
        let a = request(&server, method, path, &bearer("not-the-token-at-all"), body).await;
        assert_unauthorized(&a, &format!("{method} with a wrong token"));
        assert!(a
            .header("www-authenticate")
            .unwrap()
            .contains("invalid_token"));
    }
    assert_eq!(p.generation(), 1, "nothing was changed without the token");
    assert_eq!(p.backends().len(), 2);

    let statuses: Vec<u16> = {
        let mut statuses = Vec::new();
        for (method, path, body) in changes {
            statuses.push(
                request(&server, method, path, &bearer(TOKEN), body)
                    .await
                    .status,
            );
        }
        statuses
    };
    assert_eq!(statuses, [201, 200, 200]);
    assert!(p.backend(ip(7)).is_some() && p.backend(ip(2)).is_none());

    for path in ["/backends", "/stats", "/metrics"] {
        let a = request(&server, "GET", path, "", None).await;
        assert_eq!(a.status, 200, "GET {path} needs no token by default");
    }
    // 503 now (no backend in rotation), but an answer, not a 401.
    let a = request(&server, "GET", "/healthz", "", None).await;
    assert_eq!(a.status, 503, "{}", a.body);
}

#[tokio::test]
async fn with_token_reads_every_read_but_healthz_needs_the_token() {
    let server =
        serve(ApiState::new(publisher(1), workers(1)).with_token(Some(token()), true)).await;
    for path in ["/backends", "/stats", "/metrics"] {
        let a = request(&server, "GET", path, "", None).await;
        assert_unauthorized(&a, &format!("GET {path}"));
        let a = request(&server, "GET", path, &bearer(TOKEN), None).await;
        assert_eq!(a.status, 200, "GET {path} with the token");
    }
    let a = request(&server, "GET", "/healthz", "", None).await;
    assert_eq!(a.status, 200, "routers poll /healthz without secrets");
}

#[tokio::test]
async fn without_a_token_configured_nothing_asks_for_one() {
    let p = publisher(1);
    let server = serve(ApiState::new(p.clone(), workers(1))).await;
    let a = request(&server, "DELETE", "/backends/10.1.0.1", "", None).await;
    assert_eq!(a.status, 200, "{}", a.body);
}

/// `GET /backends` with this `Host` header.
async fn get_with_host(server: &Server, host: &str) -> Answer {
    let request = format!("GET /backends HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    send_raw(server.addr, &request).await
}

#[tokio::test]
async fn requests_for_another_host_are_refused_as_dns_rebinding_would_send_them() {
    let server =
        serve(ApiState::new(publisher(1), workers(1)).with_hosts(&["lb1.example.net".to_owned()]))
            .await;
    let port = server.addr.port();
    for host in [
        format!("rebind.evil.example:{port}"),
        format!("localhost:{}", port.wrapping_add(1)),
        "localhost".to_owned(),
    ] {
        let a = get_with_host(&server, &host).await;
        assert_eq!(a.status, 421, "Host {host}: {}", a.body);
        assert!(
            a.error().contains(&format!(
                "send Host: {}, or add the name to RR_API_HOSTS",
                server.addr
            )),
            "{}",
            a.error()
        );
    }
    let a = send_raw(
        server.addr,
        "GET /backends HTTP/1.0\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(a.status, 421, "no Host at all");
    for host in [
        server.addr.to_string(),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
        format!("LB1.example.net:{port}"),
    ] {
        let a = get_with_host(&server, &host).await;
        assert_eq!(a.status, 200, "Host {host}: {}", a.body);
    }
}

#[tokio::test]
async fn the_host_check_comes_before_the_token() {
    let server =
        serve(ApiState::new(publisher(1), workers(1)).with_token(Some(token()), false)).await;
    let request = format!(
        "DELETE /backends/10.1.0.1 HTTP/1.1\r\nHost: evil.example:{}\r\n{}Connection: close\r\n\r\n",
        server.addr.port(),
        bearer(TOKEN)
    );
    assert_eq!(send_raw(server.addr, &request).await.status, 421);
}
