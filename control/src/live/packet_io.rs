//! Which packet I/O backend the workers run on, in one place: `RR_IO`'s
//! choice, what this kernel allows, and the fallback.
//!
//! - `af_xdp`: the steering program attached to the interface and one XDP
//!   socket per receive queue; anything missing (no BPF permission, no XSK
//!   support, workers not one per queue) fails the start with the reason.
//! - `af_packet`: one packet socket per worker in a fanout group.
//! - `netmap`: the kernel's netmap (`/dev/netmap`: FreeBSD, or Linux with
//!   the netmap module): one worker per NIC ring pair (`NR_REG_ONE_NIC`),
//!   each with a host ring pair of its own (`NR_REG_ONE_SW`), frames moved
//!   between rings by swapping buffers; the workers must be as many as the
//!   interface's receive rings, which is their default (`worker_count`).
//! - `netmap-emulated`: the same netmap backend, ring per worker, on a port
//!   whose kernel side runs in userspace: one NIC ring pair per worker, each
//!   filled from and sent through its own packet socket in the workers'
//!   fanout group (as `af_packet`). A test mode that runs the netmap code on
//!   machines without netmap. It copies every frame in and out, so it is
//!   slower than `af_packet`; see `dataplane::io::netmap::emulated`.
//! - `auto`: `netmap` where `/dev/netmap` exists and the workers are as
//!   many as the receive rings netmap reports for the interface (by default
//!   they are, where they fit the cores: the kernel has netmap, its fastest
//!   path), else `af_xdp` where it opens, else `af_packet`, each
//!   time with the reason the faster one did not open in the log. It never
//!   picks `netmap-emulated`.
//!
//! Opening happens when the workers start (the XDP program is a change to
//! the interface, made after the settings are checked), in the balancer's
//! network namespace.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use dataplane::io::af_packet::{AfPacketConfig, AfPacketIo};
use dataplane::io::af_xdp::program::Steering;
use dataplane::io::af_xdp::vips::{VipMaps, MAX_VIPS_PER_FAMILY};
use dataplane::io::af_xdp::{self, AfXdpConfig, AfXdpError, AfXdpIo, XdpAttachment};
use dataplane::io::netmap::emulated::{
    AfPacketDevice, EmulatedPort, EmulatedPortConfig, MAX_BUF_SIZE,
};
use dataplane::io::netmap::kernel::KernelPort;
use dataplane::io::netmap::NetmapIo;
use tracing::{info, warn};

use super::af_packet_slots::af_packet_config;
use super::args::{IoChoice, NETMAP_DEVICE};
use super::steered_vips::{VipChanges, VipFailure, VipSteering};
use super::worker_count::NetmapUse;
use super::{frame_room, netmap_port};

/// What the sockets need while the workers run: the XDP program, detached
/// when dropped (after the workers have stopped).
pub type HeldWhileRunning = XdpAttachment;

/// What the workers will open.
#[derive(Debug, Clone)]
pub struct IoPlan {
    pub choice: IoChoice,
    pub interface: String,
    pub af_packet: AfPacketConfig,
    pub steering: Steering,
    /// `auto` tries the kernel's netmap first (see [`prefers_netmap`]).
    pub auto_netmap: bool,
    /// The larger of the MTU and `RR_MTU` (what must fit a netmap buffer
    /// after its headroom).
    pub largest_packet: u32,
}

/// Whether `auto` tries netmap first: the kernel has it and reported the
/// interface's receive rings (`netmap_rx_rings`), and there is a worker per
/// ring (each serves one NIC ring pair; registering a port resets the NIC,
/// so a port it would refuse is not registered at all). Where `RR_WORKERS`
/// and `RR_CORES` are unset the workers are one per ring when they fit the
/// cores (see `worker_count`), so auto takes netmap on multi-queue NICs.
pub fn prefers_netmap(netmap_rx_rings: Option<usize>, workers: usize) -> bool {
    netmap_rx_rings == Some(workers)
}

