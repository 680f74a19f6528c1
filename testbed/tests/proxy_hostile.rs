//! The fault proxy against hostile input: any JSON (or not JSON) on any route gets a
//! 2xx or a 4xx with a message, never a 5xx, a hang or a panic; toxics accepted at
//! the edges of their bounds carry traffic without breaking the proxy; and each
//! limit (proxies, toxics, connections, UDP sessions, queued pieces and bytes) holds
//! with a clear answer. Everything runs on loopback; every wait has a deadline.

mod proxy_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use proxy_support::{Answer, Harness};
use serde_json::{json, Map, Value};
use testbed::proxy::limits::Limits;
use testbed::proxy::toxics::TOXIC_TYPES;

// ---------------------------------------------------------------------------
// Panics anywhere in the process (API handlers and connection tasks run on the
// harness's threads) are recorded, so a test sees one even where tokio or hyper
// would swallow it. In a release build (`panic = "abort"`) each would kill the proxy.

static PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());
static WATCH: Once = Once::new();

fn watch_panics() {
    WATCH.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // The server's threads only: a test thread's panic is its own failure.
            let thread = std::thread::current();
            if thread.name().is_some_and(|name| !name.starts_with("tokio")) {
                default(info);
                return;
            }
            PANICS
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(info.to_string());
            default(info);
        }));
    });
}

/// How many panics so far: a case compares this before and after itself.
fn panic_mark() -> usize {
    PANICS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .len()
}

/// The panics since `mark`.
fn panics_since(mark: usize) -> Vec<String> {
    PANICS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(mark..)
        .unwrap_or_default()
        .to_vec()
}

/// Cases per property: `default`, or `PROPTEST_CASES` for a longer hunt.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(default)
}

