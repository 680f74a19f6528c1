//! VIP mode: a service whose VIP a reload or `POST /services` brings is
//! steered to the balancer at once (the `AF_XDP` program's VIP maps, the
//! nftables VIP sets), and one they take off is steered no more; what was
//! added while running goes at exit with the rest.
//!
//! Prefixes `rrsv9-` (subnets `10.196.{1,2}.0/24`, the added VIP in
//! `10.197.0.0/16`) and `rrsw1-` (`10.197.{1,2}.0/24`, the nftables sets
//! alone).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::lab::{self, lab_or_skip, Lab, PORT, VIP};
use crate::split;

/// The VIP the reload brings: routed by the router to the balancer, held
/// by s3 and s4, in no list the balancer had at start.
const NEW_VIP: &str = "10.197.0.1";
/// The nftables table the balancer installs on the lab's `eth0`.
const TABLE: &str = "rusty_rail_eth0";

/// The services file: `web` on the lab's VIP (s2), and with `fresh`, the
/// same port on [`NEW_VIP`] (s3 and s4).
fn services(lab: &Lab, fresh: bool) -> String {
    let ip = |s: usize| lab.server_ip(s);
    let mut text = format!(
        "[[service]]\nname = \"web\"\nvip = \"{VIP}\"\nprotocol = \"tcp\"\nport = {PORT}\n\
         backends = [\"{}\"]\ntable_size = 1009\n",
        ip(2)
    );
    if fresh {
        text.push_str(&fresh_section(lab));
    }
    text
}

fn fresh_section(lab: &Lab) -> String {
    format!(
        "[[service]]\nname = \"fresh\"\nvip = \"{NEW_VIP}\"\nprotocol = \"tcp\"\nport = {PORT}\n\
         backends = [\"{}\", \"{}\"]\ntable_size = 1009\n",
        lab.server_ip(3),
        lab.server_ip(4)
    )
}

/// Log lines saying `what` of [`NEW_VIP`].
fn said_of_new_vip(balancer: &lab::Balancer, what: &str) -> usize {
    balancer
        .log_text()
        .lines()
        .filter(|line| line.contains(what) && line.contains(NEW_VIP))
        .count()
}

