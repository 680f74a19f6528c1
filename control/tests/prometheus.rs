//! `/metrics` as Prometheus itself sees it: `promtool check metrics` finds
//! nothing to complain about, and a real Prometheus server scraping the API
//! on loopback stores what it exposes. Skipped (`host::capability`) where the
//! tools are not installed (scripts/ensure-tools.sh installs them).

mod common;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::*;
use dataplane::verdict::{DropReason, Verdict};
use host::capability::Need;

/// Serves counters with some traffic, a drained backend and an IPv6 one
/// (whose address is a label value like any other).
async fn busy_server() -> Server {
    let counters = workers(2);
    counters[0].count(Verdict::ToWire, 1500);
    counters[1].count(Verdict::Drop(DropReason::NoBackend), 90);
    counters[0].backend_packets[0].add(1);
    counters[1].conntrack_entries.set(3);
    let p = publisher(2);
    p.set_weight(ip(1), 3).unwrap();
    p.set_drain(ip(2), true).unwrap();
    p.add("2001:db8::3".parse().unwrap(), 2).unwrap();
    start(p, counters).await
}

#[tokio::test]
async fn promtool_finds_no_problem_in_the_metrics() {
    host::skip_unless!(Need::Tool("promtool"));
    let server = busy_server().await;
    let text = get(server.addr, "/metrics").await.body;
    assert!(
        text.contains("rr_backend_weight{backend=\"2001:db8::3\"} 2"),
        "{text}"
    );
    assert_promtool_accepts(&text);
}

/// A Prometheus server, killed when dropped (also when the test fails).
struct PrometheusServer {
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl PrometheusServer {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn a_prometheus_server_scrapes_and_stores_the_metrics() {
    host::skip_unless!(Need::Tool("prometheus"));
    let server = busy_server().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: rusty_rail\n    scrape_interval: 1s\n    \
             static_configs:\n      - targets: ['{}']\n",
            server.addr
        ),
    )
    .unwrap();
    let web = format!("127.0.0.1:{}", free_port());
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={web}"))
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let prometheus = PrometheusServer { child, dir };
    let web = web.parse().unwrap();

    // rr_backend_weight{backend="10.1.0.1"}, URL-encoded.
    let query = "/api/v1/query?query=rr_backend_weight%7Bbackend%3D%2210.1.0.1%22%7D";
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = String::from("no answer yet");
    loop {
        assert!(
            Instant::now() < deadline,
            "Prometheus did not store rr_backend_weight within 60s; last answer: {last}\n\
             prometheus log:\n{}",
            prometheus.log()
        );
        if let Ok(answer) = try_get(web, query).await {
            if answer.status == 200 {
                let v: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
                let result = &v["data"]["result"];
                if let Some(sample) = result.as_array().and_then(|r| r.first()) {
                    assert_eq!(sample["metric"]["job"], "rusty_rail");
                    assert_eq!(sample["value"][1], "3", "{answer:?}");
                    break;
                }
            }
            last = answer.body;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // A per-worker counter arrived in the same scrape.
    let answer = get(
        web,
        "/api/v1/query?query=rr_worker_bytes_total%7Bverdict%3D%22to_wire%22%7D",
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    let result = v["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 2, "{}", answer.body);
    assert!(result
        .iter()
        .any(|s| s["metric"]["worker"] == "0" && s["value"][1] == "1500"));
    drop(prometheus);
}
