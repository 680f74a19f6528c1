//! `AF_PACKET`'s slot size and ring length for the live balancer (Linux):
//! the packet-socket backends (`af_packet`, and the emulated netmap port
//! over a packet socket) size their rings here.

use dataplane::io::af_packet::{AfPacketConfig, MAX_FRAME_SIZE, MIN_FRAME_SIZE, SLOT_DATA_START};

use super::frame_room::{ETHERNET_VLAN_HEADER, HEADROOM};

/// Slots a worker's RX ring has with standard 2 KiB slots; rings of larger
/// slots get proportionally fewer, so that a worker's rings take the same
/// memory (8 MiB each way) whatever the MTU.
const RING_BYTES: u32 = 4096 * MIN_FRAME_SIZE;

/// How each worker opens the interface: slots large enough for the largest
/// packet the interface can carry or the balancer may send (`largest_packet`,
/// the larger of the device's MTU and `RR_MTU`), plus a VLAN-tagged Ethernet
/// header and the headroom. A slot too small would cut such frames short:
/// they would be left to the kernel, which drops the GRE among them.
pub fn af_packet_config(
    interface: &str,
    workers: usize,
    largest_packet: u32,
) -> Result<AfPacketConfig, String> {
    let mut config = AfPacketConfig::new(interface);
    config.headroom = HEADROOM;
    let needed = SLOT_DATA_START as u32 + HEADROOM + ETHERNET_VLAN_HEADER + largest_packet;
    config.frame_size = needed.next_power_of_two().max(MIN_FRAME_SIZE);
    if config.frame_size > MAX_FRAME_SIZE {
        return Err(format!(
            "{interface}: packets of {largest_packet} bytes (the larger of its MTU and RR_MTU) \
             need {needed}-byte AF_PACKET slots, beyond the largest, {MAX_FRAME_SIZE}; lower the \
             interface's MTU (ip link set {interface} mtu 9000)"
        ));
    }
    config.ring_frames = RING_BYTES / config.frame_size;
    if workers > 1 {
        // Fanout ids are per network namespace; the process id keeps two
        // balancers in one namespace apart.
        config.fanout = Some(std::process::id() as u16);
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: u32 = 4096;

    #[test]
    fn slots_hold_the_largest_packet_with_its_headers_and_headroom() {
        for (largest, frame_size) in [(1500, 2048), (1900, 4096), (9000, 16384), (9216, 16384)] {
            let config = af_packet_config("eth0", 1, largest).unwrap();
            assert_eq!(config.frame_size, frame_size, "{largest}");
            assert!(config.validate(PAGE).is_ok(), "{largest}: {config:?}");
            let room = config.frame_size - SLOT_DATA_START as u32 - config.headroom;
            assert!(room >= largest + 18, "{largest}: {room}");
        }
    }

    #[test]
    fn rings_take_the_same_memory_whatever_the_slot_size() {
        for largest in [1500, 9216, 60_000] {
            let config = af_packet_config("eth0", 2, largest).unwrap();
            assert_eq!(config.ring_frames * config.frame_size, RING_BYTES);
            assert!(config.fanout.is_some());
        }
    }

    #[test]
    fn an_mtu_beyond_the_largest_slot_is_refused_with_the_reason() {
        let error = af_packet_config("veth0", 1, 65_535).unwrap_err();
        assert!(error.contains("65535 bytes"), "{error}");
        assert!(error.contains("lower the interface's MTU"), "{error}");
    }
}
