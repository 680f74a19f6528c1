//! Three named services on one balancer, beside the default service, in
//! GRE mode and in VIP mode: each reaches only its own two backends, split
//! within 10%, and the default service keeps its own.
//!
//! Prefixes `rrsx1-` (GRE) and `rrsx2-` (VIP), subnets `10.198-199.{1,2}.0/24`.

use std::collections::BTreeMap;

use crate::lab::{self, lab_or_skip, Lab, PORT, VIP};
use crate::split;

/// The three services: a port of the VIP each, and their servers.
const SERVICES: [(&str, u16, [usize; 2]); 3] = [
    ("web", PORT, [2, 3]),
    ("api", 5002, [4, 5]),
    ("admin", 5003, [6, 7]),
];

/// A port of the VIP no named service has: the default service's.
const DEFAULT_PORT: u16 = 5004;

/// Connections per run: 10% of an even share (150 of 1,500) is 5.5
/// binomial standard deviations, so chance alone never fails the split.
const CONNECTIONS: u64 = 3000;

fn file(lab: &Lab) -> String {
    SERVICES
        .iter()
        .map(|(name, port, servers)| {
            let backends: Vec<String> = servers
                .iter()
                .map(|&s| format!("\"{}\"", lab.server_ip(s)))
                .collect();
            format!(
                "[[service]]\nname = \"{name}\"\nvip = \"{VIP}\"\nprotocol = \"tcp\"\nport = {port}\nbackends = [{}]\ntable_size = 1009\n\n",
                backends.join(", ")
            )
        })
        .collect::<Vec<_>>()
        .concat()
}

/// An mconnect server on `port` in server `s` (besides the lab's own on
/// [`PORT`]), answering with the server's name.
fn serve_port(lab: &mut Lab, s: usize, port: u16) {
    let host = format!("s{s}");
    let listen = format!("0.0.0.0:{port}");
    lab.spawn_mconnect_server(&host, &format!("mconnect-{port}"), &listen, &host, None);
    lab.wait_listening(&host, port);
}

/// `n` connections from client 1 to the VIP's `port`.
fn mconnect_to(lab: &Lab, port: u16, n: u64) -> serde_json::Value {
    lab.mconnect_to("c1", &format!("{VIP}:{port}"), &["--nconn", &n.to_string()])
}

fn assert_only_and_even(report: &serde_json::Value, servers: &[usize]) {
    let got: BTreeMap<String, u64> = split(report);
    let want: Vec<String> = servers.iter().map(|s| format!("s{s}")).collect();
    assert_eq!(report["failed_connects"], 0, "{report}");
    assert_eq!(report["failed_reads"], 0, "{report}");
    assert_eq!(got.keys().cloned().collect::<Vec<_>>(), want, "{report}");
    let even = CONNECTIONS / servers.len() as u64;
    for (host, &count) in &got {
        assert!(
            count.abs_diff(even) * 10 <= even,
            "{host} got {count} of {CONNECTIONS}, not within 10% of {even}: {report}"
        );
    }
}

/// Starts the servers' extra ports and the balancer on the file, then
/// checks every service and the default one.
fn three_services_on(mut lab: Lab, env: &[(&str, String)]) {
    for (_, port, servers) in SERVICES.iter().filter(|(_, port, _)| *port != PORT) {
        for &s in servers {
            serve_port(&mut lab, s, *port);
        }
    }
    serve_port(&mut lab, 1, DEFAULT_PORT);
    let path = lab.work.path().join("services.toml");
    std::fs::write(&path, file(&lab)).expect("config file");
    let mut all = vec![
        ("RR_TARGET_IPS", lab.server_ip(1).to_string()),
        ("RR_CONFIG", path.to_str().unwrap().to_owned()),
    ];
    all.extend(env.iter().cloned());
    let balancer = lab.start_balancer(1, &all);
    let (_, listed) = lab.api(1, "GET", "/services", None);
    assert_eq!(listed.as_array().map(Vec::len), Some(3), "{listed}");
    for (name, port, servers) in SERVICES {
        let report = mconnect_to(&lab, port, CONNECTIONS);
        assert_only_and_even(&report, &servers);
        println!("{name} (port {port}): {:?}", split(&report));
    }
    // Another port of the VIP is no named service's: the default's s1.
    let report = mconnect_to(&lab, DEFAULT_PORT, 300);
    assert_eq!(report["failed_connects"], 0, "{report}");
    assert_eq!(
        split(&report).keys().collect::<Vec<_>>(),
        ["s1"],
        "{report}"
    );
    // Each connection is about one new flow of its own service, none of
    // another's: a client port the kernel reuses toward the same server
    // makes the same 5-tuple, which the connection table still holds (the
    // demo's second service counted 3,997 for 4,000), and a
    // SYN retransmitted before its entry was recorded counts twice.
    let (_, stats) = lab.api(1, "GET", "/stats", None);
    for (name, ..) in SERVICES {
        let new_flows = stats["services"][name]["new_flows"].as_u64().unwrap_or(0);
        let room = CONNECTIONS / 10;
        assert!(
            (CONNECTIONS - room..=CONNECTIONS + room).contains(&new_flows),
            "{name}: {new_flows} new flows for {CONNECTIONS} connections: {stats}"
        );
    }
    drop(balancer);
}

#[test]
fn in_gre_mode_three_services_each_reach_only_their_own_backends() {
    lab_or_skip!();
    three_services_on(Lab::up("rrsx1-", 198, 1, 7), &[]);
}

#[test]
fn in_vip_mode_three_services_each_reach_only_their_own_backends() {
    lab_or_skip!();
    // RR_VIPS makes the VIP the default service's too: without it a VIP
    // packet no named service takes goes to the host.
    three_services_on(
        Lab::up_routed("rrsx2-", 199, 7),
        &[("RR_VIPS", VIP.to_owned())],
    );
}
