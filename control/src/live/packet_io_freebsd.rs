//! The workers' packet I/O on FreeBSD: netmap, the only backend there
//! (`RR_IO=netmap`, and `auto`, which is netmap). netmap is in FreeBSD's
//! GENERIC kernel; the port is opened as on Linux ([`super::netmap_port`]).
//! `AF_PACKET`, `AF_XDP` and the emulated port are Linux's.
//!
//! Opening happens when the workers start, after the settings are checked.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use dataplane::io::netmap::kernel::KernelPort;
use dataplane::io::netmap::NetmapIo;

use super::args::IoChoice;
use super::netmap_port;
use super::worker_count::NetmapUse;

/// Nothing needs holding while netmap workers run (the port is the
/// worker's own): the type has no value.
#[derive(Debug)]
pub enum HeldWhileRunning {}

/// What the workers will open.
#[derive(Debug, Clone)]
pub struct IoPlan {
    pub choice: IoChoice,
    pub interface: String,
    /// The larger of the MTU and `RR_MTU`: it must fit a netmap buffer
    /// after the headroom.
    pub largest_packet: u32,
}

/// netmap, whatever `RR_IO` says (`auto` is netmap here): the workers
/// default to one per NIC ring pair.
pub fn netmap_use(_choice: IoChoice) -> NetmapUse {
    NetmapUse::Chosen
}

/// The workers' ports, opened.
#[derive(Debug)]
pub enum OpenedIo {
    Netmap(Vec<NetmapIo<KernelPort>>),
}

impl OpenedIo {
    /// None: netmap takes every frame, whatever its destination.
    pub fn vip_steering(
        &self,
    ) -> Result<Option<Box<dyn super::steered_vips::VipSteering>>, String> {
        Ok(None)
    }
}

impl IoPlan {
    /// The plan for `workers` workers on `interface`. netmap's buffers are
    /// the kernel's, so the largest packet only decides whether headroom
    /// fits them, no steering program takes addresses, and netmap is
    /// always tried (its rings are checked against the workers when the
    /// port opens): the other arguments are Linux's.
    pub fn new(
        choice: IoChoice,
        interface: &str,
        _workers: usize,
        _netmap_rx_rings: Option<usize>,
        largest_packet: u32,
        _lb: (Ipv4Addr, Option<Ipv6Addr>),
        _vips: &[IpAddr],
    ) -> Result<Self, String> {
        Ok(Self {
            choice,
            interface: interface.to_owned(),
            largest_packet,
        })
    }

    /// Always: netmap is the only backend here.
    pub fn may_use_netmap(&self) -> bool {
        true
    }

    /// Opens the netmap port for the workers, one per NIC ring pair (the
    /// rings netmap reports are checked before registering, and the
    /// registration's answer after: a worker per receive ring).
    pub fn open(&self, workers: usize) -> Result<OpenedIo, String> {
        match self.choice {
            IoChoice::Netmap | IoChoice::Auto => {
                netmap_port::open(&self.interface, workers, self.largest_packet)
                    .map(OpenedIo::Netmap)
            }
        }
    }
}
