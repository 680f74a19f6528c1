//! The kernel's netmap port for the workers, on Linux (with the netmap
//! module) and FreeBSD alike: one worker per NIC ring pair, each with its
//! own registrations of its NIC ring pair (`NR_REG_ONE_NIC`) and of a host
//! ring pair of its own (`NR_REG_ONE_SW`), all in the port's one region
//! (see `dataplane::io::netmap::kernel`).

use dataplane::io::netmap::kernel::KernelPort;
use dataplane::io::netmap::port_info::port_info;
use dataplane::io::netmap::{NetmapIo, NetmapPort};
use tracing::{info, warn};

use super::frame_room::{ETHERNET_VLAN_HEADER, HEADROOM};

/// How many NIC receive rings netmap gives `interface` (one per receive
/// queue), asked without registering the port (`NETMAP_REQ_PORT_INFO_GET`:
/// a register resets the NIC), on Linux and FreeBSD alike; the same count
/// the registration's answer is checked against.
pub fn rx_rings(interface: &str) -> Result<usize, String> {
    port_info(interface)
        .map(|info| usize::from(info.nr_rx_rings))
        .map_err(|e| e.to_string())
}

/// Why `workers` workers cannot serve `rings` receive rings (`None`: they
/// can, one each).
pub fn ring_mismatch(interface: &str, rings: usize, workers: usize) -> Option<String> {
    (rings != workers).then(|| {
        format!(
            "{interface}: {rings} receive queues and {workers} workers; netmap runs a worker per \
             NIC ring pair: set RR_WORKERS={rings} (or leave RR_WORKERS and RR_CORES unset: one \
             per ring pair is the default), or give the interface {workers} queues (Linux: \
             ethtool -L {interface} combined {workers}; FreeBSD iflib drivers: \
             dev.DRIVER.UNIT.iflib.override_nrxqs and override_ntxqs in loader.conf)"
        )
    })
}

/// Opens `interface`'s netmap port for `workers` workers, one per NIC ring
/// pair (the interface must have that many receive rings), saying what it
/// opened; `largest_packet` (the larger of the MTU and `RR_MTU`) must
/// still fit one buffer after the headroom.
pub fn open(
    interface: &str,
    workers: usize,
    largest_packet: u32,
) -> Result<Vec<NetmapIo<KernelPort>>, String> {
    // Checked before registering: a register resets the NIC.
    if let Some(why) = ring_mismatch(interface, rx_rings(interface)?, workers) {
        return Err(why);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_must_match_the_receive_rings_and_the_refusal_says_both_ways_out() {
        assert_eq!(ring_mismatch("ix0", 4, 4), None);
        let message = ring_mismatch("ix0", 4, 2).unwrap();
        assert!(
            message.contains("4 receive queues and 2 workers"),
            "{message}"
        );
        assert!(message.contains("RR_WORKERS=4"), "{message}");
        assert!(message.contains("ethtool -L ix0 combined 2"), "{message}");
        assert!(message.contains("override_nrxqs"), "{message}");
        assert!(ring_mismatch("ix0", 1, 2).is_some());
    }
}
