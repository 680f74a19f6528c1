//! Link impairment of a lab's instances (`--netem SPEC`,
//! `--netem-direction`, `--impair MODE`).
//!
//! A spec impairs the packets an instance sends (its egress) unless
//! `--netem-direction` says `ingress` or `both`: netem is an egress qdisc,
//! and play applies `--netem` to each instance's outgoing packets, so two
//! instances with `delay 10ms` see a 20 ms round trip.
//! [`crate::impair::placement`] decides where each direction's spec goes;
//! the two modes only differ in who applies it:
//!
//! - `userspace` (the default): each impaired instance's root-side veth
//!   (`{prefix}v{i}`) is taken off the bridge and moved into the lab's
//!   emulator namespace `{prefix}emu`, a second pair `{prefix}m{i}` (on the
//!   bridge) / `{prefix}n{i}` (in `{prefix}emu`) joins the bridge, and an
//!   [`EmulatedLink`] thread in this process bridges `{prefix}v{i}` (side A,
//!   where what the instance sends arrives) and `{prefix}n{i}` (side B): the
//!   egress spec from A to B, the ingress spec from B to A, a direction
//!   without a spec untouched; seeded with `--seed` + the instance's index.
//!   The emulator namespace has no
//!   addresses, so no stack answers on the emulator's interfaces (in the
//!   machine's namespace the kernel would answer ARP for the bridge address
//!   on them, around the emulator). The far ends (`eth0` in the instance,
//!   `{prefix}m{i}` on the bridge) get their checksum and segmentation
//!   offloads turned off ([`live::FAR_END_OFFLOADS`]). `--tbf` shapes on
//!   `{prefix}m{i}`, still the bridge's way toward the instance.
//! - `kernel`: `sch_netem` as the root qdisc of the end the impaired
//!   packets leave by: `eth0` inside the instance for egress (`tc -n`),
//!   `{prefix}v{i}` for ingress (one `tc -batch`); checked before the lab is
//!   built, with an error pointing to `userspace` where the kernel lacks it.
//!
//! In an impaired lab IPv6 is off on the bridges and the impaired links: the
//! lab is IPv4-only, and IPv6 housekeeping (router solicitations, MLD reports
//! at random times) would take the links' random draws, so that two runs with
//! the same seed would not drop the same packets.

use std::fmt::Write as _;
use std::fs::File;
use std::io::Write as _;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::ValueEnum;
use serde::{Deserialize, Serialize};

use super::netlink::{link_index, Netlink};
use super::netns;
use super::plan::{Host, LabPlan};
use crate::impair::live::{self, EmulatedLink};
use crate::impair::placement::{Direction, LinkEnds, LinkSpecs};
use crate::impair::NetemSpec;
use host::offloads::OffloadGuard;

/// Where impairments are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImpairMode {
    /// The userspace link emulator (works without `sch_netem`).
    #[default]
    Userspace,
    /// The kernel's `sch_netem` qdisc.
    Kernel,
}

impl ImpairMode {
    pub fn name(self) -> &'static str {
        match self {
            Self::Userspace => "userspace",
            Self::Kernel => "kernel",
        }
    }
}

/// A `--netem` argument: the text as given (recorded, passed to `tc`) and
/// its parse.
#[derive(Debug, Clone, PartialEq)]
pub struct NetemArg {
    pub text: String,
    pub spec: NetemSpec,
}

impl std::str::FromStr for NetemArg {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let spec = NetemSpec::parse(text).map_err(|e| format!("--netem {text:?}: {e}"))?;
        // The kernel's tc reads the text: only netem's words and numbers.
        if let Some(c) = text
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || " .%-_".contains(*c)))
        {
            return Err(format!(
                "--netem {text:?}: character {c:?} is not part of netem's syntax"
            ));
        }
        Ok(Self {
            text: text.split_whitespace().collect::<Vec<_>>().join(" "),
            spec,
        })
    }
}

/// One impaired instance link, as recorded in the lab's state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkImpairment {
    pub index: usize,
    /// The instance's root-side veth.
    pub link: String,
    pub mode: ImpairMode,
    /// The specs of each direction, as given to `--netem`.
    pub specs: LinkSpecs,
    /// The seed of the link (userspace: `--seed` + index).
    pub seed: u64,
}

