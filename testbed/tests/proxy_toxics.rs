//! Every toxic through real loopback sockets: what a client of the proxy observes.
//! Timing bounds are generous (the machine is shared) but each fails if the toxic
//! does nothing or the wrong thing. A toxic's delay is a lower bound a loaded machine
//! cannot break; where a test claims the absence of a delay it takes the fastest of a
//! few round trips (a stall slows some, a toxic slows all) and compares it with the
//! toxic's own delay, not with a guess at how fast loopback is.

mod proxy_support;

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use proxy_support::{connect, read_to_end, round_trip, Harness};
use serde_json::json;

fn millis(duration: Duration) -> u128 {
    duration.as_millis()
}

/// The fastest of `count` round trips of `message`: what the path itself costs,
/// without the stalls a loaded machine adds to some of them.
fn fastest_round_trip(client: &mut std::net::TcpStream, message: &[u8], count: usize) -> u128 {
    (0..count)
        .map(|_| millis(round_trip(client, message)))
        .min()
        .unwrap()
}

fn echo_proxy(harness: &Harness) -> SocketAddr {
    let echo = harness.echo_server();
    harness.proxy_to("echo", echo)
}

#[test]
fn latency_delays_each_round_trip_by_the_latency() {
    let harness = Harness::start(1);
    let listen = echo_proxy(&harness);
    let mut client = connect(listen);
    let direct = fastest_round_trip(&mut client, b"warm", 3);
    assert!(
        direct < 150,
        "{direct} ms without toxics: as slow as the toxic"
    );
    harness.add_toxic(
        "echo",
        &json!({"type": "latency", "attributes": {"latency": 150}}),
    );
    for _ in 0..3 {
        let rtt = round_trip(&mut client, b"ping");
        assert!((150..1000).contains(&millis(rtt)), "{rtt:?}");
    }
    harness.add_toxic(
        "echo",
        &json!({"type": "latency", "stream": "upstream", "attributes": {"latency": 100}}),
    );
    let rtt = round_trip(&mut client, b"both");
    assert!(
        (250..1200).contains(&millis(rtt)),
        "{rtt:?} with both directions"
    );
}

#[test]
fn jitter_spreads_round_trips_within_latency_plus_or_minus_jitter() {
    let harness = Harness::start(2);
    let listen = echo_proxy(&harness);
    harness.add_toxic(
        "echo",
        &json!({"type": "latency", "attributes": {"latency": 100, "jitter": 50}}),
    );
    let mut client = connect(listen);
    let rtts: Vec<u128> = (0..16)
        .map(|_| millis(round_trip(&mut client, b"j")))
        .collect();
    assert!(rtts.iter().all(|rtt| (50..800).contains(rtt)), "{rtts:?}");
    let spread = rtts.iter().max().unwrap() - rtts.iter().min().unwrap();
    assert!(spread >= 20, "jitter must vary the delay: {rtts:?}");
}

#[test]
fn removing_a_toxic_acts_on_live_connections() {
    let harness = Harness::start(1);
    let listen = echo_proxy(&harness);
    let mut client = connect(listen);
    harness.add_toxic(
        "echo",
        &json!({"type": "latency", "attributes": {"latency": 300}}),
    );
    assert!(millis(round_trip(&mut client, b"slow")) >= 300);
    assert_eq!(
        harness
            .delete("/proxies/echo/toxics/latency_downstream")
            .status,
        204
    );
    let rtt = fastest_round_trip(&mut client, b"fast", 3);
    assert!(rtt < 300, "{rtt} ms after removal");
}

#[test]
fn bandwidth_holds_the_rate_and_a_loaded_machine_only_slows_it() {
    let harness = Harness::start(1);
    let bytes = 500_000;
    let source = harness.source_server(bytes);
    let listen = harness.proxy_to("source", source);
    harness.add_toxic(
        "source",
        &json!({"type": "bandwidth", "attributes": {"rate": 250}}),
    );
    let start = Instant::now();
    let mut client = connect(listen);
    let (data, error) = read_to_end(&mut client);
    let elapsed = start.elapsed().as_secs_f64();
    assert_eq!(error, None);
    assert_eq!(data.len(), bytes);
    // Pieces are scheduled back to back from the first, so no stall can make the
    // transfer faster than the rate (the bound above is the claim); a stall can
    // make it slower, and the bound below only says the toxic does not throttle
    // far under its rate.
    let rate = bytes as f64 / elapsed / 1000.0;
    assert!(
        (125.0..=262.5).contains(&rate),
        "{rate:.1} KB/s over {elapsed:.3} s"
    );
}

