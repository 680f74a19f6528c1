//! IPv6 backends through the control plane, end to end: clients connect to
//! the IPv4 VIP; the balancer sends each packet on in GRE over IPv6 from
//! its own IPv6 address toward an IPv6 backend, whose `testbed tunnel
//! decap` takes GRE over IPv6, and the backend answers the client
//! directly. In VIP mode the router routes the VIP to the balancer as
//! plain IP and the balancer wraps it; in GRE mode the router tunnels it
//! in GRE over IPv4 and the balancer replaces the outer IPv4 header by an
//! IPv6 one.
//!
//! Prefix `rrv63-`, IPv4 10.195.{1,2}.0/24 (the lab's), IPv6
//! `fd00:195:2::/64` added to the back network's hosts. The tests share
//! the prefix, so they take turns ([`one_lab_at_a_time`]).

use std::net::Ipv6Addr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::Value;

use super::lab::{self, lab_or_skip, Lab, VIP};
use super::{assert_split_over, reported};

/// The balancer's IPv6 address on the back network.
const LB_IPV6: &str = "fd00:195:2::10";
/// Where the servers answer the health probe over IPv6 (their IPv4 probe,
/// `lab::PROBE_PORT`, listens on IPv4 only).
const PROBE_PORT_V6: u16 = 8081;

/// Held while a test's lab is up: every test here uses one prefix.
fn one_lab_at_a_time() -> MutexGuard<'static, ()> {
    static LAB: Mutex<()> = Mutex::new(());
    // A test that failed holding it has cleaned up (its Lab dropped first).
    LAB.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Adds the back network's IPv6 addresses: `fd00:195:2::10` to the
/// balancer when `balancer`, `fd00:195:2::2s` to servers 1 to `servers`.
fn add_ipv6_addresses(lab: &Lab, balancer: bool, servers: usize) {
    if balancer {
        lab.add_ipv6_address("lb1", &format!("{LB_IPV6}/64"));
    }
    for s in 1..=servers {
        lab.add_ipv6_address(&format!("s{s}"), &format!("{}/64", server_ipv6(s)));
    }
}

fn server_ipv6(s: usize) -> Ipv6Addr {
    format!("fd00:195:2::{}", 20 + s)
        .parse()
        .expect("a server's IPv6 address")
}

/// An HTTP liveness probe on `[::]:8081` on server `s`.
fn start_ipv6_probe(lab: &mut Lab, s: usize) {
    let host = format!("s{s}");
    let probe = format!("[::]:{PROBE_PORT_V6}");
    lab.spawn_mconnect_server(&host, "probe-v6", "[::]:5002", &host, Some(&probe));
    lab.wait_listening(&host, PROBE_PORT_V6);
}

/// How long a backend may take to be as a test waits for.
const BACKEND_WAIT: Duration = Duration::from_secs(15);

fn up_and_in_rotation(b: &Value) -> bool {
    b["health"] == "up" && b["in_rotation"] == true
}

#[test]
fn ipv6_backends_from_rr_target_ips_and_the_api_are_health_checked_and_reached_in_gre_over_ipv6() {
    lab_or_skip!();
    let _turn = one_lab_at_a_time();
    let mut lab = Lab::up_routed("rrv63-", 195, 3);
    add_ipv6_addresses(&lab, false, 3);
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

    add_ipv6_addresses(&lab, true, 0);
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
        lab.wait_backend(1, server_ipv6(s), BACKEND_WAIT, up_and_in_rotation);
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
    assert_eq!(body["ip"], server_ipv6(3).to_string(), "{body}");
    lab.wait_backend(1, server_ipv6(3), BACKEND_WAIT, |b| b["health"] == "down");
    start_ipv6_probe(&mut lab, 3);
    lab.wait_backend(1, server_ipv6(3), BACKEND_WAIT, up_and_in_rotation);

    let (code, body) = lab.api(1, "DELETE", &format!("/backends/{}", server_ipv6(1)), None);
    assert_eq!(code, 200, "DELETE an IPv6 backend: {body}");
    assert!(lab.backend_view(1, server_ipv6(1)).is_none());
    assert_split_over(&lab, &["s2", "s3"]);

    let counters = balancer.stop();
    // Each connection's handshake and request at least went out wrapped.
    assert!(reported(&counters, "to_wire") >= 6000 * 3, "{counters}");
    assert_eq!(reported(&counters, "encap_exceeds_mtu"), 0, "{counters}");
    assert!(counters.contains(&server_ipv6(2).to_string()), "{counters}");
}

#[test]
fn in_gre_mode_the_router_s_gre_over_ipv4_leaves_in_gre_over_ipv6_to_ipv6_backends() {
    lab_or_skip!();
    let _turn = one_lab_at_a_time();
    let lab = Lab::up("rrv63-", 195, 1, 2);
    add_ipv6_addresses(&lab, true, 2);
    let targets = format!("{};{}", server_ipv6(1), server_ipv6(2));
    let balancer = lab.start_balancer(1, &[("RR_TARGET_IPS", targets)]);
    for s in 1..=2 {
        lab.wait_backend(1, server_ipv6(s), BACKEND_WAIT, |b| {
            b["in_rotation"] == true
        });
    }
    assert_split_over(&lab, &["s1", "s2"]);
    let counters = balancer.stop();
    assert!(reported(&counters, "to_wire") >= 3000 * 3, "{counters}");
    // The IPv6 header is 20 bytes longer than the IPv4 one it replaces:
    // taken from the frame's headroom, and within the MTU (mconnect's
    // packets are small).
    for reason in ["no_headroom", "encap_exceeds_mtu"] {
        assert_eq!(reported(&counters, reason), 0, "{reason}: {counters}");
    }
}