/// Which spec each of `hosts` instances gets: one spec for all, or one per
/// instance, in order.
pub fn per_instance(specs: &[NetemArg], hosts: usize) -> Result<Vec<NetemArg>, String> {
    match specs.len() {
        0 => Ok(Vec::new()),
        1 => Ok(vec![specs[0].clone(); hosts]),
        n if n == hosts => Ok(specs.to_vec()),
        n => Err(format!(
            "{n} --netem specs for {hosts} instances; give one for all or one per instance"
        )),
    }
}

/// Each instance's spec applied in `direction`.
pub fn directed(specs: &[NetemArg], direction: Direction) -> Vec<LinkSpecs> {
    specs
        .iter()
        .map(|spec| LinkSpecs::new(&spec.text, direction))
        .collect()
}

/// The records of a lab's impairments.
pub fn records(
    plan: &LabPlan,
    specs: &[LinkSpecs],
    mode: ImpairMode,
    seed: u64,
) -> Vec<LinkImpairment> {
    plan.hosts
        .iter()
        .zip(specs)
        .map(|(host, specs)| LinkImpairment {
            index: host.index,
            link: host.link.clone(),
            mode,
            specs: specs.clone(),
            seed: link_seed(seed, host.index),
        })
        .collect()
}

/// The seed of instance `index`'s link.
pub fn link_seed(seed: u64, index: usize) -> u64 {
    seed.wrapping_add(index as u64)
}

/// The bridge-side end of instance `index`'s emulator pair.
pub fn bridge_side(prefix: &str, index: usize) -> String {
    format!("{prefix}m{index}")
}

/// The namespace of a lab's emulator interfaces.
pub fn emulator_namespace(prefix: &str) -> String {
    format!("{prefix}emu")
}

/// Where `--tbf` shapes the traffic toward instance `host`: its root-side
/// veth, or with a userspace impairment the bridge-side end of the
/// emulator's pair.
pub fn shaped_link(plan: &LabPlan, host: &Host, impaired: bool, mode: ImpairMode) -> String {
    if impaired && mode == ImpairMode::Userspace {
        bridge_side(&plan.prefix, host.index)
    } else {
        host.link.clone()
    }
}

/// The emulator's end of that pair.
pub fn emulator_side(prefix: &str, index: usize) -> String {
    format!("{prefix}n{index}")
}

/// Checks that the kernel has `sch_netem`, by adding a netem qdisc to a
/// throw-away veth pair `{prefix}nq0`/`{prefix}nq1` (removed again).
pub fn check_kernel_netem(prefix: &str) -> Result<(), String> {
    let (probe, peer) = (format!("{prefix}nq0"), format!("{prefix}nq1"));
    let root = File::open("/proc/thread-self/ns/net")
        .map_err(|e| format!("opening the machine's namespace: {e}"))?;
    let mut netlink = Netlink::open().map_err(|e| e.to_string())?;
    netlink
        .add_veth(&probe, 0, &peer, root.as_raw_fd())
        .map_err(|e| format!("creating a probe veth for the sch_netem check: {e}"))?;
    let tc = Command::new("tc")
        .args([
            "qdisc", "add", "dev", &probe, "root", "netem", "delay", "1ms",
        ])
        .stdout(Stdio::null())
        .output();
    let _ = netlink.delete_link(&probe);
    let output = tc.map_err(|e| format!("starting tc (apt-get install iproute2): {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    Err(format!(
        "--impair kernel needs the kernel's sch_netem qdisc, which this kernel lacks \
         (tc qdisc add ... netem: {said}); load it with `modprobe sch_netem` where it is \
         a module, or use --impair userspace (the default), the userspace link emulator"
    ))
}

/// The impairments of a running lab; stopped when dropped.
#[derive(Debug, Default)]
pub struct LabImpairment {
    links: Vec<(usize, EmulatedLink)>,
    /// The far ends' offload guards (instances' `eth0`, bridge-side veths).
    far_ends: Vec<OffloadGuard>,
}

