//! Creating and removing the objects of a planned lab. Creation runs on
//! several threads, each with its own netlink sockets; removal tolerates
//! objects that are already gone, so it can finish any half-built lab.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::time::Duration;

use super::netlink::{link_index, Netlink, NetlinkError, VxlanDevice};
use super::netns;
use super::plan::{Host, LabPlan};

/// Threads creating hosts at once: netlink work is mostly kernel time under
/// the RTNL lock, so a few threads overlap the rest (namespace setup, waits).
const BUILDERS: usize = 4;

/// Why a lab could not be built.
#[derive(Debug)]
pub enum BuildError {
    Netlink(NetlinkError),
    Namespace { name: String, source: io::Error },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Netlink(error) => error.fmt(f),
            Self::Namespace { name, source } => {
                write!(f, "network namespace {name}: {source}")
            }
        }
    }
}

impl std::error::Error for BuildError {}

impl From<NetlinkError> for BuildError {
    fn from(error: NetlinkError) -> Self {
        Self::Netlink(error)
    }
}

fn namespace_error(name: &str) -> impl FnOnce(io::Error) -> BuildError + '_ {
    move |source| BuildError::Namespace {
        name: name.to_owned(),
        source,
    }
}

/// Creates the bridges (the first with the first address unless another
/// machine holds it, any others chained to it), the VXLAN to the other
/// machines if the lab has one, and every host: namespace,
/// veth pair (one end on the bridge, `eth0` inside, both with the
/// instances' MTU), `lo` and `eth0` up,
/// the host's address. Must run in the machine's network namespace.
pub fn create(plan: &LabPlan) -> Result<(), BuildError> {
    let mut netlink = Netlink::open()?;
    netlink.add_bridge(&plan.bridge)?;
    let bridge = link_index(&plan.bridge)?;
    if plan.holds_bridge_address() {
        netlink.add_address(
            bridge,
            &plan.bridge,
            plan.bridge_address,
            plan.cidr.prefix_len,
        )?;
    }
    if let Some(vxlan) = &plan.vxlan {
        netlink.add_vxlan(
            &VxlanDevice {
                name: &vxlan.name,
                id: vxlan.id,
                port: vxlan.port,
                underlying: link_index(&vxlan.device)?,
                local: vxlan.local,
            },
            bridge,
        )?;
        let index = link_index(&vxlan.name)?;
        for remote in &vxlan.remotes {
            netlink.append_flood_remote(index, &vxlan.name, *remote)?;
        }
    }
    let mtu = plan.instance_mtu();
    let root = File::open("/proc/thread-self/ns/net").map_err(namespace_error("of the machine"))?;
    // Bridge indices by position: the first, then the chained extra ones.
    let mut bridges = vec![bridge];
    for join in &plan.extra_bridges {
        netlink.add_bridge(&join.bridge)?;
        let this = link_index(&join.bridge)?;
        let before = bridges[bridges.len() - 1];
        netlink.add_veth(&join.link, this, &join.peer, root.as_raw_fd())?;
        netlink.set_controller_up(link_index(&join.peer)?, &join.peer, before)?;
        bridges.push(this);
    }
    let bridges = &bridges;
    let chunk = plan.hosts.len().div_ceil(BUILDERS).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = plan
            .hosts
            .chunks(chunk)
            .map(|hosts| {
                let root = &root;
                scope.spawn(move || -> Result<(), BuildError> {
                    // Entered explicitly: a scoped thread starts in the
                    // namespace of the process, which is this one's anyway.
                    netns::enter(root).map_err(namespace_error("of the machine"))?;
                    let mut netlink = Netlink::open()?;
                    for host in hosts {
                        let bridge = bridges[host.bridge_index.min(bridges.len() - 1)];
                        create_host(&mut netlink, root, bridge, host, plan.cidr.prefix_len, mtu)?;
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

fn create_host(
    netlink: &mut Netlink,
    root: &File,
    bridge: u32,
    host: &Host,
    prefix_len: u8,
    mtu: Option<u32>,
) -> Result<(), BuildError> {
    let name = host.namespace.as_str();
    netns::create(name).map_err(namespace_error(name))?;
    let namespace = netns::open(name).map_err(namespace_error(name))?;
    netlink.add_veth(&host.link, bridge, &host.inner_link, namespace.as_raw_fd())?;
    if let Some(mtu) = mtu {
        netlink.set_mtu(link_index(&host.link)?, &host.link, mtu)?;
    }
    netns::enter(&namespace).map_err(namespace_error(name))?;
    let inside = (|| -> Result<(), BuildError> {
        let mut inner = Netlink::open()?;
        inner.set_up(link_index("lo")?, "lo")?;
        let link = link_index(&host.inner_link)?;
        if let Some(mtu) = mtu {
            inner.set_mtu(link, &host.inner_link, mtu)?;
        }
        inner.add_address(link, &host.inner_link, host.address, prefix_len)?;
        inner.set_up(link, &host.inner_link)?;
        Ok(())
    })();
    netns::enter(root).map_err(namespace_error("of the machine"))?;
    inside
}

/// How long `remove` waits for the kernel to destroy the links of deleted
/// namespaces before deleting what is left itself.
const LINKS_GONE_WAIT: Duration = Duration::from_secs(30);

/// Removes everything of lab `plan` that still exists: stops the processes
/// left in its namespaces (SIGTERM, then SIGKILL after `grace`), deletes the
/// namespaces and the bridge, and returns once the veth pairs are gone too
/// (the kernel destroys them with the namespaces, asynchronously), so a lab
/// of the same prefix can be built right after. Returns the problems met, if
/// any (as text, for the user).
pub fn remove(prefix: &str, bridge: &str, grace: Duration) -> Vec<String> {
    let mut problems = Vec::new();
    let namespaces = netns::list(prefix);
    stop_processes(&namespaces, grace);
    for name in &namespaces {
        if let Err(error) = netns::delete(name) {
            problems.push(format!("namespace {name}: {error}"));
        }
    }
    // The bridges, the veth pairs joining them and the VXLAN (`{prefix}vx`)
    // live in this namespace: delete them; the instances' pairs go with
    // their namespaces.
    let own: Vec<String> = links_with(prefix)
        .into_iter()
        .filter(|link| link == bridge || !is_instance_link(prefix, link))
        .collect();
    if !own.is_empty() {
        match Netlink::open() {
            Ok(mut netlink) => {
                for link in own {
                    // A join's second end goes with its first: not an error.
                    if let Err(error) = netlink.delete_link(&link) {
                        if error.source.raw_os_error() != Some(libc::ENODEV) {
                            problems.push(error.to_string());
                        }
                    }
                }
            }
            Err(error) => problems.push(error.to_string()),
        }
    }
    let started = std::time::Instant::now();
    while !links_with(prefix).is_empty() && started.elapsed() < LINKS_GONE_WAIT {
        std::thread::sleep(Duration::from_millis(10));
    }
    let left = links_with(prefix);
    if !left.is_empty() {
        match Netlink::open() {
            Ok(mut netlink) => {
                for link in left {
                    if let Err(error) = netlink.delete_link(&link) {
                        problems.push(error.to_string());
                    }
                }
            }
            Err(error) => problems.push(error.to_string()),
        }
    }
    problems
}

/// `{prefix}v{digits}`: an instance's end of its veth pair.
fn is_instance_link(prefix: &str, link: &str) -> bool {
    link.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('v'))
        .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

/// Links of this namespace whose name starts with `prefix`.
fn links_with(prefix: &str) -> Vec<String> {
    super::prefixed::entries_named("/sys/class/net", prefix)
}

fn stop_processes(namespaces: &[String], grace: Duration) {
    let signal_all = |signal| {
        let mut any = false;
        for name in namespaces {
            for pid in netns::processes_in(name) {
                // SAFETY: kill has no memory effects; these pids were read
                // from /proc just now and live in the lab's namespaces.
                unsafe { libc::kill(pid, signal) };
                any = true;
            }
        }
        any
    };
    if !signal_all(libc::SIGTERM) {
        return;
    }
    let step = Duration::from_millis(20);
    let mut waited = Duration::ZERO;
    while waited < grace {
        std::thread::sleep(step);
        waited += step;
        if namespaces
            .iter()
            .all(|name| netns::processes_in(name).is_empty())
        {
            return;
        }
    }
    signal_all(libc::SIGKILL);
}