/// A path segment with every byte but letters and digits percent-encoded.
fn segment(text: &str) -> String {
    text.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() {
                (byte as char).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

fn is_2xx_or_4xx(answer: &Answer) -> bool {
    (200..500).contains(&answer.status)
}

/// A 4xx says why: Toxiproxy's `{"error": ..., "status": ...}`, or (413, 403) text.
fn says_why(answer: &Answer) -> bool {
    match &answer.body {
        Value::Object(body) => body
            .get("error")
            .and_then(Value::as_str)
            .is_some_and(|text| !text.is_empty()),
        Value::String(text) => !text.is_empty(),
        _ => false,
    }
}

/// Deletes every proxy, so cases do not add up to the proxy limit.
fn delete_all(harness: &Harness) {
    let index = harness.get("/proxies");
    assert_eq!(index.status, 200, "{index:?}");
    for name in index.body.as_object().unwrap().keys() {
        let answer = harness.delete(&format!("/proxies/{}", segment(name)));
        assert!(is_2xx_or_4xx(&answer), "{answer:?}");
    }
}

// ---------------------------------------------------------------------------
// Hostile values.

/// Numbers at and past every bound the API states, and at the ends of JSON's range.
fn edge_number() -> BoxedStrategy<Value> {
    prop_oneof![
        prop::sample::select(vec![
            0_u64,
            1,
            2,
            3_600_000,
            3_600_001,
            3_600_000_000,
            3_600_000_001,
            1 << 20,
            (1 << 20) + 1,
            65_535,
            65_536,
            i64::MAX as u64,
            u64::MAX - 1,
            u64::MAX,
        ])
        .prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop::sample::select(vec![-1_i64, i64::MIN, -3_600_000]).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        prop::sample::select(vec![
            0.0_f64,
            -0.0,
            0.5,
            1.0,
            1.000_000_1,
            -0.5,
            1.5,
            1e300,
            -1e300,
            f64::MAX,
            f64::MIN_POSITIVE,
            1.844_674_407_370_955_2e19,
        ])
        .prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
    ]
    .boxed()
}

/// Strings: addresses of every shape (never a fixed port that could be taken, never
/// all interfaces), durations, types, streams, CIDR ranges, and anything at all.
fn edge_string() -> BoxedStrategy<String> {
    prop_oneof![
        prop::sample::select(vec![
            "",
            "127.0.0.1:0",
            "[::1]:0",
            "localhost:0",
            "192.0.2.1:0",
            "127.0.0.1:65536",
            "127.0.0.1:-1",
            "127.0.0.1",
            "::1:0",
            "no-such-host.invalid:0",
            "127.0.0.1:0 ",
            "0s",
            "1ms",
            "7days",
            "7days 1s",
            "18446744073709551615s",
            "400000000000y",
            "99999999999999999999999s",
            "-1s",
            "latency",
            "slicer",
            "upstream",
            "DOWNSTREAM",
            "10.0.0.0/33",
            "::/0",
            "127.0.0.1/32",
        ])
        .prop_map(str::to_owned),
        prop::sample::select(TOXIC_TYPES.to_vec()).prop_map(str::to_owned),
        ".{0,24}",
        (1_usize..4, prop::sample::select(vec![257_usize, 70_000]))
            .prop_map(|(c, n)| { ["x", "é", "\u{0}"][c % 3].repeat(n) }),
    ]
    .boxed()
}

/// Any JSON value, leaning on the edges.
fn edge_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        edge_number(),
        edge_string().prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::vec((edge_string(), inner), 0..4)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
    .boxed()
}

/// Durations: plausible ones, ones at the week's bound, and ones past the clock's end.
fn duration_text() -> BoxedStrategy<String> {
    prop_oneof![
        prop::sample::select(vec![
            "0s",
            "1ms",
            "30s",
            "7days",
            "7days 1s",
            "400000000000y",
            "99999999999999999999999s",
            "-1s",
            "soon",
        ])
        .prop_map(str::to_owned),
        any::<u64>().prop_map(|n| format!("{n}s")),
        any::<u64>().prop_map(|n| format!("{n}ms")),
    ]
    .boxed()
}

/// A value for a field: of the field's kind, at its edges, or anything at all.
fn field_value(field: &'static str) -> BoxedStrategy<Value> {
    let text = |choices: Vec<&'static str>| {
        prop_oneof![
            prop::sample::select(choices).prop_map(Value::from),
            edge_string().prop_map(Value::from),
        ]
        .boxed()
    };
    let shaped = match field {
        "duration" => duration_text().prop_map(Value::from).boxed(),
        // Up to 80 ranges: the limit is 64.
        "clients" => prop::collection::vec(
            text(vec!["10.0.0.0/24", "::1", "127.0.0.1/32", "10.0.0.0/33"]),
            0..80,
        )
        .prop_map(Value::from)
        .boxed(),
        "name" => text(vec!["a", "b", "t", "made"]),
        "type" => text(TOXIC_TYPES.to_vec()),
        "stream" => text(vec!["upstream", "downstream", "DOWNSTREAM", ""]),
        "protocol" => text(vec!["tcp", "udp", "sctp"]),
        "listen" | "upstream" => edge_string().prop_map(Value::from).boxed(),
        "enabled" => any::<bool>().prop_map(Value::from).boxed(),
        // toxicity and the attributes
        _ => edge_number(),
    };
    prop_oneof![4 => shaped, 1 => edge_value()].boxed()
}

/// An object with some of `fields`, each set to a value of its kind or to anything,
/// plus maybe stray ones.
fn object_of(fields: &'static [&'static str]) -> BoxedStrategy<Value> {
    let field = prop::sample::select(fields).prop_flat_map(|name| (Just(name), field_value(name)));
    (
        prop::collection::vec(field, 0..6),
        prop::collection::vec((edge_string(), edge_value()), 0..2),
    )
        .prop_map(|(known, stray)| {
            let mut object = Map::new();
            for (name, value) in stray {
                object.insert(name, value);
            }
            for (name, value) in known {
                object.insert(name.to_owned(), value);
            }
            Value::Object(object)
        })
        .boxed()
}

const ATTRIBUTES: &[&str] = &[
    "latency",
    "jitter",
    "rate",
    "delay",
    "timeout",
    "average_size",
    "size_variation",
    "bytes",
    "probability",
];