#[test]
fn slicer_cuts_the_stream_into_average_sized_pieces_keeping_every_byte() {
    let harness = Harness::start(1);
    let bytes = 2_000;
    let source = harness.source_server(bytes);
    let listen = harness.proxy_to("source", source);
    harness.add_toxic(
        "source",
        &json!({"type": "slicer", "attributes": {"average_size": 100, "size_variation": 20, "delay": 40000}}),
    );
    // 40 ms between pieces: a reader descheduled for less still reads them apart.
    let mut client = connect(listen);
    let mut sizes = Vec::new();
    let mut data = Vec::new();
    let mut buffer = [0; 4096];
    loop {
        let read = client.read(&mut buffer).unwrap();
        if read == 0 {
            break;
        }
        sizes.push(read);
        data.extend_from_slice(&buffer[..read]);
    }
    let expected: Vec<u8> = (0..bytes).map(|i| i as u8).collect();
    assert_eq!(data, expected);
    assert!(sizes.len() >= 10, "{sizes:?}");
    let mut sorted = sizes.clone();
    sorted.sort_unstable();
    let median = sorted[sorted.len() / 2];
    assert!((80..=120).contains(&median), "median {median} of {sizes:?}");
}

#[test]
fn limit_data_passes_exactly_the_allowance_then_closes() {
    let harness = Harness::start(1);
    let source = harness.source_server(5_000);
    let listen = harness.proxy_to("source", source);
    harness.add_toxic(
        "source",
        &json!({"type": "limit_data", "attributes": {"bytes": 1234}}),
    );
    let mut client = connect(listen);
    let (data, _) = read_to_end(&mut client);
    assert_eq!(data.len(), 1234);
    let expected: Vec<u8> = (0..1234_usize).map(|i| i as u8).collect();
    assert_eq!(data, expected);
}

#[test]
fn timeout_swallows_data_and_closes_after_the_timeout() {
    let harness = Harness::start(1);
    let listen = echo_proxy(&harness);
    harness.add_toxic(
        "echo",
        &json!({"type": "timeout", "attributes": {"timeout": 300}}),
    );
    let start = Instant::now();
    let mut client = connect(listen);
    client.write_all(b"anyone?").unwrap();
    let (data, _) = read_to_end(&mut client);
    let elapsed = start.elapsed();
    assert!(data.is_empty(), "{data:?}");
    assert!((300..3000).contains(&millis(elapsed)), "{elapsed:?}");
}

#[test]
fn timeout_zero_holds_the_connection_silent_until_removed() {
    let harness = Harness::start(1);
    let listen = echo_proxy(&harness);
    let mut client = connect(listen);
    round_trip(&mut client, b"before");
    harness.add_toxic(
        "echo",
        &json!({"type": "timeout", "attributes": {"timeout": 0}}),
    );
    client.write_all(b"lost").unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buffer = [0; 16];
    let error = client.read(&mut buffer).unwrap_err();
    assert!(
        matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{error}"
    );
    assert_eq!(
        harness
            .delete("/proxies/echo/toxics/timeout_downstream")
            .status,
        204
    );
    client
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    round_trip(&mut client, b"after");
}

#[test]
fn reset_peer_resets_the_client_after_the_timeout() {
    let harness = Harness::start(1);
    let listen = echo_proxy(&harness);
    harness.add_toxic(
        "echo",
        &json!({"type": "reset_peer", "attributes": {"timeout": 200}}),
    );
    let start = Instant::now();
    let mut client = connect(listen);
    let (data, error) = read_to_end(&mut client);
    let elapsed = start.elapsed();
    assert!(data.is_empty());
    assert_eq!(error, Some(ErrorKind::ConnectionReset));
    assert!((200..3000).contains(&millis(elapsed)), "{elapsed:?}");
}

