//! Named services through the publisher: a reload applies only the
//! difference, kept backends keep their slots and generations, unchanged
//! services keep their Maglev tables, and a refused reload changes nothing.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use dataplane::forwarding::HashFields;

use crate::backends::{BackendSet, Publisher, TableSettings};
use crate::config::file::ServiceConfig;
use crate::config::TargetSpec;

const MAC: [u8; 6] = [2, 0, 0, 0, 0, 9];

fn settings() -> TableSettings {
    TableSettings {
        lb_ipv4: Ipv4Addr::new(192, 0, 2, 10),
        lb_ipv6: None,
        lb_mac: [2, 0, 0, 0, 0, 1],
        vips: Vec::new(),
        seed: 7,
        table_size: 1009,
        mtu: 1500,
    }
}

/// A publisher with default backends 10.1.0.1 and .2, resolved.
fn publisher() -> Publisher {
    let mut set = BackendSet::default();
    for last in 1..=2 {
        let addr = IpAddr::from([10, 1, 0, last]);
        set.add(addr, 1).unwrap();
        set.set_mac(addr, Some(MAC)).unwrap();
    }
    Publisher::new(settings(), set).unwrap()
}

/// Service `name` on 192.0.2.`vip` with backends 10.`net`.0.1.. (weights).
fn service(name: &str, vip: u8, net: u8, weights: &[u32]) -> ServiceConfig {
    ServiceConfig {
        name: name.into(),
        vip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, vip)),
        protocol: None,
        port: None,
        backends: weights
            .iter()
            .enumerate()
            .map(|(i, &weight)| TargetSpec {
                addr: [10, net, 0, i as u8 + 1].into(),
                weight,
            })
            .collect(),
        health: None,
        table_size: 251,
        hash: HashFields::FiveTuple,
        line: 1,
    }
}

/// Resolves every backend's next hop, as the neighbour keeper would.
fn resolve_all(p: &Publisher) {
    for b in p.backends() {
        p.set_mac(b.addr, Some(MAC)).unwrap();
    }
}

fn three() -> Vec<ServiceConfig> {
    vec![
        service("a", 1, 2, &[1, 1]),
        service("b", 2, 3, &[1, 1, 1]),
        service("c", 3, 4, &[1]),
    ]
}

#[test]
fn services_join_the_published_table_with_their_own_backends() {
    let p = publisher();
    p.set_services(&three()).unwrap();
    resolve_all(&p);
    let table = p.handle().load();
    let names: Vec<&str> = table.services.iter().map(|s| &*s.name).collect();
    assert_eq!(names, ["a", "b", "c"]);
    for s in table.services.iter() {
        let own: Vec<u16> = s.slots.to_vec();
        assert!(
            s.maglev.entries().iter().all(|e| own.contains(e)),
            "{}",
            s.name
        );
    }
    // The default service keeps only its own two backends.
    assert_eq!(p.spec().backends.len(), 2);
    assert_eq!(p.backends().len(), 2 + 6);
}

#[test]
fn a_reload_changing_one_weight_keeps_every_other_table_and_every_slot() {
    let p = publisher();
    p.set_services(&three()).unwrap();
    resolve_all(&p);
    let before = Arc::clone(&p.handle().load());
    let slots_before: Vec<(IpAddr, u16, u16)> = p
        .backends()
        .iter()
        .map(|b| (b.addr, b.slot, b.generation))
        .collect();
    let mut changed = three();
    changed[1].backends[0].weight = 3;
    p.set_services(&changed).unwrap();
    let after = Arc::clone(&p.handle().load());
    assert_eq!(after.generation, before.generation + 1);
    for name in ["a", "c"] {
        let (old, new) = (
            before.services.named(name).unwrap(),
            after.services.named(name).unwrap(),
        );
        assert!(Arc::ptr_eq(&old.maglev, &new.maglev), "{name} rebuilt");
    }
    assert_ne!(
        before.services.named("b").unwrap().maglev.entries(),
        after.services.named("b").unwrap().maglev.entries()
    );
    assert!(Arc::ptr_eq(&before.maglev, &after.maglev));
    let slots_after: Vec<(IpAddr, u16, u16)> = p
        .backends()
        .iter()
        .map(|b| (b.addr, b.slot, b.generation))
        .collect();
    assert_eq!(slots_before, slots_after);
}

#[test]
fn a_reload_adding_a_service_publishes_once_and_rebuilds_no_other() {
    let p = publisher();
    p.set_services(&three()).unwrap();
    resolve_all(&p);
    let before = Arc::clone(&p.handle().load());
    let mut more = three();
    more.push(service("d", 4, 5, &[1, 1]));
    p.set_services(&more).unwrap();
    let after = Arc::clone(&p.handle().load());
    assert_eq!(after.generation, before.generation + 1);
    for name in ["a", "b", "c"] {
        assert!(Arc::ptr_eq(
            &before.services.named(name).unwrap().maglev,
            &after.services.named(name).unwrap().maglev
        ));
    }
    assert_eq!(after.services.len(), 4);
}

#[test]
fn removing_a_service_removes_its_backends_and_their_flows_generation() {
    let p = publisher();
    p.set_services(&three()).unwrap();
    let gone = p.backend([10, 4, 0, 1].into()).unwrap();
    p.set_services(&three()[..2]).unwrap();
    assert!(p.backend(gone.addr).is_none());
    assert!(p.handle().load().services.named("c").is_none());
    // Back again: a new incarnation, so old connection entries miss.
    p.set_services(&three()).unwrap();
    let back = p.backend(gone.addr).unwrap();
    assert!((back.slot, back.generation) != (gone.slot, gone.generation));
}

#[test]
fn a_refused_reload_changes_nothing() {
    let p = publisher();
    p.set_services(&three()).unwrap();
    let generation = p.generation();
    // One address in two services.
    let mut clash = three();
    clash[2].backends[0].addr = clash[0].backends[0].addr;
    assert!(p.set_services(&clash).is_err());
    // A default backend claimed by a service.
    let mut taken = three();
    taken[0].backends[0].addr = [10, 1, 0, 1].into();
    assert!(p.set_services(&taken).is_err());
    // A table size the dataplane refuses.
    let mut bad = three();
    bad[0].table_size = 250;
    assert!(p.set_services(&bad).is_err());
    assert_eq!(p.generation(), generation);
    assert_eq!(p.services().0.len(), 3);
    assert_eq!(p.backends().len(), 2 + 6);
}
