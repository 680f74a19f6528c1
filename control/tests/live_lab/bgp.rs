//! Several balancers behind one router that learns the VIP from them by BGP
//! (BIRD 2 on both sides) and spreads flows by ECMP in its kernel (multipath
//! routes, L4 hashing): the balancers announce while ready, withdraw on
//! SIGTERM before stopping, on a drain, and when their backends are down;
//! a killed balancer is withdrawn by the router when the session's hold
//! timer runs out. VIP mode: the router routes plain IP to the balancers;
//! GRE mode: the router's userspace tunnel (`testbed tunnel encap
//! --follow-routes`) sends to the balancers it has a route to.
//!
//! Each test owns the prefix `rrbgN-` and the subnets `10.(170+N).{1,2}.0/24`.

use std::collections::BTreeSet;
use std::fs;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::lab::{self, lab_or_skip, Lab, VIP};
use crate::{assert_all_succeeded, split};

use crate::lab::{BALANCER_AS, BGP_HOLD_SECONDS as HOLD_SECONDS, ROUTER_AS};

/// A service's VIP from a configuration file, announced beside `VIP`.
const SECOND_VIP: &str = "10.99.0.7";

/// The balancers the router's kernel currently routes the VIP to.
fn vip_next_hops(lab: &Lab) -> BTreeSet<Ipv4Addr> {
    let out = lab.exec(
        "r",
        &["ip", "-j", "route", "show", "exact", &format!("{VIP}/32")],
    );
    let routes: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let mut hops = BTreeSet::new();
    for route in routes.as_array().into_iter().flatten() {
        let gateways = route["nexthops"].as_array().map_or_else(
            || vec![route["gateway"].clone()],
            |n| n.iter().map(|h| h["gateway"].clone()).collect::<Vec<_>>(),
        );
        hops.extend(
            gateways
                .iter()
                .filter_map(|g| g.as_str()?.parse::<Ipv4Addr>().ok()),
        );
    }
    hops
}

/// How the router reaches the balancers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Plain IP to the VIP, which each balancer announces.
    Vip,
    /// GRE from the router's `testbed tunnel encap --follow-routes` to each
    /// balancer's own address, which it announces.
    Gre,
}

impl Mode {
    /// The balancers the router sends VIP traffic to now.
    fn routed(self, lab: &Lab) -> BTreeSet<Ipv4Addr> {
        match self {
            Mode::Vip => vip_next_hops(lab),
            Mode::Gre => (1..=4)
                .map(|b| lab.balancer_ip(b))
                .filter(|ip| {
                    let out = lab.exec("r", &["ip", "route", "show", "exact", &format!("{ip}/32")]);
                    !out.stdout.is_empty()
                })
                .collect(),
        }
    }
}

/// Waits (at most `limit`) until the VIP's next hops are balancers `want`;
/// returns how long it took.
fn wait_next_hops(lab: &Lab, want: &[usize], limit: Duration) -> Duration {
    wait_routed(lab, Mode::Vip, want, limit)
}

