//! From configuration to what the dataplane takes: the forwarding spec
//! (backends in stable slots, addresses, seed, table size), the live
//! balancer's publisher over the same backends, and the sizes and timeouts
//! of each worker's tables.

use std::net::{IpAddr, Ipv4Addr};

use dataplane::conntrack::ConnTableConfig;
use dataplane::forwarding::{BackendSpec, ForwardingSpec};
use dataplane::fragments::FragmentConfig;
use dataplane::pipeline::WorkerConfig;

use crate::backends::{BackendError, BackendSet, Publisher, TableSettings};
use crate::config::BalancerArgs;

/// The forwarding spec of a balancer at `lb_ipv4`, backends in the order
/// given (slot i is the i-th target), every next-hop MAC known from the
/// configuration (replay has no neighbour table to ask).
pub fn forwarding_spec(args: &BalancerArgs, lb_ipv4: Ipv4Addr) -> ForwardingSpec {
    let backends = args
        .target_ips
        .as_slice()
        .iter()
        .enumerate()
        .map(|(slot, target)| BackendSpec {
            // Targets are capped at MAX_TARGETS (65535) by the parser.
            slot: slot as u16,
            addr: target.addr,
            weight: target.weight,
            mac: Some(args.backend_mac(target.addr).0),
            generation: 0,
        })
        .collect();
    ForwardingSpec {
        lb_ipv4,
        lb_ipv6: args.lb_ipv6,
        lb_mac: args.lb_mac.0,
        vips: args.vips.as_slice().to_vec(),
        backends,
        seed: args.seed,
        table_size: args.table_size,
        mtu: args.mtu,
        generation: 1,
    }
}

/// Everything in the forwarding table but the backends, for a balancer at
/// `lb_ipv4` (and `RR_LB_IPV6`, which the live balancer defaults from its
/// interface).
pub fn table_settings(args: &BalancerArgs, lb_ipv4: Ipv4Addr) -> TableSettings {
    TableSettings {
        lb_ipv4,
        lb_ipv6: args.lb_ipv6,
        lb_mac: args.lb_mac.0,
        vips: args.vips.as_slice().to_vec(),
        seed: args.seed,
        table_size: args.table_size,
        mtu: args.mtu,
    }
}

/// The configured backends in the order given (slot i is the i-th target,
/// as in [`forwarding_spec`]), each with the MAC `mac_for` knows (`None`:
/// unresolved until the neighbour resolver calls `Publisher::set_mac`).
pub fn backend_set(
    args: &BalancerArgs,
    mac_for: impl Fn(IpAddr) -> Option<[u8; 6]>,
) -> Result<BackendSet, BackendError> {
    let mut set = BackendSet::default();
    for target in args.target_ips.as_slice() {
        set.add(target.addr, target.weight)?;
        set.set_mac(target.addr, mac_for(target.addr))?;
    }
    Ok(set)
}

/// The live balancer's publisher: the configured backends, first table
/// (generation 1) built and ready for the workers' handle.
pub fn publisher(
    args: &BalancerArgs,
    lb_ipv4: Ipv4Addr,
    mac_for: impl Fn(IpAddr) -> Option<[u8; 6]>,
) -> Result<Publisher, BackendError> {
    Publisher::new(table_settings(args, lb_ipv4), backend_set(args, mac_for)?)
}

/// Sizes and timeouts of each worker's connection and fragment tables.
pub fn worker_config(args: &BalancerArgs) -> WorkerConfig {
    let secs = |d: std::time::Duration| u32::try_from(d.as_secs()).unwrap_or(u32::MAX);
    WorkerConfig {
        conntrack: ConnTableConfig {
            capacity: args.conntrack_capacity,
            tcp_timeout_secs: secs(args.tcp_timeout),
            udp_timeout_secs: secs(args.udp_timeout),
            max_new_per_sec: u32::try_from(args.max_new_flows_per_sec).unwrap_or(u32::MAX),
        },
        fragments: FragmentConfig {
            hold_frames: args.fragment_hold_capacity,
            hold_time_ms: u64::try_from(args.fragment_hold.as_millis()).unwrap_or(u64::MAX),
            ..FragmentConfig::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use dataplane::forwarding::ForwardingTable;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        balancer: BalancerArgs,
    }

    fn args(targets: &str) -> BalancerArgs {
        Cli::try_parse_from([
            "rusty_rail",
            "--target-ips",
            targets,
            "--table-size",
            "1009",
        ])
        .unwrap()
        .balancer
    }

    const LB: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);

    #[test]
    fn the_publisher_starts_with_the_table_replay_builds() {
        let args = args("10.1.0.3;10.1.0.1:2;10.1.0.2");
        let p = publisher(&args, LB, |ip| Some(args.backend_mac(ip).0)).unwrap();
        let replay = ForwardingTable::build(&forwarding_spec(&args, LB)).unwrap();
        let live = p.handle().load();
        assert_eq!(live.generation, 1);
        assert_eq!(
            live.backends(),
            replay.backends(),
            "same slots, addresses, MACs"
        );
        assert_eq!(live.maglev.entries(), replay.maglev.entries());
        assert_eq!(p.backend([10, 1, 0, 1].into()).unwrap().slot, 1);
    }

    #[test]
    fn backends_without_a_known_mac_start_unresolved() {
        let args = args("10.1.0.1;10.1.0.2");
        let p = publisher(&args, LB, |_| None).unwrap();
        assert!(p.backends().iter().all(|b| b.mac.is_none()));
        assert!(p.handle().load().backends().iter().all(|b| !b.usable));
    }
}
