//! Lab bring-up: how long `testbed run` takes to build a star lab of 100 and
//! of 1000 hosts (namespace, veth pair on the bridge, addresses, links up),
//! next to the sequential way (one `ip` process per object) for 100 hosts.
//! Goals on the 2-core machine: 100 hosts in at most 2 s, 1000 in at most
//! 15 s, at least 5x faster than sequential.
//!
//! Calls the library's `build::create` directly (no instances started), and
//! removes each lab before the next. Needs root (prints `skipped: <reason>`
//! otherwise). Plain `fn main`: the figures are printed.
//! `cargo bench -p benches --bench lab_bringup`; without `--bench` (as under
//! `cargo test`) one small smoke run.

use std::process::Command;
use std::time::{Duration, Instant};

use host::capability::Need;
use testbed::lab::build;
use testbed::lab::plan::{Ipv4Cidr, LabPlan};

const PREFIX: &str = "rrbb-";
const SEQUENTIAL_PREFIX: &str = "rrbs-";

fn plan(prefix: &str, hosts: usize) -> LabPlan {
    let cidr: Ipv4Cidr = "10.222.0.0/16".parse().unwrap();
    LabPlan::new(prefix, cidr, &[("true".to_owned(), hosts)]).unwrap()
}

fn ip(args: &str) {
    let status = Command::new("ip")
        .args(args.split_whitespace())
        .status()
        .unwrap();
    assert!(status.success(), "ip {args}");
}

/// The same lab built with one `ip` process per object, one after another.
fn sequential(plan: &LabPlan) -> Duration {
    let started = Instant::now();
    let bridge = &plan.bridge;
    ip(&format!("link add {bridge} type bridge"));
    ip(&format!(
        "addr add {}/{} dev {bridge}",
        plan.bridge_address, plan.cidr.prefix_len
    ));
    ip(&format!("link set {bridge} up"));
    for host in &plan.hosts {
        let ns = &host.namespace;
        ip(&format!("netns add {ns}"));
        ip(&format!(
            "link add {} type veth peer name {} netns {ns}",
            host.link, host.inner_link
        ));
        ip(&format!("link set {} master {bridge} up", host.link));
        ip(&format!("-n {ns} link set lo up"));
        ip(&format!(
            "-n {ns} addr add {}/{} dev {}",
            host.address, plan.cidr.prefix_len, host.inner_link
        ));
        ip(&format!("-n {ns} link set {} up", host.inner_link));
    }
    started.elapsed()
}

fn remove(plan: &LabPlan) -> Duration {
    let started = Instant::now();
    let problems = build::remove(&plan.prefix, &plan.bridge, Duration::from_secs(1));
    assert!(problems.is_empty(), "{problems:?}");
    started.elapsed()
}

/// Removes both labs when dropped, also when the bench panics.
struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        for prefix in [PREFIX, SEQUENTIAL_PREFIX] {
            build::remove(prefix, &plan(prefix, 1).bridge, Duration::from_secs(1));
        }
    }
}

fn main() {
    host::skip_unless!(Need::Root, Need::Netns);
    let measuring = std::env::args().any(|arg| arg == "--bench");
    let sizes: &[usize] = if measuring { &[100, 1000] } else { &[20] };
    let sequential_size = if measuring { 100 } else { 20 };
    // Leftovers of an earlier run first; then removal on the way out.
    drop(Cleanup);
    let _cleanup = Cleanup;

    let mut parallel_at_sequential_size = None;
    for &hosts in sizes {
        let lab = plan(PREFIX, hosts);
        let started = Instant::now();
        build::create(&lab).unwrap();
        let took = started.elapsed();
        let removal = remove(&lab);
        let goal = if hosts <= 100 { 2.0 } else { 15.0 };
        println!(
            "lab_bringup: {hosts} hosts built through netlink in {:.2} s (goal {goal} s: {}), removed in {:.2} s",
            took.as_secs_f64(),
            if took.as_secs_f64() <= goal { "met" } else { "NOT met" },
            removal.as_secs_f64()
        );
        if hosts == sequential_size {
            parallel_at_sequential_size = Some(took);
        }
    }
    let lab = plan(SEQUENTIAL_PREFIX, sequential_size);
    let took = sequential(&lab);
    remove(&lab);
    println!(
        "lab_bringup: {sequential_size} hosts built sequentially with `ip` in {:.2} s",
        took.as_secs_f64()
    );
    if let Some(parallel) = parallel_at_sequential_size {
        let speedup = took.as_secs_f64() / parallel.as_secs_f64();
        println!(
            "lab_bringup: netlink in parallel is {speedup:.1}x faster (goal 5x: {})",
            if speedup >= 5.0 { "met" } else { "NOT met" }
        );
    }
}
