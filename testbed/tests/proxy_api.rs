//! The fault proxy's HTTP API against Toxiproxy's: every route, status code and error
//! body, on loopback.

mod proxy_support;

use std::net::TcpListener;

use proxy_support::Harness;
use serde_json::{json, Value};

const UPSTREAM: &str = "127.0.0.1:9";

fn create(harness: &Harness, name: &str) -> Value {
    let answer = harness.post(
        "/proxies",
        &json!({"name": name, "listen": "127.0.0.1:0", "upstream": UPSTREAM}),
    );
    assert_eq!(answer.status, 201, "{answer:?}");
    answer.body
}

fn assert_error(answer: &proxy_support::Answer, status: u16, message: &str) {
    assert_eq!(answer.status, status, "{answer:?}");
    assert_eq!(answer.body["status"], json!(status), "{answer:?}");
    let text = answer.body["error"].as_str().unwrap();
    assert!(
        text.starts_with(message),
        "{text:?} should start with {message:?}"
    );
}

#[test]
fn creating_a_proxy_answers_201_with_the_real_port_and_toxiproxy_fields() {
    let harness = Harness::start(1);
    let body = create(&harness, "redis");
    assert_eq!(body["name"], "redis");
    assert_eq!(body["upstream"], UPSTREAM);
    assert_eq!(body["enabled"], true);
    assert_eq!(body["toxics"], json!([]));
    let listen: std::net::SocketAddr = body["listen"].as_str().unwrap().parse().unwrap();
    assert_ne!(listen.port(), 0);
    assert!(std::net::TcpStream::connect(listen).is_ok());

    let index = harness.get("/proxies");
    assert_eq!(index.status, 200);
    assert_eq!(index.body["redis"], body);
    assert_eq!(harness.get("/proxies/redis").body, body);
}

#[test]
fn a_proxy_created_disabled_does_not_listen() {
    let harness = Harness::start(1);
    let answer = harness.post(
        "/proxies",
        &json!({"name": "off", "listen": "127.0.0.1:0", "upstream": UPSTREAM, "enabled": false}),
    );
    assert_eq!(answer.status, 201);
    assert_eq!(answer.body["enabled"], false);
}

