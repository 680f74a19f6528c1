//! `GET /services` and `POST /config/reload` through real HTTP on loopback:
//! a reload applies the file's services, a bad file changes nothing and
//! says why with its line, and without the token nothing is reloaded.

mod common;

use std::io::Write;

use common::*;
use control::api::ApiState;
use control::config::ApiToken;
use dataplane::DropReason;

const TOKEN: &str = "5c0ffee1d2b94e7aa5c1d0e9f7b26a44";

const TWO: &str = "[[service]]\nname = \"web\"\nvip = \"192.0.2.80\"\nprotocol = \"tcp\"\nport = 80\nbackends = [\"10.2.0.1\", \"10.2.0.2:3\"]\ntable_size = 251\n\n[[service]]\nname = \"dns\"\nvip = \"192.0.2.53\"\nprotocol = \"udp\"\nbackends = [\"10.3.0.1\"]\nhash = \"source\"\ntable_size = 251\n";

fn file_with(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

async fn reload(server: &Server, headers: &str) -> Answer {
    let request = format!(
        "POST /config/reload HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{headers}Content-Length: 0\r\n\r\n",
        server.addr
    );
    send_raw(server.addr, &request).await
}

#[tokio::test]
async fn a_reload_publishes_the_file_s_services_and_get_services_lists_them() {
    let p = publisher(2);
    let file = file_with(TWO);
    let state = ApiState::new(p.clone(), workers(1)).with_config(Some(file.path().into()));
    let server = serve(state).await;
    let a = reload(&server, "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["services"], 2);
    assert_eq!(p.handle().load().services.len(), 2);
    let list = get(server.addr, "/services").await.json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web", "dns"]);
    assert_eq!(list[0]["port"], 80);
    assert_eq!(list[0]["protocol"], 6);
    assert_eq!(list[1]["hash"], "source");
    assert_eq!(list[0]["backends"][1]["ip"], "10.2.0.2");
    assert_eq!(list[0]["backends"][1]["weight"], 3);
    // The default service's backends stay on /backends' default set.
    assert_eq!(p.spec().backends.len(), 2);
}

#[tokio::test]
async fn a_bad_file_changes_nothing_and_the_answer_names_its_line() {
    let p = publisher(2);
    let file = file_with(TWO);
    let state = ApiState::new(p.clone(), workers(1)).with_config(Some(file.path().into()));
    let server = serve(state).await;
    assert_eq!(reload(&server, "").await.status, 200);
    let generation = p.generation();
    std::fs::write(file.path(), TWO.replace("port = 80", "port = 80000")).unwrap();
    let a = reload(&server, "").await;
    assert_eq!(a.status, 422, "{}", a.body);
    assert!(a.error().contains("line 5: service[0].port"), "{}", a.body);
    assert_eq!(p.generation(), generation);
}

#[tokio::test]
async fn without_a_configuration_file_there_is_nothing_to_reload() {
    let server = start(publisher(1), workers(1)).await;
    let a = reload(&server, "").await;
    assert_eq!(a.status, 404);
    assert!(a.error().contains("--config"), "{}", a.body);
}

#[tokio::test]
async fn a_reload_needs_the_token() {
    let p = publisher(2);
    let file = file_with(TWO);
    let state = ApiState::new(p.clone(), workers(1))
        .with_config(Some(file.path().into()))
        .with_token(Some(ApiToken::new(TOKEN).unwrap()), false);
    let server = serve(state).await;
    assert_eq!(reload(&server, "").await.status, 401);
    assert_eq!(p.generation(), 1);
    let a = reload(&server, &format!("Authorization: Bearer {TOKEN}\r\n")).await;
    assert_eq!(a.status, 200, "{}", a.body);
}

/// A service's `no_backend` drops in a `/stats` answer.
fn no_backend_drops<'v>(stats: &'v serde_json::Value, service: &str) -> &'v serde_json::Value {
    &stats["services"][service]["drops"]["no_backend"]
}

/// Two default backends, one worker's counters, and the API serving with
/// [`TWO`] loaded (the file is kept for the caller to rewrite).
async fn serving_two() -> (
    control::backends::Publisher,
    tempfile::NamedTempFile,
    Vec<control::stats::SharedCounters>,
    Server,
) {
    let p = publisher(2);
    let file = file_with(TWO);
    let counters = workers(1);
    let state = ApiState::new(p.clone(), counters.clone()).with_config(Some(file.path().into()));
    let server = serve(state).await;
    assert_eq!(reload(&server, "").await.status, 200);
    (p, file, counters, server)
}

