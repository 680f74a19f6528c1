use std::fmt::Write as _;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;

use super::*;
use crate::config::BalancerArgs;

/// The services of a file with one service per VIP in `vips`, each on a
/// port of its own (a VIP may appear twice).
fn services(vips: &[&str]) -> NamedServices {
    let publisher = publisher();
    serve(&publisher, vips);
    publisher.services()
}

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|a| a.parse().unwrap()).collect()
}

fn set(list: &[&str]) -> BTreeSet<IpAddr> {
    ips(list).into_iter().collect()
}

#[test]
fn the_services_vips_join_rr_vips_once_each() {
    let got = steered(
        &ips(&["10.99.0.1"]),
        &services(&["192.0.2.1", "10.99.0.1", "2001:db8::1", "192.0.2.1"]),
    );
    assert_eq!(got, ips(&["10.99.0.1", "192.0.2.1", "2001:db8::1"]));
    assert_eq!(steered(&[], &services(&[])), Vec::<IpAddr>::new());
}

#[test]
fn changes_add_what_is_wanted_and_missing_and_remove_what_is_held_and_unwanted() {
    let changes = VipChanges::between(
        &set(&["10.99.0.1", "192.0.2.1", "2001:db8::1"]),
        &set(&["10.99.0.1", "192.0.2.9", "2001:db8::2"]),
    );
    assert_eq!(changes.added, ips(&["192.0.2.9", "2001:db8::2"]));
    assert_eq!(changes.removed, ips(&["192.0.2.1", "2001:db8::1"]));
    assert!(VipChanges::between(&set(&["192.0.2.1"]), &set(&["192.0.2.1"])).is_empty());
    assert!(VipChanges::between(&set(&[]), &set(&[])).is_empty());
}

#[test]
fn applying_the_changes_to_any_set_gives_the_wanted_set_and_touches_nothing_else() {
    // Every pair of subsets of four addresses, both families.
    let universe = ips(&["10.0.0.1", "10.0.0.2", "2001:db8::1", "2001:db8::2"]);
    let subset = |bits: u32| -> BTreeSet<IpAddr> {
        (0..universe.len())
            .filter(|i| bits & (1 << i) != 0)
            .map(|i| universe[i])
            .collect()
    };
    for from in 0..16 {
        for to in 0..16 {
            let (now, wanted) = (subset(from), subset(to));
            let changes = VipChanges::between(&now, &wanted);
            let mut applied = now.clone();
            for vip in &changes.added {
                assert!(
                    applied.insert(*vip),
                    "{vip} added but held: {now:?} -> {wanted:?}"
                );
            }
            for vip in &changes.removed {
                assert!(applied.remove(vip), "{vip} removed but not held");
            }
            assert_eq!(applied, wanted);
            assert_eq!(changes.is_empty(), now == wanted);
        }
    }
}

/// A steering that records what it was asked and refuses `refused`.
#[derive(Debug, Clone)]
struct Recorder {
    asked: Arc<Mutex<Vec<VipChanges>>>,
    refused: Option<IpAddr>,
}

impl VipSteering for Recorder {
    fn what(&self) -> &'static str {
        "a recorder"
    }

    fn apply(&mut self, changes: &VipChanges) -> Vec<VipFailure> {
        self.asked.lock().unwrap().push(changes.clone());
        changes
            .added
            .iter()
            .chain(&changes.removed)
            .filter(|vip| Some(**vip) == self.refused)
            .map(|vip| (*vip, "refused".to_owned()))
            .collect()
    }
}

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    balancer: BalancerArgs,
}

fn publisher() -> Publisher {
    let args = Cli::try_parse_from([
        "rusty_rail",
        "--target-ips",
        "10.3.0.1",
        "--table-size",
        "251",
    ])
    .unwrap()
    .balancer;
    crate::tables::publisher(&args, Ipv4Addr::new(192, 0, 2, 10), |_| None).unwrap()
}

/// Makes the services those of a file with one service per VIP in `vips`
/// (see [`services`]).
fn serve(publisher: &Publisher, vips: &[&str]) {
    let mut text = String::new();
    for (i, vip) in vips.iter().enumerate() {
        let _ = write!(
            text,
            "[[service]]\nname = \"s{i}\"\nvip = \"{vip}\"\nprotocol = \"tcp\"\nport = {}\n\
             backends = [\"10.2.0.{}\"]\ntable_size = 251\n",
            1000 + i,
            i + 1
        );
    }
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    crate::live::config_reload::apply_services(file.path(), publisher).unwrap();
}

/// Waits (at most 5 s) until `recorder` was asked `n` times; what it was asked.
async fn asked(recorder: &Recorder, n: usize) -> Vec<VipChanges> {
    for _ in 0..500 {
        let asked = recorder.asked.lock().unwrap().clone();
        if asked.len() >= n {
            return asked;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("asked {:?}, not {n} times", recorder.asked.lock().unwrap());
}

#[tokio::test]
async fn steerings_follow_the_services_and_keep_rr_vips_and_retry_what_failed() {
    let publisher = publisher();
    serve(&publisher, &["192.0.2.1"]);
    let recorder = Recorder {
        asked: Arc::default(),
        refused: Some("192.0.2.3".parse().unwrap()),
    };
    let rr_vips = ips(&["10.99.0.1"]);
    let at_start = steered(&rr_vips, &publisher.services());
    let task = tokio::spawn(follow_services(
        publisher.clone(),
        rr_vips,
        at_start,
        vec![Box::new(recorder.clone())],
        VipAnnouncing::Not,
    ));
    // A reload adds an IPv4 and an IPv6 VIP and drops the first service.
    serve(&publisher, &["192.0.2.2", "2001:db8::2"]);
    let first = asked(&recorder, 1).await;
    assert_eq!(first[0].added, ips(&["192.0.2.2", "2001:db8::2"]));
    assert_eq!(first[0].removed, ips(&["192.0.2.1"]));
    // A service on RR_VIPS' VIP (held already) and one on a VIP the
    // steering refuses.
    serve(
        &publisher,
        &["10.99.0.1", "192.0.2.2", "2001:db8::2", "192.0.2.3"],
    );
    let second = asked(&recorder, 2).await;
    assert_eq!(second[1].added, ips(&["192.0.2.3"]));
    assert!(second[1].removed.is_empty());
    // The refused VIP is asked again at the next change, with the rest;
    // RR_VIPS' VIP stays when its service goes.
    serve(&publisher, &["2001:db8::2", "192.0.2.3"]);
    let third = asked(&recorder, 3).await;
    assert_eq!(third[2].added, ips(&["192.0.2.3"]), "retried");
    assert_eq!(
        third[2].removed,
        ips(&["192.0.2.2"]),
        "10.99.0.1 stays: RR_VIPS"
    );
    task.abort();
}

#[test]
fn bgp_announces_the_ipv4_vips_in_order_and_warns_of_an_ipv6_one_once() {
    let mut warned = BTreeSet::new();
    let vips = ips(&["192.0.2.9", "2001:db8::1", "192.0.2.1"]);
    let routes = announced_routes(&vips, &mut warned);
    let shown: Vec<String> = routes.iter().map(ToString::to_string).collect();
    assert_eq!(shown, ["192.0.2.9/32", "192.0.2.1/32"]);
    assert_eq!(warned, ips(&["2001:db8::1"]).into_iter().collect());
    announced_routes(&vips, &mut warned);
    assert_eq!(warned.len(), 1);
}
