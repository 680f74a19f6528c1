//! The client library as the experiment runner calls it, against an in-process server
//! on loopback: pacing, `--keep`, the events file, and failures in one report.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use testbed::mconnect::{run_client, ClientConfig, Protocol, Server, ServerConfig};

/// Must be called inside the test's runtime.
fn start_server(name: &str, udp: bool) -> SocketAddr {
    let config = ServerConfig {
        address: "127.0.0.1:0".parse().unwrap(),
        name: name.to_owned(),
        udp,
        probe: None,
        log_connections: false,
    };
    let server = Server::bind(config).unwrap();
    let address = server.local_addr().unwrap();
    tokio::spawn(server.serve());
    address
}

fn events(path: &std::path::Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    std::fs::remove_file(path).unwrap();
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn scratch(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("mconnect-library-{}-{name}", std::process::id()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paced_run_takes_the_time_its_rate_needs() {
    let server = start_server("paced", false);
    let mut config = ClientConfig::new(server, 20);
    config.rate = Some(100.0);
    let report = run_client(&config).await.unwrap();
    assert_eq!(report.hosts.get("paced"), Some(&20));
    // The 20th connection opens 190 ms after the first.
    assert!(
        report.connect_duration >= Duration::from_millis(190),
        "{:?}",
        report.connect_duration
    );
    assert!(
        report.connect_duration < Duration::from_secs(2),
        "{:?}",
        report.connect_duration
    );
    assert_eq!(report.rate, Some(100.0));
    assert!(!report.failed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_closes_no_connection_before_every_connection_has_replied() {
    let server = start_server("kept", false);
    let path = scratch("keep.jsonl");
    let mut config = ClientConfig::new(server, 50);
    config.keep = true;
    config.max_concurrent = 8;
    config.events = Some(path.clone());
    let report = run_client(&config).await.unwrap();
    assert_eq!(report.hosts.get("kept"), Some(&50));
    let lines = events(&path);
    let at = |kind: &str| -> Vec<u64> {
        lines
            .iter()
            .filter(|e| e["event"] == kind)
            .map(|e| e["elapsed_ns"].as_u64().unwrap())
            .collect()
    };
    let (replies, closes) = (at("reply"), at("closed"));
    assert_eq!((replies.len(), closes.len()), (50, 50));
    let last_reply = replies.iter().max().unwrap();
    assert!(
        closes.iter().all(|closed| closed >= last_reply),
        "a kept connection closed before the last reply"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_keep_connections_close_as_soon_as_they_replied() {
    let server = start_server("brief", false);
    let path = scratch("brief.jsonl");
    let mut config = ClientConfig::new(server, 40);
    config.max_concurrent = 1;
    config.events = Some(path.clone());
    run_client(&config).await.unwrap();
    // One at a time: every connection is closed before the next one opens.
    let kinds: Vec<String> = events(&path)
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<&str> = (0..40)
        .flat_map(|_| ["opened", "reply", "closed"])
        .collect();
    assert_eq!(kinds, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_connection_ends_with_exactly_one_terminal_event_even_when_connects_fail() {
    // A port nobody listens on: bind one, note it, close it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let path = scratch("failed.jsonl");
    let mut config = ClientConfig::new(closed, 10);
    config.events = Some(path.clone());
    let report = run_client(&config).await.unwrap();
    assert_eq!(report.failed_connects, 10);
    assert!(report.failed());
    assert!(
        report.connect_latency.is_none(),
        "no connect succeeded, so none was timed"
    );
    let lines = events(&path);
    for connection in 0..10u64 {
        let kinds: Vec<&str> = lines
            .iter()
            .filter(|e| e["connection"] == connection)
            .map(|e| e["event"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["connect_failed"], "connection {connection}");
        let reason = lines
            .iter()
            .find(|e| e["connection"] == connection)
            .unwrap()["reason"]
            .as_str()
            .unwrap();
        assert!(reason.contains("refused"), "{reason}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_runs_count_the_server_and_time_its_replies() {
    let server = start_server("udp-server", true);
    let mut config = ClientConfig::new(server, 30);
    config.protocol = Protocol::Udp;
    let report = run_client(&config).await.unwrap();
    assert_eq!(report.hosts.get("udp-server"), Some(&30));
    assert_eq!(report.reply_latency.unwrap().count, 30);
    assert_eq!(report.protocol, Protocol::Udp);
}
