//! Configuration and error tests that need no privileges; the socket itself
//! is tested on veth pairs in `dataplane/tests/af_packet_veth.rs`.

use super::*;

const PAGE: u32 = 4096;

#[test]
fn the_default_configuration_is_valid() {
    assert_eq!(AfPacketConfig::new("eth0").validate(PAGE), Ok(()));
}

#[test]
fn interface_names_the_kernel_cannot_hold_are_refused() {
    for name in ["", "sixteen-bytes-xx", "a\0b"] {
        let config = AfPacketConfig::new(name);
        assert_eq!(
            config.validate(PAGE),
            Err(AfPacketConfigError::InterfaceName(name.to_owned()))
        );
    }
    assert_eq!(
        AfPacketConfig::new("fifteen-bytes-x").validate(PAGE),
        Ok(())
    );
}

#[test]
fn frame_sizes_must_be_powers_of_two_in_range() {
    for size in [0, 1024, 3000, 131_072] {
        let config = AfPacketConfig {
            frame_size: size,
            ..AfPacketConfig::new("eth0")
        };
        assert_eq!(
            config.validate(PAGE),
            Err(AfPacketConfigError::FrameSize(size))
        );
    }
}

#[test]
fn a_ring_must_fill_at_least_one_memory_block() {
    let config = AfPacketConfig {
        ring_frames: 1,
        ..AfPacketConfig::new("eth0")
    };
    assert_eq!(
        config.validate(PAGE),
        Err(AfPacketConfigError::RingFrames {
            ring_frames: 1,
            min: 2
        })
    );
    let big_slots = AfPacketConfig {
        ring_frames: 1,
        frame_size: 8192,
        ..AfPacketConfig::new("eth0")
    };
    assert_eq!(big_slots.validate(PAGE), Ok(()));
}

#[test]
fn ring_frames_must_be_a_power_of_two() {
    let config = AfPacketConfig {
        ring_frames: 1000,
        ..AfPacketConfig::new("eth0")
    };
    assert!(matches!(
        config.validate(PAGE),
        Err(AfPacketConfigError::RingFrames { .. })
    ));
}

#[test]
fn headroom_must_leave_room_for_a_full_ethernet_frame() {
    let config = AfPacketConfig {
        headroom: 600,
        ..AfPacketConfig::new("eth0")
    };
    assert_eq!(
        config.validate(PAGE),
        Err(AfPacketConfigError::HeadroomTooLarge {
            headroom: 600,
            frame_size: 2048
        })
    );
}

#[test]
fn ring_request_uses_page_sized_blocks_of_contiguous_slots() {
    let request = AfPacketConfig::new("eth0").ring_request(PAGE);
    assert_eq!(request.tp_block_size, 4096);
    assert_eq!(request.tp_block_nr, 512);
    assert_eq!(request.tp_frame_size, 2048);
    assert_eq!(request.tp_frame_nr, 1024);
    let big = AfPacketConfig {
        frame_size: 16384,
        ring_frames: 8,
        ..AfPacketConfig::new("eth0")
    }
    .ring_request(PAGE);
    assert_eq!((big.tp_block_size, big.tp_block_nr), (16384, 8));
}

#[test]
fn call_errors_name_the_interface_and_the_call() {
    let error = AfPacketError::call(
        "veth7",
        "setsockopt(PACKET_RX_RING)",
        io::Error::from_raw_os_error(libc::ENOMEM),
    );
    let text = error.to_string();
    assert!(text.contains("veth7"), "{text}");
    assert!(text.contains("setsockopt(PACKET_RX_RING)"), "{text}");
}

#[test]
fn permission_errors_say_what_is_needed() {
    let error = AfPacketError::call(
        "veth7",
        "socket(AF_PACKET, SOCK_RAW)",
        io::Error::from_raw_os_error(libc::EPERM),
    );
    assert!(error.to_string().contains("CAP_NET_RAW"));
    let io_error: io::Error = error.into();
    assert_eq!(io_error.kind(), io::ErrorKind::PermissionDenied);
}

#[test]
fn opening_a_missing_interface_names_it() {
    let error = AfPacketIo::open(&AfPacketConfig::new("rr-no-such0")).unwrap_err();
    // Without CAP_NET_RAW the lookup still comes first, so this holds for anyone.
    assert!(
        matches!(error, AfPacketError::NoSuchInterface { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("rr-no-such0"));
}