impl LabImpairment {
    /// Stops the emulators and restores the far ends' offloads; returns one
    /// summary line per link (what each direction did).
    pub fn stop(mut self) -> Vec<String> {
        let mut lines = Vec::new();
        for (_, link) in &self.links {
            link.request_stop();
        }
        for (index, link) in self.links.drain(..) {
            let sides = format!("{} and {}", link.sides().0, link.sides().1);
            let line = match link.stop() {
                Ok(report) => {
                    let direction = |c: crate::impair::DirectionCounters| {
                        format!(
                            "{} in, {} out, {} lost, {} over limit, {} duplicated, {} corrupted",
                            c.received, c.sent, c.lost, c.limited, c.duplicated, c.corrupted
                        )
                    };
                    format!(
                        "netem [{index}]: from the instance: {}; to the instance: {}",
                        direction(report.a_to_b),
                        direction(report.b_to_a)
                    )
                }
                Err(error) => format!("netem [{index}] ({sides}): {error}"),
            };
            lines.push(line);
        }
        self.far_ends.clear();
        lines
    }
}

/// Applies the impairments to a built lab. Must run in the machine's
/// network namespace. `specs` has one entry per host (or none).
///
/// `bridges_up` is when the lab's bridges were created: userspace
/// emulators start only once the bridges' unsolicited IGMP reports are over
/// ([`igmp_settle`]), at most about a second after it.
pub fn apply(
    plan: &LabPlan,
    specs: &[LinkSpecs],
    mode: ImpairMode,
    seed: u64,
    bridges_up: Instant,
) -> Result<LabImpairment, String> {
    if specs.is_empty() {
        return Ok(LabImpairment::default());
    }
    match mode {
        ImpairMode::Kernel => {
            apply_kernel(plan, specs)?;
            Ok(LabImpairment::default())
        }
        ImpairMode::Userspace => apply_userspace(plan, specs, seed, bridges_up),
    }
}

/// Sets `/proc/sys/net/ipv6/conf/{interface}/disable_ipv6` in the calling
/// thread's namespace; nothing to do where IPv6 is absent.
pub fn disable_ipv6(interface: &str) -> Result<(), String> {
    let path = format!("/proc/sys/net/ipv6/conf/{interface}/disable_ipv6");
    match std::fs::write(&path, "1") {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            Err(format!("{path}: {error}"))
        }
        _ => Ok(()),
    }
}

/// How long after coming up a bridge may still send unsolicited IGMP
/// reports: with multicast snooping on, a bridge joins the all-snoopers
/// group and reports it `igmp_qrv` times, the repeats at random within
/// `igmpv3_unsolicited_report_interval`. Through an emulator they would take
/// random draws at random times, so that two runs with the same seed would
/// not drop the same packets.
pub fn igmp_settle(bridge: &str) -> Duration {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
    };
    let interval_ms = read(&format!(
        "/proc/sys/net/ipv4/conf/{bridge}/igmpv3_unsolicited_report_interval"
    ))
    .unwrap_or(1000);
    let repeats = read("/proc/sys/net/ipv4/igmp_qrv")
        .unwrap_or(2)
        .saturating_sub(1);
    // Bounded, whatever the sysctls say: a lab does not wait minutes.
    Duration::from_millis((interval_ms * repeats).min(10_000) + 50)
}

fn apply_userspace(
    plan: &LabPlan,
    specs: &[LinkSpecs],
    seed: u64,
    bridges_up: Instant,
) -> Result<LabImpairment, String> {
    let mut netlink = Netlink::open().map_err(|e| e.to_string())?;
    disable_ipv6(&plan.bridge)?;
    for join in &plan.extra_bridges {
        for interface in [&join.bridge, &join.link, &join.peer] {
            disable_ipv6(interface)?;
        }
    }
    let emu = emulator_namespace(&plan.prefix);
    let emu_file = create_emulator_namespace(&emu)?;
    let mut impairment = LabImpairment::default();
    for host in &plan.hosts {
        let far = bridge_side(&plan.prefix, host.index);
        put_emulator_between(
            &mut netlink,
            &emu_file,
            &EmulatorWiring {
                link: &host.link,
                bridge: plan.bridge_named(host.bridge_index),
                far: &far,
                near: &emulator_side(&plan.prefix, host.index),
                host_namespace: &host.namespace,
                inner: &host.inner_link,
            },
        )?;
        impairment
            .far_ends
            .extend(prepare_far_ends(&host.namespace, &host.inner_link, &far)?);
    }
    let settled = bridges_up + igmp_settle(&plan.bridge);
    std::thread::sleep(settled.saturating_duration_since(Instant::now()));
    for (host, specs) in plan.hosts.iter().zip(specs) {
        let directions = specs.emulator_specs().map_err(|e| e.to_string())?;
        let link = EmulatedLink::start(
            Some(&emu),
            &host.link,
            &emulator_side(&plan.prefix, host.index),
            &directions.from_host,
            &directions.to_host,
            link_seed(seed, host.index),
        )
        .map_err(|e| e.to_string())?;
        impairment.links.push((host.index, link));
    }
    Ok(impairment)
}

