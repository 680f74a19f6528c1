//! Services from a configuration file on the live balancer (GRE mode): a
//! service on the VIP's mconnect port reaches only its own backends, never
//! the default service's, and a SIGHUP reload that changes the service's
//! backends moves new connections to the new ones.
//!
//! Prefixes `rrsv1-` to `rrsv8-`, subnets `10.180-191.{1,2}.0/24`.

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

/// Writes `text` as the lab's services file and starts balancer 1 on it,
/// with s1 as the default service's backend and `env` besides.
fn start_with_file(lab: &Lab, text: &str, env: &[(&str, String)]) -> lab::Balancer {
    let file = lab.work.path().join("services.toml");
    std::fs::write(&file, text).expect("config file");
    let mut all = vec![
        ("RR_TARGET_IPS", lab.server_ip(1).to_string()),
        ("RR_CONFIG", file.to_str().unwrap().to_owned()),
    ];
    all.extend(env.iter().cloned());
    lab.start_balancer(1, &all)
}

/// Within 10% of an even share: callers make enough connections that 10%
/// is at least 5 binomial standard deviations (3,000 for two backends: 10%
/// of 1,500 is 150, sigma 27), so chance alone never fails it and a skewed
/// table does.
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
    let report = lab.mconnect("c1", &["--nconn", "3000"]);
    assert_split_between(&report, &["s2", "s3"], 3000);

    std::fs::write(&file, config(&[ip(4), ip(5)])).expect("config file");
    lab.sighup_balancer();
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
    let report = lab.mconnect("c1", &["--nconn", "3000"]);
    assert_split_between(&report, &["s4", "s5"], 3000);
    let counters = balancer.stop();
    assert!(!counters.is_empty());
}

/// Receives sequence-numbered datagrams on UDP `port` in namespace `ns`
/// until none came for `idle`; says when bound; returns the numbers seen.
fn receive_sequence(
    ns: String,
    port: u16,
    bound: std::sync::mpsc::Sender<()>,
    idle: Duration,
) -> std::thread::JoinHandle<Vec<u32>> {
    std::thread::spawn(move || {
        lab::in_namespace(&ns, move || {
            let socket = std::net::UdpSocket::bind(("0.0.0.0", port)).expect("bind");
            socket.set_read_timeout(Some(idle)).expect("timeout");
            // Room for the whole stream, so that a datagram lost is one the
            // path lost, not one this thread was too slow to take.
            let size: libc::c_int = 16 << 20;
            // SAFETY: setsockopt on a socket this thread owns, with a
            // pointer to a c_int and its size.
            let rc = unsafe {
                libc::setsockopt(
                    std::os::fd::AsRawFd::as_raw_fd(&socket),
                    libc::SOL_SOCKET,
                    libc::SO_RCVBUFFORCE,
                    std::ptr::addr_of!(size).cast(),
                    size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            assert_eq!(rc, 0, "SO_RCVBUFFORCE: {}", std::io::Error::last_os_error());
            let _ = bound.send(());
            let mut seen = Vec::new();
            let mut buf = [0u8; 64];
            // Bounded: 200,000 datagrams at most, and it ends at the first idle gap.
            while seen.len() < 200_000 {
                match socket.recv(&mut buf) {
                    Ok(4..) => seen.push(u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]])),
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            seen
        })
    })
}

/// Sends datagrams 0..`count` from `ns` to the VIP's UDP `port`, one flow,
/// one every `gap`.
fn send_sequence(ns: String, port: u16, count: u32, gap: Duration) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        lab::in_namespace(&ns, move || {
            let socket = std::net::UdpSocket::bind("0.0.0.0:0").expect("bind");
            socket.connect((VIP, port)).expect("connect");
            let start = Instant::now();
            for seq in 0..count {
                // Paced against the clock, not by sleeping per datagram.
                let due = start + gap * seq;
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let _ = socket.send(&seq.to_be_bytes());
            }
        });
    })
}

/// Datagrams in the stream: 2.4 s at 2,500 a second, the reload after 1 s.
const COUNT: u32 = 6_000;

