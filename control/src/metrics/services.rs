//! Per-service metrics (`rr_service_*`, label `service`): packets, bytes
//! and new flows sent to a service's backends (sums of their slots'
//! counters, those of backends that left the service included, so they
//! never go down), its drops by reason (those decided after its lookup), its
//! backends configured and in rotation. Nothing is
//! registered without named services, so the one-service exposition is
//! unchanged.

use prometheus_client::registry::Registry;

use super::{counter, gauge, Labels};
use crate::backends::{Backend, NamedServices};
use crate::stats::{ServiceTraffic, Snapshot};

pub(super) fn register(
    r: &mut Registry,
    snapshot: &Snapshot,
    backends: &[Backend],
    services: &NamedServices,
) {
    if services.0.is_empty() {
        return;
    }
    let members = |addrs: &[std::net::IpAddr]| -> Vec<&Backend> {
        addrs
            .iter()
            .filter_map(|a| backends.iter().find(|b| b.addr == *a))
            .collect()
    };
    let per_service = |value: &dyn Fn(&[&Backend]) -> u64| -> Vec<(Labels, u64)> {
        services
            .0
            .iter()
            .map(|s| {
                let labels = vec![("service", s.template.name.clone())];
                (labels, value(&members(&s.members)))
            })
            .collect()
    };
    let per_traffic = |value: &dyn Fn(&ServiceTraffic) -> u64| -> Vec<(Labels, u64)> {
        services
            .0
            .iter()
            .map(|s| {
                let labels = vec![("service", s.template.name.clone())];
                (labels, value(&snapshot.traffic_of(s.template.counter)))
            })
            .collect()
    };
    counter(
        r,
        "rr_service",
        "packets",
        "Frames sent to the service's backends",
        per_traffic(&|t| t.packets),
    );
    counter(
        r,
        "rr_service",
        "bytes",
        "Bytes of the frames sent to the service's backends, as received",
        per_traffic(&|t| t.bytes),
    );
    counter(
        r,
        "rr_service",
        "new_flows",
        "New flows the service's Maglev table sent to its backends",
        per_traffic(&|t| t.new_flows),
    );
    let drops: Vec<(Labels, u64)> = services
        .0
        .iter()
        .flat_map(|s| {
            snapshot
                .drops_of(s.template.counter)
                .into_iter()
                .map(|(reason, n)| {
                    let labels = vec![
                        ("service", s.template.name.clone()),
                        ("reason", reason.name().to_owned()),
                    ];
                    (labels, n)
                })
        })
        .collect();
    counter(
        r,
        "rr_service",
        "drops",
        "Frames of the service dropped after its lookup, by reason",
        drops,
    );
    gauge(
        r,
        "rr_service",
        "backends",
        "Backends configured for the service",
        per_service(&|bs| bs.len() as u64),
    );
    gauge(
        r,
        "rr_service",
        "backends_in_rotation",
        "The service's backends new flows can go to (up, undrained, weight > 0, MAC known)",
        per_service(&|bs| bs.iter().filter(|b| b.in_rotation()).count() as u64),
    );
}
