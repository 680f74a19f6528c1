//! The balancer's inputs as the hostile-input checks reach them, shared by
//! `control/tests/inputs_never_panic.rs` and the control fuzz targets
//! (included by path in both): its command line with every `RR_*` setting,
//! and its API served in-process over a fresh backend set.

// Each includer uses its part.
#![allow(dead_code)]

use std::net::SocketAddr;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use clap::{CommandFactory, Parser};
use control::api::{self, ApiState};
use control::backends::{BackendSet, Publisher, TableSettings};
use control::live::args::LiveArgs;
use dataplane::counters::WorkerCounters;
use tower::ServiceExt;

/// The balancer's command line: every `RR_*` setting as a flag.
#[derive(Debug, Parser)]
pub struct Cli {
    #[command(flatten)]
    live: LiveArgs,
}

/// The `RR_*` variables the balancer has, as the configuration file is
/// checked against them.
pub fn known_settings() -> Vec<String> {
    Cli::command()
        .get_arguments()
        .filter_map(|a| a.get_env()?.to_str().map(str::to_owned))
        .collect()
}

/// Every flag that takes a value, as `--name`, with its default value
/// (empty without one).
pub fn value_flags() -> Vec<(String, String)> {
    Cli::command()
        .get_arguments()
        .filter(|a| a.get_action().takes_values())
        .filter_map(|a| {
            let default = a
                .get_default_values()
                .first()
                .and_then(|d| d.to_str())
                .unwrap_or_default();
            Some((format!("--{}", a.get_long()?), default.to_owned()))
        })
        .collect()
}

/// Parses the command line with `flag` set to `value` (and the required
/// settings given unless `flag` is one of them); the error's text on a
/// refusal.
pub fn parse_setting(flag: &str, value: &str) -> Result<(), String> {
    let mut args = vec!["rusty_rail".to_owned(), format!("{flag}={value}")];
    for required in ["--device=eth0", "--target-ips=10.1.0.1"] {
        if !required.starts_with(&format!("{flag}=")) {
            args.push(required.to_owned());
        }
    }
    Cli::try_parse_from(args)
        .map(drop)
        .map_err(|error| error.to_string())
}

/// The service every fresh API has, so routes under `/services/web` exist.
pub const WEB_SERVICE: &str = r#"{"name": "web", "vip": "192.0.2.10", "protocol": "tcp", "port": 80, "backends": ["10.2.0.1", "10.2.0.2:2"], "table_size": 1009, "hash": "5-tuple"}"#;

/// Where the API is taken to listen: the Host every request names.
fn bound() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9))
}

/// A fresh API over backends 10.1.0.1-3 and the service `web`, so that
/// one input's change never meets another's.
pub async fn fresh_api() -> axum::Router {
    let mut set = BackendSet::default();
    for last in 1..=3u8 {
        let ip = std::net::IpAddr::from([10, 1, 0, last]);
        set.add(ip, 1).expect("a backend");
        set.set_mac(ip, Some([2, 0, 0, 0, 0, 9])).expect("its MAC");
    }
    let settings = TableSettings {
        lb_ipv4: [192, 0, 2, 10].into(),
        lb_ipv6: Some("2001:db8::10".parse().expect("an address")),
        lb_mac: [2, 0, 0, 0, 0, 1],
        vips: Vec::new(),
        seed: 3,
        table_size: 251,
        mtu: 1500,
    };
    let publisher = Publisher::new(settings, set).expect("a publisher");
    let state = ApiState::new(publisher, vec![WorkerCounters::new_shared()]);
    let router = api::router(state, bound());
    let (status, body) = send(&router, "POST", "/services", WEB_SERVICE.into()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    router
}

/// One request through the router; the answer's status and body.
pub async fn send(
    router: &axum::Router,
    method: &str,
    path: &str,
    body: Vec<u8>,
) -> (StatusCode, String) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", bound().to_string())
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("a request");
    let response = router.clone().oneshot(request).await.expect("an answer");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("the body");
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// What is wrong with an answer to a body: a 5xx, or a 4xx without a JSON
/// `error` that says something.
pub fn fault_in_answer(status: StatusCode, body: &str) -> Option<String> {
    if status.is_server_error() {
        return Some(format!("{status}: {body}"));
    }
    if status.is_client_error() {
        let error = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|value| value["error"].as_str().map(str::to_owned))
            .unwrap_or_default();
        if error.trim().is_empty() {
            return Some(format!(
                "{status} without an error that says something: {body}"
            ));
        }
    }
    None
}
