//! The kernel's netmap port for the workers, on Linux (with the netmap
//! module) and FreeBSD alike: one worker per NIC ring pair, each with its
//! own registrations of its NIC ring pair (`NR_REG_ONE_NIC`) and of a host
//! ring pair of its own (`NR_REG_ONE_SW`), all in the port's one region
//! (see `dataplane::io::netmap::kernel`).

use dataplane::io::netmap::kernel::KernelPort;
use dataplane::io::netmap::{NetmapIo, NetmapPort};
use tracing::{info, warn};

use super::frame_room::{ETHERNET_VLAN_HEADER, HEADROOM};

/// Opens `interface`'s netmap port for `workers` workers, one per NIC ring
/// pair (the interface must have that many receive rings), saying what it
/// opened; `largest_packet` (the larger of the MTU and `RR_MTU`) must
/// still fit one buffer after the headroom.
pub fn open(
    interface: &str,
    workers: usize,
    largest_packet: u32,
) -> Result<Vec<NetmapIo<KernelPort>>, String> {
    let rings = u16::try_from(workers)
        .map_err(|_| format!("RR_IO=netmap: {workers} workers exceed netmap's ring ids"))?;
    // Room in front of every frame for VIP mode's outer header, as the
    // other backends give (where the kernel refuses it, or it would leave
    // too little of a buffer for the largest frame: none).
    let frame_room = (largest_packet + ETHERNET_VLAN_HEADER) as usize;
    let ports = KernelPort::open_rings(interface, rings, HEADROOM, frame_room)
        .map_err(|e| e.to_string())?;
    if let Some(why) = ports.first().and_then(KernelPort::headroom_refused) {
        warn!(
            interface,
            "netmap: no headroom ({why}); VIP mode moves each frame it encapsulates"
        );
    }
    let ios = ports
        .into_iter()
        .map(|port| NetmapIo::new(port).map_err(|e| format!("netmap port {interface}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(first) = ios.first() {
        let register = first.port().register_info();
        info!(
            interface,
            workers,
            rx_rings = register.nr_rx_rings,
            tx_rings = register.nr_tx_rings,
            host_rings = register.nr_host_rx_rings,
            slots = register.nr_rx_slots,
            headroom = first.port().max_offset(),
            "packet I/O: netmap, a worker per NIC ring pair with its own host ring pair"
        );
    }
    Ok(ios)
}