/// How the I/O uses netmap, for the workers' default count: `netmap` does,
/// `auto` may where `/dev/netmap` exists, the others do not (the emulated
/// port lays out a ring pair per worker).
pub fn netmap_use(choice: IoChoice) -> NetmapUse {
    match choice {
        IoChoice::Netmap => NetmapUse::Chosen,
        IoChoice::Auto if Path::new(NETMAP_DEVICE).exists() => NetmapUse::AutoMay,
        _ => NetmapUse::No,
    }
}

/// The workers' sockets, opened.
#[derive(Debug)]
pub enum OpenedIo {
    AfPacket(Vec<AfPacketIo>),
    AfXdp {
        /// Held while the workers run; dropping it detaches the program.
        attachment: XdpAttachment,
        sockets: Vec<AfXdpIo>,
    },
    Netmap(Vec<NetmapIo<KernelPort>>),
    NetmapEmulated(Vec<NetmapIo<EmulatedPort<AfPacketDevice>>>),
}

impl OpenedIo {
    /// What takes VIPs' packets from the interface, to follow the
    /// services' VIPs while running: the `AF_XDP` program's VIP maps. The
    /// other backends see every frame and need none.
    pub fn vip_steering(&self) -> Result<Option<Box<dyn VipSteering>>, String> {
        match self {
            Self::AfXdp { attachment, .. } => attachment
                .vips()
                .map(|maps| Some(Box::new(maps) as Box<dyn VipSteering>))
                .map_err(|e| format!("a handle on the AF_XDP program's VIP maps: {e}")),
            _ => Ok(None),
        }
    }
}

impl VipSteering for VipMaps {
    fn what(&self) -> &'static str {
        "AF_XDP program's VIP maps"
    }

    /// Element by element (each atomic for the program).
    fn apply(&mut self, changes: &VipChanges) -> Vec<VipFailure> {
        let added = changes.added.iter().filter_map(|&vip| {
            self.insert(vip).err().map(|e| {
                let why = if e.raw_os_error() == Some(libc::E2BIG) {
                    format!("the map holds {MAX_VIPS_PER_FAMILY} VIPs of a family at most")
                } else {
                    e.to_string()
                };
                (vip, why)
            })
        });
        let mut failed: Vec<VipFailure> = added.collect();
        for &vip in &changes.removed {
            if let Err(e) = self.remove(vip) {
                failed.push((vip, e.to_string()));
            }
        }
        failed
    }
}

/// What the steering program takes: GRE to the balancer's addresses
/// (`lb`: IPv4, and IPv6 where it has one), packets to `vips`.
pub fn steering(lb: (Ipv4Addr, Option<Ipv6Addr>), vips: &[IpAddr]) -> Steering {
    Steering {
        lb_ipv4: lb.0.octets(),
        lb_ipv6: lb.1.map(|a| a.octets()),
        vips_v4: vips
            .iter()
            .filter_map(|v| match v {
                IpAddr::V4(a) => Some(a.octets()),
                IpAddr::V6(_) => None,
            })
            .collect(),
        vips_v6: vips
            .iter()
            .filter_map(|v| match v {
                IpAddr::V6(a) => Some(a.octets()),
                IpAddr::V4(_) => None,
            })
            .collect(),
    }
}

impl IoPlan {
    /// The plan for `workers` workers on `interface`: packet-socket slots
    /// for the largest packet it may carry (`largest_packet`), the
    /// steering program's addresses, and whether `auto` tries netmap, from
    /// the receive rings netmap reported (`netmap_rx_rings`, `None` without
    /// netmap). Fails when no slot is large enough.
    pub fn new(
        choice: IoChoice,
        interface: &str,
        workers: usize,
        netmap_rx_rings: Option<usize>,
        largest_packet: u32,
        lb: (Ipv4Addr, Option<Ipv6Addr>),
        vips: &[IpAddr],
    ) -> Result<Self, String> {
        Ok(Self {
            choice,
            interface: interface.to_owned(),
            af_packet: af_packet_config(interface, workers, largest_packet)?,
            steering: steering(lb, vips),
            auto_netmap: choice == IoChoice::Auto && prefers_netmap(netmap_rx_rings, workers),
            largest_packet,
        })
    }

