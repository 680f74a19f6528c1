//! Services in the forwarding table: lookup, validation, independence of
//! their Maglev tables, hash fields.

use core::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use proptest::prelude::*;

use crate::flow::FlowKey;
use crate::forwarding::{
    BackendSpec, ForwardingError, ForwardingSpec, ForwardingTable, HashFields, Ingress,
    ServiceCounter, ServiceError, ServiceSpec,
};
use crate::verdict::DropReason;
use crate::wire::ip_proto::{TCP, UDP};

fn backend(slot: u16, addr: [u8; 4]) -> BackendSpec {
    BackendSpec {
        slot,
        addr: Ipv4Addr::from(addr).into(),
        weight: 1,
        mac: Some([2, 0, 0, 0, (slot >> 8) as u8, slot as u8]),
        generation: 0,
    }
}

/// A service at `vip` with backends in slots `first..first + count`.
fn service(name: &str, vip: &str, first: u16, count: u16) -> ServiceSpec {
    ServiceSpec {
        name: name.into(),
        vip: vip.parse().unwrap(),
        protocol: None,
        port: None,
        backends: (first..first + count)
            .map(|slot| backend(slot, [10, 2, (slot >> 8) as u8, slot as u8]))
            .collect(),
        table_size: 251,
        hash: HashFields::FiveTuple,
        counter: ServiceCounter {
            id: first,
            generation: 0,
        },
    }
}

fn on(mut s: ServiceSpec, protocol: u8, port: Option<u16>) -> ServiceSpec {
    s.protocol = Some(protocol);
    s.port = port;
    s
}

/// The balancer with no default backends and no default VIPs.
fn spec() -> ForwardingSpec {
    ForwardingSpec {
        lb_ipv4: Ipv4Addr::new(10, 0, 0, 1),
        lb_ipv6: None,
        lb_mac: [2, 0, 0, 0, 0, 1],
        vips: vec![],
        backends: vec![],
        seed: 7,
        table_size: 65537,
        mtu: 1500,
        generation: 1,
    }
}

fn build(services: &[ServiceSpec]) -> ForwardingTable {
    ForwardingTable::build_with_services(&spec(), services, None).unwrap()
}

fn build_err(services: &[ServiceSpec]) -> ServiceError {
    match ForwardingTable::build_with_services(&spec(), services, None) {
        Err(ForwardingError::Service(e)) => e,
        other => panic!("expected a service error, got {other:?}"),
    }
}

fn key_to(dst: &str, protocol: u8, dst_port: u16) -> FlowKey {
    match dst.parse::<IpAddr>().unwrap() {
        IpAddr::V4(d) => FlowKey::v4([198, 51, 100, 7], d.octets(), protocol, 4000, dst_port),
        IpAddr::V6(d) => FlowKey::v6(
            "2001:db8:1::7"
                .parse::<core::net::Ipv6Addr>()
                .unwrap()
                .octets(),
            d.octets(),
            protocol,
            4000,
            dst_port,
        ),
    }
}

fn found(table: &ForwardingTable, key: &FlowKey) -> Option<String> {
    table.services.find(key).map(|s| s.name.to_string())
}

#[test]
fn an_exact_port_is_found_before_the_protocol_s_any_port_and_before_the_bare_vip() {
    let table = build(&[
        on(service("web", "192.0.2.1", 0, 2), TCP, Some(80)),
        on(service("tcp-rest", "192.0.2.1", 2, 2), TCP, None),
        service("everything", "192.0.2.1", 4, 2),
    ]);
    let lookup = |protocol, port| found(&table, &key_to("192.0.2.1", protocol, port));
    assert_eq!(lookup(TCP, 80).as_deref(), Some("web"));
    assert_eq!(lookup(TCP, 443).as_deref(), Some("tcp-rest"));
    assert_eq!(lookup(UDP, 80).as_deref(), Some("everything"));
    assert_eq!(lookup(UDP, 53).as_deref(), Some("everything"));
}

