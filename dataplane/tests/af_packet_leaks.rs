//! Opening and closing `AfPacketIo` leaves no descriptor or mapping behind
//! (needs root; prints `skipped: <reason>` otherwise). Its own test binary, so
//! no other test opens files while it counts.

mod af_packet_lab;

use af_packet_lab::{in_namespace, VethLab};
use dataplane::io::af_packet::{AfPacketConfig, AfPacketIo};

/// Closing a packet socket waits for an RCU grace period (tens of
/// milliseconds), so the cycles run on several threads at once.
const THREADS: usize = 10;
const CYCLES_PER_THREAD: usize = 100;

fn count_lines(path: &str) -> usize {
    std::fs::read_to_string(path).unwrap().lines().count()
}

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Runs `cycles` open/close cycles on each of `THREADS` threads (which
/// inherit the caller's network namespace).
fn cycle(config: &AfPacketConfig, cycles: usize) {
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                for _ in 0..cycles {
                    let io = AfPacketIo::open(config).unwrap();
                    drop(io);
                }
            });
        }
    });
}

#[test]
fn a_thousand_open_close_cycles_leak_no_descriptor_or_mapping() {
    let Some(lab) = VethLab::start("rrap6-") else {
        return;
    };
    let (before, after) = in_namespace(&lab.ns_a(), || {
        let config = AfPacketConfig::new("a0");
        // One round first, so that thread stacks (cached by the C library for
        // reuse), allocator arenas and lazily loaded pieces exist before
        // counting.
        cycle(&config, 1);
        let before = (open_descriptors(), count_lines("/proc/self/maps"));
        cycle(&config, CYCLES_PER_THREAD);
        let after = (open_descriptors(), count_lines("/proc/self/maps"));
        (before, after)
    });
    println!(
        "{} cycles: (descriptors, mappings) before {before:?}, after {after:?}",
        THREADS * CYCLES_PER_THREAD
    );
    assert_eq!(before, after);
}