#[test]
fn slow_close_delays_the_end_of_stream_not_the_data() {
    let harness = Harness::start(1);
    let source = harness.source_server(10);
    let listen = harness.proxy_to("source", source);
    harness.add_toxic(
        "source",
        &json!({"type": "slow_close", "attributes": {"delay": 1500}}),
    );
    let start = Instant::now();
    let mut client = connect(listen);
    let mut first = [0; 10];
    client.read_exact(&mut first).unwrap();
    let data_at = start.elapsed();
    let (rest, error) = read_to_end(&mut client);
    let closed_at = start.elapsed();
    assert!(rest.is_empty() && error.is_none());
    assert!(millis(data_at) < 1000, "data came at {data_at:?}");
    assert!((1500..5000).contains(&millis(closed_at)), "{closed_at:?}");
}

#[test]
fn noop_passes_everything() {
    let harness = Harness::start(1);
    let listen = echo_proxy(&harness);
    harness.add_toxic("echo", &json!({"type": "noop"}));
    let mut client = connect(listen);
    let message: Vec<u8> = (0..100_000_usize).map(|i| (i % 251) as u8).collect();
    round_trip(&mut client, &message);
}

#[test]
fn toxicity_zero_never_applies() {
    let harness = Harness::start(3);
    let listen = echo_proxy(&harness);
    harness.add_toxic(
        "echo",
        &json!({"type": "latency", "toxicity": 0.0, "attributes": {"latency": 500}}),
    );
    for _ in 0..10 {
        let mut client = connect(listen);
        // Rolled once per connection: had it applied, both would take 500 ms.
        assert!(fastest_round_trip(&mut client, b"x", 2) < 500);
    }
}

fn delayed_connections(listen: SocketAddr, count: usize) -> Vec<bool> {
    (0..count)
        .map(|_| {
            let mut client = connect(listen);
            fastest_round_trip(&mut client, b"x", 2) >= 200
        })
        .collect()
}

#[test]
fn toxicity_is_rolled_once_per_connection_and_survives_unrelated_edits() {
    let harness = Harness::start(4);
    let listen = echo_proxy(&harness);
    harness.add_toxic(
        "echo",
        &json!({"type": "latency", "name": "half", "toxicity": 0.5, "attributes": {"latency": 250}}),
    );
    let mut clients: Vec<_> = (0..12).map(|_| connect(listen)).collect();
    let first: Vec<bool> = clients
        .iter_mut()
        .map(|client| fastest_round_trip(client, b"a", 2) >= 250)
        .collect();
    assert!(
        first.iter().any(|d| *d) && first.iter().any(|d| !*d),
        "{first:?}"
    );
    harness.add_toxic("echo", &json!({"type": "noop", "name": "unrelated"}));
    harness.patch("/proxies/echo/toxics/unrelated", &json!({"toxicity": 0.3}));
    let second: Vec<bool> = clients
        .iter_mut()
        .map(|client| fastest_round_trip(client, b"b", 2) >= 250)
        .collect();
    assert_eq!(first, second);
}

#[test]
fn the_same_seed_and_traffic_give_the_same_faults() {
    let run = |seed: u64| {
        let harness = Harness::start(seed);
        let listen = echo_proxy(&harness);
        harness.add_toxic(
            "echo",
            &json!({"type": "latency", "toxicity": 0.5, "attributes": {"latency": 200}}),
        );
        delayed_connections(listen, 10)
    };
    let first = run(42);
    assert!(
        first.iter().any(|d| *d) && first.iter().any(|d| !*d),
        "{first:?}"
    );
    assert_eq!(first, run(42));
}

#[test]
fn a_disabled_proxy_cuts_its_connections() {
    let harness = Harness::start(1);
    let listen = echo_proxy(&harness);
    let mut client = connect(listen);
    round_trip(&mut client, b"up");
    let start = Instant::now();
    assert_eq!(
        harness
            .patch("/proxies/echo", &json!({"enabled": false}))
            .status,
        200
    );
    let (data, _) = read_to_end(&mut client);
    assert!(data.is_empty());
    assert!(millis(start.elapsed()) < 3000);
    assert!(
        std::net::TcpStream::connect(listen).is_err(),
        "down means no listener"
    );
}

