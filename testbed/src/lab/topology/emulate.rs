//! netem on topology links (`netem = "..."` on a host's link): the same
//! wiring as `testbed run --netem` (see [`crate::lab::netem`]), with the
//! emulator in a detached `testbed link-emulator` process per link, since
//! `up` returns at once.
//!
//! For the link `eth{i}` of host number `h` (file order), whose veth ends
//! on its network's bridge as `{prefix}{h}.{i}`:
//!
//! ```text
//!  host eth{i} ==veth== {prefix}{h}.{i}  [link-emulator]  {prefix}n{h}.{i} ==veth== {prefix}m{h}.{i} -- bridge
//!                       '----------- namespace {prefix}emu -----------'
//! ```
//!
//! - `{prefix}{h}.{i}` leaves the bridge for the address-less namespace
//!   `{prefix}emu`; a new pair joins the bridge (`{prefix}m{h}.{i}`) to
//!   `{prefix}emu` (`{prefix}n{h}.{i}`); the emulator moves frames between
//!   `{prefix}{h}.{i}` (side A: what the host sends) and `{prefix}n{h}.{i}`
//!   (side B): the link's egress spec (`netem`, `netem_out`) from A to B,
//!   its ingress spec (`netem_in`) from B to A, as
//!   [`crate::impair::placement`] places them for `testbed run`.
//! - A network of two members with a netem link is a bridge, not a direct
//!   veth pair (see the planner): the emulator always sits between a link
//!   and its bridge, so there is one wiring to get right.
//! - Offloads and IPv6 as for `testbed run`: the far ends (`eth{i}` and
//!   `{prefix}m{h}.{i}`) lose checksum and segmentation offloads, which
//!   stay off (both are deleted with the lab); the emulator process turns
//!   GRO/LRO off on its sides; IPv6 is off on the bridge, the links and in
//!   `{prefix}emu`.
//! - Seeds: the link's `seed`, else the file's `seed` (default 1) + the
//!   link's position among the file's netem links.
//! - The processes are recorded in the state with the host's commands;
//!   `down` and `cleanup` stop them (SIGTERM), then remove `{prefix}emu`
//!   with the lab's other namespaces.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use super::plan::{EmulatedLinkPlan, TopologyPlan};
use super::processes::{self, BackgroundProcess};
use crate::lab::link_emulator::READY;
use crate::lab::netem::{self, EmulatorWiring};
use crate::lab::netlink::Netlink;

/// How long an emulator gets to open its sockets.
const READY_WAIT: Duration = Duration::from_secs(10);

/// Puts an emulator on every netem link of `plan` and starts it as
/// `{program} link-emulator ...` in `work_dir`, pushing each process to
/// `started` as soon as it runs (so a failure can stop those already
/// started). `bridges_up` is when the bridges were made: the emulators
/// start once their IGMP reports are over ([`netem::igmp_settle`]).
pub fn start(
    plan: &TopologyPlan,
    work_dir: &Path,
    bridges_up: Instant,
    program: &Path,
    started: &mut Vec<BackgroundProcess>,
) -> Result<(), String> {
    let links = plan.emulated_links();
    if links.is_empty() {
        return Ok(());
    }
    let bridges: BTreeSet<&str> = links.iter().map(|l| l.bridge.as_str()).collect();
    for bridge in &bridges {
        netem::disable_ipv6(bridge)?;
    }
    let emu = netem::emulator_namespace(&plan.prefix);
    let emu_file = netem::create_emulator_namespace(&emu)?;
    let mut netlink = Netlink::open().map_err(|e| e.to_string())?;
    for link in &links {
        netem::put_emulator_between(
            &mut netlink,
            &emu_file,
            &EmulatorWiring {
                link: &link.link,
                bridge: &link.bridge,
                far: &link.far,
                near: &link.near,
                host_namespace: &link.namespace,
                inner: &link.interface,
            },
        )?;
        // Kept off: both ends are deleted with the lab.
        for guard in netem::prepare_far_ends(&link.namespace, &link.interface, &link.far)? {
            guard.keep();
        }
    }
    let settle = bridges
        .iter()
        .map(|bridge| netem::igmp_settle(bridge))
        .max()
        .unwrap_or_default();
    std::thread::sleep((bridges_up + settle).saturating_duration_since(Instant::now()));
    for link in &links {
        let process = processes::start_detached(
            &link.host,
            program,
            &emulator_args(&emu, link),
            work_dir,
            &format!("emulator.{}.{}", link.host, link.interface),
        )?;
        started.push(process.clone());
        wait_ready(&process)?;
    }
    Ok(())
}

/// The arguments of `testbed link-emulator` for `link`: `--spec` what
/// the host sends (side A to B), `--spec-back` what it receives.
pub fn emulator_args(emu: &str, link: &EmulatedLinkPlan) -> Vec<String> {
    let mut args: Vec<String> = [
        "link-emulator",
        "--namespace",
        emu,
        "--a",
        &link.link,
        "--b",
        &link.near,
    ]
    .map(str::to_owned)
    .to_vec();
    for (flag, spec) in [
        ("--spec", &link.specs.egress),
        ("--spec-back", &link.specs.ingress),
    ] {
        if let Some(spec) = spec {
            args.extend([flag.to_owned(), spec.clone()]);
        }
    }
    args.extend(["--seed".to_owned(), link.seed.to_string()]);
    args
}

/// Waits until `process` wrote [`READY`], or says why it did not.
fn wait_ready(process: &BackgroundProcess) -> Result<(), String> {
    let started = Instant::now();
    loop {
        let said = std::fs::read_to_string(&process.stdout).unwrap_or_default();
        if said.lines().any(|line| line == READY) {
            return Ok(());
        }
        if !process.is_running() || started.elapsed() > READY_WAIT {
            let errors = std::fs::read_to_string(&process.stderr).unwrap_or_default();
            return Err(format!(
                "the link emulator for host {} did not start ({}): {}",
                process.host,
                process.command,
                if errors.trim().is_empty() {
                    "no message"
                } else {
                    errors.trim()
                }
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::impair::{Direction, LinkSpecs};

    fn link(specs: LinkSpecs) -> EmulatedLinkPlan {
        EmulatedLinkPlan {
            host: "a".into(),
            namespace: "t-a".into(),
            interface: "eth0".into(),
            bridge: "t-lan".into(),
            link: "t-0.0".into(),
            far: "t-m0.0".into(),
            near: "t-n0.0".into(),
            specs,
            seed: 9,
        }
    }

    #[test]
    fn the_emulator_impairs_what_the_host_sends_from_its_link_to_the_new_pair() {
        let egress = link(LinkSpecs::new("delay 5ms", Direction::Egress));
        assert_eq!(
            emulator_args("t-emu", &egress).join(" "),
            "link-emulator --namespace t-emu --a t-0.0 --b t-n0.0 --spec delay 5ms --seed 9"
        );
    }

    #[test]
    fn an_ingress_spec_impairs_the_way_back_only() {
        let ingress = link(LinkSpecs::new("loss 1%", Direction::Ingress));
        assert_eq!(
            emulator_args("t-emu", &ingress).join(" "),
            "link-emulator --namespace t-emu --a t-0.0 --b t-n0.0 --spec-back loss 1% --seed 9"
        );
        let both = link(LinkSpecs {
            egress: Some("delay 5ms".into()),
            ingress: Some("loss 1%".into()),
        });
        assert!(emulator_args("t-emu", &both)
            .join(" ")
            .contains("--spec delay 5ms --spec-back loss 1% --seed 9"));
    }
}