/// Waits (at most 10 s) until the log says `what` of [`NEW_VIP`] more than
/// `before` times, and every steering has said it (as many lines as at
/// start said "steered": one per steering).
fn wait_said(balancer: &lab::Balancer, what: &str, before: usize, steerings: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while said_of_new_vip(balancer, what) < before + steerings {
        assert!(
            Instant::now() < deadline,
            "not said of {NEW_VIP} by {steerings} steerings: {what:?}: {}",
            balancer.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The addresses in the balancer's IPv4 VIP set, `None` without the table
/// (`RR_IO=af_xdp` installs none).
fn vip_set(lab: &Lab) -> Option<String> {
    let output = lab.exec("lb1", &["nft", "list", "set", "inet", TABLE, "vips4"]);
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `mconnect` through [`NEW_VIP`] reaches only s3 and s4, every connection.
fn assert_new_vip_reaches_only_its_service(lab: &Lab, n: u64) {
    let address = format!("{NEW_VIP}:{PORT}");
    let report = lab.mconnect_to("c1", &address, &["--nconn", &n.to_string()]);
    assert_eq!(report["failed_connects"], 0, "{report}");
    assert_eq!(report["failed_reads"], 0, "{report}");
    let got: BTreeMap<String, u64> = split(&report);
    assert_eq!(got.values().sum::<u64>(), n, "{report}");
    let hosts: Vec<&str> = got.keys().map(String::as_str).collect();
    assert_eq!(hosts, ["s3", "s4"], "{report}");
}

#[test]
fn in_vip_mode_a_vip_a_reload_adds_is_steered_at_once_and_one_it_removes_is_not() {
    lab_or_skip!();
    let mut lab = Lab::up_routed("rrsv9-", 196, 4);
    lab.route_to_balancer(NEW_VIP);
    for s in [3, 4] {
        lab.serve_vip_on(s, NEW_VIP, "gre1");
    }
    for s in [3, 4] {
        lab.wait_listening(&format!("s{s}"), PORT);
    }
    let file = lab.work.path().join("services.toml");
    std::fs::write(&file, services(&lab, false)).expect("services file");
    let balancer = lab.start_balancer(
        1,
        &[
            ("RR_TARGET_IPS", lab.server_ip(1).to_string()),
            ("RR_CONFIG", file.to_str().unwrap().to_owned()),
        ],
    );
    // AF_XDP's maps and the table's sets: every backend but AF_XDP asked
    // for by name (which leaves the kernel nothing to answer) has the table.
    let table_at_start = vip_set(&lab);
    let named_af_xdp = std::env::var("RR_IO").is_ok_and(|io| io == "af_xdp");
    assert_eq!(
        table_at_start.is_some(),
        !named_af_xdp,
        "{table_at_start:?}"
    );
    let steerings = usize::from(balancer.on_af_xdp()) + usize::from(table_at_start.is_some());
    if let Some(set) = &table_at_start {
        assert!(set.contains(VIP) && !set.contains(NEW_VIP), "{set}");
    }

    // SIGHUP with `fresh` in the file: its VIP is steered while running.
    std::fs::write(&file, services(&lab, true)).expect("services file");
    lab.sighup_balancer();
    wait_said(&balancer, "VIP steered to the balancer", 0, steerings);
    if let Some(set) = vip_set(&lab) {
        assert!(set.contains(VIP) && set.contains(NEW_VIP), "{set}");
    }
    // New next hops resolve within the neighbour keeper's second.
    std::thread::sleep(Duration::from_secs(2));
    assert_new_vip_reaches_only_its_service(&lab, 1000);
    let report = lab.mconnect("c1", &["--nconn", "300"]);
    assert_eq!(split(&report).get("s2"), Some(&300), "{report}");

    // POST /config/reload without it: steered no more, the lab's VIP kept.
    std::fs::write(&file, services(&lab, false)).expect("services file");
    let (code, body) = lab.api(1, "POST", "/config/reload", None);
    assert_eq!(code, 200, "POST /config/reload: {body}");
    wait_said(&balancer, "VIP no longer steered", 0, steerings);
    if let Some(set) = vip_set(&lab) {
        assert!(set.contains(VIP) && !set.contains(NEW_VIP), "{set}");
    }
    let report = lab.mconnect("c1", &["--nconn", "300"]);
    assert_eq!(split(&report).get("s2"), Some(&300), "{report}");

    // POST /services brings it back, steered again at once.
    let body = serde_json::json!({
        "name": "fresh",
        "vip": NEW_VIP,
        "protocol": "tcp",
        "port": PORT,
        "backends": [lab.server_ip(3).to_string(), lab.server_ip(4).to_string()],
        "table_size": 1009,
    })
    .to_string();
    let (code, reply) = lab.api(1, "POST", "/services", Some(&body));
    assert_eq!(code, 201, "POST /services: {reply}");
    wait_said(
        &balancer,
        "VIP steered to the balancer",
        steerings,
        steerings,
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_new_vip_reaches_only_its_service(&lab, 300);
    let log = balancer.log_text();
    assert!(!log.contains("could not be changed"), "{log}");

    // At exit the table, with what was added to it, is gone.
    balancer.stop();
    let tables = lab.exec("lb1", &["nft", "list", "tables"]);
    let tables = String::from_utf8_lossy(&tables.stdout);
    assert!(!tables.contains(TABLE), "{tables}");
}

/// The nftables table's VIP sets in a lab namespace (`rrsw1-`), IPv6 too
/// (the lab's traffic is IPv4): changes land in one transaction, one VIP
/// nft refuses holds back no other, and the sets go with the table.
#[test]
fn the_nftables_vip_sets_take_both_families_and_a_refused_vip_holds_back_no_other() {
    use control::live::host_rules::HostRules;
    use control::live::steered_vips::{VipChanges, VipSteering};
    use std::net::IpAddr;

    lab_or_skip!();
    let lab = Lab::up_routed("rrsw1-", 197, 0);
    let ns = lab.ns("lb1");
    let listed = |ns: &str| {
        let output = std::process::Command::new("ip")
            .args(["netns", "exec", ns, "nft", "list", "ruleset"])
            .output()
            .expect("nft list ruleset");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let ip = |a: &str| a.parse::<IpAddr>().unwrap();
    let (v4a, v4b, v4c) = (ip("10.197.0.1"), ip("10.197.0.2"), ip("10.197.0.3"));
    let (v6a, v6b) = (ip("fd00:197::1"), ip("fd00:197::2"));
    let lb = lab.balancer_ip(1);
    let (rules, mut sets) = lab::in_namespace(&ns, move || {
        let rules =
            HostRules::install("eth0", (lb, None), &[v4a, v6a]).expect("installing the table");
        let sets = rules.vip_sets();
        sets.change(&[v4b, v6b], &[v4a]).expect("changing the sets");
        (rules, sets)
    });
    let mut rules = TableIn(Some(rules), ns.clone());
    let ruleset = listed(&ns);
    for held in ["10.197.0.2", "fd00:197::1", "fd00:197::2"] {
        assert!(ruleset.contains(held), "{held} missing: {ruleset}");
    }
    assert!(!ruleset.contains("10.197.0.1"), "{ruleset}");

    // Deleting what the set lacks: nft refuses the transaction, so each
    // VIP is tried alone and only that one fails.
    let changes = VipChanges {
        added: vec![v4c],
        removed: vec![v4a],
    };
    let (failed, mut sets) = lab::in_namespace(&ns, move || (sets.apply(&changes), sets));
    let failed: Vec<IpAddr> = failed.into_iter().map(|(vip, _)| vip).collect();
    assert_eq!(failed, [v4a]);
    assert!(listed(&ns).contains("10.197.0.3"), "{}", listed(&ns));

    // The table goes whole; a later change fails and creates nothing.
    let rules = rules.0.take().expect("the table");
    let after = lab::in_namespace(&ns, move || {
        rules.remove().expect("removing the table");
        sets.apply(&VipChanges {
            added: vec![v4a],
            removed: Vec::new(),
        })
    });
    assert_eq!(after.len(), 1, "{after:?}");
    let ruleset = listed(&ns);
    assert!(!ruleset.contains(TABLE), "{ruleset}");
}

/// The table, deleted in its own namespace if the test fails while it
/// holds it (a `HostRules` dropped here would look in the test's).
struct TableIn(Option<control::live::host_rules::HostRules>, String);

impl Drop for TableIn {
    fn drop(&mut self) {
        if let Some(rules) = self.0.take() {
            lab::in_namespace(&self.1, move || drop(rules));
        }
    }
}