#[test]
fn an_upstream_that_refuses_makes_the_proxy_close_the_client() {
    let harness = Harness::start(1);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = closed.local_addr().unwrap();
    drop(closed);
    let listen = harness.proxy_to("dead", upstream);
    let mut client = connect(listen);
    let _ = client.write_all(b"hello");
    let (data, _) = read_to_end(&mut client);
    assert!(data.is_empty());
}

#[test]
fn a_targeted_toxic_applies_only_to_its_clients() {
    let harness = Harness::start(1);
    let listen = echo_proxy(&harness);
    harness.add_toxic(
        "echo",
        &json!({"type": "latency", "clients": ["127.0.0.2/32"], "attributes": {"latency": 300}}),
    );
    let mut from_one = connect(listen);
    assert!(fastest_round_trip(&mut from_one, b"1", 3) < 300);
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&"127.0.0.2:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    socket.connect(&listen.into()).unwrap();
    let mut from_two: std::net::TcpStream = socket.into();
    from_two
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    assert!(millis(round_trip(&mut from_two, b"2")) >= 300);
}

#[test]
fn a_toxic_with_a_duration_removes_itself() {
    let harness = Harness::start(1);
    echo_proxy(&harness);
    harness.add_toxic("echo", &json!({"type": "noop", "duration": "300ms"}));
    assert_eq!(
        harness
            .get("/proxies/echo/toxics")
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let toxics = harness.get("/proxies/echo/toxics").body;
        if toxics.as_array().unwrap().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "still there: {toxics}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn accept_delay_holds_new_connections_only() {
    let harness = Harness::start(1);
    let listen = echo_proxy(&harness);
    let mut old = connect(listen);
    round_trip(&mut old, b"old");
    harness.add_toxic(
        "echo",
        &json!({"type": "accept_delay", "attributes": {"delay": 400}}),
    );
    assert!(fastest_round_trip(&mut old, b"still fast", 3) < 400);
    let start = Instant::now();
    let mut new = connect(listen);
    round_trip(&mut new, b"new");
    assert!((400..3000).contains(&millis(start.elapsed())));
}

#[test]
fn blackhole_forwards_nothing_and_closes_nothing() {
    let harness = Harness::start(1);
    let listen = echo_proxy(&harness);
    harness.add_toxic("echo", &json!({"type": "blackhole", "stream": "upstream"}));
    let mut client = connect(listen);
    client.write_all(b"into the void").unwrap();
    client.shutdown(std::net::Shutdown::Write).unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(600)))
        .unwrap();
    let mut buffer = [0; 16];
    let error = client.read(&mut buffer).unwrap_err();
    assert!(
        matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{error}"
    );
}