#[test]
fn ipv4_and_ipv6_vips_are_found_by_their_own_family() {
    let table = build(&[
        service("v4", "192.0.2.1", 0, 2),
        on(service("v6", "2001:db8::1", 2, 2), UDP, Some(53)),
    ]);
    assert_eq!(
        found(&table, &key_to("192.0.2.1", UDP, 53)).as_deref(),
        Some("v4")
    );
    assert_eq!(
        found(&table, &key_to("2001:db8::1", UDP, 53)).as_deref(),
        Some("v6")
    );
    assert_eq!(found(&table, &key_to("2001:db8::1", UDP, 54)), None);
    assert_eq!(found(&table, &key_to("2001:db8::2", UDP, 53)), None);
    assert_eq!(found(&table, &key_to("192.0.2.2", UDP, 53)), None);
    assert!(table.is_vip_v4([192, 0, 2, 1]) && !table.is_vip_v4([192, 0, 2, 2]));
    let v6: core::net::Ipv6Addr = "2001:db8::1".parse().unwrap();
    assert!(table.is_vip_v6(&v6.octets()) && table.has_ipv6_vips());
}

#[test]
fn a_port_of_one_protocol_does_not_match_another_protocol() {
    let table = build(&[on(service("dns", "192.0.2.1", 0, 2), UDP, Some(53))]);
    assert_eq!(found(&table, &key_to("192.0.2.1", TCP, 53)), None);
}

#[test]
fn without_named_services_every_gre_flow_and_every_vip_is_the_default_s() {
    let mut spec = spec();
    spec.backends = vec![backend(0, [10, 1, 0, 1])];
    let table = ForwardingTable::build(&spec).unwrap();
    let key = key_to("203.0.113.9", TCP, 80);
    assert!(matches!(table.service_of(&key, Ingress::Gre), Some(None)));
    assert!(table.pick_new(&key, 12345, Ingress::Gre).is_ok());
}

#[test]
fn with_named_services_and_no_default_backends_an_unknown_gre_flow_has_no_service() {
    let table = build(&[service("web", "192.0.2.1", 0, 2)]);
    let key = key_to("192.0.2.2", TCP, 80);
    assert!(table.service_of(&key, Ingress::Gre).is_none());
    assert_eq!(
        table.pick_new(&key, 1, Ingress::Gre).map(|(slot, _)| slot),
        Err(DropReason::NoService)
    );
}

#[test]
fn default_backends_beside_named_services_take_the_gre_flows_no_service_takes() {
    let mut spec = spec();
    spec.backends = vec![backend(100, [10, 1, 0, 1])];
    spec.vips = vec!["192.0.2.9".parse().unwrap()];
    let table =
        ForwardingTable::build_with_services(&spec, &[service("web", "192.0.2.1", 0, 2)], None)
            .unwrap();
    let elsewhere = key_to("203.0.113.9", TCP, 80);
    assert_eq!(
        table.pick_new(&elsewhere, 1, Ingress::Gre).map(|(s, _)| s),
        Ok(100)
    );
    // In VIP mode only the default's own VIPs are the default's.
    assert!(table.service_of(&elsewhere, Ingress::Vip).is_none());
    let default_vip = key_to("192.0.2.9", TCP, 80);
    assert!(matches!(
        table.service_of(&default_vip, Ingress::Vip),
        Some(None)
    ));
}

#[test]
fn a_new_flow_of_a_service_goes_only_to_that_service_s_backends() {
    let table = build(&[
        service("a", "192.0.2.1", 0, 3),
        service("b", "192.0.2.2", 3, 3),
        service("c", "2001:db8::3", 6, 3),
    ]);
    for (vip, slots) in [
        ("192.0.2.1", 0..3),
        ("192.0.2.2", 3..6),
        ("2001:db8::3", 6..9),
    ] {
        let mut seen = [0usize; 9];
        for hash in 0..3000u64 {
            let key = key_to(vip, TCP, 80);
            let (slot, _) = table
                .pick_new(&key, hash.wrapping_mul(0x9e37_79b9_7f4a_7c15), Ingress::Gre)
                .unwrap();
            seen[usize::from(slot)] += 1;
        }
        for (slot, &count) in seen.iter().enumerate() {
            let own = slots.contains(&(slot as u16));
            assert_eq!(count > 0, own, "{vip}: slot {slot} got {count}");
        }
    }
}