#[test]
fn proxy_creation_errors_have_toxiproxy_messages_and_codes() {
    let harness = Harness::start(1);
    create(&harness, "dup");
    let cases = [
        ("{not json", 400, "bad request body"),
        (r#"{"name": 7, "upstream": "x:1"}"#, 400, "bad request body"),
        (
            r#"{"name": "a", "upstream": "x:1", "enabled": "yes"}"#,
            400,
            "bad request body",
        ),
        (
            r#"{"upstream": "127.0.0.1:9"}"#,
            400,
            "missing required field: name",
        ),
        (
            r#"{"name": "", "upstream": "127.0.0.1:9"}"#,
            400,
            "missing required field: name",
        ),
        (r#"{"name": "b"}"#, 400, "missing required field: upstream"),
        (
            r#"{"name": "dup", "upstream": "127.0.0.1:9"}"#,
            409,
            "proxy already exists",
        ),
    ];
    for (body, status, message) in cases {
        let answer = harness.request("POST", "/proxies", Some(body));
        assert_error(&answer, status, message);
    }
}

#[test]
fn unknown_fields_are_ignored_as_toxiproxy_does() {
    let harness = Harness::start(1);
    let answer = harness.post(
        "/proxies",
        &json!({"name": "x", "listen": "127.0.0.1:0", "upstream": UPSTREAM, "colour": "blue"}),
    );
    assert_eq!(answer.status, 201, "{answer:?}");
    assert!(answer.body.get("colour").is_none());
}

#[test]
fn a_taken_listen_port_is_a_500_and_creates_nothing() {
    let harness = Harness::start(1);
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let answer = harness.post(
        "/proxies",
        &json!({"name": "clash", "listen": address, "upstream": UPSTREAM}),
    );
    assert_error(&answer, 500, "listen");
    assert_error(&harness.get("/proxies/clash"), 404, "proxy not found");
}

#[test]
fn missing_proxies_and_toxics_are_404() {
    let harness = Harness::start(1);
    assert_error(&harness.get("/proxies/nope"), 404, "proxy not found");
    assert_error(&harness.delete("/proxies/nope"), 404, "proxy not found");
    assert_error(
        &harness.patch("/proxies/nope", &json!({})),
        404,
        "proxy not found",
    );
    assert_error(&harness.get("/proxies/nope/toxics"), 404, "proxy not found");
    assert_error(
        &harness.post("/proxies/nope/toxics", &json!({"type": "latency"})),
        404,
        "proxy not found",
    );
    create(&harness, "p");
    for method in ["GET", "DELETE"] {
        let answer = harness.request(method, "/proxies/p/toxics/none", None);
        assert_error(&answer, 404, "toxic not found");
    }
    assert_error(
        &harness.patch("/proxies/p/toxics/none", &json!({"toxicity": 0.5})),
        404,
        "toxic not found",
    );
}

#[test]
fn updating_a_proxy_keeps_fields_not_sent_and_disabling_frees_the_port() {
    let harness = Harness::start(1);
    let body = create(&harness, "p");
    let listen = body["listen"].as_str().unwrap().to_owned();

    let answer = harness.patch("/proxies/p", &json!({"enabled": false}));
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["enabled"], false);
    assert_eq!(answer.body["upstream"], UPSTREAM);
    assert_eq!(answer.body["listen"], listen.as_str());
    // The port is free as soon as the API has answered.
    drop(TcpListener::bind(&listen).expect("a disabled proxy releases its port at once"));

    // POST is the older spelling of PATCH.
    let answer = harness.request("POST", "/proxies/p", Some(r#"{"enabled": true}"#));
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["enabled"], true);
    assert!(std::net::TcpStream::connect(&listen).is_ok());

    let answer = harness.patch("/proxies/p", &json!({"upstream": "127.0.0.1:10"}));
    assert_eq!(answer.body["upstream"], "127.0.0.1:10");
    assert_eq!(answer.body["enabled"], true);
    assert_error(
        &harness.request("PATCH", "/proxies/p", Some("[")),
        400,
        "bad request body",
    );
}

#[test]
fn deleting_a_proxy_answers_204_and_frees_its_port() {
    let harness = Harness::start(1);
    let listen = create(&harness, "p")["listen"].as_str().unwrap().to_owned();
    let answer = harness.delete("/proxies/p");
    assert_eq!(answer.status, 204);
    assert_eq!(answer.body, json!(""));
    drop(TcpListener::bind(&listen).expect("a deleted proxy releases its port at once"));
    assert_error(&harness.get("/proxies/p"), 404, "proxy not found");
}

#[test]
fn toxics_get_toxiproxy_defaults_and_answer_200() {
    let harness = Harness::start(1);
    create(&harness, "p");
    let answer = harness.post(
        "/proxies/p/toxics",
        &json!({"type": "latency", "attributes": {"latency": 100}}),
    );
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.body,
        json!({"name": "latency_downstream", "type": "latency", "stream": "downstream",
               "toxicity": 1.0, "attributes": {"latency": 100, "jitter": 0}})
    );
    let list = harness.get("/proxies/p/toxics");
    assert_eq!(list.status, 200);
    assert_eq!(list.body, json!([answer.body.clone()]));
    assert_eq!(
        harness.get("/proxies/p/toxics/latency_downstream").body,
        answer.body
    );
    assert_eq!(
        harness.get("/proxies/p").body["toxics"],
        json!([answer.body])
    );
}

#[test]
fn toxic_errors_have_toxiproxy_messages_and_codes() {
    let harness = Harness::start(1);
    create(&harness, "p");
    harness.add_toxic("p", &json!({"type": "noop", "name": "taken"}));
    let cases = [
        ("{", 400, "bad request body"),
        (
            r#"{"type": "latency", "stream": "sideways"}"#,
            400,
            "stream was invalid",
        ),
        (r#"{"type": "warp"}"#, 400, "invalid toxic type"),
        (r#"{"name": "t"}"#, 400, "invalid toxic type"),
        (
            r#"{"type": "latency", "attributes": {"latency": "big"}}"#,
            400,
            "bad request body",
        ),
        (
            r#"{"type": "latency", "toxicity": "all"}"#,
            400,
            "bad request body",
        ),
        (
            r#"{"type": "latency", "toxicity": 2}"#,
            400,
            "bad request body",
        ),
        (
            r#"{"type": "noop", "name": "taken"}"#,
            409,
            "toxic already exists",
        ),
    ];
    for (body, status, message) in cases {
        let answer = harness.request("POST", "/proxies/p/toxics", Some(body));
        assert_error(&answer, status, message);
    }
}

#[test]
fn updating_a_toxic_merges_attributes_and_delete_answers_204() {
    let harness = Harness::start(1);
    create(&harness, "p");
    harness.add_toxic(
        "p",
        &json!({"type": "latency", "name": "slow", "stream": "upstream", "toxicity": 0.5,
                "attributes": {"latency": 100, "jitter": 10}}),
    );
    let answer = harness.patch(
        "/proxies/p/toxics/slow",
        &json!({"attributes": {"jitter": 3}}),
    );
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.body["attributes"],
        json!({"latency": 100, "jitter": 3})
    );
    assert_eq!(answer.body["toxicity"], 0.5);
    assert_eq!(answer.body["stream"], "upstream");
    let answer = harness.request("POST", "/proxies/p/toxics/slow", Some(r#"{"toxicity": 1}"#));
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["toxicity"], 1.0);
    assert_error(
        &harness.patch(
            "/proxies/p/toxics/slow",
            &json!({"attributes": {"latency": -1}}),
        ),
        400,
        "bad request body",
    );
    assert_eq!(harness.delete("/proxies/p/toxics/slow").status, 204);
    assert_eq!(harness.get("/proxies/p/toxics").body, json!([]));
}

#[test]
fn reset_enables_every_proxy_and_removes_every_toxic() {
    let harness = Harness::start(1);
    create(&harness, "a");
    create(&harness, "b");
    harness.add_toxic("a", &json!({"type": "latency"}));
    harness.patch("/proxies/b", &json!({"enabled": false}));
    let answer = harness.request("POST", "/reset", None);
    assert_eq!(answer.status, 204);
    let index = harness.get("/proxies").body;
    assert_eq!(index["a"]["toxics"], json!([]));
    assert_eq!(index["b"]["enabled"], true);
}

#[test]
fn populate_creates_keeps_unchanged_proxies_and_replaces_changed_ones() {
    let harness = Harness::start(1);
    let first = harness.post(
        "/populate",
        &json!([{"name": "a", "listen": "127.0.0.1:0", "upstream": UPSTREAM},
                {"name": "b", "listen": "127.0.0.1:0", "upstream": UPSTREAM}]),
    );
    assert_eq!(first.status, 201, "{first:?}");
    let proxies = first.body["proxies"].as_array().unwrap();
    assert_eq!(proxies.len(), 2);
    let a_listen = proxies[0]["listen"].as_str().unwrap().to_owned();
    harness.add_toxic("a", &json!({"type": "noop"}));

    // Same listen and upstream: kept as it is, toxics included.
    let again = harness.post(
        "/populate",
        &json!([{"name": "a", "listen": a_listen, "upstream": UPSTREAM},
                {"name": "b", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:10"}]),
    );
    assert_eq!(again.status, 201);
    let proxies = again.body["proxies"].as_array().unwrap();
    assert_eq!(proxies[0]["toxics"].as_array().unwrap().len(), 1);
    assert_eq!(proxies[1]["upstream"], "127.0.0.1:10");
}

#[test]
fn populate_errors_return_the_partial_list_with_the_error() {
    let harness = Harness::start(1);
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let answer = harness.post(
        "/populate",
        &json!([{"name": "ok", "listen": "127.0.0.1:0", "upstream": UPSTREAM},
                {"name": "clash", "listen": taken.local_addr().unwrap().to_string(), "upstream": UPSTREAM}]),
    );
    assert_error(&answer, 500, "listen");
    assert_eq!(answer.body["proxies"].as_array().unwrap().len(), 1);
    assert_eq!(answer.body["proxies"][0]["name"], "ok");

    let missing = harness.post("/populate", &json!([{"name": "x"}]));
    assert_error(&missing, 400, "missing required field: upstream");
    assert_error(
        &harness.request("POST", "/populate", Some("{}")),
        400,
        "bad request body",
    );
}

#[test]
fn version_answers_toxiproxy_json() {
    let harness = Harness::start(1);
    let answer = harness.get("/version");
    assert_eq!(answer.status, 200);
    assert!(answer.body["version"].as_str().unwrap().starts_with("2."));
}

#[test]
fn browsers_are_refused_with_403() {
    let harness = Harness::start(1);
    let answer = harness.request_as(
        "GET",
        "/proxies",
        None,
        "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0",
    );
    assert_eq!(answer.status, 403);
    assert_eq!(harness.get("/proxies").status, 200);
}

#[test]
fn a_proxy_can_be_created_with_its_toxics_atomically() {
    let harness = Harness::start(1);
    let answer = harness.post(
        "/proxies",
        &json!({"name": "p", "listen": "127.0.0.1:0", "upstream": UPSTREAM,
                "toxics": [{"type": "latency", "attributes": {"latency": 5}},
                           {"type": "bandwidth", "stream": "upstream", "attributes": {"rate": 10}}]}),
    );
    assert_eq!(answer.status, 201, "{answer:?}");
    assert_eq!(answer.body["toxics"].as_array().unwrap().len(), 2);

    let bad = harness.post(
        "/proxies",
        &json!({"name": "q", "listen": "127.0.0.1:0", "upstream": UPSTREAM,
                "toxics": [{"type": "latency"}, {"type": "warp"}]}),
    );
    assert_error(&bad, 400, "invalid toxic type");
    assert_error(&harness.get("/proxies/q"), 404, "proxy not found");
}

#[test]
fn metrics_are_prometheus_text_with_per_proxy_counters() {
    let harness = Harness::start(1);
    let echo = harness.echo_server();
    let listen = harness.proxy_to("echo", echo);
    let mut client = proxy_support::connect(listen);
    proxy_support::round_trip(&mut client, b"hello");
    let answer = harness.get("/metrics");
    assert_eq!(answer.status, 200);
    let text = answer.body.as_str().unwrap();
    assert!(
        text.contains(r#"toxiproxy_proxy_sent_bytes_total{proxy="echo",direction="upstream"} 5"#),
        "{text}"
    );
    assert!(
        text.contains(r#"testbed_proxy_connections_total{proxy="echo"} 1"#),
        "{text}"
    );
}

#[test]
fn moving_a_proxy_to_a_taken_port_is_a_500_and_leaves_it_disabled() {
    let harness = Harness::start(1);
    create(&harness, "p");
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let answer = harness.patch(
        "/proxies/p",
        &json!({"listen": taken.local_addr().unwrap().to_string()}),
    );
    assert_error(&answer, 500, "listen");
    assert_eq!(harness.get("/proxies/p").body["enabled"], false);
    let answer = harness.patch(
        "/proxies/p",
        &json!({"listen": "127.0.0.1:0", "enabled": true}),
    );
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body["enabled"], true);
}
