//! GRE over IPv6 from the router, end to end: the router's `testbed tunnel
//! encap` sends the clients' packets to the balancer's IPv6 address (the
//! device's, which `rusty_rail` takes as `lb_ipv6`); the balancer sends
//! them on to IPv4 backends (the outer IPv6 header replaced by IPv4) and
//! then, restarted, to IPv6 backends (rewritten in place); the backends
//! answer the clients directly.
//!
//! The host side must take these frames as it takes GRE over IPv4: the
//! `AF_XDP` program redirects them, and on `AF_PACKET` and netmap-emulated
//! the nftables table drops the kernel's copy. Were the kernel to see one,
//! having no GRE device it would answer the router with an `ICMPv6` error
//! (parameter problem, unrecognised next header): the balancer's and the
//! router's `ICMPv6` error counters must not move.
//!
//! Prefix `rrg6-`, IPv4 10.201.{1,2}.0/24 (the lab's), IPv6
//! `fd00:201:2::/64` added to the back network's router, balancer and
//! servers.

use std::net::IpAddr;
use std::time::Duration;

use super::lab::{self, lab_or_skip, Lab};
use super::{assert_split_over, reported};

const ROUTER_IPV6: &str = "fd00:201:2::1";
const LB_IPV6: &str = "fd00:201:2::10";

fn server_ipv6(s: usize) -> IpAddr {
    format!("fd00:201:2::{}", 20 + s).parse().unwrap()
}

/// `ICMPv6` errors as `host`'s kernel counts them (`/proc/net/snmp6` of its
/// namespace): the named counters, summed.
fn icmp6_errors(lab: &Lab, host: &str, names: &[&str]) -> u64 {
    let output = lab.exec(host, &["cat", "/proc/net/snmp6"]);
    assert!(output.status.success(), "{host}: {output:?}");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    names
        .iter()
        .map(|name| {
            text.lines()
                .find_map(|line| {
                    let mut words = line.split_whitespace();
                    (words.next() == Some(name)).then(|| words.next()?.parse::<u64>().ok())?
                })
                .unwrap_or_else(|| panic!("{host}: no {name} in /proc/net/snmp6: {text}"))
        })
        .sum()
}

/// What the balancer's kernel sent and the router's received of the errors
/// it would answer GRE with.
fn errors_between_balancer_and_router(lab: &Lab) -> (u64, u64) {
    let sent = icmp6_errors(
        lab,
        "lb1",
        &["Icmp6OutParmProblems", "Icmp6OutDestUnreachs"],
    );
    let received = icmp6_errors(
        lab,
        "r",
        &[
            "Icmp6InErrors",
            "Icmp6InParmProblems",
            "Icmp6InDestUnreachs",
        ],
    );
    (sent, received)
}

/// The packets the nftables rule dropping the kernel's copy of GRE over
/// IPv6 counted, if the table is there (`AF_XDP` asked for by name
/// installs none).
fn kernel_copies_dropped(lab: &Lab) -> Option<u64> {
    let output = lab.exec("lb1", &["nft", "list", "table", "inet", "rusty_rail_eth0"]);
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let rule = text
        .lines()
        .find(|line| line.contains(&format!("ip6 daddr {LB_IPV6}")) && line.contains("gre"))
        .unwrap_or_else(|| panic!("no rule for GRE over IPv6 to {LB_IPV6}: {text}"));
    let packets = rule
        .split("counter packets ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no counter in {rule:?}"));
    Some(packets)
}

/// Balancer 1 with `env`, its backends `backends` in rotation: 3000
/// connections through GRE over IPv6 split within 10% over `servers`, and
/// no `ICMPv6` error from the balancer's kernel. Returns its final counters.
fn balance_over(
    lab: &Lab,
    env: &[(&str, String)],
    backends: &[IpAddr],
    servers: &[&str],
) -> String {
    let before = errors_between_balancer_and_router(lab);
    let balancer = lab.start_balancer(1, env);
    assert!(
        balancer.log_text().contains(&format!("lb_ipv6={LB_IPV6}")),
        "the device's IPv6 address is the balancer's: {}",
        balancer.log_text()
    );
    for &backend in backends {
        lab.wait_backend(1, backend, Duration::from_secs(15), |b| {
            b["in_rotation"] == true
        });
    }
    assert_split_over(lab, servers);
    let dropped = kernel_copies_dropped(lab);
    let on_af_xdp = balancer.on_af_xdp();
    let counters = balancer.stop();
    assert_eq!(
        errors_between_balancer_and_router(lab),
        before,
        "ICMPv6 errors (balancer sent, router received) moved: the balancer's kernel answered GRE over IPv6\n{counters}"
    );
    match (on_af_xdp, dropped) {
        // The program took every frame: the kernel saw none to drop.
        (true, Some(packets)) => assert_eq!(packets, 0, "{counters}"),
        (true, None) => {}
        // The kernel's copy of every frame the balancer took is dropped.
        (false, Some(packets)) => assert!(packets >= 3000 * 3, "{packets} dropped\n{counters}"),
        (false, None) => panic!("AF_PACKET or netmap-emulated without the nftables table"),
    }
    assert!(reported(&counters, "to_wire") >= 3000 * 3, "{counters}");
    counters
}

#[test]
fn the_routers_gre_over_ipv6_to_the_balancers_ipv6_address_reaches_ipv4_and_ipv6_backends() {
    lab_or_skip!();
    let mut lab = Lab::up_without_tunnel("rrg6-", 201, 1, 2);
    lab.add_ipv6_address_on("r", "eth1", &format!("{ROUTER_IPV6}/64"));
    lab.add_ipv6_address("lb1", &format!("{LB_IPV6}/64"));
    for s in 1..=2 {
        lab.add_ipv6_address(&format!("s{s}"), &format!("{}/64", server_ipv6(s)));
    }
    lab.start_encap_to(&[LB_IPV6.to_owned()], &["--local", ROUTER_IPV6]);

    // IPv4 backends (the lab's RR_TARGET_IPS): the outer IPv6 header is
    // replaced by an IPv4 one.
    let backends: Vec<IpAddr> = (1..=2).map(|s| lab.server_ip(s).into()).collect();
    balance_over(&lab, &[], &backends, &["s1", "s2"]);

    // IPv6 backends: the outer header rewritten in place.
    let backends: Vec<IpAddr> = (1..=2).map(server_ipv6).collect();
    let targets: Vec<String> = backends.iter().map(ToString::to_string).collect();
    let env = [("RR_TARGET_IPS", targets.join(";"))];
    let counters = balance_over(&lab, &env, &backends, &["s1", "s2"]);
    assert!(counters.contains(&server_ipv6(2).to_string()), "{counters}");
}
