//! `testbed mconnect` end to end: servers and client in separate network namespaces.
//!
//! Each test owns the prefix `rrmcN-` and the subnets `10.201.N.0/24` and
//! `fd00:201:N::/64`, so the tests run in parallel. Tests skip (printing
//! `skipped: <reason>`) when not root, without `ip netns`, or, where a balancer is
//! needed, without `nft`.

mod lab;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::process::Output;
use std::time::Duration;

use lab::{accepted_peers, in_namespace, run, silent_server, Lab};
use serde_json::{json, Value};
use testbed::mconnect::SourceRange;

const LIMIT: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

impl Family {
    fn host(self, lab: &Lab, host: u8) -> String {
        match self {
            Self::V4 => lab.v4(host),
            Self::V6 => lab.v6(host),
        }
    }
}

/// A lab with three named servers (s1, s2, s3 on hosts 11, 12, 13) behind a
/// round-robin VIP (host 100): nftables DNAT with `numgen inc`, for TCP and UDP.
/// Returns the lab and the VIP's `ADDRESS:5001`.
fn round_robin_lab(
    prefix: &str,
    subnet: u8,
    family: Family,
    server_args: &str,
) -> Option<(Lab, String)> {
    let mut lab = Lab::start(prefix, subnet, true)?;
    let (len, table) = if family == Family::V4 {
        (32, "ip")
    } else {
        (128, "ip6")
    };
    for host in [11, 12, 13, 100] {
        lab.addr(&lab.server_ns(), &family.host(&lab, host), len);
    }
    let vip = family.host(&lab, 100);
    let [s1, s2, s3] = [11, 12, 13].map(|host| family.host(&lab, host));
    let spread = format!("dnat to numgen inc mod 3 map {{ 0 : {s1}, 1 : {s2}, 2 : {s3} }}");
    lab.nft(&format!(
        "table {table} rr {{
           chain pre {{
             type nat hook prerouting priority dstnat;
             {table} daddr {vip} tcp dport 5001 {spread}
             {table} daddr {vip} udp dport 5001 {spread}
           }}
         }}"
    ));
    for (name, address) in [("s1", s1), ("s2", s2), ("s3", s3)] {
        lab.start_server(&format!(
            "--address {} --name {name} {server_args}",
            socket(&address, 5001)
        ));
    }
    Some((lab, socket(&vip, 5001)))
}

