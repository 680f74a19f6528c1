//! The VIPs the balancer takes plain packets for (VIP mode): `RR_VIPS` and
//! every service's VIP. The `AF_XDP` program redirects packets to them and
//! the nftables rules drop the kernel's copies, both built once at start
//! from this list; the forwarding table already serves every service's VIP
//! whichever list steered it there.
//!
//! A service that a reload (or `POST /services`) brings on a VIP outside the
//! list is applied (GRE to the balancer is steered by the balancer's own
//! address, so GRE mode needs nothing more) and a warning says that plain
//! packets to it are not taken until the next start: re-attaching the
//! program and the rules while the workers run is not done.

use std::collections::BTreeSet;
use std::net::IpAddr;

use tracing::warn;

use crate::backends::{NamedServices, Publisher};

/// `vips` (`RR_VIPS`) and the services' VIPs, each once, in that order.
pub fn steered(vips: &[IpAddr], services: &NamedServices) -> Vec<IpAddr> {
    let mut seen = BTreeSet::new();
    vips.iter()
        .copied()
        .chain(services.0.iter().map(|s| s.template.vip))
        .filter(|vip| seen.insert(*vip))
        .collect()
}

/// The services' VIPs that `steered` lacks, each with the first service
/// naming it.
pub fn unsteered<'a>(steered: &[IpAddr], services: &'a NamedServices) -> Vec<(IpAddr, &'a str)> {
    let mut seen = BTreeSet::new();
    services
        .0
        .iter()
        .map(|s| (s.template.vip, s.template.name.as_str()))
        .filter(|(vip, _)| !steered.contains(vip) && seen.insert(*vip))
        .collect()
}

/// Warns, once per VIP, of every service VIP outside `steered` as the
/// services change, until the task is dropped.
pub async fn warn_of_unsteered(publisher: Publisher, steered: Vec<IpAddr>) {
    let mut changes = publisher.subscribe();
    let mut warned = BTreeSet::new();
    loop {
        let services = publisher.services();
        for (vip, service) in unsteered(&steered, &services) {
            if warned.insert(vip) {
                warn!(
                    %vip,
                    service,
                    "a service's VIP not steered at start: GRE for it is balanced, but plain \
                     packets to it (VIP mode) are not taken from the interface until the next \
                     start (the AF_XDP program and the nftables rules are built at start from \
                     RR_VIPS and the file's services)"
                );
            }
        }
        if changes.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use dataplane::forwarding::{HashFields, ServiceSpec};

    use super::*;
    use crate::backends::ServiceEntry;

    fn services(vips: &[&str]) -> NamedServices {
        NamedServices(
            vips.iter()
                .enumerate()
                .map(|(i, vip)| ServiceEntry {
                    template: ServiceSpec {
                        name: format!("s{i}"),
                        vip: vip.parse().unwrap(),
                        protocol: None,
                        port: None,
                        backends: Vec::new(),
                        table_size: 251,
                        hash: HashFields::FiveTuple,
                        counter: dataplane::forwarding::ServiceCounter {
                            id: i as u16,
                            generation: 0,
                        },
                    },
                    members: Vec::new(),
                    health: None,
                    retired_slots: Vec::new(),
                })
                .collect(),
        )
    }

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
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
    fn only_vips_outside_the_steered_list_are_unsteered() {
        let now = services(&["192.0.2.1", "192.0.2.9", "192.0.2.9"]);
        let got = unsteered(&ips(&["192.0.2.1"]), &now);
        assert_eq!(got, vec![("192.0.2.9".parse().unwrap(), "s1")]);
        assert!(unsteered(&ips(&["192.0.2.1", "192.0.2.9"]), &now).is_empty());
    }
}
