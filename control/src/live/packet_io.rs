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
//!   interface's receive queues.
//! - `netmap-emulated`: the same netmap backend, ring per worker, on a port
//!   whose kernel side runs in userspace: one NIC ring pair per worker, each
//!   filled from and sent through its own packet socket in the workers'
//!   fanout group (as `af_packet`). A test mode that runs the netmap code on
//!   machines without netmap. It copies every frame in and out, so it is
//!   slower than `af_packet`; see `dataplane::io::netmap::emulated`.
//! - `auto`: `netmap` where `/dev/netmap` exists and the workers are as
//!   many as the interface's receive queues (the kernel has netmap: its
//!   fastest path), else `af_xdp` where it opens, else `af_packet`, each
//!   time with the reason the faster one did not open in the log. It never
//!   picks `netmap-emulated`.
//!
//! Opening happens when the workers start (the XDP program is a change to
//! the interface, made after the settings are checked), in the balancer's
//! network namespace.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use dataplane::io::af_packet::{AfPacketConfig, AfPacketIo};
use dataplane::io::af_xdp::program::Steering;
use dataplane::io::af_xdp::{self, AfXdpConfig, AfXdpError, AfXdpIo, XdpAttachment};
use dataplane::io::netmap::emulated::{
    AfPacketDevice, EmulatedPort, EmulatedPortConfig, MAX_BUF_SIZE,
};
use dataplane::io::netmap::kernel::KernelPort;
use dataplane::io::netmap::NetmapIo;
use tracing::{info, warn};

use super::af_packet_slots::af_packet_config;
use super::args::IoChoice;
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

/// Whether `auto` tries netmap first: the kernel has it and there is a
/// worker per receive queue (each serves one NIC ring pair; registering a
/// port resets the NIC, so a port it would refuse is not registered at
/// all).
pub fn prefers_netmap(netmap_device_exists: bool, workers: usize, rx_queues: u32) -> bool {
    netmap_device_exists && usize::try_from(rx_queues).is_ok_and(|queues| queues == workers)
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

/// What the steering program takes: GRE to `lb_ip`, packets to `vips`.
pub fn steering(lb_ip: Ipv4Addr, vips: &[IpAddr]) -> Steering {
    Steering {
        lb_ipv4: lb_ip.octets(),
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
    /// for the largest packet it may carry (`largest_packet`), and the
    /// steering program's addresses. Fails when no slot is large enough.
    pub fn new(
        choice: IoChoice,
        interface: &str,
        workers: usize,
        largest_packet: u32,
        lb_ip: Ipv4Addr,
        vips: &[IpAddr],
    ) -> Result<Self, String> {
        Ok(Self {
            choice,
            interface: interface.to_owned(),
            af_packet: af_packet_config(interface, workers, largest_packet)?,
            steering: steering(lb_ip, vips),
            auto_netmap: choice == IoChoice::Auto
                && prefers_netmap(
                    Path::new("/dev/netmap").exists(),
                    workers,
                    af_xdp::rx_queues(interface).unwrap_or(1),
                ),
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

    fn open_netmap(&self, workers: usize) -> Result<OpenedIo, String> {
        // Checked before registering: a register resets the NIC.
        let queues = af_xdp::rx_queues(&self.interface).unwrap_or(1);
        if usize::try_from(queues).ok() != Some(workers) {
            return Err(format!(
                "{}: {queues} receive queues and {workers} workers; netmap runs a worker per \
                 NIC ring pair: set RR_WORKERS={queues}, or give the interface {workers} \
                 queues (ethtool -L {} combined {workers})",
                self.interface, self.interface
            ));
        }
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
        assert!(prefers_netmap(true, 1, 1));
        assert!(prefers_netmap(true, 4, 4), "a worker per NIC ring pair");
        assert!(!prefers_netmap(false, 1, 1));
        assert!(!prefers_netmap(true, 2, 1), "a worker without a ring");
        assert!(!prefers_netmap(true, 1, 4), "rings no worker reads");
    }

    #[test]
    fn only_backends_that_leave_the_kernel_a_copy_need_the_nftables_rules() {
        let plan =
            |choice| IoPlan::new(choice, "eth0", 1, 1500, Ipv4Addr::new(10, 0, 0, 1), &[]).unwrap();
        assert!(!plan(IoChoice::AfXdp).needs_host_rules());
        assert!(plan(IoChoice::AfPacket).needs_host_rules());
        assert!(plan(IoChoice::NetmapEmulated).needs_host_rules());
        assert!(plan(IoChoice::Auto).needs_host_rules(), "it may fall back");
        assert!(!plan(IoChoice::AfXdp).may_use_netmap());
    }
}
