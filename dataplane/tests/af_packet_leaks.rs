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

/// (all mappings, mappings of sockets: the rings).
fn mappings() -> (usize, usize) {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let sockets = maps.lines().filter(|l| l.contains("socket:")).count();
    (maps.lines().count(), sockets)
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
    // One malloc arena: otherwise the C library may add an arena (two
    // mappings) for a thread that meets contention, which is not ours.
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only changes the allocator's tuning; no allocation is
    // in flight on another thread of this test binary.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
    let (before, after) = in_namespace(&lab.ns_a(), || {
        let config = AfPacketConfig::new("a0");
        // One round first, so that thread stacks (cached by the C library for
        // reuse), allocator arenas and lazily loaded pieces exist before
        // counting.
        cycle(&config, 1);
        let before = (open_descriptors(), mappings());
        cycle(&config, CYCLES_PER_THREAD);
        let after = (open_descriptors(), mappings());
        // The counts see an open socket: one descriptor and its ring mapping.
        let io = AfPacketIo::open(&config).unwrap();
        let (fds, (_, rings)) = (open_descriptors(), mappings());
        assert_eq!((fds, rings), (before.0 + 1, before.1 .1 + 1));
        drop(io);
        (before, after)
    });
    println!(
        "{} cycles: (descriptors, (mappings, ring mappings)) before {before:?}, after {after:?}",
        THREADS * CYCLES_PER_THREAD
    );
    let ((fds_before, (lines_before, rings_before)), (fds_after, (lines_after, rings_after))) =
        (before, after);
    assert_eq!(fds_after, fds_before, "descriptors leaked");
    assert_eq!(rings_after, rings_before, "ring mappings leaked");
    // The whole map also moves with where thread stacks land (neighbouring
    // mappings merge into one line), by at most two lines per thread; a leak
    // of anything per cycle would add a thousand.
    assert!(
        lines_after.abs_diff(lines_before) <= 2 * THREADS,
        "mappings went from {lines_before} to {lines_after}"
    );
}