/// A toxic that would be accepted but for up to three fields set to edge values or to
/// anything, so each check is reached with the others passing.
fn toxic_body() -> BoxedStrategy<Value> {
    let field = prop::sample::select(vec![
        "name",
        "type",
        "stream",
        "toxicity",
        "clients",
        "duration",
        "duration",
        "attributes",
        "attributes",
    ])
    .prop_flat_map(|name| {
        let value = if name == "attributes" {
            prop_oneof![4 => object_of(ATTRIBUTES), 1 => edge_value()].boxed()
        } else {
            field_value(name)
        };
        (Just(name), value)
    });
    (
        prop::sample::select(TOXIC_TYPES.to_vec()),
        prop::sample::select(vec!["a", "b", "c"]),
        prop::collection::vec(field, 0..4),
    )
        .prop_map(|(type_name, name, fields)| {
            let mut body = json!({"type": type_name, "name": name});
            for (field, value) in fields {
                body[field] = value;
            }
            body
        })
        .boxed()
}

fn proxy_body() -> BoxedStrategy<Value> {
    (
        object_of(&["name", "listen", "upstream", "enabled", "protocol"]),
        prop::option::of(prop::collection::vec(toxic_body(), 0..3)),
        prop::option::of(prop::sample::select(vec!["127.0.0.1:0", "[::1]:0", ""])),
    )
        .prop_map(|(mut body, toxics, listen)| {
            let fields = body.as_object_mut().unwrap();
            if let Some(toxics) = toxics {
                fields.insert("toxics".into(), Value::from(toxics));
            }
            if let Some(listen) = listen {
                fields.insert("listen".into(), listen.into());
            }
            if !fields.get("name").is_some_and(Value::is_string) {
                fields.insert("name".into(), "made".into());
            }
            if !fields.get("upstream").is_some_and(Value::is_string) {
                fields.insert("upstream".into(), "127.0.0.1:9".into());
            }
            body
        })
        .boxed()
}

/// A body: JSON of the route's shape, any JSON, or any bytes.
#[derive(Debug, Clone)]
enum Body {
    Json(Value),
    Bytes(Vec<u8>),
}

fn body(shaped: BoxedStrategy<Value>) -> BoxedStrategy<Body> {
    prop_oneof![
        6 => shaped.clone().prop_map(Body::Json),
        1 => edge_value().prop_map(Body::Json),
        1 => prop::collection::vec(any::<u8>(), 0..200).prop_map(Body::Bytes),
        // Valid JSON cut short.
        1 => (shaped, any::<prop::sample::Index>()).prop_map(|(value, cut)| {
            let text = value.to_string().into_bytes();
            let at = cut.index(text.len().max(1));
            Body::Bytes(text[..at.min(text.len())].to_vec())
        }),
    ]
    .boxed()
}

