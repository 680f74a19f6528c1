//! `testbed tunnel` end to end: a client namespace whose VIP route leads into
//! `tunnel encap`, a server namespace running `tunnel decap` with the VIP on
//! its tun and an `mconnect` server bound to the VIP. TCP and UDP work
//! through encap -> decap, replies come back directly as plain IP (DSR),
//! several balancers share the flows, and a wrong key is dropped and counted.
//!
//! Each test owns the prefix `rrtnN-` and the subnet `10.203.N.0/24` (GRE
//! over IPv6 from the router: `rrg6-t`, 10.201.7.0/24, `fd00:201:7::/64`); the
//! VIP is 192.0.2.1 inside the namespaces. Tests skip (printing
//! `skipped: <reason>`) when not root or without `/dev/net/tun`, `ip netns`
//! or (where counted) `nft`.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use host::capability::Need;
use serde_json::Value;
use testbed::tunnel::{DecapConfig, DecapEndpoint};

const TESTBED: &str = env!("CARGO_BIN_EXE_testbed");
const VIP: &str = "192.0.2.1";
const PORT: u16 = 5001;
const READY_WAIT: Duration = Duration::from_secs(10);
const CLIENT_LIMIT: Duration = Duration::from_secs(30);

fn succeeds(command: &mut Command) -> bool {
    command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs a command line (split at spaces); panics (failing the test, which
/// still cleans up) when it fails.
fn run(line: &str) -> String {
    let mut words = line.split_whitespace();
    let output = Command::new(words.next().unwrap())
        .args(words)
        .output()
        .unwrap_or_else(|e| panic!("{line}: {e}"));
    assert!(
        output.status.success(),
        "{line}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Client namespace `{prefix}c` (10.203.N.1 on `c0`) and server namespace
/// `{prefix}s` (10.203.N.2 on `s0`) joined by a veth pair; the processes
/// started in them. Everything goes on drop, also when the test failed.
struct Lab {
    prefix: String,
    /// The first three octets of the veth's IPv4 /24.
    network: String,
    /// The VIP the endpoints and mconnect use ([`VIP`] unless a test changes it).
    vip: IpAddr,
    children: Vec<Option<Child>>,
}

impl Lab {
    fn start(prefix: &str, subnet: u8, needs_nft: bool) -> Option<Self> {
        Self::start_in(prefix, &format!("10.203.{subnet}"), needs_nft)
    }

    /// A lab whose veth is `network`.0/24 (`network` is three octets).
    fn start_in(prefix: &str, network: &str, needs_nft: bool) -> Option<Self> {
        host::skip_unless!(Need::Root, Need::Tun, Need::Netns);
        if needs_nft {
            host::skip_unless!(Need::Tool("nft"));
        }
        let lab = Self {
            prefix: prefix.to_owned(),
            network: network.to_owned(),
            vip: VIP.parse().unwrap(),
            children: Vec::new(),
        };
        lab.remove_namespaces();
        let (c, s) = (lab.client_ns(), lab.server_ns());
        for ns in [&c, &s] {
            run(&format!("ip netns add {ns}"));
            run(&format!("ip -n {ns} link set lo up"));
            // Addresses usable at once, link-local ones included (which
            // neighbour discovery needs): no duplicate address detection.
            for conf in ["all", "default"] {
                run(&format!(
                    "ip netns exec {ns} sysctl -qw net.ipv6.conf.{conf}.accept_dad=0"
                ));
            }
        }
        run(&format!(
            "ip link add c0 netns {c} type veth peer name s0 netns {s}"
        ));
        run(&format!("ip -n {c} addr add {}/24 dev c0", lab.v4(1)));
        run(&format!("ip -n {s} addr add {}/24 dev s0", lab.v4(2)));
        run(&format!("ip -n {c} link set c0 up"));
        run(&format!("ip -n {s} link set s0 up"));
        Some(lab)
    }

    fn client_ns(&self) -> String {
        format!("{}c", self.prefix)
    }

    fn server_ns(&self) -> String {
        format!("{}s", self.prefix)
    }

    fn vip_port(&self) -> String {
        SocketAddr::new(self.vip, PORT).to_string()
    }

    fn v4(&self, host: u8) -> String {
        format!("{}.{host}", self.network)
    }

    /// Starts `testbed ARGS` in `ns` and waits for a stderr line containing
    /// `ready_word`. Returns its index in `children`.
    fn spawn(&mut self, ns: &str, args: &str, ready_word: &str) -> usize {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, TESTBED])
            .args(args.split_whitespace())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        self.children.push(Some(child));
        let (lines, ready) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        loop {
            match ready.recv_timeout(READY_WAIT) {
                Ok(line) if line.contains(ready_word) => return self.children.len() - 1,
                Ok(line) => eprintln!("{args}: {line}"),
                Err(e) => panic!("`testbed {args}` not ready within {READY_WAIT:?}: {e}"),
            }
        }
    }

    /// `testbed tunnel decap ARGS` in the server namespace, tun `{prefix}d`.
    fn decap(&mut self, args: &str) -> usize {
        let line = format!(
            "tunnel decap --tun {}d --vip {} {args}",
            self.prefix, self.vip
        );
        self.spawn(&self.server_ns(), &line, "ready")
    }

    /// `testbed tunnel encap ARGS` in the client namespace, tun `{prefix}e`.
    fn encap(&mut self, args: &str) -> usize {
        let line = format!(
            "tunnel encap --tun {}e --vip {} {args}",
            self.prefix, self.vip
        );
        self.spawn(&self.client_ns(), &line, "ready")
    }

    /// An mconnect server on VIP:PORT (TCP and UDP) in the server namespace.
    fn mconnect_server(&mut self) {
        let args = format!(
            "mconnect --server --udp --address {} --name s",
            self.vip_port()
        );
        self.spawn(&self.server_ns(), &args, "listening");
    }

    /// Runs `testbed mconnect --address VIP:PORT ARGS --output json` in the
    /// client namespace and returns its report.
    fn mconnect_client(&self, args: &str) -> Value {
        let output = Command::new("timeout")
            .arg(CLIENT_LIMIT.as_secs().to_string())
            .args(["ip", "netns", "exec", &self.client_ns(), TESTBED])
            .args(["mconnect", "--address", &self.vip_port()])
            .args(args.split_whitespace())
            .args(["--output", "json"])
            .output()
            .unwrap();
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "mconnect {args}: {e}: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
        })
    }

    /// Decap, encap with `encap_args` and an mconnect server; 10 TCP
    /// connections and 10 UDP exchanges through them, all answered. Stops
    /// both endpoints, checks that the server decapsulated all the router
    /// sent, and returns the router's counters and how much it sent.
    fn ten_tcp_and_udp_through(&mut self, encap_args: &str) -> (Value, u64) {
        let decap = self.decap("");
        let encap = self.encap(encap_args);
        self.mconnect_server();
        // A generous timeout: right after the lab is built, the first IPv6
        // packets sometimes wait for neighbour discovery and go again after 1 s.
        assert_all_answered(&self.mconnect_client("--nconn 10 --timeout 5s"), 10);
        assert_all_answered(&self.mconnect_client("--udp --nconn 10 --timeout 5s"), 10);
        let from_client = self.stop_endpoint(encap);
        let at_server = self.stop_endpoint(decap);
        let sent = from_client["encapsulated"].as_u64().unwrap();
        assert!(sent >= 10 * 4 + 10, "{from_client}");
        assert_eq!(at_server["decapsulated"], sent, "{at_server}");
        (from_client, sent)
    }

    /// Stops a tunnel endpoint with SIGTERM and returns the counters it
    /// printed on its way out (which also proves it exits cleanly).
    fn stop_endpoint(&mut self, index: usize) -> Value {
        let child = self.children[index].take().unwrap();
        let pid = libc::pid_t::try_from(child.id()).unwrap();
        // SAFETY: kill has no memory effects; pid is our child, not yet reaped
        // (`ip netns exec` execs the testbed, so the pid is the endpoint's).
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let output = wait_bounded(child, READY_WAIT);
        assert!(output.status.success(), "{output:?}");
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {output:?}"))
    }

    fn remove_namespaces(&self) {
        for name in testbed::lab::netns::list(&self.prefix) {
            let _ = testbed::lab::netns::delete(&name);
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in self.children.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.remove_namespaces();
    }
}

/// Stops an in-process endpoint when dropped, also when the test fails.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Loads an nftables ruleset in `ns`.
fn nft(ns: &str, rules: &str) {
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(rules.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "nft: {}\n{rules}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The packet count of the named counter `name` in table `inet t` of `ns`.
fn nft_packets(ns: &str, name: &str) -> u64 {
    let text = run(&format!(
        "ip netns exec {ns} nft list counter inet t {name}"
    ));
    let after = text
        .split("packets ")
        .nth(1)
        .unwrap_or_else(|| panic!("no packet count in {text}"));
    after.split_whitespace().next().unwrap().parse().unwrap()
}

fn wait_bounded(child: Child, limit: Duration) -> Output {
    let pid = child.id();
    let (done, result) = mpsc::channel();
    thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    let Ok(output) = result.recv_timeout(limit) else {
        let pid = libc::pid_t::try_from(pid).unwrap();
        // SAFETY: kill has no memory effects; pid is our child, not yet reaped.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        panic!("process {pid} still running after {limit:?}");
    };
    output.unwrap()
}

fn assert_all_answered(report: &Value, n: u64) {
    assert_eq!(report["connects"], n, "{report}");
    assert_eq!(report["failed_connects"], 0, "{report}");
    assert_eq!(report["failed_reads"], 0, "{report}");
    assert_eq!(report["hosts"]["s"], n, "{report}");
}

#[test]
fn tcp_and_udp_cross_the_tunnel_and_replies_return_directly_as_plain_ip() {
    let Some(mut lab) = Lab::start("rrtn1-", 1, true) else {
        return;
    };
    let (c, s) = (lab.client_ns(), lab.server_ns());
    // The server's packets toward the client, by kind; and what reaches the client.
    nft(
        &s,
        "table inet t {
           counter gre_out {}
           counter plain_from_vip_out {}
           counter unreachable_out {}
           chain out { type filter hook output priority 0;
             meta l4proto gre counter name gre_out
             icmp type destination-unreachable counter name unreachable_out
             ip saddr 192.0.2.1 oifname \"s0\" counter name plain_from_vip_out
           }
         }",
    );
    nft(
        &c,
        "table inet t {
           counter gre_in {}
           counter plain_from_vip_in {}
           chain in { type filter hook input priority 0;
             meta l4proto gre counter name gre_in
             ip saddr 192.0.2.1 iifname \"c0\" counter name plain_from_vip_in
           }
         }",
    );
    let decap = lab.decap("");
    let encap = lab.encap(&format!("--remote {}", lab.v4(2)));
    lab.mconnect_server();

    assert_all_answered(&lab.mconnect_client("--nconn 20"), 20);
    assert_all_answered(&lab.mconnect_client("--udp --nconn 20"), 20);

    let from_client = lab.stop_endpoint(encap);
    let at_server = lab.stop_endpoint(decap);
    // Stopped endpoints leave nothing behind: the devices (with the route
    // and the address on them) are gone.
    for (ns, tun) in [(&c, "e"), (&s, "d")] {
        let device = format!("{}{tun}", lab.prefix);
        assert!(
            !succeeds(Command::new("ip").args(["-n", ns, "link", "show", &device])),
            "{device} still in {ns}"
        );
    }
    assert!(!run(&format!("ip -n {c} route")).contains(VIP));
    // 20 TCP connections are at least SYN, ACK, request, FIN each; 20 datagrams.
    let sent = from_client["encapsulated"].as_u64().unwrap();
    assert!(sent >= 20 * 4 + 20, "{from_client}");
    assert_eq!(from_client["send_errors"], 0, "{from_client}");
    assert_eq!(at_server["decapsulated"], sent, "{at_server}");
    assert_eq!(at_server["received"], sent, "{at_server}");
    // DSR: every reply left the server as plain IP from the VIP, none as GRE,
    // and the client got them on its veth, not through the tunnel.
    assert_eq!(nft_packets(&s, "gre_out"), 0);
    assert_eq!(nft_packets(&c, "gre_in"), 0);
    // The raw GRE socket kept the kernel from answering protocol-unreachable.
    assert_eq!(nft_packets(&s, "unreachable_out"), 0);
    let replies = nft_packets(&s, "plain_from_vip_out");
    assert!(replies >= 20 * 3 + 20, "{replies} replies");
    assert_eq!(nft_packets(&c, "plain_from_vip_in"), replies);
}

#[test]
fn flows_spread_over_two_balancers_and_each_flow_works() {
    let Some(mut lab) = Lab::start("rrtn3-", 3, false) else {
        return;
    };
    let s = lab.server_ns();
    // The server namespace answers for both "balancers"; its decap takes GRE
    // sent to either address.
    run(&format!("ip -n {s} addr add {}/24 dev s0", lab.v4(3)));
    lab.decap("");
    let encap = lab.encap(&format!("--remote {},{} --seed 3", lab.v4(2), lab.v4(3)));
    lab.mconnect_server();

    assert_all_answered(&lab.mconnect_client("--nconn 40"), 40);

    let counters = lab.stop_endpoint(encap);
    let to_a = counters[format!("sent_to_{}", lab.v4(2))].as_u64().unwrap();
    let to_b = counters[format!("sent_to_{}", lab.v4(3))].as_u64().unwrap();
    // 40 flows with random source ports all hashing to one of two remotes
    // has probability 2^-39.
    assert!(to_a > 0 && to_b > 0, "{counters}");
    assert_eq!(to_a + to_b, counters["encapsulated"].as_u64().unwrap());
}

#[test]
fn packets_with_a_wrong_key_are_dropped_and_counted() {
    let Some(mut lab) = Lab::start("rrtn2-", 2, false) else {
        return;
    };
    let decap = lab.decap("--key 7");
    let encap = lab.encap(&format!("--remote {} --key 0x8", lab.v4(2)));
    lab.mconnect_server();

    let report = lab.mconnect_client("--udp --nconn 5 --timeout 1s");
    assert_eq!(report["failed_reads"], 5, "{report}");

    let from_client = lab.stop_endpoint(encap);
    let at_server = lab.stop_endpoint(decap);
    assert!(from_client["encapsulated"].as_u64().unwrap() >= 5);
    assert_eq!(at_server["decapsulated"], 0, "{at_server}");
    assert_eq!(
        at_server["drop_key_mismatch"], at_server["received"],
        "{at_server}"
    );
    assert!(at_server["drop_key_mismatch"].as_u64().unwrap() >= 5);
}

#[test]
fn the_decap_endpoint_runs_in_process_on_a_thread_in_the_server_namespace() {
    let Some(mut lab) = Lab::start("rrtn4-", 4, false) else {
        return;
    };
    let stop = StopOnDrop(Arc::new(AtomicBool::new(false)));
    let (opened, counters) = mpsc::channel();
    let server_ns = lab.server_ns();
    let tun = format!("{}d", lab.prefix);
    let stopper = Arc::clone(&stop.0);
    let worker = thread::spawn(move || {
        enter_namespace(&server_ns);
        let config = DecapConfig {
            tun,
            vip: vec![VIP.parse().unwrap()],
            key: None,
        };
        let mut endpoint = DecapEndpoint::open(&config).unwrap();
        opened.send(endpoint.counters()).unwrap();
        endpoint.run(&stopper).unwrap();
    });
    let counters = counters.recv_timeout(READY_WAIT).unwrap();
    lab.encap(&format!("--remote {}", lab.v4(2)));
    lab.mconnect_server();

    assert_all_answered(&lab.mconnect_client("--nconn 5"), 5);

    drop(stop);
    worker.join().unwrap();
    assert!(
        counters.get("decapsulated") >= 5 * 4,
        "{}",
        counters.to_json()
    );
}

#[test]
fn ipv6_inner_packets_cross_an_ipv4_tunnel_sent_from_the_chosen_local_address() {
    let Some(mut lab) = Lab::start("rrtn5-", 5, true) else {
        return;
    };
    let (c, s) = (lab.client_ns(), lab.server_ns());
    run(&format!("ip -n {c} addr add fd00:203:5::1/64 dev c0 nodad"));
    run(&format!("ip -n {s} addr add fd00:203:5::2/64 dev s0 nodad"));
    // A second client address, not the kernel's first choice, as --local.
    let local = lab.v4(11);
    run(&format!("ip -n {c} addr add {local}/24 dev c0"));
    nft(
        &s,
        &format!(
            "table inet t {{
               counter gre_from_local {{}}
               chain in {{ type filter hook input priority 0;
                 ip saddr {local} meta l4proto gre counter name gre_from_local
               }}
             }}"
        ),
    );
    lab.vip = "2001:db8::1".parse().unwrap();
    let (_, sent) = lab.ten_tcp_and_udp_through(&format!("--remote {} --local {local}", lab.v4(2)));
    assert_eq!(nft_packets(&s, "gre_from_local"), sent);
}

