//! `rusty_rail` end to end: the real binary on `AF_PACKET` in a lab of
//! network namespaces (see `lab.rs`), driven by real clients.
//!
//! Each test owns the prefix `rrlbN-` and the subnets `10.(210+N).{1,2}.0/24`,
//! and removes everything it made when it ends, also when it fails. Tests
//! skip (`lab_or_skip!`, printing `skipped: <reason>`) when not root or
//! without `ip netns`, `nft`, `/dev/net/tun` or a tool they use.

mod bgp;
mod capture;
mod gre_over_ipv6;
mod hostile;
mod ipv6_backends;
mod lab;
mod netmap;
mod reload_steering;
mod services;
mod three_services;

use std::collections::BTreeMap;
use std::time::Duration;

use host::offloads::Offload;
use lab::{lab_or_skip, Lab, VIP};
use serde_json::Value;

/// Replies per server name in an mconnect report.
fn split(report: &Value) -> BTreeMap<String, u64> {
    report["hosts"]
        .as_object()
        .map(|hosts| {
            hosts
                .iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}

fn assert_all_succeeded(report: &Value, n: u64) {
    assert_eq!(report["failed_connects"], 0, "{report}");
    assert_eq!(report["failed_reads"], 0, "{report}");
    assert_eq!(split(report).values().sum::<u64>(), n, "{report}");
}

/// 3000 connections from c1 all succeed and split evenly (each within 10%
/// of its share: 5 sigma) over exactly `servers`.
fn assert_split_over(lab: &Lab, servers: &[&str]) {
    let n = 3000;
    let report = lab.mconnect("c1", &["--nconn", &n.to_string()]);
    assert_all_succeeded(&report, n);
    let split = split(&report);
    let answered: Vec<&str> = split.keys().map(String::as_str).collect();
    assert_eq!(answered, servers, "{split:?}");
    let even = n as f64 / servers.len() as f64;
    for (server, got) in &split {
        assert!(
            (*got as f64 - even).abs() <= 0.1 * even,
            "{server} got {got} of {n}, more than 10% off {even}: {split:?}"
        );
    }
    println!("split of {n} connections: {split:?}");
}

/// Checks the frames `capture` saw at server `s`: at least `at_least` of
/// them, each GRE from balancer 1 with correct outer and inner checksums.
fn assert_forwarded_right(
    lab: &Lab,
    capture: std::thread::JoinHandle<Vec<Vec<u8>>>,
    s: usize,
    at_least: usize,
) {
    let captured = capture.join().expect("capture");
    assert!(
        captured.len() >= at_least,
        "s{s} received {} GRE frames",
        captured.len()
    );
    for frame in &captured {
        if let Err(wrong) = capture::check_forwarded(frame, lab.balancer_ip(1), lab.server_ip(s)) {
            panic!("a frame sent to s{s} is wrong: {wrong}: {frame:02x?}");
        }
    }
}

/// Starts nginx on servers 1 to 3 and fetches its page through the VIP from c2.
fn assert_curl_reaches_nginx(lab: &mut Lab) {
    for s in 1..=3 {
        lab.start_nginx(s);
    }
    let page = lab.exec(
        "c2",
        &["curl", "-sS", "--max-time", "5", &format!("http://{VIP}/")],
    );
    assert!(
        page.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&page.stderr)
    );
    let body = String::from_utf8_lossy(&page.stdout);
    assert!(body.starts_with("nginx on s"), "{body}");
}

/// A 2-second iperf3 upload from c1 to the VIP, served by s1 (the only
/// backend: iperf3's control and data connections must meet on one server,
/// which an L4 balancer does not promise). Stops `balancer`; returns the
/// rate received and the balancer's final counters.
fn iperf3_upload(lab: &mut Lab, balancer: lab::Balancer) -> (f64, String) {
    lab.start_iperf3(1);
    let run = lab.exec("c1", &["iperf3", "-c", VIP, "-t", "2", "-J"]);
    let counters = balancer.stop();
    assert!(
        run.status.success(),
        "iperf3: {}\n{counters}",
        String::from_utf8_lossy(&run.stdout)
    );
    let json: Value = serde_json::from_slice(&run.stdout).expect("iperf3 -J");
    let bps = json["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or(0.0);
    assert!(bps > 0.0, "{json}\n{counters}");
    (bps, counters)
}

/// The final counters report shows `workers` workers, each of which
/// forwarded frames (its share of the flows: fanout, or its own rings).
fn assert_each_worker_forwarded(counters: &str, workers: usize) {
    let each: Vec<&str> = counters.split("worker ").skip(1).collect();
    assert_eq!(each.len(), workers, "{counters}");
    for worker in each {
        assert!(
            reported(worker, "to_wire") > 0,
            "each worker forwards a share: {counters}"
        );
    }
}

/// The count printed for `name` in a final counters report.
fn reported(report: &str, name: &str) -> u64 {
    report
        .lines()
        .find_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some(name)).then(|| words.next().and_then(|n| n.parse().ok()))?
        })
        .unwrap_or(0)
}