#[test]
fn a_reload_adding_a_service_and_changing_a_weight_drops_no_datagram() {
    lab_or_skip!();
    let lab = Lab::up("rrsv2-", 181, 1, 5);
    let file = lab.work.path().join("services.toml");
    let ip = |s: usize| lab.server_ip(s).to_string();
    let stream = |weight: u32| {
        format!(
            "[[service]]\nname = \"stream\"\nvip = \"{VIP}\"\nprotocol = \"udp\"\nport = 7000\nbackends = [\"{}\", \"{}:{weight}\"]\ntable_size = 1009\n",
            ip(3),
            ip(4)
        )
    };
    std::fs::write(&file, format!("{}{}", config(&[ip(2)]), stream(1))).expect("config");
    let balancer = lab.start_balancer(
        1,
        &[
            ("RR_TARGET_IPS", ip(1)),
            ("RR_CONFIG", file.to_str().unwrap().to_owned()),
        ],
    );
    let (bound_tx, bound) = std::sync::mpsc::channel();
    let receivers: Vec<_> = (3..=4)
        .map(|s| {
            receive_sequence(
                lab.ns(&format!("s{s}")),
                7000,
                bound_tx.clone(),
                Duration::from_secs(3),
            )
        })
        .collect();
    for _ in 0..2 {
        bound
            .recv_timeout(Duration::from_secs(10))
            .expect("receivers bound");
    }
    let sender = send_sequence(lab.ns("c1"), 7000, COUNT, Duration::from_micros(400));
    std::thread::sleep(Duration::from_secs(1));
    // A fourth service, and the stream's second backend's weight doubled.
    let fourth = format!(
        "[[service]]\nname = \"fourth\"\nvip = \"{VIP}\"\nprotocol = \"udp\"\nport = 7001\nbackends = [\"{}\"]\ntable_size = 251\n",
        ip(5)
    );
    std::fs::write(&file, format!("{}{}{fourth}", config(&[ip(2)]), stream(2))).expect("config");
    for pid in lab::pids_in(&lab.ns("lb1")) {
        // SAFETY: kill(2) with a pid read from the lab's own namespace.
        unsafe { libc::kill(pid, libc::SIGHUP) };
    }
    sender.join().expect("sender");
    let mut seen: Vec<u32> = receivers
        .into_iter()
        .flat_map(|r| r.join().expect("receiver"))
        .collect();
    let log = balancer.log_text();
    assert!(log.contains("configuration reloaded"), "{log}");
    assert!(log.contains("services=3"), "{log}");
    seen.sort_unstable();
    seen.dedup();
    let missing = COUNT as usize - seen.len();
    assert_eq!(
        missing,
        0,
        "{missing} of {COUNT} datagrams lost across the reload; gaps: {:?}",
        gaps(&seen, COUNT)
    );
    let counters = balancer.stop();
    assert!(!counters.is_empty());
}

/// The ranges of `0..count` missing from sorted `seen` (the first 20).
fn gaps(seen: &[u32], count: u32) -> Vec<(u32, u32)> {
    let mut gaps = Vec::new();
    let mut next = 0;
    for &n in seen.iter().chain(std::iter::once(&count)) {
        if n > next {
            gaps.push((next, n - 1));
        }
        next = n + 1;
    }
    gaps.truncate(20);
    gaps
}

#[test]
fn removing_a_backend_of_one_service_moves_no_held_connection_of_another() {
    lab_or_skip!();
    let lab = Lab::up("rrsv3-", 182, 1, 5);
    let file = lab.work.path().join("services.toml");
    let ip = |s: usize| lab.server_ip(s).to_string();
    // "other": every UDP port of the VIP, on s4 and s5.
    let other = |backends: &[String]| {
        let quoted: Vec<String> = backends.iter().map(|b| format!("\"{b}\"")).collect();
        format!(
            "[[service]]\nname = \"other\"\nvip = \"{VIP}\"\nprotocol = \"udp\"\nbackends = [{}]\ntable_size = 251\n",
            quoted.join(", ")
        )
    };
    std::fs::write(
        &file,
        format!("{}{}", config(&[ip(2), ip(3)]), other(&[ip(4), ip(5)])),
    )
    .expect("config");
    let balancer = lab.start_balancer(
        1,
        &[
            ("RR_TARGET_IPS", ip(1)),
            ("RR_CONFIG", file.to_str().unwrap().to_owned()),
        ],
    );
    let events = lab.work.path().join("events.jsonl");
    let hold = lab.spawn_mconnect_hold("c1", 300, Duration::from_secs(7), &events);
    std::thread::sleep(Duration::from_secs(3));
    std::fs::write(
        &file,
        format!("{}{}", config(&[ip(2), ip(3)]), other(&[ip(4)])),
    )
    .expect("config");
    let (code, body) = lab.api(1, "POST", "/config/reload", None);
    assert_eq!(code, 200, "POST /config/reload: {body}");
    let report = hold.finish();
    assert_eq!(report["failed_connects"], 0, "{report}");
    assert_eq!(report["hold"]["broken"], 0, "no connection broke: {report}");
    assert_eq!(report["hold"]["moved"], 0, "no connection moved: {report}");
    let names: Vec<String> = split(&report).into_keys().collect();
    assert_eq!(names, ["s2", "s3"], "{report}");
    let (_, services) = lab.api(1, "GET", "/services", None);
    assert!(services.to_string().contains(&ip(4)), "{services}");
    assert!(!services.to_string().contains(&ip(5)), "{services}");
    drop(balancer);
}