/// One request of a case.
#[derive(Debug, Clone)]
enum Call {
    CreateProxy(Body),
    Populate(Body),
    UpdateProxy(String, &'static str, Body),
    CreateToxic(String, Body),
    UpdateToxic(String, String, &'static str, Body),
    Look(&'static str, String, String),
}

/// A name in a path: kept to URL lengths a server reads at all (a longer one is for
/// the body limit, not the route).
fn target_name() -> BoxedStrategy<String> {
    prop_oneof![
        3 => Just("fixed".to_owned()),
        1 => Just("made".to_owned()),
        1 => edge_string().prop_map(|name| name.chars().take(300).collect()),
    ]
    .boxed()
}

fn call() -> BoxedStrategy<Call> {
    let update = object_of(&["listen", "upstream", "enabled"]);
    prop_oneof![
        1 => body(proxy_body()).prop_map(Call::CreateProxy),
        1 => body(
            prop::collection::vec(proxy_body(), 0..3)
                .prop_map(Value::from)
                .boxed()
        )
        .prop_map(Call::Populate),
        1 => (
            target_name(),
            prop::sample::select(vec!["POST", "PATCH"]),
            body(update)
        )
            .prop_map(|(proxy, method, body)| Call::UpdateProxy(proxy, method, body)),
        3 => (target_name(), body(toxic_body()))
            .prop_map(|(proxy, body)| Call::CreateToxic(proxy, body)),
        2 => (
            target_name(),
            prop_oneof![Just("t".to_owned()), target_name()],
            prop::sample::select(vec!["POST", "PATCH"]),
            body(toxic_body()),
        )
            .prop_map(|(proxy, toxic, method, body)| Call::UpdateToxic(proxy, toxic, method, body)),
        1 => (
            prop::sample::select(vec!["GET", "DELETE"]),
            target_name(),
            prop_oneof![Just("t".to_owned()), target_name()],
        )
            .prop_map(|(method, proxy, toxic)| Call::Look(method, proxy, toxic)),
    ]
    .boxed()
}

/// Sends a body of at most 1 MiB (a longer one is cut, so it is not JSON any more):
/// the body limit has its own test, and a server refusing a body it has not read may
/// close the connection under a client still writing it.
fn send(harness: &Harness, method: &str, path: &str, body: &Body) -> Answer {
    const MOST: usize = 1 << 20;
    let bytes = match body {
        Body::Json(value) => value.to_string().into_bytes(),
        Body::Bytes(bytes) => bytes.clone(),
    };
    harness.request_bytes(method, path, &bytes[..bytes.len().min(MOST)])
}

fn perform(harness: &Harness, call: &Call) -> Answer {
    match call {
        Call::CreateProxy(body) => send(harness, "POST", "/proxies", body),
        Call::Populate(body) => send(harness, "POST", "/populate", body),
        Call::UpdateProxy(proxy, method, body) => send(
            harness,
            method,
            &format!("/proxies/{}", segment(proxy)),
            body,
        ),
        Call::CreateToxic(proxy, body) => send(
            harness,
            "POST",
            &format!("/proxies/{}/toxics", segment(proxy)),
            body,
        ),
        Call::UpdateToxic(proxy, toxic, method, body) => send(
            harness,
            method,
            &format!("/proxies/{}/toxics/{}", segment(proxy), segment(toxic)),
            body,
        ),
        Call::Look(method, proxy, toxic) => {
            let path = format!("/proxies/{}/toxics/{}", segment(proxy), segment(toxic));
            harness.request(method, &path, None)
        }
    }
}

/// Every route, any body: a 2xx, or a 4xx that says why; the server answers after
/// each case and nothing panicked. The proxies point at a closed loopback port, so no
/// traffic leaves the machine (none is sent at all here).
#[test]
fn any_body_on_any_route_gets_a_2xx_or_a_4xx_with_a_message() {
    watch_panics();
    let harness = Harness::start(1);
    let mut runner = TestRunner::new(Config {
        cases: cases(192),
        failure_persistence: None,
        ..Config::default()
    });
    let statuses = std::cell::RefCell::new(std::collections::BTreeMap::<u16, u32>::new());
    let result = runner.run(&prop::collection::vec(call(), 1..6), |calls| {
        // A clean slate, also when proptest re-runs a failed case to shrink it.
        delete_all(&harness);
        let mark = panic_mark();
        let fixed = harness.post(
            "/proxies",
            &json!({"name": "fixed", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9",
                    "toxics": [{"type": "latency", "name": "t", "attributes": {"latency": 1}}]}),
        );
        prop_assert_eq!(fixed.status, 201, "{:?}", fixed);
        for call in &calls {
            let answer = perform(&harness, call);
            *statuses.borrow_mut().entry(answer.status).or_default() += 1;
            prop_assert!(is_2xx_or_4xx(&answer), "{:?} -> {:?}", call, answer);
            if answer.status >= 400 {
                prop_assert!(says_why(&answer), "{:?} -> {:?}", call, answer);
            }
        }
        prop_assert_eq!(harness.get("/proxies").status, 200);
        prop_assert_eq!(harness.get("/version").status, 200);
        prop_assert!(
            panics_since(mark).is_empty(),
            "panics: {:?}",
            panics_since(mark)
        );
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
    let statuses = statuses.into_inner();
    println!("answers by status: {statuses:?}");
    // Not only refusals: the generator reaches the code behind the checks too.
    assert!(
        statuses.range(200..300).map(|(_, n)| n).sum::<u32>() > 20,
        "{statuses:?}"
    );
}

// ---------------------------------------------------------------------------
// Accepted toxics at their edges, with traffic.

fn edge_toxic() -> BoxedStrategy<Value> {
    let number = prop::sample::select(vec![0_u64, 1, 3_600_000, 3_600_000_000, 1 << 20, u64::MAX]);
    (
        prop::sample::select(TOXIC_TYPES.to_vec()),
        prop::collection::vec((prop::sample::select(ATTRIBUTES), number), 0..5),
        prop::sample::select(vec![0.0_f64, 0.5, 1.0]),
        prop::sample::select(vec!["upstream", "downstream"]),
        prop::sample::select(vec![0.0_f64, 1.0]),
        prop::option::of(prop::sample::select(vec![
            "0s",
            "1ms",
            "7days",
            "18446744073709551615s",
            "400000000000y",
        ])),
    )
        .prop_map(
            |(type_name, attributes, probability, stream, toxicity, duration)| {
                let mut fields: Map<String, Value> = attributes
                    .into_iter()
                    .map(|(name, value)| (name.to_owned(), Value::from(value)))
                    .collect();
                if fields.contains_key("probability") {
                    fields.insert("probability".into(), probability.into());
                }
                let mut toxic = json!({"name": "edge", "type": type_name, "stream": stream,
                                       "toxicity": toxicity, "attributes": fields});
                if let Some(duration) = duration {
                    toxic["duration"] = duration.into();
                }
                toxic
            },
        )
        .boxed()
}

/// Pushes some traffic through a TCP proxy and reads what comes back in a moment;
/// what the toxic does to it is not the point, only that the proxy survives it.
fn poke_tcp(listen: SocketAddr) {
    let Ok(mut stream) = TcpStream::connect_timeout(&listen, Duration::from_secs(5)) else {
        return;
    };
    let _ = stream.set_write_timeout(Some(Duration::from_millis(500)));
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let data = vec![7_u8; 128 * 1024];
    let _ = stream.write_all(&data);
    let mut buffer = vec![0; 64 * 1024];
    let _ = stream.read(&mut buffer);
}

fn poke_udp(listen: SocketAddr) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    for _ in 0..10 {
        let _ = socket.send_to(&[9; 1000], listen);
    }
    let mut buffer = [0; 2048];
    let _ = socket.recv_from(&mut buffer);
}

/// Toxics at the edges of their bounds: either refused with a 400 naming what is
/// wrong, or accepted and then carrying traffic (TCP and UDP, to loopback echo
/// servers) while the proxy keeps answering and nothing panics.
#[test]
fn toxics_at_the_edges_are_refused_or_carry_traffic_without_breaking_the_proxy() {
    watch_panics();
    let harness = Harness::start(2);
    let echo = harness.echo_server();
    let tcp = harness.proxy_to("tcp", echo);
    let udp_echo = harness.udp_echo_server();
    let answer = harness.post(
        "/proxies",
        &json!({"name": "udp", "protocol": "udp", "listen": "127.0.0.1:0", "upstream": udp_echo.to_string()}),
    );
    assert_eq!(answer.status, 201, "{answer:?}");
    let udp: SocketAddr = answer.body["listen"].as_str().unwrap().parse().unwrap();
    let accepted = std::cell::Cell::new(0);
    let mut runner = TestRunner::new(Config {
        cases: cases(96),
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&(edge_toxic(), any::<bool>()), |(toxic, on_udp)| {
        let mark = panic_mark();
        let proxy = if on_udp { "udp" } else { "tcp" };
        let answer = harness.post(&format!("/proxies/{proxy}/toxics"), &toxic);
        match answer.status {
            200 => {
                accepted.set(accepted.get() + 1);
                if on_udp {
                    poke_udp(udp);
                } else {
                    poke_tcp(tcp);
                }
                // Gone already if its duration was short.
                let gone = harness.delete(&format!("/proxies/{proxy}/toxics/edge"));
                prop_assert!([204, 404].contains(&gone.status), "{:?}", gone);
            }
            400 => prop_assert!(says_why(&answer), "{:?}", answer),
            _ => prop_assert!(false, "{} -> {:?}", toxic, answer),
        }
        let index = harness.get("/proxies");
        prop_assert_eq!(index.status, 200);
        prop_assert!(
            panics_since(mark).is_empty(),
            "panics: {:?}",
            panics_since(mark)
        );
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
    let accepted = accepted.get();
    println!("{accepted} edge toxics accepted and driven");
    assert!(accepted > 10, "only {accepted} toxics were accepted");
}

/// The limits' messages name the field, the value and what is accepted.
#[test]
fn out_of_bounds_values_are_refused_naming_the_field_the_value_and_the_maximum() {
    let harness = Harness::start(3);
    harness.proxy_to("p", "127.0.0.1:9".parse().unwrap());
    let cases = [
        (
            json!({"type": "latency", "attributes": {"latency": u64::MAX}}),
            "latency 18446744073709551615 ms is above the maximum, 3600000 ms",
        ),
        (
            json!({"type": "slicer", "attributes": {"delay": 3_600_000_001_u64}}),
            "delay 3600000001 µs is above the maximum",
        ),
        (
            json!({"type": "timeout", "attributes": {"timeout": -1}}),
            "timeout: invalid value: integer `-1`, expected u64",
        ),
        (
            json!({"type": "noop", "duration": "18446744073709551615s"}),
            "is above the maximum, 7days",
        ),
        (
            json!({"type": "loss", "attributes": {"probability": 1.5}}),
            "probability 1.5 is outside [0, 1]",
        ),
    ];
    for (toxic, message) in cases {
        let answer = harness.post("/proxies/p/toxics", &toxic);
        assert_eq!(answer.status, 400, "{toxic}: {answer:?}");
        let error = answer.body["error"].as_str().unwrap();
        assert!(error.contains(message), "{toxic}: {error:?}");
    }
    let answer = harness.post(
        "/proxies",
        &json!({"name": "q", "listen": "example.com:0", "upstream": "127.0.0.1:9"}),
    );
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(
        answer.body["error"]
            .as_str()
            .unwrap()
            .contains("not looked up"),
        "{answer:?}"
    );
}

// ---------------------------------------------------------------------------
// Limits.

fn small_limits() -> Limits {
    Limits {
        proxies: 3,
        toxics_per_proxy: 2,
        connections_per_proxy: 2,
    }
}

fn assert_limit(answer: &Answer, what: &str) {
    assert_eq!(answer.status, 429, "{answer:?}");
    let error = answer.body["error"].as_str().unwrap();
    assert!(
        error.starts_with("limit reached") && error.contains(what),
        "{error:?}"
    );
}

#[test]
fn one_proxy_past_the_limit_is_refused_with_429_and_deleting_one_makes_room() {
    let harness = Harness::start_with_limits(1, small_limits());
    for name in ["a", "b", "c"] {
        harness.proxy_to(name, "127.0.0.1:9".parse().unwrap());
    }
    let body = json!({"name": "d", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"});
    assert_limit(&harness.post("/proxies", &body), "at most 3 proxies");
    let answer = harness.post("/populate", &json!([body]));
    assert_limit(&answer, "at most 3 proxies");
    assert_eq!(answer.body["proxies"], json!([]));
    assert_eq!(harness.delete("/proxies/a").status, 204);
    assert_eq!(harness.post("/proxies", &body).status, 201);
}

#[test]
fn one_toxic_past_the_limit_is_refused_with_429_also_at_proxy_creation() {
    let harness = Harness::start_with_limits(1, small_limits());
    harness.proxy_to("p", "127.0.0.1:9".parse().unwrap());
    for name in ["x", "y"] {
        harness.add_toxic("p", &json!({"type": "noop", "name": name}));
    }
    let answer = harness.post("/proxies/p/toxics", &json!({"type": "noop", "name": "z"}));
    assert_limit(&answer, "at most 2 toxics per proxy");
    let three: Vec<Value> = (0..3)
        .map(|i| json!({"type": "noop", "name": format!("n{i}")}))
        .collect();
    let answer = harness.post(
        "/proxies",
        &json!({"name": "q", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9", "toxics": three}),
    );
    assert_limit(&answer, "at most 2 toxics per proxy");
    assert_eq!(harness.get("/proxies/q").status, 404);
}

fn refused_count(harness: &Harness, proxy: &str) -> u64 {
    let text = harness.get("/metrics").body;
    let text = text.as_str().unwrap();
    let prefix = format!("testbed_proxy_refused_connections_total{{proxy=\"{proxy}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map_or(0, |count| count.trim().parse().unwrap())
}

/// Polls `check` every 20 ms until it holds or `limit` passes.
fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    check()
}

#[test]
fn connections_past_the_limit_are_closed_at_once_and_counted() {
    let harness = Harness::start_with_limits(1, small_limits());
    let echo = harness.echo_server();
    let listen = harness.proxy_to("p", echo);
    let mut open: Vec<TcpStream> = (0..2).map(|_| proxy_support::connect(listen)).collect();
    for stream in &mut open {
        proxy_support::round_trip(stream, b"hello");
    }
    let mut third = proxy_support::connect(listen);
    let _ = third.write_all(b"hello");
    let (data, error) = proxy_support::read_to_end(&mut third);
    assert!(data.is_empty(), "the third connection was served");
    // Closed (or reset, if "hello" arrived first), not left waiting.
    assert!(
        !matches!(
            error,
            Some(std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
        ),
        "the third connection was left open"
    );
    assert_eq!(refused_count(&harness, "p"), 1);
    assert_eq!(
        harness
            .get("/proxies/p/connections")
            .body
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // Closing one makes room again.
    drop(open.pop());
    assert!(eventually(Duration::from_secs(10), || {
        harness
            .get("/proxies/p/connections")
            .body
            .as_array()
            .unwrap()
            .len()
            == 1
    }));
    let mut fourth = proxy_support::connect(listen);
    proxy_support::round_trip(&mut fourth, b"again");
}

#[test]
fn udp_sessions_past_the_limit_are_refused_and_counted_leaving_open_ones_alone() {
    let harness = Harness::start_with_limits(1, small_limits());
    let echo = harness.udp_echo_server();
    let answer = harness.post(
        "/proxies",
        &json!({"name": "u", "protocol": "udp", "listen": "127.0.0.1:0", "upstream": echo.to_string()}),
    );
    assert_eq!(answer.status, 201, "{answer:?}");
    let listen: SocketAddr = answer.body["listen"].as_str().unwrap().parse().unwrap();
    let clients: Vec<UdpSocket> = (0..3)
        .map(|_| {
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            socket
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            socket
        })
        .collect();
    let mut buffer = [0; 64];
    for client in &clients[..2] {
        client.send_to(b"in", listen).unwrap();
        let (read, _) = client.recv_from(&mut buffer).unwrap();
        assert_eq!(&buffer[..read], b"in");
    }
    clients[2].send_to(b"out", listen).unwrap();
    assert!(eventually(Duration::from_secs(10), || refused_count(
        &harness, "u"
    ) == 1));
    assert_eq!(
        harness
            .get("/proxies/u/connections")
            .body
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // The open sessions still work.
    clients[0].send_to(b"still", listen).unwrap();
    let (read, _) = clients[0].recv_from(&mut buffer).unwrap();
    assert_eq!(&buffer[..read], b"still");
}

/// Sums a field of the connections list.
fn queued(harness: &Harness, proxy: &str, field: &str) -> u64 {
    harness
        .get(&format!("/proxies/{proxy}/connections"))
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|connection| connection[field].as_u64().unwrap())
        .sum()
}

/// Waits until `field` stops growing (the reads stopped) and returns its last value.
fn settled(harness: &Harness, proxy: &str, field: &str) -> u64 {
    let mut last = (queued(harness, proxy, field), Instant::now());
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        let now = queued(harness, proxy, field);
        if now != last.0 {
            last = (now, Instant::now());
        } else if now > 0 && last.1.elapsed() > Duration::from_millis(750) {
            break;
        }
    }
    last.0
}

/// A slicer of 1-byte pieces in front of an upstream that reads nothing: the client
/// sends 4 MiB, and the proxy holds at most its piece bound (not four million
/// one-byte allocations) before it stops reading.
#[test]
fn a_one_byte_slicer_on_4_mib_queues_at_most_the_piece_bound() {
    let harness = Harness::start(1);
    let stalled = harness.serve_with(|stream| async move {
        // Never reads; holds the connection until the harness goes.
        std::future::pending::<()>().await;
        drop(stream);
    });
    let listen = harness.proxy_to("sliced", stalled);
    harness.add_toxic(
        "sliced",
        &json!({"type": "slicer", "stream": "upstream", "attributes": {"average_size": 1, "size_variation": 0}}),
    );
    let client = proxy_support::connect(listen);
    client
        .set_write_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut writer = client.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        // Blocks once the proxy stops reading; ends with an error when the harness
        // closes the connection.
        let _ = writer.write_all(&vec![1_u8; 4 * 1024 * 1024]);
    });
    let pieces = settled(&harness, "sliced", "queued_pieces");
    let bytes = queued(&harness, "sliced", "queued_bytes");
    println!("queued: {pieces} pieces, {bytes} bytes");
    assert!(
        pieces > 0,
        "nothing was queued: the test did not fill the queue"
    );
    assert!(
        pieces <= testbed::proxy::link::QUEUE_PIECES as u64,
        "{pieces} pieces queued"
    );
    assert_eq!(bytes, pieces, "one byte per piece");
    drop(client);
    drop(harness);
    sender.join().unwrap();
}

/// A UDP session whose datagrams wait an hour (latency) holds at most its byte bound
/// of them, not 1024 full-size datagrams (64 MiB).
#[test]
fn a_udp_session_queues_at_most_its_byte_bound() {
    let harness = Harness::start(1);
    let echo = harness.udp_echo_server();
    let answer = harness.post(
        "/proxies",
        &json!({"name": "slow", "protocol": "udp", "listen": "127.0.0.1:0", "upstream": echo.to_string(),
                "toxics": [{"type": "latency", "stream": "upstream", "attributes": {"latency": 3_600_000}}]}),
    );
    assert_eq!(answer.status, 201, "{answer:?}");
    let listen: SocketAddr = answer.body["listen"].as_str().unwrap().parse().unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    let datagram = vec![3_u8; 60_000];
    for _ in 0..300 {
        client.send_to(&datagram, listen).unwrap();
        // Paced a little, so the proxy's socket buffer does not drop them all.
        std::thread::sleep(Duration::from_micros(500));
    }
    let bytes = settled(&harness, "slow", "queued_bytes");
    println!("queued: {bytes} bytes");
    assert!(
        bytes > 60_000,
        "only {bytes} bytes queued: the test did not fill the queue"
    );
    assert!(
        bytes <= testbed::proxy::udp::QUEUE_BYTES as u64,
        "{bytes} bytes queued"
    );
}

#[test]
fn deleting_a_proxy_drops_its_metrics() {
    let harness = Harness::start(1);
    harness.proxy_to("gone", "127.0.0.1:9".parse().unwrap());
    let metrics = |harness: &Harness| harness.get("/metrics").body.as_str().unwrap().to_owned();
    assert!(metrics(&harness).contains("proxy=\"gone\""));
    assert_eq!(harness.delete("/proxies/gone").status, 204);
    assert!(!metrics(&harness).contains("proxy=\"gone\""));
}

/// Sent by hand: the server may answer before it has read the whole body, which an
/// HTTP client can report as a failed write rather than the answer.
#[test]
fn a_body_past_the_limit_is_a_413() {
    let harness = Harness::start(1);
    let length = testbed::proxy::limits::MAX_BODY_BYTES + 1;
    let mut stream = proxy_support::connect(harness.api);
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let head = format!(
            "POST /proxies HTTP/1.1\r\nHost: test\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
        );
        // The server may stop reading once it has answered: errors are expected.
        let _ = writer.write_all(head.as_bytes());
        let _ = writer.write_all(&vec![b'x'; length]);
    });
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:?}");
    drop(stream);
    sender.join().unwrap();
    assert_eq!(harness.get("/proxies").status, 200);
}