#[test]
fn ten_thousand_connections_split_evenly_and_curl_and_iperf3_work_through_the_vip() {
    lab_or_skip!("nginx", "iperf3");
    let mut lab = Lab::up("rrlb1-", 211, 1, 3);
    let balancer = lab.start_balancer(1, &[]);

    let captured = capture::start(&lab.ns("s1"), 300, Duration::from_secs(20));
    let report = lab.mconnect("c1", &["--nconn", "10000"]);
    assert_all_succeeded(&report, 10_000);
    assert_forwarded_right(&lab, captured, 1, 100);
    let split = split(&report);
    assert_eq!(split.len(), 3, "every backend answers: {split:?}");
    for (server, n) in &split {
        let share = *n as f64 / 10_000.0;
        assert!(
            (share - 1.0 / 3.0).abs() <= 0.1 / 3.0,
            "{server} got {n} of 10000, more than 10% off an even third: {split:?}"
        );
    }
    println!("split of 10000 connections: {split:?}");

    assert_curl_reaches_nginx(&mut lab);

    let counters = balancer.stop();
    assert!(reported(&counters, "to_wire") >= 10_000 * 4, "{counters}");

    let only_s1 = lab.start_balancer(1, &[("RR_TARGET_IPS", lab.server_ip(1).to_string())]);
    let (bps, _) = iperf3_upload(&mut lab, only_s1);
    println!("iperf3 through the VIP: {:.1} Mbit/s", bps / 1e6);
}

/// VIP mode: the router routes the VIP to the balancer as plain IP, and the
/// balancer encapsulates each packet in GRE toward the flow's backend.
#[test]
fn in_vip_mode_the_balancer_encapsulates_plain_traffic_and_clients_connect() {
    lab_or_skip!("nginx", "iperf3");
    let mut lab = Lab::up_routed("rrlb4-", 214, 3);
    let balancer = lab.start_balancer(1, &[("RR_VIPS", VIP.to_owned())]);

    let captured = capture::start(&lab.ns("s2"), 100, Duration::from_secs(20));
    let report = lab.mconnect("c1", &["--nconn", "3000"]);
    // The frames first: when they are wrong, no connection succeeds.
    assert_forwarded_right(&lab, captured, 2, 50);
    assert_all_succeeded(&report, 3000);
    let split = split(&report);
    assert_eq!(split.len(), 3, "every backend answers: {split:?}");
    println!("VIP mode, split of 3000 connections: {split:?}");

    assert_curl_reaches_nginx(&mut lab);

    let counters = balancer.stop();
    // At least the three handshake and request packets of each connection
    // went out encapsulated, and none was refused for its size.
    assert!(reported(&counters, "to_wire") >= 3000 * 3, "{counters}");
    assert_eq!(reported(&counters, "encap_exceeds_mtu"), 0, "{counters}");

    // Path MTU discovery through the encapsulation: iperf3 sends full-size
    // segments toward the VIP, each 24 bytes too big to wrap. The balancer
    // answers the first with "fragmentation needed", MTU 1476; the client
    // shrinks its segments and the upload goes through. The router
    // segments what it forwards, as a real wire would (GSO frames through
    // veths are beyond what AF_PACKET's slots hold).
    lab.set_offloads_on("r", "eth1", &[(Offload::Tso, false), (Offload::Gso, false)]);
    let only_s1 = lab.start_balancer(
        1,
        &[
            ("RR_VIPS", VIP.to_owned()),
            ("RR_TARGET_IPS", lab.server_ip(1).to_string()),
        ],
    );
    let (bps, counters) = iperf3_upload(&mut lab, only_s1);
    assert!(reported(&counters, "icmp_too_big") >= 1, "{counters}");
    println!(
        "VIP mode, iperf3 upload after path MTU discovery: {:.1} Mbit/s",
        bps / 1e6
    );
}