fn socket(ip: &str, port: u16) -> String {
    SocketAddr::new(ip.parse().unwrap(), port).to_string()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn json_report(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            stdout(output),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// Checks a `Label; p50 Xms p90 Xms p99 Xms max Xms` line: labels, units, order.
fn assert_percentiles_line(line: &str, label: &str) {
    let rest = line
        .strip_prefix(&format!("{label}; "))
        .unwrap_or_else(|| panic!("`{line}` is not `{label}; ...`"));
    let words: Vec<&str> = rest.split(' ').collect();
    assert_eq!(words.len(), 8, "{line}");
    let values: Vec<f64> = ["p50", "p90", "p99", "max"]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            assert_eq!(words[2 * i], *name, "{line}");
            words[2 * i + 1]
                .strip_suffix("ms")
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(
        values.windows(2).all(|w| w[0] <= w[1]),
        "percentiles not ordered: {line}"
    );
}

fn assert_ordered_percentiles(summary: &Value, count: u64) {
    assert_eq!(summary["count"], count, "{summary}");
    let values: Vec<u64> = ["p50", "p90", "p99", "max"]
        .iter()
        .map(|k| summary[*k].as_u64().unwrap())
        .collect();
    assert!(
        values[0] > 0 && values.windows(2).all(|w| w[0] <= w[1]),
        "{summary}"
    );
}

#[test]
fn round_robin_counts_per_server_add_up_and_match_in_mconnects_text_output() {
    let Some((lab, vip)) = round_robin_lab("rrmc1-", 1, Family::V4, "") else {
        return;
    };
    let output = lab.client(&format!("--address {vip} --nconn 300"), LIMIT);
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 7, "{text}");
    assert_eq!(
        lines[..5],
        [
            "Failed connects; 0",
            "Failed reads; 0",
            "s1 100",
            "s2 100",
            "s3 100"
        ],
        "{text}"
    );
    assert_percentiles_line(lines[5], "Connect latency");
    assert_percentiles_line(lines[6], "Reply latency");
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn round_robin_over_ipv6_reports_mconnects_json_fields_and_ours() {
    let Some((lab, vip)) = round_robin_lab("rrmc2-", 2, Family::V6, "") else {
        return;
    };
    let output = lab.client(
        &format!("--address {vip} --nconn 300 --output json --seed 5"),
        LIMIT,
    );
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        stdout(&output).lines().count(),
        1,
        "JSON is one line, like Go's json.Marshal"
    );
    let report = json_report(&output);
    // mconnect's fields.
    assert_eq!(report["hosts"], json!({"s1": 100, "s2": 100, "s3": 100}));
    assert_eq!(report["connects"], 300);
    assert_eq!(report["failed_connects"], 0);
    assert_eq!(report["failed_reads"], 0);
    let start =
        chrono::DateTime::parse_from_rfc3339(report["start_time"].as_str().unwrap()).unwrap();
    let age = chrono::Utc::now().signed_duration_since(start);
    assert!(
        age > chrono::TimeDelta::zero() && age < chrono::TimeDelta::seconds(60),
        "start_time {start}"
    );
    assert_eq!(
        report["timeout"], 2_300_000_000u64,
        "nconn/1000 s + 2 s, in nanoseconds"
    );
    let duration = report["duration"].as_u64().unwrap();
    assert!(
        duration > 0 && duration < 2_300_000_000,
        "duration {duration} ns"
    );
    // Ours.
    assert_eq!(report["target"], vip);
    assert_eq!(report["protocol"], "tcp");
    assert_eq!(report["seed"], 5);
    assert!(report["rate"].is_null());
    assert!(report["connect_duration"].as_u64().unwrap() <= duration);
    assert!(report["connects_per_second"].as_f64().unwrap() > 0.0);
    assert_ordered_percentiles(&report["connect_latency"], 300);
    assert_ordered_percentiles(&report["reply_latency"], 300);
    assert!(report["hold"].is_null());
}

#[test]
fn a_closed_port_gives_failed_connects_and_exit_code_1() {
    let Some(lab) = Lab::start("rrmc3-", 3, false) else {
        return;
    };
    let closed = socket(&lab.v4(2), 5009);
    let output = lab.client(&format!("--address {closed} --nconn 20"), LIMIT);
    assert_eq!(stdout(&output), "Failed connects; 20\nFailed reads; 0\n");
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn a_server_that_accepts_but_never_replies_gives_failed_reads_and_exit_code_1() {
    let Some(lab) = Lab::start("rrmc4-", 4, false) else {
        return;
    };
    let address: SocketAddr = socket(&lab.v4(2), 5002).parse().unwrap();
    let _silent = silent_server(&lab.server_ns(), address);
    let output = lab.client(
        &format!("--address {address} --nconn 5 --timeout 1s"),
        LIMIT,
    );
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "no host line and no reply latency: {text}");
    assert_eq!(
        lines[..2],
        ["Failed connects; 0", "Failed reads; 5"],
        "{text}"
    );
    assert_percentiles_line(lines[2], "Connect latency");
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn udp_mode_counts_replies_per_server_through_round_robin() {
    let Some((lab, vip)) = round_robin_lab("rrmc5-", 5, Family::V4, "--udp") else {
        return;
    };
    // `--keep` holds every socket until all have replied, so no source port is reused
    // and each datagram starts a new flow for the balancer (a reused port would be the
    // same flow, pinned to the same server by conntrack).
    let output = lab.client(
        &format!("--udp --keep --address {vip} --nconn 300 --output json"),
        LIMIT,
    );
    assert_eq!(output.status.code(), Some(0));
    let report = json_report(&output);
    assert_eq!(report["protocol"], "udp");
    assert_eq!(report["hosts"], json!({"s1": 100, "s2": 100, "s3": 100}));
    assert_eq!(report["failed_reads"], 0);
    assert_ordered_percentiles(&report["reply_latency"], 300);
}

/// The client namespace owns `range` (on lo) and the server namespace routes it back.
fn route_source_range(lab: &Lab, range: &str, family: Family) {
    let (c, s) = (lab.client_ns(), lab.server_ns());
    match family {
        Family::V4 => {
            run(&format!("ip -n {c} addr add {range} dev lo"));
            run(&format!(
                "ip netns exec {c} sysctl -qw net.ipv4.ip_nonlocal_bind=1"
            ));
            run(&format!("ip -n {s} route add {range} via {}", lab.v4(1)));
        }
        Family::V6 => {
            run(&format!("ip -n {c} -6 route add local {range} dev lo"));
            run(&format!(
                "ip netns exec {c} sysctl -qw net.ipv6.ip_nonlocal_bind=1"
            ));
            run(&format!("ip -n {s} -6 route add {range} via {}", lab.v6(1)));
        }
    }
}

fn assert_srccidr_is_seen_by_the_server(prefix: &str, subnet: u8, family: Family) {
    let Some(mut lab) = Lab::start(prefix, subnet, false) else {
        return;
    };
    let range = match family {
        Family::V4 => format!("10.202.{subnet}.0/24"),
        Family::V6 => format!("fd00:202:{subnet}::/64"),
    };
    let server = socket(&family.host(&lab, 2), 5001);
    route_source_range(&lab, &range, family);
    let (_, log) = lab.start_server(&format!("--address {server} --name s1 --log-connections"));
    let output = lab.client(
        &format!("--address {server} --nconn 60 --srccidr {range} --seed 7"),
        LIMIT,
    );
    assert!(
        stdout(&output).starts_with("Failed connects; 0\nFailed reads; 0\ns1 60\n"),
        "{}",
        stdout(&output)
    );
    assert_eq!(output.status.code(), Some(0));

    let peers = accepted_peers(&log);
    assert_eq!(peers.len(), 60, "the server saw every connection");
    let range: SourceRange = range.parse().unwrap();
    for peer in &peers {
        assert!(
            range.contains(*peer),
            "the server saw {peer}, outside {range}"
        );
    }
    let distinct: BTreeSet<IpAddr> = peers.into_iter().collect();
    assert!(
        distinct.len() >= 30,
        "60 random picks gave only {} source addresses",
        distinct.len()
    );
}

#[test]
fn srccidr_sources_seen_by_the_server_come_from_the_ipv4_range() {
    assert_srccidr_is_seen_by_the_server("rrmc6-", 6, Family::V4);
}

#[test]
fn srccidr_sources_seen_by_the_server_come_from_the_ipv6_range() {
    assert_srccidr_is_seen_by_the_server("rrmc7-", 7, Family::V6);
}

#[test]
fn a_server_restarted_during_a_held_run_shows_as_broken_connections_with_events() {
    let Some(mut lab) = Lab::start("rrmc8-", 8, false) else {
        return;
    };
    let server = socket(&lab.v4(2), 5001);
    let (first, _) = lab.start_server(&format!("--address {server} --name s1"));
    let events = lab.scratch_file("events.jsonl");
    let client = lab.spawn_client(&format!(
        "--address {server} --nconn 20 --keep --duration 3s --interval 200ms --output json --events {}",
        events.display()
    ));
    std::thread::sleep(Duration::from_millis(1_200));
    lab.stop_server(first);
    lab.start_server(&format!("--address {server} --name s1"));
    let output = client.finish(LIMIT);

    assert_eq!(
        output.status.code(),
        Some(1),
        "broken connections fail the run"
    );
    let report = json_report(&output);
    assert_eq!(report["hosts"], json!({"s1": 20}));
    assert_eq!(report["failed_connects"], 0);
    let hold = &report["hold"];
    assert_eq!(hold["duration"], 3_000_000_000u64);
    assert_eq!(hold["interval"], 200_000_000u64);
    assert_eq!(hold["broken"], 20, "{hold}");
    assert_eq!(hold["moved"], 0, "{hold}");
    let disruptions = hold["disruptions"].as_array().unwrap();
    assert_eq!(disruptions.len(), 20);
    for disruption in disruptions {
        assert_eq!(disruption["kind"], "broken");
        assert_eq!(disruption["host"], "s1");
        let at = disruption["elapsed_ns"].as_u64().unwrap();
        assert!(
            (1_000_000_000..3_500_000_000).contains(&at),
            "broken at {at} ns, not after the restart"
        );
        chrono::DateTime::parse_from_rfc3339(disruption["time"].as_str().unwrap()).unwrap();
    }

    let lines: Vec<Value> = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    for connection in 0..20u64 {
        let kinds: Vec<&str> = lines
            .iter()
            .filter(|e| e["connection"] == connection)
            .map(|e| e["event"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            ["opened", "reply", "broken"],
            "connection {connection}"
        );
    }
}

#[test]
fn a_udp_flow_sent_to_another_server_mid_run_is_reported_moved_not_broken() {
    // A stateless balancer in the server namespace: the VIP is rewritten to s1, then
    // to s2, and the replies' source back to the VIP.
    let Some(mut lab) = Lab::start("rrmc9-", 9, true) else {
        return;
    };
    for host in [11, 12, 100] {
        lab.addr(&lab.server_ns(), &lab.v6(host), 128);
    }
    let (vip, s1, s2) = (lab.v6(100), lab.v6(11), lab.v6(12));
    let steer = |to: &str| format!("ip6 daddr {vip} udp dport 5001 notrack ip6 daddr set {to}");
    lab.nft(&format!(
        "table ip6 move {{
           chain pre {{ type filter hook prerouting priority raw; {}; }}
           chain out {{ type filter hook output priority raw;
             ip6 saddr {{ {s1}, {s2} }} udp sport 5001 notrack ip6 saddr set {vip}; }}
         }}",
        steer(&s1)
    ));
    lab.start_server(&format!("--address {} --name s1 --udp", socket(&s1, 5001)));
    lab.start_server(&format!("--address {} --name s2 --udp", socket(&s2, 5001)));
    let client = lab.spawn_client(&format!(
        "--udp --address {} --nconn 5 --keep --duration 2500ms --interval 250ms --output json",
        socket(&vip, 5001)
    ));
    std::thread::sleep(Duration::from_secs(1));
    lab.nft(&format!(
        "flush chain ip6 move pre\nadd rule ip6 move pre {}\n",
        steer(&s2)
    ));
    let output = client.finish(LIMIT);

    let report = json_report(&output);
    assert_eq!(report["hosts"], json!({"s1": 5}));
    let hold = &report["hold"];
    assert_eq!(hold["moved"], 5, "{hold}");
    assert_eq!(hold["broken"], 0, "{hold}");
    for disruption in hold["disruptions"].as_array().unwrap() {
        assert_eq!(disruption["kind"], "moved");
        assert_eq!(disruption["host"], "s1");
        assert_eq!(disruption["new_host"], "s2");
    }
    assert_eq!(
        output.status.code(),
        Some(0),
        "a move alone is not a failure"
    );
}

/// One HTTP/1.1 GET with an optional `X-Malfunction` header: status, body, our address.
fn http_get(address: SocketAddr, malfunction: Option<&str>) -> (u16, String, SocketAddr) {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let header = malfunction
        .map(|v| format!("X-Malfunction: {v}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET /healthz HTTP/1.1\r\nHost: probe\r\n{header}\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).unwrap().parse().unwrap();
    let body = response.split_once("\r\n\r\n").unwrap().1.to_owned();
    (status, body, stream.local_addr().unwrap())
}

#[test]
fn the_probe_answers_name_and_remote_address_and_its_malfunction_switch_holds_until_cleared() {
    let Some(mut lab) = Lab::start("rrmc10-", 10, false) else {
        return;
    };
    let probe: SocketAddr = socket(&lab.v4(2), 8080).parse().unwrap();
    lab.start_server(&format!(
        "--address {} --name s1 --probe {probe}",
        socket(&lab.v4(2), 5001)
    ));
    let answers = in_namespace(&lab.client_ns(), move || {
        [None, Some("yes"), None, None, Some("no"), None].map(|header| http_get(probe, header))
    });
    let (_, body, local) = &answers[0];
    assert_eq!(
        *body,
        format!("s1,{local}\n"),
        "name and the address the probe saw us at"
    );
    let statuses: Vec<u16> = answers.iter().map(|(status, _, _)| *status).collect();
    assert_eq!(statuses, [200, 500, 500, 500, 200, 200]);
}
