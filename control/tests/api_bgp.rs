//! `GET /bgp` and `/drain` without BGP, through real HTTP on loopback: a 404
//! that says how to turn BGP on, and the drain routes, being changes, behind
//! the token. (With BGP, the live lab's `bgp.rs` drives them.)

mod common;

use common::*;
use control::api::ApiState;
use control::config::ApiToken;

const TOKEN: &str = "9c1d4e7f2a6b3c8d5e0f1a2b3c4d5e6f";

fn raw(server: &Server, method: &str, path: &str, token: Option<&str>) -> String {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{auth}Content-Length: 0\r\n\r\n",
        server.addr
    )
}

#[tokio::test]
async fn without_bgp_the_routes_say_how_to_turn_it_on() {
    let server = serve(ApiState::new(publisher(1), workers(1))).await;
    for (method, path) in [("GET", "/bgp"), ("POST", "/drain"), ("DELETE", "/drain")] {
        let a = send_raw(server.addr, &raw(&server, method, path, None)).await;
        assert_eq!(a.status, 404, "{method} {path}: {}", a.body);
        assert!(
            a.error().contains("BGP is off; set RR_BGP_LOCAL_AS"),
            "{method} {path}: {}",
            a.body
        );
    }
    let a = send_raw(server.addr, &raw(&server, "PUT", "/drain", None)).await;
    assert_eq!(a.status, 405, "{}", a.body);
    assert!(a.error().contains("POST /drain"), "{}", a.body);
}

#[tokio::test]
async fn a_drain_needs_the_token_and_reading_bgp_does_not() {
    let token = ApiToken::new(TOKEN).unwrap();
    let server =
        serve(ApiState::new(publisher(1), workers(1)).with_token(Some(token), false)).await;
    for method in ["POST", "DELETE"] {
        let a = send_raw(server.addr, &raw(&server, method, "/drain", None)).await;
        assert_eq!(
            a.status, 401,
            "{method} /drain without the token: {}",
            a.body
        );
        let a = send_raw(server.addr, &raw(&server, method, "/drain", Some(TOKEN))).await;
        assert_eq!(
            a.status, 404,
            "{method} /drain with the token reaches the handler"
        );
    }
    let a = send_raw(server.addr, &raw(&server, "GET", "/bgp", None)).await;
    assert_eq!(a.status, 404, "a read needs no token: {}", a.body);
}