#[test]
fn the_host_keeps_working_while_it_runs_and_is_as_before_after_it_exits() {
    lab_or_skip!("ping");
    let mut lab = Lab::up("rrlb2-", 212, 1, 2);
    // GRO on, as on a real NIC: the balancer turns it off and back on.
    lab.set_offloads("lb1", &[(Offload::Gro, true)]);
    let before = lab.host_snapshot("lb1");
    assert!(before.contains("gro: Some(true)"), "{before}");
    let balancer = lab.start_balancer(1, &[]);
    let lb = lab.balancer_ip(1).to_string();

    let ping = lab.exec("r", &["ping", "-c", "3", "-i", "0.2", "-W", "2", &lb]);
    assert!(
        ping.status.success(),
        "ping the balancer's host: {}",
        String::from_utf8_lossy(&ping.stdout)
    );
    let listen = format!("{lb}:7000");
    lab.spawn_mconnect_server("lb1", "local-service", &listen, "lb1-host", None);
    lab.wait_listening("lb1", 7000);
    let testbed = lab::testbed();
    let local = lab.exec(
        "r",
        &[
            testbed.to_str().unwrap(),
            "mconnect",
            "--address",
            &listen,
            "--nconn",
            "20",
            "--output",
            "json",
        ],
    );
    let local: Value = serde_json::from_slice(&local.stdout).expect("mconnect json");
    assert_all_succeeded(&local, 20);
    assert!(
        lab.host_snapshot("lb1") != before,
        "the balancer changes the host while it runs (its nftables table)"
    );

    // Balanced traffic still flows alongside.
    assert_all_succeeded(&lab.mconnect("c1", &["--nconn", "200"]), 200);

    let on_af_xdp = balancer.on_af_xdp();
    let counters = balancer.stop();
    if on_af_xdp {
        // The XDP program left the host's traffic in the kernel: the
        // balancer never saw it.
        assert_eq!(reported(&counters, "to_host"), 0, "{counters}");
    } else {
        assert!(
            reported(&counters, "to_host") > 0,
            "passthrough is counted: {counters}"
        );
    }
    assert_eq!(
        lab.host_snapshot("lb1"),
        before,
        "addresses, routes, nftables and offloads are as before"
    );
}

#[test]
fn hostile_frames_are_counted_by_reason_and_do_not_stop_balancing() {
    lab_or_skip!();
    let lab = Lab::up("rrlb3-", 213, 1, 2);
    let balancer = lab.start_balancer(1, &[]);
    let sent = hostile::send_all(&lab);
    // Normal traffic keeps flowing after (and the balancer is still there).
    assert_all_succeeded(&lab.mconnect("c1", &["--nconn", "500"]), 500);
    let counters = balancer.stop();
    for (reason, at_least) in &sent.expected_drops {
        let n = reported(&counters, reason);
        assert!(
            n >= *at_least,
            "{reason}: {n} counted, {at_least} sent\n{counters}"
        );
    }
    assert!(
        reported(&counters, "held") >= sent.early_fragments,
        "early fragments wait for their first: {counters}"
    );
}

#[test]
fn two_balancers_with_one_seed_keep_every_connection_when_one_dies() {
    lab_or_skip!();
    let lab = Lab::up("rrlb5-", 215, 2, 3);
    let first = lab.start_balancer(1, &[]);
    let second = lab.start_balancer(2, &[]);
    let events = lab.work.path().join("hold.jsonl");
    let hold = lab.spawn_mconnect_hold("c1", 200, Duration::from_secs(8), &events);
    // Let every connection establish and settle on its backend through both
    // balancers, then kill one and withdraw it from the router's ECMP group.
    std::thread::sleep(Duration::from_secs(3));
    first.kill();
    lab.write_remotes(&[lab.balancer_ip(2).to_string()]);
    let report = hold.finish();
    assert_all_succeeded(&report, 200);
    assert_eq!(report["hold"]["broken"], 0, "no connection broke: {report}");
    assert_eq!(
        report["hold"]["moved"], 0,
        "no connection moved to another backend: {report}"
    );
    let counters = second.stop();
    assert!(reported(&counters, "to_wire") > 0, "{counters}");
}

