//! The steering program loaded with its maps, not yet attached: the
//! `XSKMAP` the sockets join and the VIP sets holding the VIPs at start.
//! [`super::XdpAttachment`] attaches it to an interface; the program's
//! tests run it as it is (`BPF_PROG_TEST_RUN`).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::bpf::{Program, XskMap};
use super::error::AfXdpError;
use super::program::{MapFds, Steering};
use super::vips::VipMaps;

/// The program and the maps it names, which live as long as it does.
#[derive(Debug)]
pub struct LoadedSteering {
    pub xsks: XskMap,
    pub vips: VipMaps,
    pub program: Program,
}

impl LoadedSteering {
    /// Creates the maps (the `XSKMAP` with room for `queues`, the VIP sets
    /// holding `steering`'s VIPs) and loads the program, which redirects to
    /// a missing socket with `on_missing_socket`. `interface` names where
    /// it is for, in errors.
    pub fn load(
        interface: &str,
        steering: &Steering,
        queues: u32,
        on_missing_socket: u32,
    ) -> Result<Self, AfXdpError> {
        let xsks = XskMap::create(queues)
            .map_err(|e| AfXdpError::call(interface, "bpf(BPF_MAP_CREATE, XSKMAP)", e))?;
        let vips = VipMaps::create()
            .map_err(|e| AfXdpError::call(interface, "bpf(BPF_MAP_CREATE, VIP sets)", e))?;
        let v4 = steering
            .vips_v4
            .iter()
            .map(|&a| IpAddr::V4(Ipv4Addr::from(a)));
        let v6 = steering
            .vips_v6
            .iter()
            .map(|&a| IpAddr::V6(Ipv6Addr::from(a)));
        for vip in v4.chain(v6) {
            vips.insert(vip).map_err(|e| {
                AfXdpError::call(
                    interface,
                    "bpf(BPF_MAP_UPDATE_ELEM, VIP sets)",
                    io::Error::new(e.kind(), format!("VIP {vip}: {e}")),
                )
            })?;
        }
        let (vips_v4, vips_v6) = vips.fds();
        let maps = MapFds {
            xsks: xsks.fd(),
            vips_v4,
            vips_v6,
        };
        let insns = steering
            .program(maps, on_missing_socket)
            .map_err(|e| AfXdpError::Load {
                source: io::Error::other(format!("{e:?}")),
                log: String::new(),
            })?;
        let program = Program::load(&insns).map_err(|e| AfXdpError::Load {
            source: e.error,
            log: e.log,
        })?;
        Ok(Self {
            xsks,
            vips,
            program,
        })
    }
}