#[test]
fn a_source_address_service_sends_one_client_to_one_backend_on_every_port() {
    let mut sticky = on(service("sticky", "192.0.2.1", 0, 8), TCP, None);
    sticky.hash = HashFields::SourceAddress;
    let table = build(&[sticky, on(service("spread", "192.0.2.2", 8, 8), TCP, None)]);
    let hasher = table.hasher;
    for client in 0..50u8 {
        let picks = |vip: [u8; 4]| {
            let mut slots: Vec<u16> = (0..40u16)
                .map(|port| {
                    let key = FlowKey::v4([198, 51, 100, client], vip, TCP, 1024 + port, 80);
                    let hash = hasher.flow(&key);
                    table.pick_new(&key, hash, Ingress::Gre).unwrap().0
                })
                .collect();
            slots.sort_unstable();
            slots.dedup();
            slots.len()
        };
        assert_eq!(picks([192, 0, 2, 1]), 1, "client {client}");
        assert!(picks([192, 0, 2, 2]) > 1, "client {client}");
    }
}

#[test]
fn two_services_with_one_name_are_refused() {
    assert_eq!(
        build_err(&[
            service("a", "192.0.2.1", 0, 1),
            service("a", "192.0.2.2", 1, 1)
        ]),
        ServiceError::DuplicateName("a".into())
    );
}

#[test]
fn two_services_on_one_vip_protocol_and_port_are_refused() {
    let e = build_err(&[
        on(service("a", "192.0.2.1", 0, 1), TCP, Some(80)),
        on(service("b", "192.0.2.1", 1, 1), TCP, Some(80)),
    ]);
    assert!(matches!(e, ServiceError::DuplicateAddress { .. }), "{e}");
    // Another port on the same VIP is another service.
    build(&[
        on(service("a", "192.0.2.1", 0, 1), TCP, Some(80)),
        on(service("b", "192.0.2.1", 1, 1), TCP, Some(443)),
    ]);
}

#[test]
fn a_port_without_a_protocol_is_refused_with_the_service_s_name() {
    let mut s = service("web", "192.0.2.1", 0, 1);
    s.port = Some(80);
    let e = build_err(&[s]);
    assert_eq!(e, ServiceError::PortWithoutProtocol("web".into()));
    assert!(e.to_string().contains("\"web\""), "{e}");
}

#[test]
fn a_slot_used_by_two_services_or_by_the_default_is_refused() {
    let e = build_err(&[
        service("a", "192.0.2.1", 0, 2),
        service("b", "192.0.2.2", 1, 2),
    ]);
    assert!(
        matches!(e, ServiceError::SlotInTwoServices { slot: 1, .. }),
        "{e}"
    );
    let mut spec = spec();
    spec.backends = vec![backend(0, [10, 1, 0, 1])];
    let e = ForwardingTable::build_with_services(&spec, &[service("a", "192.0.2.1", 0, 1)], None);
    assert!(matches!(
        e,
        Err(ForwardingError::Service(ServiceError::SlotInTwoServices {
            slot: 0,
            ..
        }))
    ));
}

#[test]
fn names_that_cannot_be_a_url_segment_or_a_metric_label_are_refused() {
    for name in ["", "a b", "a/b", "x\"y", &"n".repeat(65)] {
        let e = build_err(&[service(name, "192.0.2.1", 0, 1)]);
        assert_eq!(e, ServiceError::BadName(name.to_owned()));
    }
}

#[test]
fn a_service_s_bad_table_size_is_reported_with_its_name() {
    let mut s = service("small", "192.0.2.1", 0, 1);
    s.table_size = 250;
    let e = build_err(&[s]);
    assert!(
        e.to_string()
            .starts_with("service \"small\": table size 250"),
        "{e}"
    );
}

/// A service's backends as `count` slots from `first`, with weights.
fn weighted(name: &str, index: u16, weights: &[u32]) -> ServiceSpec {
    let first = index * 16;
    let mut s = service(
        name,
        &format!("192.0.2.{index}"),
        first,
        weights.len() as u16,
    );
    for (b, &w) in s.backends.iter_mut().zip(weights) {
        b.weight = w;
    }
    s
}