/// The servers whose connections were disrupted in a hold report.
fn disrupted_hosts(report: &Value) -> BTreeMap<String, u64> {
    let mut hosts = BTreeMap::new();
    for d in report["hold"]["disruptions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        *hosts
            .entry(d["host"].as_str().unwrap_or("?").to_owned())
            .or_insert(0) += 1;
    }
    hosts
}

#[test]
fn adding_and_removing_backends_by_api_leaves_connections_to_survivors_in_place() {
    lab_or_skip!();
    let lab = Lab::up("rrlb6-", 216, 1, 4);
    let balancer = lab.start_balancer(1, &[]);
    let events = lab.work.path().join("hold.jsonl");
    let hold = lab.spawn_mconnect_hold("c1", 300, Duration::from_secs(8), &events);
    std::thread::sleep(Duration::from_secs(3));
    let (s2, s4) = (lab.server_ip(2), lab.server_ip(4));
    let (code, body) = lab.api(
        1,
        "POST",
        "/backends",
        Some(&format!(r#"{{"ip": "{s4}", "weight": 1}}"#)),
    );
    assert!(code == 200 || code == 201, "POST /backends: {code} {body}");
    let (code, body) = lab.api(1, "DELETE", &format!("/backends/{s2}"), None);
    assert!((200..300).contains(&code), "DELETE: {code} {body}");
    let report = hold.finish();
    let disrupted = disrupted_hosts(&report);
    assert!(
        disrupted.keys().all(|host| host == "s2"),
        "only connections to the removed backend may move or break: {disrupted:?}\n{report}"
    );
    println!("held connections disrupted, by server: {disrupted:?}");

    lab.wait_backend(1, s4, Duration::from_secs(5), |b| b["in_rotation"] == true);
    let report = lab.mconnect("c2", &["--nconn", "3000"]);
    assert_all_succeeded(&report, 3000);
    let split = split(&report);
    assert!(
        !split.contains_key("s2"),
        "no new connection reaches the removed backend: {split:?}"
    );
    for server in ["s1", "s3", "s4"] {
        let n = split.get(server).copied().unwrap_or(0);
        assert!(
            (700..=1300).contains(&n),
            "{server} got {n} of 3000: {split:?}"
        );
    }
    balancer.stop();
}

#[test]
fn a_killed_backend_is_taken_out_by_health_checks_and_new_connections_all_succeed() {
    lab_or_skip!();
    let lab = Lab::up("rrlb7-", 217, 1, 3);
    let health = [
        ("RR_HEALTH", format!("http:{}/healthz", lab::PROBE_PORT)),
        ("RR_HEALTH_INTERVAL", "200ms".into()),
        ("RR_HEALTH_TIMEOUT", "200ms".into()),
        ("RR_HEALTH_FALL", "3".into()),
        ("RR_HEALTH_RISE", "2".into()),
    ];
    let balancer = lab.start_balancer(1, &health);
    let s2 = lab.server_ip(2);
    lab.wait_backend(1, s2, Duration::from_secs(5), |b| {
        b["health"] == "up" && b["in_rotation"] == true
    });
    lab.kill_server(2);
    let detection = lab.wait_backend(1, s2, Duration::from_secs(10), |b| b["health"] == "down");
    println!(
        "health checks took s2 out {detection:?} after it was killed (interval 200ms, fall 3)"
    );
    assert_eq!(lab.backend_view(1, s2).unwrap()["in_rotation"], false);
    let report = lab.mconnect("c1", &["--nconn", "1000"]);
    assert_all_succeeded(&report, 1000);
    assert!(!split(&report).contains_key("s2"), "{report}");
    balancer.stop();
}

#[test]
fn a_drained_backend_keeps_its_connections_and_gets_no_new_ones() {
    lab_or_skip!();
    let lab = Lab::up("rrlb8-", 218, 1, 3);
    let balancer = lab.start_balancer(1, &[]);
    let events = lab.work.path().join("hold.jsonl");
    let hold = lab.spawn_mconnect_hold("c1", 300, Duration::from_secs(7), &events);
    std::thread::sleep(Duration::from_secs(3));
    let s2 = lab.server_ip(2);
    let (code, body) = lab.api(
        1,
        "PATCH",
        &format!("/backends/{s2}"),
        Some(r#"{"drain": true}"#),
    );
    assert_eq!(code, 200, "PATCH drain: {body}");
    // New connections while the held ones go on.
    let fresh = lab.mconnect("c2", &["--nconn", "1000"]);
    assert_all_succeeded(&fresh, 1000);
    assert!(
        !split(&fresh).contains_key("s2"),
        "a drained backend takes no new connection: {fresh}"
    );
    let report = hold.finish();
    assert_all_succeeded(&report, 300);
    assert!(
        split(&report).get("s2").copied().unwrap_or(0) > 0,
        "s2 had connections to keep: {report}"
    );
    assert_eq!(report["hold"]["moved"], 0, "{report}");
    assert_eq!(report["hold"]["broken"], 0, "{report}");
    balancer.stop();
}

#[test]
fn on_af_xdp_by_name_no_nftables_rule_is_installed_and_clients_connect() {
    lab_or_skip!();
    let lab = Lab::up("rrlba-", 221, 1, 3);
    let balancer = match lab.try_start_balancer(1, &[("RR_IO", "af_xdp".into())]) {
        Ok(balancer) => balancer,
        Err(log) => {
            let _ = host::capability::machine_lacks(format!("AF_XDP did not open: {log}"));
            return;
        }
    };
    // The XDP program keeps what the balancer takes from the kernel: no
    // rule drops the kernel's copies, because it has none.
    let tables = lab.exec("lb1", &["nft", "list", "tables"]);
    let tables = String::from_utf8_lossy(&tables.stdout);
    assert!(!tables.contains("rusty_rail"), "{tables}");
    assert!(
        balancer.log_text().contains("nftables: no rule needed"),
        "{}",
        balancer.log_text()
    );
    let report = lab.mconnect("c1", &["--nconn", "1000"]);
    assert_all_succeeded(&report, 1000);
    assert_eq!(split(&report).len(), 3, "{report}");
    balancer.stop();
}

/// What the two-worker test runs on: the emulated netmap port when the
/// suite runs on it, else `auto`.
fn two_worker_io() -> String {
    match std::env::var("RR_IO") {
        Ok(io) if io == "netmap-emulated" => io,
        _ => "auto".into(),
    }
}

#[test]
fn two_workers_share_the_interface_an_unresolvable_backend_is_left_out_and_no_icmp_comes_back() {
    lab_or_skip!();
    let lab = Lab::up("rrlb9-", 219, 1, 3);
    // 10.219.2.99 answers no ARP: reported, kept out of the table.
    let targets = format!(
        "{};{};{};10.219.2.99",
        lab.server_ip(1),
        lab.server_ip(2),
        lab.server_ip(3)
    );
    let balancer = lab.start_balancer(
        1,
        &[
            ("RR_TARGET_IPS", targets),
            ("RR_WORKERS", "2".into()),
            ("RR_CORES", "0;1".into()),
            // A veth has one receive queue and AF_XDP serves a queue with
            // one worker: `auto` says so and shares it on AF_PACKET. The
            // emulated netmap port shares it the same way (a port per
            // worker, each on a packet socket of one fanout group).
            ("RR_IO", two_worker_io()),
        ],
    );
    let log = balancer.log_text();
    assert!(
        log.contains("backend=10.219.2.99") && log.contains("not used until its next hop resolves"),
        "{log}"
    );
    let lb = lab.balancer_ip(1);
    let icmp = capture::start_matching(&lab.ns("r"), 10, Duration::from_secs(6), move |f| {
        capture::is_icmp_from(f, lb)
    });
    let report = lab.mconnect("c1", &["--nconn", "2000"]);
    assert_all_succeeded(&report, 2000);
    assert_eq!(split(&report).len(), 3, "{report}");
    let icmp = icmp.join().expect("capture");
    assert!(
        icmp.is_empty(),
        "the balancer's kernel answered balanced traffic with ICMP: {icmp:02x?}"
    );
    let counters = balancer.stop();
    assert_each_worker_forwarded(&counters, 2);
    assert!(
        counters.contains("10.219.2.99") && !counters.contains("no_backend"),
        "{counters}"
    );
}