#[tokio::test]
async fn metrics_count_each_service_with_a_service_label_and_promtool_finds_no_problem() {
    let (p, _file, counters, server) = serving_two().await;
    // Seven packets to web's 10.2.0.2.
    let slot = p.backend("10.2.0.2".parse().unwrap()).unwrap().slot;
    counters[0].backend_packets[usize::from(slot)].add(7);
    counters[0].backend_bytes[usize::from(slot)].add(700);
    counters[0].backend_new_flows[usize::from(slot)].add(2);
    // Three frames of web dropped after its lookup: no backend in rotation.
    let web = p.handle().load().services.named("web").unwrap().counter;
    for _ in 0..3 {
        counters[0].count_service_drop(web, DropReason::NoBackend);
    }
    let stats = get(server.addr, "/stats").await.json();
    assert_eq!(stats["services"]["web"]["packets"], 7, "{stats}");
    assert_eq!(stats["services"]["web"]["bytes"], 700, "{stats}");
    assert_eq!(stats["services"]["web"]["new_flows"], 2, "{stats}");
    assert_eq!(stats["services"]["dns"]["bytes"], 0, "{stats}");
    assert_eq!(stats["services"]["dns"]["backends"], 1, "{stats}");
    assert_eq!(no_backend_drops(&stats, "web"), 3, "{stats}");
    assert_eq!(no_backend_drops(&stats, "dns"), 0, "{stats}");
    let list = get(server.addr, "/services").await.json();
    assert_eq!(list[0]["drops"]["no_backend"], 3, "{list}");
    let text = get(server.addr, "/metrics").await.body;
    for line in [
        "rr_service_packets_total{service=\"web\"} 7",
        "rr_service_packets_total{service=\"dns\"} 0",
        "rr_service_bytes_total{service=\"web\"} 700",
        "rr_service_new_flows_total{service=\"web\"} 2",
        "rr_service_backends{service=\"web\"} 2",
        "rr_service_backends_in_rotation{service=\"web\"} 0",
        "rr_service_drops_total{service=\"web\",reason=\"no_backend\"} 3",
        "rr_service_drops_total{service=\"dns\",reason=\"no_backend\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
    }
    host::skip_unless!(host::capability::Need::Tool("promtool"));
    assert_promtool_accepts(&text);
}

/// Packets, bytes and new flows counted to `addr`'s slot by worker 0.
fn count_to(
    p: &control::backends::Publisher,
    counters: &[control::stats::SharedCounters],
    addr: &str,
    packets: u64,
) {
    let slot = usize::from(p.backend(addr.parse().unwrap()).unwrap().slot);
    counters[0].backend_packets[slot].add(packets);
    counters[0].backend_bytes[slot].add(packets * 100);
    counters[0].backend_new_flows[slot].add(1);
}

#[tokio::test]
async fn a_service_s_traffic_never_goes_down_when_a_backend_leaves_it() {
    let (p, file, counters, server) = serving_two().await;
    count_to(&p, &counters, "10.2.0.1", 5);
    count_to(&p, &counters, "10.2.0.2", 7);
    // 10.2.0.2 leaves web, then a new 10.2.0.9 joins and is sent 1.
    std::fs::write(file.path(), TWO.replace("\"10.2.0.2:3\"", "\"10.2.0.9\"")).unwrap();
    assert_eq!(reload(&server, "").await.status, 200);
    assert!(p.backend("10.2.0.2".parse().unwrap()).is_none());
    count_to(&p, &counters, "10.2.0.9", 1);
    let stats = get(server.addr, "/stats").await.json();
    let web = &stats["services"]["web"];
    assert_eq!(web["packets"], 13, "{stats}");
    assert_eq!(web["bytes"], 1300, "{stats}");
    assert_eq!(web["new_flows"], 3, "{stats}");
    assert_eq!(stats["services"]["dns"]["packets"], 0, "{stats}");
    let text = get(server.addr, "/metrics").await.body;
    let line = "rr_service_packets_total{service=\"web\"} 13";
    assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
    // A service that is removed and comes back starts from zero.
    std::fs::write(
        file.path(),
        TWO.replace("name = \"web\"", "name = \"web3\""),
    )
    .unwrap();
    assert_eq!(reload(&server, "").await.status, 200);
    let stats = get(server.addr, "/stats").await.json();
    assert_eq!(stats["services"]["web3"]["packets"], 0, "{stats}");
}

#[tokio::test]
async fn a_service_keeps_its_drops_across_a_reload_and_a_new_one_starts_at_zero() {
    let (p, file, counters, server) = serving_two().await;
    let named = |name: &str| p.handle().load().services.named(name).map(|s| s.counter);
    let (web, dns) = (named("web").unwrap(), named("dns").unwrap());
    assert_ne!(web.id, dns.id, "each service counts to its own row");
    counters[0].count_service_drop(dns, DropReason::NoBackend);
    // dns changes a weight and web is replaced by web2 on the same address.
    let changed = TWO
        .replace("\"10.3.0.1\"", "\"10.3.0.1:4\"")
        .replace("name = \"web\"", "name = \"web2\"");
    std::fs::write(file.path(), changed).unwrap();
    assert_eq!(reload(&server, "").await.status, 200);
    assert_eq!(named("dns"), Some(dns), "a kept service keeps its counter");
    assert!(named("web").is_none());
    let web2 = named("web2").unwrap();
    assert_ne!(web2.id, dns.id);
    let stats = get(server.addr, "/stats").await.json();
    assert_eq!(no_backend_drops(&stats, "dns"), 1, "{stats}");
    assert_eq!(no_backend_drops(&stats, "web2"), 0, "{stats}");
}