#[test]
fn an_ipv6_remote_makes_the_router_send_gre_over_ipv6_from_the_chosen_local_address() {
    let Some(mut lab) = Lab::start_in("rrg6-t", "10.201.7", true) else {
        return;
    };
    let (c, s) = (lab.client_ns(), lab.server_ns());
    run(&format!("ip -n {c} addr add fd00:201:7::1/64 dev c0 nodad"));
    run(&format!("ip -n {s} addr add fd00:201:7::2/64 dev s0 nodad"));
    // A second client address, not the kernel's first choice, as --local.
    run(&format!(
        "ip -n {c} addr add fd00:201:7::11/64 dev c0 nodad"
    ));
    nft(
        &s,
        "table inet t {
           counter gre6_from_local {}
           counter gre4 {}
           chain in { type filter hook input priority 0;
             ip6 saddr fd00:201:7::11 ip6 nexthdr gre counter name gre6_from_local
             meta nfproto ipv4 meta l4proto gre counter name gre4
           }
         }",
    );
    // The inner packets are IPv4 (VIP 192.0.2.1), the outer ones IPv6.
    let (from_client, sent) =
        lab.ten_tcp_and_udp_through("--remote fd00:201:7::2 --local fd00:201:7::11");
    assert_eq!(from_client["sent_to_fd00:201:7::2"], sent, "{from_client}");
    assert_eq!(nft_packets(&s, "gre6_from_local"), sent);
    assert_eq!(nft_packets(&s, "gre4"), 0, "nothing went over IPv4");
}

