//! Next hops of IPv6 backends from the kernel's NDP cache, as IPv4 ones come
//! from its ARP table: the balancer's resolver in a namespace `rrv62-a`
//! whose device `a0` faces `rrv62-b` (`fd00:193::/64`). The first pass finds
//! no entry and nudges the kernel, whose neighbour solicitation `rrv62-b`
//! answers; a later pass reads the MAC. Skipped (`skipped: <reason>`)
//! without root or network namespaces.

#![cfg(target_os = "linux")]

use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::thread;
use std::time::Duration;

use control::live::neighbours::{NextHop, Resolver};
use host::capability::Need;

const A: &str = "rrv62-a";
const B: &str = "rrv62-b";
/// The MAC of `b0`, the next hop every backend here resolves to.
const B_MAC: [u8; 6] = [0x02, 0, 0, 0x19, 0x30, 0x02];

fn run(line: &str) {
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
}

/// The two namespaces; removed on drop, also when the test fails.
struct Lab;

impl Lab {
    fn start() -> Option<Self> {
        host::skip_unless!(Need::Root, Need::Netns);
        Self::remove();
        let lab = Self;
        for ns in [A, B] {
            run(&format!("ip netns add {ns}"));
            run(&format!("ip -n {ns} link set lo up"));
        }
        run(&format!(
            "ip link add a0 netns {A} type veth peer name b0 netns {B}"
        ));
        run(&format!("ip -n {B} link set b0 address 02:00:00:19:30:02"));
        run(&format!("ip -n {A} addr add fd00:193::1/64 dev a0 nodad"));
        run(&format!("ip -n {B} addr add fd00:193::2/64 dev b0 nodad"));
        run(&format!("ip -n {A} addr add 10.193.0.1/24 dev a0"));
        run(&format!("ip -n {B} addr add 10.193.0.2/24 dev b0"));
        run(&format!("ip -n {A} link set a0 up"));
        run(&format!("ip -n {B} link set b0 up"));
        // A backend network behind b0, for the gateway case.
        run(&format!(
            "ip -n {A} -6 route add fd00:194::/64 via fd00:193::2"
        ));
        Some(lab)
    }

    fn remove() {
        for ns in [A, B] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        Self::remove();
    }
}

/// Resolves `backends` from namespace A on a0, pass after pass (at most 50,
/// 100 ms apart) until each is resolved or unreachable; the last answers.
fn resolve_in_a(backends: Vec<IpAddr>) -> Vec<NextHop> {
    thread::spawn(move || {
        let file = std::fs::File::open(format!("/var/run/netns/{A}")).unwrap();
        // SAFETY: the descriptor is a namespace file open for the call; setns
        // changes only this thread's network namespace.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        // SAFETY: the literal is NUL-terminated.
        let a0 = unsafe { libc::if_nametoindex(c"a0".as_ptr()) };
        assert_ne!(a0, 0, "a0 in {A}");
        let mut resolver = Resolver::new(a0, "a0").unwrap();
        let mut hops = Vec::new();
        for _ in 0..50 {
            let answers = resolver.resolve_ip(&backends).unwrap();
            hops = backends.iter().map(|b| answers[b].clone()).collect();
            if !hops.iter().any(|h| matches!(h, NextHop::Pending { .. })) {
                break;
            }
            thread::sleep(Duration::from_millis(100));
        }
        hops
    })
    .join()
    .unwrap()
}

#[test]
fn ipv6_backends_resolve_from_ndp_on_link_and_through_a_gateway_beside_ipv4_ones() {
    let Some(_lab) = Lab::start() else {
        return;
    };
    let on_link: IpAddr = "fd00:193::2".parse().unwrap();
    let behind_gateway: IpAddr = "fd00:194::5".parse().unwrap();
    let ipv4: IpAddr = "10.193.0.2".parse().unwrap();
    // Routed nowhere: the namespace has no default route.
    let nowhere: IpAddr = "fd00:195::1".parse().unwrap();
    let hops = resolve_in_a(vec![on_link, behind_gateway, ipv4, nowhere]);
    for (backend, hop) in [on_link, behind_gateway, ipv4].iter().zip(&hops) {
        assert_eq!(hop, &NextHop::Resolved(B_MAC), "{backend}");
    }
    assert!(
        matches!(&hops[3], NextHop::Unreachable(why) if why.contains("no route")),
        "{:?}",
        hops[3]
    );
}