/// Creates the address-less emulator namespace `name` (IPv6 off in it, so
/// no housekeeping packet takes a link's random draws) and opens it.
pub fn create_emulator_namespace(name: &str) -> Result<File, String> {
    netns::create(name).map_err(|e| format!("creating namespace {name}: {e}"))?;
    let file = netns::open(name).map_err(|e| format!("opening namespace {name}: {e}"))?;
    in_namespace(&file, || {
        for conf in ["all", "default"] {
            disable_ipv6(conf)?;
        }
        Ok(())
    })?;
    Ok(file)
}

/// Turns [`live::FAR_END_OFFLOADS`] off on the two interfaces that send
/// into an emulator: `inner` in namespace `host_namespace`, and `far` (the
/// bridge-side end of the emulator's pair) in the machine's namespace.
pub fn prepare_far_ends(
    host_namespace: &str,
    inner: &str,
    far: &str,
) -> Result<[OffloadGuard; 2], String> {
    Ok([
        live::prepare_far_end(Some(host_namespace), inner).map_err(|e| e.to_string())?,
        live::prepare_far_end(None, far).map_err(|e| e.to_string())?,
    ])
}

/// Runs `work` on a thread inside the namespace open at `namespace`.
fn in_namespace<T: Send>(
    namespace: &File,
    work: impl FnOnce() -> Result<T, String> + Send,
) -> Result<T, String> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                netns::enter(namespace).map_err(|e| format!("entering a namespace: {e}"))?;
                work()
            })
            .join()
            .map_err(|_| "namespace thread panicked".to_owned())?
    })
}

/// Where an emulator goes: between a host's veth, whose machine-side end
/// `link` is on `bridge`, and that bridge.
#[derive(Debug, Clone, Copy)]
pub struct EmulatorWiring<'a> {
    /// The machine-side end of the host's veth (moves to the emulator's
    /// namespace: the emulator's side A).
    pub link: &'a str,
    pub bridge: &'a str,
    /// The new pair: `far` on the bridge, `near` in the emulator's
    /// namespace (side B).
    pub far: &'a str,
    pub near: &'a str,
    /// The host's namespace and its end of the veth.
    pub host_namespace: &'a str,
    pub inner: &'a str,
}

/// Puts the emulator between a host's link and its bridge: the link into
/// the emulator namespace, a new pair from the bridge into it, every end up
/// with IPv6 off.
pub fn put_emulator_between(
    netlink: &mut Netlink,
    emu: &File,
    wiring: &EmulatorWiring<'_>,
) -> Result<(), String> {
    let fail = |e: super::netlink::NetlinkError| e.to_string();
    let link = link_index(wiring.link).map_err(fail)?;
    netlink
        .release_from_controller(link, wiring.link)
        .map_err(fail)?;
    netlink
        .move_to_namespace(link, wiring.link, emu.as_raw_fd())
        .map_err(fail)?;
    let bridge = link_index(wiring.bridge).map_err(fail)?;
    netlink
        .add_veth(wiring.far, bridge, wiring.near, emu.as_raw_fd())
        .map_err(fail)?;
    disable_ipv6(wiring.far)?;
    let links = [wiring.link, wiring.near];
    in_namespace(emu, || {
        let mut inside = Netlink::open().map_err(fail)?;
        for name in links {
            disable_ipv6(name)?;
            inside
                .set_up(link_index(name).map_err(fail)?, name)
                .map_err(fail)?;
        }
        Ok(())
    })?;
    let namespace = netns::open(wiring.host_namespace)
        .map_err(|e| format!("opening namespace {}: {e}", wiring.host_namespace))?;
    in_namespace(&namespace, || disable_ipv6(wiring.inner))
}

