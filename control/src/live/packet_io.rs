//! Which packet I/O backend the workers run on, in one place: `RR_IO`'s
//! choice, what this kernel allows, and the fallback.
//!
//! - `af_xdp`: the steering program attached to the interface and one XDP
//!   socket per receive queue; anything missing (no BPF permission, no XSK
//!   support, workers not one per queue) fails the start with the reason.
//! - `af_packet`: one packet socket per worker in a fanout group.
//! - `auto`: `af_xdp` where it opens, else `af_packet`, with the reason
//!   `af_xdp` did not open in the log.
//!
//! Opening happens when the workers start (the XDP program is a change to
//! the interface, made after the settings are checked), in the balancer's
//! network namespace.

use std::net::{IpAddr, Ipv4Addr};

use dataplane::io::af_packet::{AfPacketConfig, AfPacketIo};
use dataplane::io::af_xdp::program::Steering;
use dataplane::io::af_xdp::{self, AfXdpConfig, AfXdpError, AfXdpIo, XdpAttachment};
use tracing::{info, warn};

use super::args::IoChoice;

/// What the workers will open.
#[derive(Debug, Clone)]
pub struct IoPlan {
    pub choice: IoChoice,
    pub interface: String,
    pub af_packet: AfPacketConfig,
    pub steering: Steering,
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
    /// Opens one socket per worker by the plan (see the module docs).
    pub fn open(&self, workers: usize) -> Result<OpenedIo, String> {
        match self.choice {
            IoChoice::AfPacket => self.open_af_packet(workers),
            IoChoice::AfXdp => self.open_af_xdp(workers).map_err(|e| e.to_string()),
            IoChoice::Auto => match self.open_af_xdp(workers) {
                Ok(opened) => Ok(opened),
                Err(e) => {
                    warn!("RR_IO=auto: AF_XDP not usable ({e}); using AF_PACKET");
                    self.open_af_packet(workers)
                }
            },
        }
    }

    fn open_af_packet(&self, workers: usize) -> Result<OpenedIo, String> {
        let sockets = (0..workers)
            .map(|_| AfPacketIo::open(&self.af_packet).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        info!(interface = %self.interface, workers, "packet I/O: af_packet");
        Ok(OpenedIo::AfPacket(sockets))
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