/// An IPv4 UDP datagram `src:port -> VIP:PORT` carrying `payload`, in a
/// basic GRE header, as a balancer sends it to an IPv6 backend (the outer
/// IPv6 header is the kernel's).
fn gre_udp(src: std::net::Ipv4Addr, port: u16, payload: &[u8]) -> Vec<u8> {
    use dataplane::wire::{ethertype, ip_proto, GreRepr, Ipv4Repr};
    let vip: std::net::Ipv4Addr = VIP.parse().unwrap();
    let udp_len = 8 + payload.len();
    let mut packet = vec![0u8; 4 + 20 + udp_len];
    GreRepr {
        protocol_type: ethertype::IPV4,
        key: None,
        sequence: None,
        checksum: false,
    }
    .emit(&mut packet[..4]);
    Ipv4Repr {
        src: src.octets(),
        dst: vip.octets(),
        protocol: ip_proto::UDP,
        payload_len: udp_len as u16,
        ttl: 64,
        ident: 1,
        dont_frag: true,
    }
    .emit(&mut packet[4..24]);
    let udp = &mut packet[24..];
    udp[0..2].copy_from_slice(&port.to_be_bytes());
    udp[2..4].copy_from_slice(&PORT.to_be_bytes());
    udp[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
    // Checksum 0: none (allowed for UDP over IPv4).
    udp[8..].copy_from_slice(payload);
    packet
}

/// Moves the calling thread into network namespace `ns`.
fn enter_namespace(ns: &str) {
    let file = std::fs::File::open(format!("/var/run/netns/{ns}")).unwrap();
    // SAFETY: the descriptor is a namespace file open for the call; setns
    // changes only this thread's network namespace.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
}

/// Runs `f` on a thread inside namespace `ns` and returns what it returns.
fn in_namespace<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let ns = ns.to_owned();
    thread::spawn(move || {
        enter_namespace(&ns);
        f()
    })
    .join()
    .unwrap()
}

