//! Services from a configuration file on the live balancer (GRE mode): a
//! service on the VIP's mconnect port reaches only its own backends, never
//! the default service's, and a SIGHUP reload that changes the service's
//! backends moves new connections to the new ones.
//!
//! Prefix `rrsv1-`, subnets `10.180.{1,2}.0/24`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::lab::{self, lab_or_skip, Lab, PORT, VIP};
use crate::split;

/// A file with one service, TCP `PORT` of the VIP, on `backends`.
fn config(backends: &[String]) -> String {
    let quoted: Vec<String> = backends.iter().map(|b| format!("\"{b}\"")).collect();
    format!(
        "[[service]]\nname = \"web\"\nvip = \"{VIP}\"\nprotocol = \"tcp\"\nport = {PORT}\nbackends = [{}]\ntable_size = 1009\n",
        quoted.join(", ")
    )
}

fn assert_split_between(report: &serde_json::Value, hosts: &[&str], n: u64) {
    let got: BTreeMap<String, u64> = split(report);
    assert_eq!(report["failed_connects"], 0, "{report}");
    assert_eq!(got.values().sum::<u64>(), n, "{report}");
    let names: Vec<&str> = got.keys().map(String::as_str).collect();
    assert_eq!(names, hosts, "{report}");
    let even = n / hosts.len() as u64;
    for (host, &count) in &got {
        assert!(
            count.abs_diff(even) * 10 <= even,
            "{host} got {count} of {n}, not within 10% of {even}: {report}"
        );
    }
}

#[test]
fn a_service_reaches_only_its_own_backends_and_a_sighup_reload_moves_it() {
    lab_or_skip!();
    let lab = Lab::up("rrsv1-", 180, 1, 5);
    let file = lab.work.path().join("services.toml");
    let ip = |s: usize| lab.server_ip(s).to_string();
    std::fs::write(&file, config(&[ip(2), ip(3)])).expect("config file");
    // The default service (the environment form) is s1 alone.
    let balancer = lab.start_balancer(
        1,
        &[
            ("RR_TARGET_IPS", ip(1)),
            ("RR_CONFIG", file.to_str().unwrap().to_owned()),
        ],
    );
    let report = lab.mconnect("c1", &["--nconn", "2000"]);
    assert_split_between(&report, &["s2", "s3"], 2000);

    std::fs::write(&file, config(&[ip(4), ip(5)])).expect("config file");
    let pids = lab::pids_in(&lab.ns("lb1"));
    assert!(!pids.is_empty(), "no rusty_rail in lb1");
    for pid in pids {
        // SAFETY: kill(2) with a pid read from the lab's own namespace.
        unsafe { libc::kill(pid, libc::SIGHUP) };
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !balancer.log_text().contains("configuration reloaded") {
        assert!(
            Instant::now() < deadline,
            "no reload logged: {}",
            balancer.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // New next hops resolve within the neighbour keeper's second.
    std::thread::sleep(Duration::from_secs(2));
    let report = lab.mconnect("c1", &["--nconn", "2000"]);
    assert_split_between(&report, &["s4", "s5"], 2000);
    let counters = balancer.stop();
    assert!(!counters.is_empty());
}