#[tokio::test]
async fn services_and_their_backends_are_added_and_removed_through_the_api() {
    let p = publisher(2);
    let server = start(p.clone(), workers(1)).await;
    let web = r#"{"name": "web", "vip": "192.0.2.80", "protocol": "tcp", "port": 80, "backends": ["10.2.0.1"], "table_size": 251, "health": "tcp:8080"}"#;
    let a = json(server.addr, "POST", "/services", web).await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(p.handle().load().services.len(), 1);
    let a = json(server.addr, "POST", "/services", web).await;
    assert_eq!(a.status, 409, "{}", a.body);
    let a = json(
        server.addr,
        "POST",
        "/services/web/backends",
        r#"{"ip": "10.2.0.2", "weight": 2}"#,
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let list = get(server.addr, "/services").await.json();
    assert_eq!(list[0]["backends"][1]["ip"], "10.2.0.2");
    assert_eq!(list[0]["backends"][1]["weight"], 2);
    assert_eq!(list[0]["health"], "tcp:8080", "the service's own check");
    assert_eq!(list[0]["backends"][1]["health"], "up");
    let a = json(server.addr, "DELETE", "/services/web/backends/10.2.0.1", "").await;
    assert_eq!(a.status, 204, "{}", a.body);
    assert!(p.backend("10.2.0.1".parse().unwrap()).is_none());
    let a = json(server.addr, "DELETE", "/services/nope", "").await;
    assert_eq!(a.status, 404, "{}", a.body);
    assert!(a.error().contains("GET /services"), "{}", a.body);
    let a = json(server.addr, "DELETE", "/services/web", "").await;
    assert_eq!(a.status, 204, "{}", a.body);
    assert!(p.handle().load().services.is_empty());
    // The default service's backends were never touched.
    assert_eq!(p.spec().backends.len(), 2);
}

#[tokio::test]
async fn a_bad_service_body_is_refused_naming_the_field() {
    let server = start(publisher(1), workers(1)).await;
    let a = json(
        server.addr,
        "POST",
        "/services",
        r#"{"name": "web", "vip": "192.0.2.80", "port": 80}"#,
    )
    .await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(
        a.error().contains("port: a port needs a protocol"),
        "{}",
        a.body
    );
    let a = json(
        server.addr,
        "POST",
        "/services",
        r#"{"name": "web", "vip": "not-an-ip"}"#,
    )
    .await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(
        a.error()
            .contains("vip: \"not-an-ip\" is not an IP address"),
        "{}",
        a.body
    );
}

#[tokio::test]
async fn a_service_s_ipv6_backends_are_added_listed_and_removed_through_the_api() {
    let p = publisher(1);
    let server = start(p.clone(), workers(1)).await;
    let v6 = r#"{"name": "v6", "vip": "192.0.2.66", "backends": ["[2001:db8:2::1]:2"], "table_size": 251}"#;
    let a = json(server.addr, "POST", "/services", v6).await;
    assert_eq!(a.status, 201, "{}", a.body);
    let a = json(
        server.addr,
        "POST",
        "/services/v6/backends",
        r#"{"ip": "2001:db8:2::2"}"#,
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let list = get(server.addr, "/services").await.json();
    let backends = &list[0]["backends"];
    assert_eq!(backends[0]["ip"], "2001:db8:2::1", "{list}");
    assert_eq!(backends[0]["weight"], 2, "{list}");
    assert_eq!(backends[1]["ip"], "2001:db8:2::2", "{list}");
    let table = p.handle().load();
    let service = table.services.named("v6").unwrap();
    assert_eq!(service.slots.len(), 2);
    assert!(service
        .slots
        .iter()
        .all(|&slot| table.backends()[usize::from(slot)].is_ipv6));
    let stats = get(server.addr, "/stats").await;
    assert_eq!(stats.status, 200);
    assert!(stats.body.contains("\"2001:db8:2::1\""), "{}", stats.body);
    let a = json(
        server.addr,
        "DELETE",
        "/services/v6/backends/2001:db8:2::1",
        "",
    )
    .await;
    assert_eq!(a.status, 204, "{}", a.body);
    assert!(p.backend("2001:db8:2::1".parse().unwrap()).is_none());
    assert!(p.backend("2001:db8:2::2".parse().unwrap()).is_some());
}