    /// Whether the workers may run on the kernel's netmap, which transmits
    /// frames as given: the host's checksum and segmentation offloads must
    /// be off (see `receive_offloads`).
    pub fn may_use_netmap(&self) -> bool {
        self.choice == IoChoice::Netmap || self.auto_netmap
    }

    /// Whether the kernel keeps its own copy of what the balancer takes (a
    /// packet socket only taps the interface), so that nftables must drop
    /// it: not on `AF_XDP` (the program redirects those frames away from the
    /// kernel) nor on netmap (it takes them from the NIC). `auto` may fall
    /// back to `AF_PACKET`, so it keeps the rules.
    pub fn needs_host_rules(&self) -> bool {
        !matches!(self.choice, IoChoice::AfXdp | IoChoice::Netmap)
    }

    /// Opens one socket per worker by the plan (see the module docs).
    pub fn open(&self, workers: usize) -> Result<OpenedIo, String> {
        match self.choice {
            IoChoice::AfPacket => self.open_af_packet(workers),
            IoChoice::AfXdp => self.open_af_xdp(workers).map_err(|e| e.to_string()),
            IoChoice::Netmap => self.open_netmap(workers),
            IoChoice::NetmapEmulated => self.open_netmap_emulated(workers),
            IoChoice::Auto => {
                if self.auto_netmap {
                    match self.open_netmap(workers) {
                        Ok(opened) => return Ok(opened),
                        Err(e) => warn!("RR_IO=auto: netmap not usable ({e}); trying AF_XDP"),
                    }
                }
                match self.open_af_xdp(workers) {
                    Ok(opened) => Ok(opened),
                    Err(e) => {
                        warn!("RR_IO=auto: AF_XDP not usable ({e}); using AF_PACKET");
                        self.open_af_packet(workers)
                    }
                }
            }
        }
    }

