//! IPv6 backends through the control plane, end to end: clients connect to
//! the IPv4 VIP, the router routes it to the balancer as plain IP (VIP
//! mode), the balancer wraps each packet in GRE over IPv6 from its own
//! IPv6 address toward an IPv6 backend, whose `testbed tunnel decap` takes
//! GRE over IPv6, and the backend answers the client directly.
//!
//! Prefix `rrv63-`, IPv4 10.195.{1,2}.0/24 (the lab's), IPv6
//! `fd00:195:2::/64` added to the back network's hosts.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::lab::{self, lab_or_skip, Lab, VIP};
use super::{assert_all_succeeded, reported, split};

/// The balancer's IPv6 address on the back network.
const LB_IPV6: &str = "fd00:195:2::10";
/// Where the servers answer the health probe over IPv6 (their IPv4 probe,
/// `lab::PROBE_PORT`, listens on IPv4 only).
const PROBE_PORT_V6: u16 = 8081;

fn server_ipv6(s: usize) -> String {
    format!("fd00:195:2::{}", 20 + s)
}

/// An HTTP liveness probe on `[::]:8081` on server `s`.
fn start_ipv6_probe(lab: &mut Lab, s: usize) {
    let testbed = lab::testbed();
    let host = format!("s{s}");
    let probe = format!("[::]:{PROBE_PORT_V6}");
    lab.spawn(
        &host,
        "probe-v6",
        &[
            testbed.to_str().unwrap(),
            "mconnect",
            "--server",
            "--address",
            "[::]:5002",
            "--name",
            &host,
            "--probe",
            &probe,
        ],
    );
    lab.wait_listening(&host, PROBE_PORT_V6);
}

/// Balancer 1's view of backend `ip` in `GET /backends`, if listed.
fn backend(lab: &Lab, ip: &str) -> Option<Value> {
    let (code, body) = lab.api(1, "GET", "/backends", None);
    assert_eq!(code, 200, "{body}");
    body.as_array()?.iter().find(|b| b["ip"] == ip).cloned()
}

/// Waits (at most 15 s) until `check` holds for backend `ip`.
fn wait_backend(lab: &Lab, ip: &str, what: &str, check: impl Fn(&Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !backend(lab, ip).as_ref().is_some_and(&check) {
        assert!(
            Instant::now() < deadline,
            "backend {ip} is not {what} after 15 s: {:?}",
            backend(lab, ip)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn up_and_in_rotation(b: &Value) -> bool {
    b["health"] == "up" && b["in_rotation"] == true
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
    println!("IPv6 backends, split of {n} connections: {split:?}");
}

#[test]
fn ipv6_backends_from_rr_target_ips_and_the_api_are_health_checked_and_reached_in_gre_over_ipv6() {
    lab_or_skip!();
    let mut lab = Lab::up_routed("rrv63-", 195, 3);
    for s in 1..=3 {
        lab.add_ipv6_address(&format!("s{s}"), &format!("{}/64", server_ipv6(s)));
    }
    let targets = format!("[{}]:1;{}", server_ipv6(1), server_ipv6(2));
    let env = [
        ("RR_VIPS", VIP.to_owned()),
        ("RR_TARGET_IPS", targets),
        ("RR_HEALTH", format!("http:{PROBE_PORT_V6}/healthz")),
        ("RR_HEALTH_INTERVAL", "200ms".into()),
        ("RR_HEALTH_TIMEOUT", "500ms".into()),
        ("RR_HEALTH_FALL", "3".into()),
        ("RR_HEALTH_RISE", "2".into()),
    ];

    // Without an IPv6 address on its device the balancer cannot send GRE
    // over IPv6: it refuses to start and says which backend and why.
    let refused = lab
        .try_start_balancer(1, &env)
        .err()
        .expect("an IPv6 backend without the balancer's IPv6 address is refused");
    assert!(
        refused.contains(&format!(
            "backend {} is IPv6, but the balancer has no IPv6 address",
            server_ipv6(1)
        )) && refused.contains("eth0 has none"),
        "{refused}"
    );

    lab.add_ipv6_address("lb1", &format!("{LB_IPV6}/64"));
    for s in 1..=2 {
        start_ipv6_probe(&mut lab, s);
    }
    let balancer = lab.start_balancer(1, &env);
    assert!(
        balancer.log_text().contains(&format!("lb_ipv6={LB_IPV6}")),
        "the device's IPv6 address is the outer source: {}",
        balancer.log_text()
    );
    for s in 1..=2 {
        // Up from its IPv6 probes, next hop resolved by NDP.
        wait_backend(
            &lab,
            &server_ipv6(s),
            "up and in rotation",
            up_and_in_rotation,
        );
    }
    assert_split_over(&lab, &["s1", "s2"]);

    // An IPv6 backend added through the API: probed at once; no probe
    // answers on s3 yet, so it goes down; once one does, it comes up.
    let (code, body) = lab.api(
        1,
        "POST",
        "/backends",
        Some(&format!(r#"{{"ip": "{}", "weight": 1}}"#, server_ipv6(3))),
    );
    assert_eq!(code, 201, "POST an IPv6 backend: {body}");
    assert_eq!(body["ip"], server_ipv6(3), "{body}");
    wait_backend(&lab, &server_ipv6(3), "down", |b| b["health"] == "down");
    start_ipv6_probe(&mut lab, 3);
    wait_backend(
        &lab,
        &server_ipv6(3),
        "up and in rotation",
        up_and_in_rotation,
    );

    let (code, body) = lab.api(1, "DELETE", &format!("/backends/{}", server_ipv6(1)), None);
    assert_eq!(code, 200, "DELETE an IPv6 backend: {body}");
    assert!(backend(&lab, &server_ipv6(1)).is_none());
    assert_split_over(&lab, &["s2", "s3"]);

    let counters = balancer.stop();
    // Each connection's handshake and request at least went out wrapped.
    assert!(reported(&counters, "to_wire") >= 6000 * 3, "{counters}");
    assert_eq!(reported(&counters, "encap_exceeds_mtu"), 0, "{counters}");
    assert!(counters.contains(&server_ipv6(2)), "{counters}");
}