/// Waits (at most `limit`) until the router sends VIP traffic to balancers
/// `want` (in `mode`); returns how long it took.
fn wait_routed(lab: &Lab, mode: Mode, want: &[usize], limit: Duration) -> Duration {
    let want: BTreeSet<Ipv4Addr> = want.iter().map(|&b| lab.balancer_ip(b)).collect();
    let started = Instant::now();
    loop {
        let now = mode.routed(lab);
        if now == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "the router routes {VIP} to {now:?}, not {want:?}, after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (at most 5 s) until the router's tunnel, whose log is `log`, says
/// its ECMP group is balancers `want`.
fn wait_encap_group(lab: &Lab, log: &Path, want: &[usize]) {
    let ips: Vec<String> = want
        .iter()
        .map(|&b| lab.balancer_ip(b).to_string())
        .collect();
    let line = format!("ECMP group now [{}]", ips.join(", "));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = fs::read_to_string(log).unwrap_or_default();
        let last = text.lines().rfind(|l| l.contains("ECMP group now"));
        if last.is_some_and(|l| l.ends_with(&line)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the tunnel's group is not {line}: {text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A balancer in VIP mode announcing the VIP to the router, health-checking
/// its backends, withdrawing `grace` before it stops.
fn bgp_env(lab: &Lab, grace: &str) -> Vec<(&'static str, String)> {
    let mut env = gre_bgp_env(lab, grace);
    env.push(("RR_VIPS", VIP.to_owned()));
    env
}

/// The same in GRE mode: it announces its own address, where the router's
/// tunnel sends the VIP's traffic.
fn gre_bgp_env(lab: &Lab, grace: &str) -> Vec<(&'static str, String)> {
    vec![
        ("RR_BGP_LOCAL_AS", BALANCER_AS.to_string()),
        ("RR_BGP_PEERS", format!("{}:{ROUTER_AS}", lab.back(1))),
        ("RR_BGP_HOLD", format!("{HOLD_SECONDS}s")),
        ("RR_BGP_GRACE", grace.to_owned()),
        ("RR_HEALTH", format!("http:{}/healthz", lab::PROBE_PORT)),
        ("RR_HEALTH_INTERVAL", "200ms".into()),
        ("RR_HEALTH_TIMEOUT", "200ms".into()),
        ("RR_HEALTH_FALL", "2".into()),
        ("RR_HEALTH_RISE", "2".into()),
    ]
}

/// Packets balancer `lb` has sent to backends so far.
fn to_wire(lab: &Lab, lb: usize) -> u64 {
    let (code, body) = lab.api(lb, "GET", "/stats", None);
    assert_eq!(code, 200, "{body}");
    body["total"]["to_wire"]["packets"].as_u64().unwrap_or(0)
}

/// A stream of new connections from `host`: `n` at `rate` per second.
struct Stream {
    child: Child,
}

impl Stream {
    fn start(lab: &Lab, host: &str, n: u64, rate: u64) -> Self {
        let testbed = lab::testbed();
        let child = Command::new("ip")
            .args(["netns", "exec", &lab.ns(host)])
            .arg(testbed)
            .args(["mconnect", "--address", &format!("{VIP}:{}", lab::PORT)])
            .args(["--output", "json", "--nconn", &n.to_string()])
            .args(["--rate", &rate.to_string(), "--timeout", "30s"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mconnect stream");
        Self { child }
    }

    fn finish(self) -> Value {
        let output = self.child.wait_with_output().expect("mconnect stream");
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "mconnect stream: {e}: {}",
                String::from_utf8_lossy(&output.stderr)
            )
        })
    }
}

/// Starts balancers `which` with BGP and waits until the router routes the
/// VIP to all of them.
fn start_announcing(lab: &Lab, which: &[usize], grace: &str) -> Vec<lab::Balancer> {
    start_announcing_with(lab, which, grace, &[])
}

/// The same with `extra` settings besides.
fn start_announcing_with(
    lab: &Lab,
    which: &[usize],
    grace: &str,
    extra: &[(&'static str, String)],
) -> Vec<lab::Balancer> {
    let mut env = bgp_env(lab, grace);
    env.extend(extra.iter().cloned());
    let balancers = which.iter().map(|&b| lab.start_balancer(b, &env)).collect();
    let took = wait_next_hops(lab, which, Duration::from_secs(30));
    println!("the router routes {VIP} to balancers {which:?}, {took:?} after the last started");
    balancers
}

fn bgp_view(lab: &Lab, lb: usize) -> Value {
    let (code, body) = lab.api(lb, "GET", "/bgp", None);
    assert_eq!(code, 200, "GET /bgp: {body}");
    body
}

/// Waits (at most 5 s) until balancer `lb`'s `GET /bgp` satisfies `check`.
fn wait_bgp_view(lab: &Lab, lb: usize, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let view = bgp_view(lab, lb);
        if check(&view) {
            return view;
        }
        assert!(
            Instant::now() < deadline,
            "GET /bgp on balancer {lb}: {view}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A lab whose router learns routes from the balancers by BGP; with the
/// router's BIRD control socket.
fn lab_with_router(prefix: &str, net: u8, balancers: usize) -> (Lab, String) {
    let lab = Lab::up_unrouted(prefix, net, balancers, 3);
    let socket = lab.router_bird_socket().display().to_string();
    (lab, socket)
}

/// What the router's BIRD says of its session with balancer `lb` (its
/// `peer{lb}`: the topology lists the balancers in order).
fn router_session(lab: &Lab, socket: &str, lb: usize) -> String {
    let out = lab.exec(
        "r",
        &[
            "birdc",
            "-s",
            socket,
            "show",
            "protocols",
            &format!("peer{lb}"),
        ],
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn in_vip_mode_a_sigterm_withdraws_first_and_no_held_connection_breaks() {
    lab_or_skip!("bird", "birdc", "sysctl");
    let (lab, _) = lab_with_router("rrbg1-", 171, 3);
    // A second VIP from a services file is announced with RR_VIPS' (its
    // backend, on the servers' link but absent, is a backend of its own:
    // a service cannot share the default service's).
    let [a, b, c, _] = lab.server_ip(1).octets();
    let absent = Ipv4Addr::new(a, b, c, 99);
    let file = lab.work.path().join("services.toml");
    let service = format!(
        "[[service]]\nname = \"second\"\nvip = \"{SECOND_VIP}\"\nbackends = [\"{absent}\"]\n"
    );
    fs::write(&file, service).expect("services file");
    let config = [("RR_CONFIG", file.display().to_string())];
    let mut balancers = start_announcing_with(&lab, &[1, 2, 3], "7s", &config).into_iter();
    let (first, second, third) = (
        balancers.next().unwrap(),
        balancers.next().unwrap(),
        balancers.next().unwrap(),
    );
    let status = Lab::run(&[
        lab::testbed().to_str().unwrap(),
        "status",
        "--prefix",
        &lab.prefix,
    ]);
    for b in 1..=3 {
        assert!(
            status.lines().any(|l| l.contains("bgp peer")
                && l.contains("Established")
                && status.contains(&format!("nexthop via {}", lab.balancer_ip(b)))),
            "testbed status shows the sessions and the multipath route: {status}"
        );
    }
    assert!(status.contains(&format!("bgp route {VIP} ")), "{status}");
    // The balancer reads its sessions from BIRD every second.
    let view = wait_bgp_view(&lab, 1, |v| v["established"] == 1);
    assert_eq!(view["announced"], true, "{view}");
    assert_eq!(view["routes"][0], format!("{VIP}/32"), "{view}");
    assert_eq!(view["routes"][1], format!("{SECOND_VIP}/32"), "{view}");
    let metrics = lab.exec(
        "lb1",
        &[
            "curl",
            "-sS",
            "--max-time",
            "5",
            "http://127.0.0.1:9700/metrics",
        ],
    );
    let metrics = String::from_utf8_lossy(&metrics.stdout);
    for line in [
        "rr_bgp_announced 1",
        "rr_bgp_session_established{session=\"peer1\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line}:\n{metrics}");
    }

    let events = lab.work.path().join("hold.jsonl");
    let hold = lab.spawn_mconnect_hold("c1", 300, Duration::from_secs(14), &events);
    std::thread::sleep(Duration::from_secs(3));
    for lb in 1..=3 {
        assert!(
            to_wire(&lab, lb) > 0,
            "the router spreads the held connections over every balancer (ECMP); balancer {lb} got none"
        );
    }
    let stream = Stream::start(&lab, "c2", 600, 100);
    let stopping = std::thread::spawn(move || first.stop());
    let withdrawn = wait_next_hops(&lab, &[2, 3], Duration::from_secs(5));
    assert!(
        !stopping.is_finished(),
        "balancer 1 stopped before the router withdrew its route"
    );
    println!("SIGTERM to balancer 1: the router withdrew it after {withdrawn:?}");
    // During the grace period the withdrawn balancer forwards nothing new.
    let before = to_wire(&lab, 1);
    let fresh = lab.mconnect("c2", &["--nconn", "300"]);
    assert_all_succeeded(&fresh, 300);
    // Read through its API: it still runs, in its grace period.
    assert_eq!(
        to_wire(&lab, 1),
        before,
        "balancer 1 forwarded after its withdrawal"
    );
    let counters = stopping.join().expect("stopping balancer 1");
    assert!(counters.contains("worker 0"), "{counters}");
    assert!(
        first_log_says_withdrawn(&lab, 1),
        "balancer 1's log tells of the withdrawal"
    );

    let report = hold.finish();
    assert_all_succeeded(&report, 300);
    assert_eq!(
        report["hold"]["broken"], 0,
        "no held connection broke: {report}"
    );
    assert_eq!(
        report["hold"]["moved"], 0,
        "no held connection changed backend: {report}"
    );
    let stream = stream.finish();
    assert_all_succeeded(&stream, 600);
    println!(
        "held 300, 600 new at 100/s across the SIGTERM: none failed; backends of the new: {:?}",
        split(&stream)
    );
    for lb in [2, 3] {
        assert!(to_wire(&lab, lb) > 0, "balancer {lb} took connections");
    }

    // A drain withdraws without stopping; resuming announces again.
    let (code, body) = lab.api(2, "POST", "/drain", None);
    assert_eq!(code, 200, "{body}");
    wait_next_hops(&lab, &[3], Duration::from_secs(5));
    assert_eq!(bgp_view(&lab, 2)["draining"], true);
    assert_all_succeeded(&lab.mconnect("c1", &["--nconn", "200"]), 200);
    let (code, body) = lab.api(2, "DELETE", "/drain", None);
    assert_eq!(code, 200, "{body}");
    wait_next_hops(&lab, &[2, 3], Duration::from_secs(5));
    // A second SIGTERM in the grace period stops it at once.
    let counters = second.stop_cutting_grace();
    assert!(counters.contains("worker 0"), "{counters}");
    third.stop();
}

fn first_log_says_withdrawn(lab: &Lab, lb: usize) -> bool {
    let log = lab.work.path().join(format!("lb{lb}-rusty_rail.log"));
    fs::read_to_string(log)
        .unwrap_or_default()
        .contains("BGP routes withdrawn; forwarding for")
}

#[test]
fn in_vip_mode_a_killed_balancer_is_withdrawn_when_its_hold_timer_expires() {
    lab_or_skip!("bird", "birdc", "sysctl");
    let (lab, router) = lab_with_router("rrbg2-", 172, 3);
    let balancers = start_announcing(&lab, &[1, 2, 3], "1s");
    let events = lab.work.path().join("hold.jsonl");
    let hold = lab.spawn_mconnect_hold("c1", 300, Duration::from_secs(14), &events);
    std::thread::sleep(Duration::from_secs(3));
    let stream = Stream::start(&lab, "c2", 600, 100);
    // The machine dies: its link goes silent first (so no FIN or RST from
    // the dying BIRD reaches the router), then the process is killed.
    let down = lab.exec("lb1", &["ip", "link", "set", "eth0", "down"]);
    assert!(down.status.success(), "{down:?}");
    let mut balancers = balancers.into_iter();
    balancers.next().unwrap().kill();
    let withdrawn = wait_next_hops(&lab, &[2, 3], Duration::from_secs(4 * HOLD_SECONDS));
    let report = hold.finish();
    let stream = stream.finish();
    println!(
        "kill -9 of balancer 1 (link down): the router withdrew it {withdrawn:?} after (hold time {HOLD_SECONDS} s); \
         held 300: {} broken, {} moved; 600 new at 100/s: {} failed to connect, {} failed to read",
        report["hold"]["broken"], report["hold"]["moved"], stream["failed_connects"], stream["failed_reads"]
    );
    let session = router_session(&lab, &router, 1);
    assert!(
        session.contains("Hold timer expired"),
        "the router learnt of the silent balancer from its hold timer: {session}"
    );
    // After the withdrawal, everything goes through the survivors.
    assert_all_succeeded(&lab.mconnect("c2", &["--nconn", "300"]), 300);
    for balancer in balancers {
        balancer.stop();
    }
}

#[test]
fn in_vip_mode_a_balancer_without_backends_withdraws_and_a_fourth_balancer_joins() {
    lab_or_skip!("bird", "birdc", "sysctl");
    let (mut lab, _) = lab_with_router("rrbg3-", 173, 4);
    let balancers = start_announcing(&lab, &[1, 2, 3], "1s");

    // Every backend down: each balancer withdraws (all share them).
    for s in 1..=3 {
        lab.kill_server(s);
    }
    let took = wait_next_hops(&lab, &[], Duration::from_secs(10));
    println!("all backends killed: every balancer withdrew within {took:?}");
    let view = bgp_view(&lab, 1);
    assert_eq!(view["announced"], false, "{view}");
    assert!(
        view["last_change"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("no backend is in rotation")),
        "{view}"
    );
    for s in 1..=3 {
        lab.start_server(s);
    }
    let took = wait_next_hops(&lab, &[1, 2, 3], Duration::from_secs(15));
    println!("backends back: announced again within {took:?}");
    // A balancer announces once one backend is back; held connections are
    // kept across balancers only when they were placed with the same
    // table, so wait until every balancer has all three again (as in any
    // Maglev deployment, flows placed while the sets differ may move).
    for lb in 1..=3 {
        for s in 1..=3 {
            lab.wait_backend(lb, lab.server_ip(s), Duration::from_secs(10), |b| {
                b["in_rotation"] == true
            });
        }
    }

    // A fourth balancer joins while connections are held.
    let events = lab.work.path().join("hold.jsonl");
    let hold = lab.spawn_mconnect_hold("c1", 300, Duration::from_secs(10), &events);
    std::thread::sleep(Duration::from_secs(2));
    let fourth = lab.start_balancer(4, &bgp_env(&lab, "1s"));
    let took = wait_next_hops(&lab, &[1, 2, 3, 4], Duration::from_secs(15));
    println!("balancer 4 announced {took:?} after it started");
    let fresh = lab.mconnect("c2", &["--nconn", "600"]);
    assert_all_succeeded(&fresh, 600);
    assert!(to_wire(&lab, 4) > 0, "new connections reach balancer 4");
    let report = hold.finish();
    assert_all_succeeded(&report, 300);
    assert_eq!(report["hold"]["broken"], 0, "{report}");
    assert_eq!(report["hold"]["moved"], 0, "{report}");
    fourth.stop();
    for balancer in balancers {
        balancer.stop();
    }
}

/// GRE mode: the router's tunnel follows its routes to the balancers' own
/// addresses, which they announce while ready.
#[test]
fn in_gre_mode_the_routers_tunnel_follows_announcements_withdrawals_and_a_joining_balancer() {
    lab_or_skip!("bird", "birdc", "sysctl");
    let (mut lab, router) = lab_with_router("rrbg4-", 174, 4);
    let encap_log = lab.start_encap(4, &["--follow-routes"]);
    let mut started: Vec<lab::Balancer> = [1, 2, 3]
        .iter()
        .map(|&b| lab.start_balancer(b, &gre_bgp_env(&lab, "7s")))
        .collect();
    let took = wait_routed(&lab, Mode::Gre, &[1, 2, 3], Duration::from_secs(30));
    println!("GRE mode: the router routes to balancers 1-3 {took:?} after the last started");
    let view = bgp_view(&lab, 1);
    assert_eq!(
        view["routes"][0],
        format!("{}/32", lab.balancer_ip(1)),
        "{view}"
    );

    let events = lab.work.path().join("hold.jsonl");
    let hold = lab.spawn_mconnect_hold("c1", 300, Duration::from_secs(16), &events);
    std::thread::sleep(Duration::from_secs(3));
    for lb in 1..=3 {
        assert!(
            to_wire(&lab, lb) > 0,
            "the tunnel spreads flows over balancer {lb} too"
        );
    }
    // SIGTERM: withdrawn while it still forwards, then stopped.
    let first = started.remove(0);
    let stopping = std::thread::spawn(move || first.stop());
    let withdrawn = wait_routed(&lab, Mode::Gre, &[2, 3], Duration::from_secs(5));
    // The tunnel looks at the routes every 100 ms: once it says so, nothing
    // new may reach balancer 1.
    wait_encap_group(&lab, &encap_log, &[2, 3]);
    let before = to_wire(&lab, 1);
    assert_all_succeeded(&lab.mconnect("c2", &["--nconn", "300"]), 300);
    assert_eq!(
        to_wire(&lab, 1),
        before,
        "balancer 1 forwarded after its withdrawal"
    );
    stopping.join().expect("stopping balancer 1");
    println!("GRE mode, SIGTERM: the router withdrew balancer 1 after {withdrawn:?}");

    // A fourth balancer joins.
    let fourth = lab.start_balancer(4, &gre_bgp_env(&lab, "1s"));
    let joined = wait_routed(&lab, Mode::Gre, &[2, 3, 4], Duration::from_secs(15));
    assert_all_succeeded(&lab.mconnect("c2", &["--nconn", "600"]), 600);
    assert!(to_wire(&lab, 4) > 0, "new connections reach balancer 4");
    println!("GRE mode: balancer 4 routed {joined:?} after it started");
    let report = hold.finish();
    assert_all_succeeded(&report, 300);
    assert_eq!(report["hold"]["broken"], 0, "{report}");
    assert_eq!(report["hold"]["moved"], 0, "{report}");

    // kill -9 of a silent balancer: out when the router's hold timer expires.
    let stream = Stream::start(&lab, "c1", 500, 100);
    std::thread::sleep(Duration::from_secs(1));
    let down = lab.exec("lb2", &["ip", "link", "set", "eth0", "down"]);
    assert!(down.status.success(), "{down:?}");
    started.remove(0).kill();
    let withdrawn = wait_routed(
        &lab,
        Mode::Gre,
        &[3, 4],
        Duration::from_secs(4 * HOLD_SECONDS),
    );
    let session = router_session(&lab, &router, 2);
    assert!(session.contains("Hold timer expired"), "{session}");
    assert_all_succeeded(&lab.mconnect("c2", &["--nconn", "300"]), 300);
    let stream = stream.finish();
    println!(
        "GRE mode, kill -9 of balancer 2 (link down): withdrawn {withdrawn:?} after (hold time {HOLD_SECONDS} s); \
         500 new at 100/s across it: {} failed to connect, {} failed to read",
        stream["failed_connects"], stream["failed_reads"]
    );

    // Every backend down: the survivors withdraw; back: they announce again.
    for s in 1..=3 {
        lab.kill_server(s);
    }
    let took = wait_routed(&lab, Mode::Gre, &[], Duration::from_secs(10));
    println!("GRE mode, all backends killed: withdrawn within {took:?}");
    for s in 1..=3 {
        lab.start_server(s);
    }
    let took = wait_routed(&lab, Mode::Gre, &[3, 4], Duration::from_secs(15));
    println!("GRE mode, backends back: announced again within {took:?}");
    assert_all_succeeded(&lab.mconnect("c2", &["--nconn", "300"]), 300);
    fourth.stop();
    for balancer in started {
        balancer.stop();
    }
}

/// With BFD on both sides, a silent balancer is withdrawn when BFD misses
/// three of its 100 ms packets, long before the hold timer.
#[test]
fn in_vip_mode_with_bfd_a_killed_balancer_is_withdrawn_when_bfd_misses_it() {
    lab_or_skip!("bird", "birdc", "sysctl");
    let lab = Lab::up_unrouted_with_bfd("rrbg5-", 175, 3, 3);
    let router = lab.router_bird_socket().display().to_string();
    let mut env = bgp_env(&lab, "1s");
    env.push(("RR_BGP_BFD", "1".into()));
    let balancers: Vec<lab::Balancer> = [1, 2, 3]
        .iter()
        .map(|&b| lab.start_balancer(b, &env))
        .collect();
    wait_next_hops(&lab, &[1, 2, 3], Duration::from_secs(30));
    // BFD comes up after the BGP session: wait until the router runs it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(
        &lab.exec("r", &["birdc", "-s", &router, "show", "bfd", "sessions"])
            .stdout,
    )
    .contains("Up")
    {
        assert!(Instant::now() < deadline, "no BFD session came up");
        std::thread::sleep(Duration::from_millis(100));
    }
    let stream = Stream::start(&lab, "c2", 500, 100);
    std::thread::sleep(Duration::from_secs(1));
    let down = lab.exec("lb1", &["ip", "link", "set", "eth0", "down"]);
    assert!(down.status.success(), "{down:?}");
    let mut balancers = balancers.into_iter();
    balancers.next().unwrap().kill();
    let withdrawn = wait_next_hops(&lab, &[2, 3], Duration::from_secs(4 * HOLD_SECONDS));
    let session = router_session(&lab, &router, 1);
    assert!(
        session.contains("BFD session down"),
        "the router learnt of the silent balancer from BFD: {session}"
    );
    let stream = stream.finish();
    println!(
        "BFD (100 ms x 3), kill -9 of balancer 1 (link down): withdrawn {withdrawn:?} after; \
         500 new at 100/s across it: {} failed to connect, {} failed to read",
        stream["failed_connects"], stream["failed_reads"]
    );
    assert_all_succeeded(&lab.mconnect("c1", &["--nconn", "300"]), 300);
    for balancer in balancers {
        balancer.stop();
    }
}

/// A VIP that a reload brings, announced by the reconfigured BIRD.
const RELOADED_VIP: &str = "10.99.0.9";

/// The router's line for its session with balancer `lb` (`peer{lb}`): its
/// state and the time it entered it.
fn session_line(lab: &Lab, socket: &str, lb: usize) -> String {
    let peer = format!("peer{lb}");
    router_session(lab, socket, lb)
        .lines()
        .find(|l| l.starts_with(&peer))
        .unwrap_or_default()
        .to_owned()
}

/// Waits (at most 10 s) until the router has a route for `vip` (or none).
fn wait_router_route(lab: &Lab, vip: &str, present: bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = lab.exec("r", &["ip", "route", "show", "exact", &format!("{vip}/32")]);
        if out.stdout.is_empty() != present {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the router's route to {vip} is not {}: {}",
            if present { "there" } else { "gone" },
            String::from_utf8_lossy(&out.stdout)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// VIP mode: a service a reload brings on a new VIP is announced at once
/// (BIRD reconfigured, its session kept), and withdrawn when a reload
/// takes it away; held connections to the first VIP see nothing of it.
#[test]
fn in_vip_mode_a_vip_a_reload_brings_is_announced_and_the_session_stays_up() {
    lab_or_skip!("bird", "birdc", "sysctl");
    let (mut lab, router) = lab_with_router("rrbg6-", 176, 1);
    for s in [2, 3] {
        lab.serve_vip_on(s, RELOADED_VIP, "gre1");
    }
    let file = lab.work.path().join("services.toml");
    fs::write(&file, "# no services yet\n").expect("services file");
    // s1 is the default service's; s2 and s3 are free for the service.
    let config = [
        ("RR_CONFIG", file.display().to_string()),
        ("RR_TARGET_IPS", lab.server_ip(1).to_string()),
    ];
    let balancers = start_announcing_with(&lab, &[1], "1s", &config);
    let session = session_line(&lab, &router, 1);
    assert!(session.contains("Established"), "{session}");
    let events = lab.work.path().join("hold.jsonl");
    let hold = lab.spawn_mconnect_hold("c1", 100, Duration::from_secs(8), &events);
    std::thread::sleep(Duration::from_secs(1));

    let service = format!(
        "[[service]]\nname = \"late\"\nvip = \"{RELOADED_VIP}\"\nbackends = [\"{}\", \"{}\"]\n",
        lab.server_ip(2),
        lab.server_ip(3)
    );
    fs::write(&file, service).expect("services file");
    let (code, body) = lab.api(1, "POST", "/config/reload", None);
    assert_eq!(code, 200, "{body}");
    wait_router_route(&lab, RELOADED_VIP, true);
    let view = bgp_view(&lab, 1);
    let routes = view["routes"].to_string();
    assert!(routes.contains(&format!("{RELOADED_VIP}/32")), "{view}");
    assert!(routes.contains(&format!("{VIP}/32")), "{view}");
    let report = lab.mconnect_to(
        "c1",
        &format!("{RELOADED_VIP}:{}", lab::PORT),
        &["--nconn", "1000"],
    );
    assert_eq!(report["failed_connects"], 0, "{report}");
    let hosts: Vec<String> = split(&report).into_keys().collect();
    assert_eq!(hosts, ["s2", "s3"], "{report}");
    assert_eq!(
        session_line(&lab, &router, 1),
        session,
        "the session was not reset"
    );

    fs::write(&file, "# no services again\n").expect("services file");
    let (code, body) = lab.api(1, "POST", "/config/reload", None);
    assert_eq!(code, 200, "{body}");
    wait_router_route(&lab, RELOADED_VIP, false);
    assert_eq!(
        vip_next_hops(&lab).len(),
        1,
        "the first VIP stays announced"
    );
    assert_eq!(
        session_line(&lab, &router, 1),
        session,
        "the session was not reset"
    );
    let report = hold.finish();
    assert_all_succeeded(&report, 100);
    assert_eq!(report["hold"]["broken"], 0, "{report}");
    for balancer in balancers {
        balancer.stop();
    }
}