    fn open_af_packet(&self, workers: usize) -> Result<OpenedIo, String> {
        let sockets = (0..workers)
            .map(|_| AfPacketIo::open(&self.af_packet).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        info!(interface = %self.interface, workers, "packet I/O: af_packet");
        Ok(OpenedIo::AfPacket(sockets))
    }

    /// The kernel's netmap port, a worker per NIC ring pair (the rings
    /// are checked against the workers before registering).
    fn open_netmap(&self, workers: usize) -> Result<OpenedIo, String> {
        netmap_port::open(&self.interface, workers, self.largest_packet).map(OpenedIo::Netmap)
    }

    /// One emulated port with a NIC ring pair and a host ring pair per
    /// worker, ring pair `i` over its own packet socket in the workers'
    /// fanout group (the group spreads flows over the sockets as RSS
    /// spreads them over a NIC's rings), each worker registered for its
    /// own pair as on the kernel's netmap; buffers as large as the packet
    /// socket's slots, with the same room in front of each frame (netmap's
    /// offsets), so every frame `af_packet` would take fits one buffer and
    /// VIP mode encapsulates without moving it.
    fn open_netmap_emulated(&self, workers: usize) -> Result<OpenedIo, String> {
        let config = EmulatedPortConfig {
            buf_size: self.af_packet.frame_size.min(MAX_BUF_SIZE),
            offset: frame_room::HEADROOM,
            ..EmulatedPortConfig::new(self.interface.as_str())
        };
        let devices = (0..workers)
            .map(|_| AfPacketDevice::open(&self.af_packet).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        let ports = EmulatedPort::open_rings(&config, devices)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|port| NetmapIo::new(port).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        info!(
            interface = %self.interface,
            workers,
            ring_pairs = ports.len(),
            buf_size = config.buf_size,
            headroom = config.offset,
            slots = config.nic_slots,
            "packet I/O: netmap on the emulated port, a worker per NIC ring pair \
             (a test mode: frames are copied)"
        );
        Ok(OpenedIo::NetmapEmulated(ports))
    }

    fn open_af_xdp(&self, workers: usize) -> Result<OpenedIo, AfXdpError> {
        let interface = self.interface.as_str();
        let queues = af_xdp::rx_queues(interface).unwrap_or(1);
        let worker_count = u32::try_from(workers).unwrap_or(u32::MAX);
        if queues != worker_count {
            return Err(AfXdpError::WorkersNotQueues {
                interface: interface.to_owned(),
                queues,
                workers: worker_count,
            });
        }
        let attachment = XdpAttachment::attach(interface, &self.steering, worker_count, None)?;
        let sockets = (0..worker_count)
            .map(|queue| {
                let config = AfXdpConfig {
                    queue,
                    ..AfXdpConfig::default()
                };
                AfXdpIo::open(&attachment, &config)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let zero_copy = sockets.iter().all(AfXdpIo::is_zero_copy);
        info!(
            interface,
            workers,
            program = ?attachment.mode(),
            driver_mode_refused = ?attachment.native_refused().map(ToString::to_string),
            copy = if zero_copy { "zero-copy" } else { "copy mode" },
            host_path = ?sockets.first().and_then(AfXdpIo::host_path),
            "packet I/O: af_xdp"
        );
        Ok(OpenedIo::AfXdp {
            attachment,
            sockets,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_prefers_netmap_only_where_the_kernel_has_it_and_a_worker_serves_each_queue() {
        assert!(prefers_netmap(Some(1), 1));
        assert!(prefers_netmap(Some(4), 4), "a worker per NIC ring pair");
        assert!(!prefers_netmap(None, 1), "no netmap");
        assert!(!prefers_netmap(Some(1), 2), "a worker without a ring");
        assert!(!prefers_netmap(Some(4), 1), "rings no worker reads");
    }

    #[test]
    fn auto_takes_netmap_on_a_multi_queue_nic_when_the_workers_default_to_its_rings() {
        use super::super::worker_count::plan_workers;
        let workers = |rings| {
            plan_workers(
                None,
                None,
                NetmapUse::AutoMay,
                Some(rings),
                &[0, 1, 2, 3],
                "ix0",
            )
            .unwrap()
            .cores
            .len()
        };
        assert!(prefers_netmap(Some(4), workers(4)));
        assert!(prefers_netmap(Some(2), workers(2)));
        assert!(
            !prefers_netmap(Some(8), workers(8)),
            "more rings than cores: one worker, on af_xdp or af_packet"
        );
    }

    #[test]
    fn only_backends_that_leave_the_kernel_a_copy_need_the_nftables_rules() {
        let plan = |choice| {
            IoPlan::new(
                choice,
                "eth0",
                1,
                None,
                1500,
                (Ipv4Addr::new(10, 0, 0, 1), None),
                &[],
            )
            .unwrap()
        };
        assert!(!plan(IoChoice::AfXdp).needs_host_rules());
        assert!(plan(IoChoice::AfPacket).needs_host_rules());
        assert!(plan(IoChoice::NetmapEmulated).needs_host_rules());
        assert!(plan(IoChoice::Auto).needs_host_rules(), "it may fall back");
        assert!(!plan(IoChoice::AfXdp).may_use_netmap());
    }
}

#[cfg(test)]
mod netmap_use_tests {
    use super::*;

    #[test]
    fn netmap_and_auto_where_the_kernel_has_it_default_to_a_worker_per_ring() {
        assert_eq!(netmap_use(IoChoice::Netmap), NetmapUse::Chosen);
        let auto = if Path::new(NETMAP_DEVICE).exists() {
            NetmapUse::AutoMay
        } else {
            NetmapUse::No
        };
        assert_eq!(netmap_use(IoChoice::Auto), auto);
        for other in [
            IoChoice::AfPacket,
            IoChoice::AfXdp,
            IoChoice::NetmapEmulated,
        ] {
            assert_eq!(netmap_use(other), NetmapUse::No, "{other:?}");
        }
    }
}
