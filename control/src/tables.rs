//! From configuration to what the dataplane takes: the forwarding spec
//! (backends in stable slots, addresses, seed, table size) and the sizes
//! and timeouts of each worker's tables.

use std::net::Ipv4Addr;

use dataplane::conntrack::ConnTableConfig;
use dataplane::forwarding::{BackendSpec, ForwardingSpec};
use dataplane::fragments::FragmentConfig;
use dataplane::pipeline::WorkerConfig;

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
        lb_mac: args.lb_mac.0,
        vips: args.vips.as_slice().to_vec(),
        backends,
        seed: args.seed,
        table_size: args.table_size,
        mtu: args.mtu,
        generation: 1,
    }
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
