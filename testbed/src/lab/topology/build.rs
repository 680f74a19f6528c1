//! Creating a topology lab through rtnetlink: the namespaces (in parallel),
//! then the bridges and veth pairs from the machine's namespace, then each
//! host's inside (addresses, `lo`, routes, forwarding, shaping) in parallel,
//! each worker thread with its own netlink socket in the host it configures.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

use super::plan::{HostPlan, Medium, Peer, TopologyPlan};
use crate::lab::build::BuildError;
use crate::lab::netlink::{link_index, Netlink, VethEnd};
use crate::lab::netns;
use crate::lab::tbf;

/// Threads creating or configuring hosts at once (as in the star lab).
const BUILDERS: usize = 4;

fn namespace_error(name: &str) -> impl FnOnce(io::Error) -> BuildError + '_ {
    move |source| BuildError::Namespace {
        name: name.to_owned(),
        source,
    }
}

/// Runs `work` on each host, spread over up to [`BUILDERS`] threads that
/// start in the machine's namespace; the first error wins.
fn each_host<F>(hosts: &[HostPlan], root: &File, work: F) -> Result<(), BuildError>
where
    F: Fn(&HostPlan) -> Result<(), BuildError> + Sync,
{
    let chunk = hosts.len().div_ceil(BUILDERS).max(1);
    let work = &work;
    std::thread::scope(|scope| {
        let workers: Vec<_> = hosts
            .chunks(chunk)
            .map(|hosts| {
                scope.spawn(move || -> Result<(), BuildError> {
                    for host in hosts {
                        netns::enter(root).map_err(namespace_error("of the machine"))?;
                        work(host)?;
                    }
                    Ok(())
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| {
                worker.join().unwrap_or_else(|_| {
                    Err(BuildError::Namespace {
                        name: "builder".into(),
                        source: io::Error::other("builder thread panicked"),
                    })
                })
            })
            .collect::<Result<Vec<()>, _>>()
            .map(|_| ())
    })
}

/// Creates lab `plan`. Must run in the machine's network namespace. On an
/// error, what was made stays for [`crate::lab::build::remove`] to take.
pub fn create(plan: &TopologyPlan) -> Result<(), BuildError> {
    let root = File::open("/proc/thread-self/ns/net").map_err(namespace_error("of the machine"))?;
    each_host(&plan.hosts, &root, |host| {
        netns::create(&host.namespace).map_err(namespace_error(&host.namespace))
    })?;
    connect(plan)?;
    each_host(&plan.hosts, &root, configure)
}

/// Bridges and veth pairs, from the machine's namespace (the thread's).
fn connect(plan: &TopologyPlan) -> Result<(), BuildError> {
    let mut netlink = Netlink::open()?;
    let mut bridges = BTreeMap::new();
    for network in &plan.networks {
        if let Medium::Bridge { bridge, address } = &network.medium {
            netlink.add_bridge(bridge)?;
            let index = link_index(bridge)?;
            if let Some(address) = address {
                netlink.add_address(index, bridge, *address, network.cidr.prefix_len)?;
            }
            bridges.insert(network.name.as_str(), index);
        }
    }
    let namespaces = plan
        .hosts
        .iter()
        .map(|h| {
            netns::open(&h.namespace)
                .map(|file| (h.name.as_str(), file))
                .map_err(namespace_error(&h.namespace))
        })
        .collect::<Result<BTreeMap<&str, File>, _>>()?;
    for host in &plan.hosts {
        let inside = namespaces[host.name.as_str()].as_raw_fd();
        for interface in &host.interfaces {
            match &interface.peer {
                Peer::Bridge { link } => {
                    let bridge = bridges
                        .get(interface.network.as_str())
                        .copied()
                        .ok_or_else(|| BuildError::Namespace {
                            name: host.namespace.clone(),
                            source: io::Error::other(format!(
                                "network {} has no bridge",
                                interface.network
                            )),
                        })?;
                    netlink.add_veth(link, bridge, &interface.name, inside)?;
                }
                // Made once, by the member that comes first in the file.
                Peer::Host {
                    host: other,
                    interface: other_interface,
                } => {
                    let first = plan.hosts.iter().position(|h| h.name == host.name)
                        < plan.hosts.iter().position(|h| &h.name == other);
                    let Some(outside) = namespaces.get(other.as_str()) else {
                        continue;
                    };
                    if first {
                        netlink.add_veth_between(
                            VethEnd {
                                name: &interface.name,
                                namespace: Some(inside),
                                controller: None,
                            },
                            VethEnd {
                                name: other_interface,
                                namespace: Some(outside.as_raw_fd()),
                                controller: None,
                            },
                        )?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// A host's inside: `lo` and its interfaces up with their addresses, extra
/// addresses, forwarding, routes, then shaping. Leaves the thread in the
/// host's namespace.
fn configure(host: &HostPlan) -> Result<(), BuildError> {
    let name = host.namespace.as_str();
    let namespace = netns::open(name).map_err(namespace_error(name))?;
    netns::enter(&namespace).map_err(namespace_error(name))?;
    let mut netlink = Netlink::open()?;
    let lo = link_index("lo")?;
    netlink.set_up(lo, "lo")?;
    let mut indices = BTreeMap::from([("lo", lo)]);
    for interface in &host.interfaces {
        let index = link_index(&interface.name)?;
        netlink.add_address(
            index,
            &interface.name,
            interface.address,
            interface.prefix_len,
        )?;
        netlink.set_up(index, &interface.name)?;
        indices.insert(interface.name.as_str(), index);
    }
    let device = |device: &str| {
        indices
            .get(device)
            .copied()
            .ok_or_else(|| BuildError::Namespace {
                name: name.to_owned(),
                source: io::Error::other(format!("no interface {device}")),
            })
    };
    for extra in &host.addresses {
        netlink.add_address(
            device(&extra.device)?,
            &extra.device,
            extra.address,
            extra.prefix_len,
        )?;
    }
    if host.forward {
        // /proc/sys/net belongs to the network namespace of the thread that
        // opens it: this one is in the host's.
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").map_err(|source| {
            BuildError::Namespace {
                name: name.to_owned(),
                source: io::Error::new(source.kind(), format!("setting ip_forward: {source}")),
            }
        })?;
    }
    if host.bgp.is_some() {
        // ECMP by the flow's 5-tuple, as a router on a wire hashes it: a
        // router spreading one client's connections over several balancers.
        // Policy 3 with the fields, not policy 1: policy 1 takes a packet's
        // own flow hash where it has one, which across veths is the client
        // socket's, drawn anew at each TCP retransmission timeout, so a
        // flow would hop between balancers whenever its packets are lost.
        for (setting, value) in [
            ("fib_multipath_hash_policy", "3"),
            ("fib_multipath_hash_fields", "0x0037"),
        ] {
            let path = format!("/proc/sys/net/ipv4/{setting}");
            std::fs::write(&path, value).map_err(|source| BuildError::Namespace {
                name: name.to_owned(),
                source: io::Error::new(source.kind(), format!("setting {setting}: {source}")),
            })?;
        }
    }
    for route in &host.routes {
        let oif = route.device.as_deref().map(device).transpose()?;
        netlink.add_route(
            route.destination,
            route.prefix_len,
            route.gateway,
            oif,
            &format!("{route} in {name}"),
        )?;
    }
    let shaped: Vec<_> = host
        .interfaces
        .iter()
        .filter_map(|i| Some((i.name.clone(), i.tbf.clone()?)))
        .collect();
    tbf::apply_in(Some(name), &shaped).map_err(|message| BuildError::Namespace {
        name: name.to_owned(),
        source: io::Error::other(message),
    })
}