#[test]
fn the_connections_list_shows_source_bytes_and_applying_toxics() {
    let harness = Harness::start(1);
    let listen = echo_proxy(&harness);
    harness.add_toxic("echo", &json!({"type": "noop", "name": "everyone"}));
    harness.add_toxic(
        "echo",
        &json!({"type": "noop", "name": "nobody", "toxicity": 0.0}),
    );
    let mut client = connect(listen);
    round_trip(&mut client, b"12345");
    // The echo reaches the client as the proxy's write returns, just before
    // the proxy counts it: wait (bounded) for the count to catch up.
    let deadline = Instant::now() + Duration::from_secs(2);
    let list = loop {
        let list = harness.get("/proxies/echo/connections");
        let counted = list.body[0]["bytes_downstream"] == 5;
        if counted || Instant::now() > deadline {
            break list;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(list.status, 200);
    let connections = list.body.as_array().unwrap();
    assert_eq!(connections.len(), 1, "{list:?}");
    let connection = &connections[0];
    assert_eq!(
        connection["source"],
        client.local_addr().unwrap().to_string()
    );
    assert_eq!(connection["bytes_upstream"], 5);
    assert_eq!(connection["bytes_downstream"], 5);
    assert_eq!(connection["toxics"], json!(["everyone"]));
    drop(client);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !harness
        .get("/proxies/echo/connections")
        .body
        .as_array()
        .unwrap()
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "a closed connection stays listed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn toxics_from_the_config_file_apply_at_start() {
    let harness = Harness::start(1);
    let echo = harness.echo_server();
    let path = std::env::temp_dir().join(format!("proxy-config-{}.json", std::process::id()));
    std::fs::write(
        &path,
        json!([{"name": "configured", "listen": "127.0.0.1:0", "upstream": echo.to_string(),
                "toxics": [{"type": "latency", "attributes": {"latency": 200}}]}])
        .to_string(),
    )
    .unwrap();
    let collection = harness.handle.block_on(async {
        let server = testbed::proxy::ProxyServer::bind("127.0.0.1:0", 1)
            .await
            .unwrap();
        let collection = server.collection();
        let applied = testbed::proxy::config::apply(&collection, &path).await;
        std::fs::remove_file(&path).unwrap();
        assert_eq!(applied.unwrap(), 1);
        collection
    });
    let proxy = harness
        .handle
        .block_on(collection.get("configured"))
        .unwrap();
    let listen: SocketAddr = proxy.settings().listen.parse().unwrap();
    let mut client = connect(listen);
    assert!(millis(round_trip(&mut client, b"cfg")) >= 200);
}

#[test]
fn without_toxics_small_writes_under_backpressure_all_arrive_in_order() {
    let harness = Harness::start(1);
    let listen = echo_proxy(&harness);
    let mut writer = connect(listen);
    let mut reader = writer.try_clone().unwrap();
    let total = 1_000_000_usize;
    let sending = std::thread::spawn(move || {
        let data: Vec<u8> = (0..total).map(|i| (i % 253) as u8).collect();
        for message in data.chunks(10) {
            writer.write_all(message).unwrap();
        }
        writer.shutdown(std::net::Shutdown::Write).unwrap();
    });
    // Read late, so the proxy's buffers fill with small segments first.
    std::thread::sleep(Duration::from_millis(300));
    let (data, error) = read_to_end(&mut reader);
    sending.join().unwrap();
    assert_eq!(error, None);
    assert_eq!(data.len(), total);
    assert!(data
        .iter()
        .enumerate()
        .all(|(i, byte)| *byte == (i % 253) as u8));
}

#[test]
fn a_toxic_added_mid_stream_takes_over_from_the_zero_copy_path_in_order() {
    let harness = Harness::start(1);
    let listen = echo_proxy(&harness);
    let mut client = connect(listen);
    let message: Vec<u8> = (0..300_000_usize).map(|i| (i % 241) as u8).collect();
    round_trip(&mut client, &message);
    harness.add_toxic(
        "echo",
        &json!({"type": "slicer", "attributes": {"average_size": 1000, "size_variation": 500}}),
    );
    round_trip(&mut client, &message);
    assert_eq!(
        harness
            .delete("/proxies/echo/toxics/slicer_downstream")
            .status,
        204
    );
    round_trip(&mut client, &message);
}

#[test]
fn a_toxic_added_on_a_zero_copy_connection_acts_on_the_very_next_bytes() {
    let harness = Harness::start(1);
    let listen = echo_proxy(&harness);
    let mut client = connect(listen);
    // Toxic-free directions splice; the toxic must reach them before the next bytes.
    assert!(fastest_round_trip(&mut client, b"quick", 20) < 200);
    harness.add_toxic(
        "echo",
        &json!({"type": "latency", "stream": "upstream", "attributes": {"latency": 200}}),
    );
    assert!(millis(round_trip(&mut client, b"slow")) >= 200);
    assert_eq!(
        harness
            .delete("/proxies/echo/toxics/latency_upstream")
            .status,
        204
    );
    round_trip(&mut client, b"settled");
    assert!(fastest_round_trip(&mut client, b"quick again", 3) < 200);
}

#[test]
fn bytes_spliced_without_toxics_are_counted_in_the_connections_list() {
    let harness = Harness::start(1);
    let listen = echo_proxy(&harness);
    let mut client = connect(listen);
    let message = vec![9_u8; 100_000];
    round_trip(&mut client, &message);
    round_trip(&mut client, &message);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let listed = harness.get("/proxies/echo/connections").body;
        let counted = (
            listed[0]["bytes_upstream"].as_u64(),
            listed[0]["bytes_downstream"].as_u64(),
        );
        if counted == (Some(200_000), Some(200_000)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "counted {counted:?} of 200000 each way"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