#[test]
fn gre_over_ipv6_is_decapsulated_and_its_datagrams_answered_directly() {
    const DATAGRAMS: usize = 10;
    let Some(mut lab) = Lab::start("rrv61-", 192, false) else {
        return;
    };
    let (c, s) = (lab.client_ns(), lab.server_ns());
    run(&format!("ip -n {c} addr add fd00:192::1/64 dev c0 nodad"));
    run(&format!("ip -n {s} addr add fd00:192::2/64 dev s0 nodad"));
    let decap = lab.decap("");
    lab.mconnect_server();
    let client: std::net::Ipv4Addr = lab.v4(1).parse().unwrap();
    // From the client namespace: GRE over IPv6 to the server (the outer
    // header the kernel's), each datagram from its own port of a UDP socket
    // that then waits for the server's plain-IP answer.
    let answers = in_namespace(&c, move || {
        use socket2::{Domain, Protocol, SockAddr, Socket, Type};
        let gre = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::from(47))).unwrap();
        let server: SockAddr = "[fd00:192::2]:0".parse::<SocketAddr>().unwrap().into();
        let mut answers = 0;
        for i in 0..DATAGRAMS {
            let udp = std::net::UdpSocket::bind((client, 0)).unwrap();
            udp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let port = udp.local_addr().unwrap().port();
            // The first datagram may wait for neighbour discovery: sent
            // again (at most 3 times) until answered.
            for _ in 0..3 {
                gre.send_to(
                    &gre_udp(client, port, format!("who {i}").as_bytes()),
                    &server,
                )
                .unwrap();
                let mut buf = [0u8; 64];
                if let Ok((len, from)) = udp.recv_from(&mut buf) {
                    assert_eq!(from, SocketAddr::new(VIP.parse().unwrap(), PORT));
                    assert!(len > 0);
                    answers += 1;
                    break;
                }
            }
        }
        answers
    });
    assert_eq!(answers, DATAGRAMS);
    let at_server = lab.stop_endpoint(decap);
    let decapsulated = at_server["decapsulated"].as_u64().unwrap();
    assert!(decapsulated >= DATAGRAMS as u64, "{at_server}");
    assert_eq!(at_server["received"], decapsulated, "{at_server}");
}
