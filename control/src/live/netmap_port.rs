//! The kernel's netmap port for the workers, on Linux (with the netmap
//! module) and FreeBSD alike: one port with every NIC ring and the host
//! rings, served by one worker (a second registration of the same rings
//! would be refused).

use dataplane::io::netmap::kernel::KernelPort;
use dataplane::io::netmap::{NetmapIo, NetmapPort};
use tracing::{info, warn};

use super::frame_room::{ETHERNET_VLAN_HEADER, HEADROOM};

/// Opens `interface`'s netmap port for `workers` workers (one, in this
/// build), saying what it opened; `largest_packet` (the larger of the MTU
/// and `RR_MTU`) must still fit one buffer after the headroom.
pub fn open(
    interface: &str,
    workers: usize,
    largest_packet: u32,
) -> Result<NetmapIo<KernelPort>, String> {
    if workers != 1 {
        return Err(format!(
            "RR_IO=netmap runs one worker per port in this build ({workers} asked): set RR_WORKERS=1"
        ));
    }
    // Room in front of every frame for VIP mode's outer header, as the
    // other backends give (where the kernel refuses it, or it would leave
    // too little of a buffer for the largest frame: none).
    let frame_room = (largest_packet + ETHERNET_VLAN_HEADER) as usize;
    let port = KernelPort::open(interface, HEADROOM, frame_room).map_err(|e| e.to_string())?;
    if let Some(why) = port.headroom_refused() {
        warn!(
            interface,
            "netmap: no headroom ({why}); VIP mode moves each frame it encapsulates"
        );
    }
    let register = port.register_info();
    let io = NetmapIo::new(port).map_err(|e| format!("netmap port {interface}: {e}"))?;
    info!(
        interface,
        rx_rings = register.nr_rx_rings,
        tx_rings = register.nr_tx_rings,
        slots = register.nr_rx_slots,
        headroom = io.port().max_offset(),
        "packet I/O: netmap"
    );
    Ok(io)
}