#[test]
fn in_vip_mode_a_service_port_reaches_only_the_service_s_backends() {
    lab_or_skip!();
    let lab = Lab::up_routed("rrsv4-", 183, 3);
    let file = lab.work.path().join("services.toml");
    let ip = |s: usize| lab.server_ip(s).to_string();
    std::fs::write(&file, config(&[ip(2), ip(3)])).expect("config file");
    // The VIP is also the default service's (RR_VIPS: the packet I/O and
    // the host's rules are built from it), with s1 alone.
    let balancer = lab.start_balancer(
        1,
        &[
            ("RR_VIPS", VIP.to_owned()),
            ("RR_TARGET_IPS", ip(1)),
            ("RR_CONFIG", file.to_str().unwrap().to_owned()),
        ],
    );
    let report = lab.mconnect("c1", &["--nconn", "3000"]);
    assert_split_between(&report, &["s2", "s3"], 3000);
    drop(balancer);
}

/// `GET /services`: backend `ip`'s health in service `name`, if listed.
fn service_backend_health(lab: &Lab, name: &str, ip: &str) -> Option<String> {
    let (code, services) = lab.api(1, "GET", "/services", None);
    assert_eq!(code, 200, "{services}");
    let service = services.as_array()?.iter().find(|s| s["name"] == name)?;
    let backend = service["backends"]
        .as_array()?
        .iter()
        .find(|b| b["ip"] == ip)?;
    backend["health"].as_str().map(str::to_owned)
}

/// Polls every 50 ms, at most 15 s, until `ip` of service `name` has `health`.
fn wait_service_health(lab: &Lab, name: &str, ip: &str, health: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while service_backend_health(lab, name, ip).as_deref() != Some(health) {
        assert!(
            Instant::now() < deadline,
            "{name}'s {ip} not {health}: {:?}",
            lab.api(1, "GET", "/services", None)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_service_s_own_health_check_judges_its_backends() {
    lab_or_skip!();
    let lab = Lab::up("rrsv5-", 188, 1, 3);
    let ip = |s: usize| lab.server_ip(s).to_string();
    // The balancer's check (RR_HEALTH) probes a port nothing listens on;
    // the service's, mconnect's HTTP probe, which answers.
    let web = format!(
        "{}health = \"http:{}/healthz\"\n",
        config(&[ip(2), ip(3)]),
        lab::PROBE_PORT
    );
    let balancer = start_with_file(
        &lab,
        &web,
        &[
            ("RR_HEALTH", "tcp:9".to_owned()),
            ("RR_HEALTH_INTERVAL", "100ms".to_owned()),
        ],
    );
    lab.wait_backend(1, lab.server_ip(1), Duration::from_secs(15), |b| {
        b["health"] == "down"
    });
    let (_, services) = lab.api(1, "GET", "/services", None);
    assert_eq!(
        services[0]["health"],
        format!("http:{}/healthz", lab::PROBE_PORT),
        "{services}"
    );
    for s in [2, 3] {
        assert_eq!(
            service_backend_health(&lab, "web", &ip(s)).as_deref(),
            Some("up"),
            "{services}"
        );
    }
    let report = lab.mconnect("c1", &["--nconn", "3000"]);
    assert_split_between(&report, &["s2", "s3"], 3000);

    // s3's probe stops answering: only its own service's check sees it.
    lab.kill_server(3);
    wait_service_health(&lab, "web", &ip(3), "down");
    assert_eq!(
        service_backend_health(&lab, "web", &ip(2)).as_deref(),
        Some("up")
    );
    let report = lab.mconnect("c1", &["--nconn", "500"]);
    assert_split_between(&report, &["s2"], 500);
    let log = balancer.stop();
    assert!(!log.is_empty());
}

#[test]
fn in_vip_mode_a_service_vip_named_only_in_the_file_reaches_the_balancer() {
    lab_or_skip!();
    let lab = Lab::up_routed("rrsv6-", 189, 3);
    let ip = |s: usize| lab.server_ip(s).to_string();
    // No RR_VIPS: the VIP is the file's service's alone, so the packet I/O
    // and the host's rules must take it from the services.
    let balancer = start_with_file(&lab, &config(&[ip(2), ip(3)]), &[]);
    let report = lab.mconnect("c1", &["--nconn", "3000"]);
    assert_split_between(&report, &["s2", "s3"], 3000);
    let log = balancer.log_text();
    assert!(!log.contains("not steered at start"), "{log}");
    drop(balancer);
}