/// Service `s{i}` with the weights `weights[i]`.
fn weighted_services(weights: &[Vec<u32>]) -> Vec<ServiceSpec> {
    weights
        .iter()
        .enumerate()
        .map(|(i, w)| weighted(&format!("s{i}"), i as u16, w))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Changing one service (its weights, its backends) leaves every other
    /// service's Maglev table byte for byte, and shares it rather than
    /// rebuilding it; the changed service's table is the one a fresh build
    /// makes.
    #[test]
    fn changing_one_service_leaves_every_other_table_as_it_was(
        weights in prop::collection::vec(prop::collection::vec(0u32..4, 1..16), 2..8),
        changed in any::<prop::sample::Index>(),
        new_weights in prop::collection::vec(0u32..4, 1..16),
    ) {
        let specs = weighted_services(&weights);
        let before = build(&specs);
        let changed = changed.index(specs.len());
        let mut after_specs = specs.clone();
        after_specs[changed] = weighted(&format!("s{changed}"), changed as u16, &new_weights);
        let after = ForwardingTable::build_with_services(&spec(), &after_specs, Some(&before)).unwrap();
        let fresh = build(&after_specs);
        for (i, spec) in after_specs.iter().enumerate() {
            let old = before.services.named(&spec.name).unwrap();
            let new = after.services.named(&spec.name).unwrap();
            prop_assert_eq!(new.maglev.entries(), fresh.services.named(&spec.name).unwrap().maglev.entries());
            if i != changed {
                prop_assert!(Arc::ptr_eq(&old.maglev, &new.maglev), "service {} rebuilt", i);
                prop_assert_eq!(old.maglev.entries(), new.maglev.entries());
            }
        }
        prop_assert!(Arc::ptr_eq(&before.maglev, &after.maglev));
    }

    /// Adding a service leaves every existing table shared and the same.
    #[test]
    fn adding_a_service_rebuilds_no_other_table(
        weights in prop::collection::vec(prop::collection::vec(1u32..4, 1..16), 1..8),
    ) {
        let specs = weighted_services(&weights);
        let before = build(&specs);
        let mut more = specs.clone();
        more.push(weighted("added", 100, &[1, 1, 1]));
        let after = ForwardingTable::build_with_services(&spec(), &more, Some(&before)).unwrap();
        for spec in &specs {
            let old = before.services.named(&spec.name).unwrap();
            prop_assert!(Arc::ptr_eq(&old.maglev, &after.services.named(&spec.name).unwrap().maglev));
        }
        prop_assert_eq!(after.services.len(), specs.len() + 1);
    }

    /// Whatever the order services are given in, lookups find the same service.
    #[test]
    fn lookup_does_not_depend_on_the_order_services_are_given_in(
        ports in prop::collection::btree_set(1u16..2000, 1..20),
        probe in 0u16..2100,
        shuffle in any::<u64>(),
    ) {
        let specs: Vec<ServiceSpec> = ports
            .iter()
            .enumerate()
            .map(|(i, &p)| on(service(&format!("p{p}"), "192.0.2.1", i as u16 * 2, 2), TCP, Some(p)))
            .collect();
        let mut shuffled = specs.clone();
        shuffled.sort_by_key(|s| (u64::from(s.port.unwrap_or(0)) ^ shuffle).wrapping_mul(0x9e37_79b9));
        let a = build(&specs);
        let b = build(&shuffled);
        let key = key_to("192.0.2.1", TCP, probe);
        let want = ports.contains(&probe).then(|| format!("p{probe}"));
        prop_assert_eq!(found(&a, &key), want.clone());
        prop_assert_eq!(found(&b, &key), want);
    }
}

#[test]
fn a_slot_names_the_counter_of_its_service_and_a_default_slot_none() {
    let a = service("a", "192.0.2.1", 100, 3);
    let b = service("b", "192.0.2.2", 10, 2);
    let table = build(&[a.clone(), b.clone()]);
    for slot in 100..103 {
        assert_eq!(table.services.counter_of_slot(slot), Some(a.counter));
    }
    assert_eq!(table.services.counter_of_slot(11), Some(b.counter));
    assert_eq!(table.services.counter_of_slot(12), None, "no backend");
    assert_eq!(table.services.counter_of_slot(0), None, "the default's");
}

#[test]
fn two_services_with_one_counter_id_or_one_past_the_rows_are_refused() {
    let a = service("a", "192.0.2.1", 100, 1);
    let mut b = service("b", "192.0.2.2", 10, 1);
    b.counter.id = a.counter.id;
    assert!(matches!(
        build_err(&[a.clone(), b.clone()]),
        ServiceError::CounterInTwoServices { .. }
    ));
    b.counter.id = crate::counters::SERVICE_COUNTERS as u16;
    assert!(matches!(
        build_err(&[a, b]),
        ServiceError::CounterOutOfRange { .. }
    ));
}
