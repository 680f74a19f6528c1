//! `testbed status`: what a lab is made of, from its state file: a star's
//! instances, or a topology's networks and hosts with their interfaces,
//! addresses, routes and impairments; the background processes and whether
//! they still run; the partition in force.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use super::state::{self, LabState};
use super::topology::{Medium, Peer, TopologyPlan};
use super::StatusArgs;

/// `testbed status`: one lab (`--prefix`) or every lab with a state file;
/// `--json` prints the state (one lab) or a list of states.
pub fn main(args: &StatusArgs) -> ExitCode {
    let dir = Path::new(state::STATE_DIR);
    let prefixes = match &args.prefix {
        Some(prefix) => vec![prefix.clone()],
        None => state::prefixes_in(dir),
    };
    let mut labs = Vec::new();
    for prefix in &prefixes {
        match LabState::load_in(dir, prefix) {
            Ok(Some(state)) => labs.push(state),
            Ok(None) => {
                eprintln!(
                    "testbed status: no lab with prefix {prefix:?} (no {})",
                    state::path(prefix).display()
                );
                return ExitCode::FAILURE;
            }
            Err(error) => {
                eprintln!("testbed status: {}: {error}", state::path(prefix).display());
                return ExitCode::FAILURE;
            }
        }
    }
    if args.json {
        let text = if args.prefix.is_some() {
            serde_json::to_string_pretty(&labs[0])
        } else {
            serde_json::to_string_pretty(&labs)
        };
        match text {
            Ok(text) => println!("{text}"),
            Err(error) => {
                eprintln!("testbed status: {error}");
                return ExitCode::FAILURE;
            }
        }
        return ExitCode::SUCCESS;
    }
    if labs.is_empty() {
        println!("no labs (no state files in {})", state::STATE_DIR);
    }
    for state in &labs {
        print!("{}", describe(state));
    }
    ExitCode::SUCCESS
}

/// The text `testbed status` prints for one lab.
pub fn describe(state: &LabState) -> String {
    let mut text = match &state.topology {
        Some(topology) => describe_topology(state, topology),
        None => describe_star(state),
    };
    for process in &state.processes {
        let _ = writeln!(
            text,
            "  process {} on {}: {} ({})",
            process.pid,
            process.host,
            process.command,
            if process.is_running() {
                "running"
            } else {
                "ended"
            }
        );
    }
    if let Some(partition) = &state.partition {
        let _ = writeln!(
            text,
            "  partition {:?} (seed {}, since {}): {}",
            partition.spec,
            partition.seed,
            partition.applied_at,
            partition.describe()
        );
    } else {
        text.push_str("  partition: none\n");
    }
    text
}

fn describe_star(state: &LabState) -> String {
    let plan = &state.plan;
    let bridge = if plan.holds_bridge_address() {
        format!("{} at {}", plan.bridge, plan.bridge_address)
    } else {
        format!("{}, no address", plan.bridge)
    };
    let mut text = format!(
        "lab {} (run pid {}, created {}): {} hosts on {} ({bridge})\n",
        plan.prefix,
        state.owner_pid,
        state.created_at,
        plan.hosts.len(),
        plan.cidr,
    );
    if let Some(share) = plan.share {
        let _ = writeln!(text, "  machine {share} (its share of the instances)");
    }
    if let Some(vxlan) = &plan.vxlan {
        let remotes: Vec<String> = vxlan.remotes.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            text,
            "  vxlan {} (VNI {}, port {}) via {} from {} to {}; instance MTU {}",
            vxlan.name,
            vxlan.id,
            vxlan.port,
            vxlan.device,
            vxlan.local,
            if remotes.is_empty() {
                "(no remotes)".to_owned()
            } else {
                remotes.join(", ")
            },
            vxlan.instance_mtu()
        );
    }
    for host in &plan.hosts {
        let _ = writeln!(
            text,
            "  {:>5}  {:<16} {:<16} {:<15}  {}",
            host.index, host.namespace, host.link, host.address, host.command
        );
    }
    for link in &state.netem {
        let _ = writeln!(
            text,
            "  {:>5}  netem ({}, seed {}) on {}: {}",
            link.index,
            link.mode.name(),
            link.seed,
            link.link,
            link.specs.describe()
        );
    }
    text
}

fn describe_topology(state: &LabState, topology: &TopologyPlan) -> String {
    let mut text = format!(
        "lab {} (up pid {}, created {}): {} hosts, {} networks\n",
        topology.prefix,
        state.owner_pid,
        state.created_at,
        topology.hosts.len(),
        topology.networks.len()
    );
    for network in &topology.networks {
        let medium = match &network.medium {
            Medium::Bridge {
                bridge,
                address: Some(address),
            } => format!("bridge {bridge}, machine at {address}"),
            Medium::Bridge { bridge, .. } => format!("bridge {bridge}"),
            Medium::PointToPoint => "point-to-point".to_owned(),
        };
        let _ = writeln!(
            text,
            "  network {} {} ({medium})",
            network.name, network.cidr
        );
    }
    for host in &topology.hosts {
        let _ = writeln!(
            text,
            "  host {} (namespace {}{})",
            host.name,
            host.namespace,
            if host.forward { ", forwarding" } else { "" }
        );
        for interface in &host.interfaces {
            let peer = match &interface.peer {
                Peer::Bridge { link } => format!("bridge end {link}"),
                Peer::Host { host, interface } => format!("to {host} {interface}"),
            };
            let _ = write!(
                text,
                "    {} {}/{} on {} ({peer})",
                interface.name, interface.address, interface.prefix_len, interface.network
            );
            if let Some(tbf) = &interface.tbf {
                let _ = write!(text, ", tbf {tbf}");
            }
            if !interface.netem.is_empty() {
                let _ = write!(text, ", netem {}", interface.netem.describe());
                if let Some(seed) = interface.netem_seed {
                    let _ = write!(text, " (seed {seed})");
                }
            }
            text.push('\n');
        }
        for address in &host.addresses {
            let _ = writeln!(text, "    address {address}");
        }
        for route in &host.routes {
            let _ = writeln!(text, "    route {route}");
        }
        if host.bgp.is_some() {
            // The work directory is where `up` put the host's BIRD files.
            let work_dir = state
                .processes
                .iter()
                .find(|p| p.host == host.name && p.command.contains("bird -f"))
                .and_then(|p| p.stdout.parent());
            if let Some(dir) = work_dir {
                let socket = super::topology::bgp::socket_path(dir, &host.name);
                text += &super::topology::bgp::describe(&host.namespace, &socket);
            }
        }
    }
    text
}