/// The kernel mode's qdiscs, as [`LinkSpecs::kernel_qdiscs`] places them:
/// those in the machine's namespace (the root-side links, ingress) in one
/// `tc -batch`, those inside the hosts (`eth0`, egress) one `tc -n` each.
fn apply_kernel(plan: &LabPlan, specs: &[LinkSpecs]) -> Result<(), String> {
    let qdiscs: Vec<_> = plan
        .hosts
        .iter()
        .zip(specs)
        .flat_map(|(host, specs)| {
            specs.kernel_qdiscs(LinkEnds {
                host_namespace: &host.namespace,
                host_interface: &host.inner_link,
                outer: &host.link,
            })
        })
        .collect();
    let mut batch = String::new();
    for qdisc in qdiscs.iter().filter(|q| q.namespace.is_none()) {
        // Writing to a String cannot fail.
        let _ = writeln!(batch, "{}", qdisc.batch_line());
    }
    if !batch.is_empty() {
        run_tc(&["-batch", "-"], Some(&batch))?;
    }
    for qdisc in qdiscs.iter().filter(|q| q.namespace.is_some()) {
        let args = qdisc.tc_args();
        run_tc(&args.iter().map(String::as_str).collect::<Vec<_>>(), None)?;
    }
    Ok(())
}

fn run_tc(args: &[&str], input: Option<&str>) -> Result<(), String> {
    let mut tc = Command::new("tc")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting tc (apt-get install iproute2): {e}"))?;
    if let (Some(mut stdin), Some(input)) = (tc.stdin.take(), input) {
        stdin
            .write_all(input.as_bytes())
            .map_err(|e| format!("writing to tc: {e}"))?;
    }
    let output = tc.wait_with_output().map_err(|e| format!("tc: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "tc {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arg(text: &str) -> NetemArg {
        text.parse().unwrap()
    }

    #[test]
    fn a_spec_is_parsed_and_kept_as_text_with_single_spaces() {
        let netem = arg("delay  50ms   loss random 20%");
        assert_eq!(netem.text, "delay 50ms loss random 20%");
        assert!(netem.spec.delay.is_some() && netem.spec.loss.is_some());
    }

    #[test]
    fn a_bad_spec_is_refused_naming_it() {
        let error = "delay fast".parse::<NetemArg>().unwrap_err();
        assert!(error.contains("\"delay fast\""), "{error}");
        let error = "delay 1ms;reboot".parse::<NetemArg>().unwrap_err();
        assert!(error.contains("--netem"), "{error}");
    }

    #[test]
    fn one_spec_applies_to_all_and_several_must_match_the_instances() {
        let one = arg("delay 1ms");
        assert_eq!(
            per_instance(std::slice::from_ref(&one), 3).unwrap().len(),
            3
        );
        let error = per_instance(&[one.clone(), one.clone()], 3).unwrap_err();
        assert!(error.contains("2 --netem specs for 3 instances"), "{error}");
        assert_eq!(per_instance(&[], 3).unwrap(), []);
    }

    #[test]
    fn each_instance_link_has_its_own_seed_and_emulator_names() {
        let cidr = "10.9.0.0/24".parse().unwrap();
        let plan = LabPlan::new("ne-", cidr, &[("true".into(), 2)]).unwrap();
        let specs = per_instance(&[arg("loss 1%")], 2).unwrap();
        let records = records(
            &plan,
            &directed(&specs, Direction::Egress),
            ImpairMode::Userspace,
            7,
        );
        assert_eq!(
            records
                .iter()
                .map(|r| (r.link.as_str(), r.seed))
                .collect::<Vec<_>>(),
            [("ne-v0", 7), ("ne-v1", 8)]
        );
        assert_eq!(records[0].specs.describe(), "egress loss 1%");
        assert_eq!(
            (bridge_side("ne-", 1), emulator_side("ne-", 1)),
            ("ne-m1".into(), "ne-n1".into())
        );
    }
}
