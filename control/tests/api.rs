//! The HTTP API through real HTTP on loopback: every route, every refusal
//! with its message, and changes reaching the published table.

mod common;

use common::*;
use dataplane::verdict::{DropReason, Verdict};

#[tokio::test]
async fn get_backends_lists_every_backend_with_its_state() {
    let server = start(publisher(2), workers(1)).await;
    let a = get(server.addr, "/backends").await;
    assert_eq!(a.status, 200);
    assert!(a.content_type.starts_with("application/json"));
    let list = a.json();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(
        list[0],
        serde_json::json!({
            "ip": "10.1.0.1", "weight": 1, "drain": false, "health": "up",
            "mac": "02:00:00:00:00:09", "in_rotation": true,
            "slot": 0, "generation": 0, "packets": 0
        })
    );
}

#[tokio::test]
async fn post_adds_a_backend_and_publishes_a_table_with_it() {
    let p = publisher(2);
    let server = start(p.clone(), workers(1)).await;
    let a = json(
        server.addr,
        "POST",
        "/backends",
        r#"{"ip": "10.1.0.4", "weight": 3}"#,
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.json()["ip"], "10.1.0.4");
    assert_eq!(a.json()["weight"], 3);
    assert_eq!(
        a.json()["mac"],
        serde_json::Value::Null,
        "unresolved until the resolver answers"
    );
    assert_eq!(a.json()["in_rotation"], false);
    assert_eq!(p.generation(), 2);
    assert_eq!(p.handle().load().backends().len(), 3);
    // Weight defaults to 1.
    let a = json(server.addr, "POST", "/backends", r#"{"ip": "10.1.0.5"}"#).await;
    assert_eq!(a.json()["weight"], 1);
}

#[tokio::test]
async fn an_ipv6_backend_is_added_listed_changed_and_removed() {
    let p = publisher(1);
    let server = start(p.clone(), workers(1)).await;
    let a = json(
        server.addr,
        "POST",
        "/backends",
        r#"{"ip": "2001:db8::4", "weight": 2}"#,
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.json()["ip"], "2001:db8::4");
    assert_eq!(a.json()["slot"], 1);
    let table = p.handle().load();
    let slot = &table.backends()[1];
    assert!(slot.is_ipv6, "GRE over IPv6 toward it");
    assert_eq!(
        slot.ip(),
        "2001:db8::4".parse::<std::net::IpAddr>().unwrap()
    );
    assert_eq!(
        table.lb_ipv6,
        Some(LB_IPV6.octets()),
        "from the balancer's address"
    );
    let list = get(server.addr, "/backends").await.json();
    assert_eq!(list[1]["ip"], "2001:db8::4", "{list}");
    assert_eq!(list[1]["weight"], 2, "{list}");
    // In a path the address is bare or in brackets (percent-encoded or not).
    let a = json(
        server.addr,
        "PATCH",
        "/backends/2001:db8::4",
        r#"{"drain": true}"#,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["drain"], true);
    let a = send(
        server.addr,
        "DELETE",
        "/backends/%5B2001:db8::4%5D",
        None,
        "application/json",
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["ip"], "2001:db8::4");
    assert_eq!(p.backends().len(), 1);
}

#[tokio::test]
async fn an_ipv6_backend_is_refused_when_the_balancer_has_no_ipv6_address() {
    let p = publisher_ipv4_only(1);
    let server = start(p.clone(), workers(1)).await;
    let a = json(server.addr, "POST", "/backends", r#"{"ip": "2001:db8::4"}"#).await;
    assert_eq!(a.status, 409, "{}", a.body);
    assert_eq!(
        a.error(),
        "backend 2001:db8::4 is IPv6, but the balancer has no IPv6 address to send GRE over \
         IPv6 from; give RR_DEVICE a global IPv6 address (or set RR_LB_IPV6), or use IPv4 backends"
    );
    assert_eq!(p.generation(), 1, "nothing was published");
    assert_eq!(p.backends().len(), 1);
}

#[tokio::test]
async fn patch_changes_weight_and_drain_together() {
    let p = publisher(2);
    let server = start(p.clone(), workers(1)).await;
    let a = json(
        server.addr,
        "PATCH",
        "/backends/10.1.0.2",
        r#"{"weight": 5, "drain": true}"#,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        (a.json()["weight"].as_u64(), a.json()["drain"].as_bool()),
        (Some(5), Some(true))
    );
    assert_eq!(p.generation(), 2, "one change, one table");
    let table = p.handle().load();
    assert!(
        table.maglev.entries().iter().all(|&s| s == 0),
        "drained: no new flows"
    );
    assert!(
        table.backend(1, 0).is_some(),
        "established flows still reach it"
    );
    let a = set_drain(server.addr, "10.1.0.2", false).await;
    assert_eq!(a.json()["in_rotation"], true);
    let table = p.handle().load();
    let to_second = table.maglev.entries().iter().filter(|&&s| s == 1).count();
    assert!(to_second > 1009 * 3 / 4, "weight 5 of 6: {to_second}");
}

#[tokio::test]
async fn delete_removes_a_backend_from_the_table() {
    let p = publisher(3);
    let server = start(p.clone(), workers(1)).await;
    let a = send(server.addr, "DELETE", "/backends/10.1.0.3", None, "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["ip"], "10.1.0.3");
    assert!(p.backend(ip(3)).is_none());
    let table = p.handle().load();
    assert!(table.maglev.entries().iter().all(|&s| s != 2));
    assert_eq!(
        get(server.addr, "/backends")
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

/// One refused request: its status and a message fragment.
async fn refused(
    server: &Server,
    method: &str,
    path: &str,
    body: Option<&str>,
    status: u16,
    says: &[&str],
) {
    let a = send(server.addr, method, path, body, "application/json").await;
    assert_eq!(a.status, status, "{method} {path} {body:?}: {}", a.body);
    assert!(
        a.content_type.starts_with("application/json"),
        "{}",
        a.content_type
    );
    let message = a.error();
    for s in says {
        assert!(
            message.contains(s),
            "{method} {path} {body:?}: {message:?} lacks {s:?}"
        );
    }
}

const SEND_ADD: &str = r#"send {"ip": "10.1.0.4", "weight": 1} or {"ip": "2001:db8::4"} (IPv4 or IPv6; weight 0..=65535, optional, default 1)"#;
const SEND_PATCH: &str = r#"send {"weight": N} (0..=65535) and/or {"drain": true|false}"#;

#[tokio::test]
async fn bad_post_bodies_are_refused_with_what_to_send() {
    let p = publisher(1);
    let server = start(p.clone(), workers(1)).await;
    let s = &server;
    refused(
        s,
        "POST",
        "/backends",
        Some("{"),
        400,
        &["Failed to parse the request body as JSON", SEND_ADD],
    )
    .await;
    refused(
        s,
        "POST",
        "/backends",
        Some(r#"{"weight": 1}"#),
        422,
        &["missing field `ip`", SEND_ADD],
    )
    .await;
    refused(
        s,
        "POST",
        "/backends",
        Some(r#"{"ip": "10.1.0.4", "colour": "red"}"#),
        422,
        &["unknown field `colour`", SEND_ADD],
    )
    .await;
    refused(
        s,
        "POST",
        "/backends",
        Some(r#"{"ip": 17}"#),
        422,
        &["invalid type: integer `17`", SEND_ADD],
    )
    .await;
    refused(
        s,
        "POST",
        "/backends",
        Some(r#"{"ip": "10.1.0.400"}"#),
        400,
        &[
            "\"ip\": \"10.1.0.400\" is not an IPv4 or IPv6 address",
            SEND_ADD,
        ],
    )
    .await;
    refused(
        s,
        "POST",
        "/backends",
        Some(r#"{"ip": "2001:db8::zz"}"#),
        400,
        &[
            "\"ip\": \"2001:db8::zz\" is not an IPv4 or IPv6 address",
            SEND_ADD,
        ],
    )
    .await;
    refused(
        s,
        "POST",
        "/backends",
        Some(r#"{"ip": "10.1.0.4", "weight": 65536}"#),
        400,
        &["\"weight\": 65536 is out of range", SEND_ADD],
    )
    .await;
    refused(
        s,
        "POST",
        "/backends",
        Some(r#"{"ip": "10.1.0.4", "weight": -1}"#),
        422,
        &["invalid value: integer `-1`", SEND_ADD],
    )
    .await;
    refused(
        s,
        "POST",
        "/backends",
        Some(r#"{"ip": "10.1.0.1"}"#),
        409,
        &["backend 10.1.0.1 exists already; PATCH /backends/{ip} changes it"],
    )
    .await;
    let a = send(
        s.addr,
        "POST",
        "/backends",
        Some(r#"{"ip": "10.1.0.4"}"#),
        "text/plain",
    )
    .await;
    assert_eq!(a.status, 415);
    assert!(
        a.error()
            .starts_with("the body must be JSON with Content-Type: application/json; send {"),
        "{}",
        a.error()
    );
    assert_eq!(p.generation(), 1, "nothing refused was published");
    assert_eq!(p.backends().len(), 1);
}

#[tokio::test]
async fn bad_patches_and_unknown_backends_are_refused() {
    let p = publisher(1);
    let server = start(p.clone(), workers(1)).await;
    let s = &server;
    refused(
        s,
        "PATCH",
        "/backends/10.1.0.1",
        Some("{}"),
        400,
        &["nothing to change", SEND_PATCH],
    )
    .await;
    refused(
        s,
        "PATCH",
        "/backends/10.1.0.1",
        Some(r#"{"weight": 70000}"#),
        400,
        &["\"weight\": 70000 is out of range", SEND_PATCH],
    )
    .await;
    refused(
        s,
        "PATCH",
        "/backends/10.1.0.1",
        Some(r#"{"drain": "yes"}"#),
        422,
        &[
            "invalid type: string \"yes\", expected a boolean",
            SEND_PATCH,
        ],
    )
    .await;
    refused(
        s,
        "PATCH",
        "/backends/10.1.0.1",
        Some(r#"{"ip": "10.1.0.2"}"#),
        422,
        &["unknown field `ip`", SEND_PATCH],
    )
    .await;
    refused(
        s,
        "PATCH",
        "/backends/10.1.0.9",
        Some(r#"{"weight": 2}"#),
        404,
        &["no backend 10.1.0.9; GET /backends lists the backends"],
    )
    .await;
    refused(
        s,
        "PATCH",
        "/backends/banana",
        Some(r#"{"weight": 2}"#),
        400,
        &["\"banana\" is not an IPv4 or IPv6 address; use /backends/IP such as /backends/10.1.0.4 or /backends/2001:db8::4"],
    )
    .await;
    refused(
        s,
        "DELETE",
        "/backends/10.1.0.9",
        None,
        404,
        &["no backend 10.1.0.9"],
    )
    .await;
    refused(
        s,
        "DELETE",
        "/backends/::1",
        None,
        404,
        &["no backend ::1; GET /backends lists the backends"],
    )
    .await;
    assert_eq!(p.generation(), 1);
}

#[tokio::test]
async fn unknown_routes_and_methods_list_the_routes() {
    let server = start(publisher(1), workers(1)).await;
    let s = &server;
    refused(
        s,
        "GET",
        "/nope",
        None,
        404,
        &["no route GET /nope; the routes are GET /backends, POST /backends"],
    )
    .await;
    refused(
        s,
        "PUT",
        "/backends",
        Some("{}"),
        405,
        &["/backends does not take PUT; the routes are"],
    )
    .await;
    refused(
        s,
        "GET",
        "/backends/10.1.0.1",
        None,
        405,
        &["does not take GET"],
    )
    .await;
}

#[tokio::test]
async fn stats_report_totals_and_workers() {
    let counters = workers(2);
    counters[0].count(Verdict::ToWire, 100);
    counters[1].count(Verdict::ToWire, 50);
    counters[1].count(Verdict::Drop(DropReason::BadGreFlags), 60);
    counters[0].backend_packets[1].add(7);
    counters[1].conntrack_entries.set(4);
    counters[0].table_generation.set(1);
    counters[1].table_generation.set(1);
    let server = start(publisher(2), counters).await;
    let a = get(server.addr, "/stats").await;
    assert_eq!(a.status, 200);
    let stats = a.json();
    assert_eq!(stats["table_generation"], 1);
    let total = &stats["total"];
    assert_eq!(
        total["to_wire"],
        serde_json::json!({"packets": 2, "bytes": 150})
    );
    assert_eq!(total["drops"], serde_json::json!({"bad_gre_flags": 1}));
    assert_eq!(total["backend_packets"]["10.1.0.2"], 7);
    assert_eq!(total["backend_packets"]["10.1.0.1"], 0);
    assert_eq!(total["conntrack"]["entries"], 4);
    assert!(total.get("worker").is_none());
    let workers = stats["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 2);
    assert_eq!(workers[1]["worker"], 1);
    assert_eq!(
        workers[1]["dropped"],
        serde_json::json!({"packets": 1, "bytes": 60})
    );
    assert_eq!(workers[0]["drops"], serde_json::json!({}));
    assert_eq!(workers[0]["table_generation"], 1);
    // Per-backend packets also show in the backend list.
    assert_eq!(get(server.addr, "/backends").await.json()[1]["packets"], 7);
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let counters = workers(1);
    counters[0].count(Verdict::ToHost, 80);
    let server = start(publisher(1), counters).await;
    let a = get(server.addr, "/metrics").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.content_type, "text/plain; version=0.0.4; charset=utf-8");
    assert!(
        a.body
            .contains("\nrr_packets_total{verdict=\"to_host\"} 1\n"),
        "{}",
        a.body
    );
    assert!(a.body.contains("\nrr_backend_up{backend=\"10.1.0.1\"} 1\n"));
    assert!(a.body.contains("# TYPE rr_packets_total counter\n"));
    assert!(!a.body.contains("# EOF"));
}

#[tokio::test]
async fn metrics_are_openmetrics_for_clients_that_accept_it() {
    let server = start(publisher(1), workers(1)).await;
    let a = send_with(
        server.addr,
        "GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text; version=1.0.0\r\n",
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.content_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(a.body.contains("# TYPE rr_packets counter\n"));
    assert!(a.body.ends_with("# EOF\n"));
}

#[tokio::test]
async fn healthz_answers_with_a_summary() {
    // A limit no slow machine reaches: this test is about the summary.
    let hour = std::time::Duration::from_secs(3600);
    let state = control::api::ApiState::with_stall_limit(publisher(2), workers(3), hour);
    let server = serve(state).await;
    let a = get(server.addr, "/healthz").await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.json(),
        serde_json::json!({"status": "ok", "problems": [], "table_generation": 1, "backends": 2, "in_rotation": 2, "workers": 3})
    );
}

#[tokio::test]
async fn healthz_is_503_while_no_backend_is_in_rotation() {
    let server = start(publisher(2), workers(1)).await;
    for ip in ["10.1.0.1", "10.1.0.2"] {
        let a = set_drain(server.addr, ip, true).await;
        assert_eq!(a.status, 200, "{}", a.body);
    }
    let a = get(server.addr, "/healthz").await;
    assert_eq!(a.status, 503, "{}", a.body);
    assert_eq!(a.json()["status"], "unhealthy");
    assert_eq!(
        a.json()["problems"],
        serde_json::json!(["no backend is in rotation (of 2): every packet for the balancer is dropped as no_backend"])
    );
    let a = set_drain(server.addr, "10.1.0.2", false).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(get(server.addr, "/healthz").await.status, 200);
}

#[tokio::test]
async fn healthz_is_503_while_a_worker_runs_no_batches() {
    let counters = workers(3);
    let state = control::api::ApiState::with_stall_limit(
        publisher(2),
        counters.clone(),
        std::time::Duration::from_millis(100),
    );
    let server = serve(state).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    counters[0].batches.add(1);
    counters[2].batches.add(1);
    let a = get(server.addr, "/healthz").await;
    assert_eq!(a.status, 503, "{}", a.body);
    let problems = a.json()["problems"].clone();
    assert_eq!(problems.as_array().map(Vec::len), Some(1), "{problems}");
    assert!(
        problems[0]
            .as_str()
            .is_some_and(|p| p.starts_with("worker 1 has run no batch for ")),
        "{problems}"
    );
    // Running again, it is healthy at once (the others ran too).
    for worker in &counters {
        worker.batches.add(1);
    }
    let a = get(server.addr, "/healthz").await;
    assert_eq!(a.status, 200, "{}", a.body);
}

#[tokio::test]
async fn binding_a_taken_address_names_it_and_rr_api() {
    let server = start(publisher(1), workers(1)).await;
    let err = control::api::bind(server.addr).await.unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("cannot listen on {} (RR_API): ", server.addr)),
        "{message}"
    );
}
