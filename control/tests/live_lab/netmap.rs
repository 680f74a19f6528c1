//! The netmap backend with a worker per NIC ring pair, on the emulated
//! port (this machine has no netmap module): `RR_IO=netmap-emulated` with
//! two workers opens one port of two NIC ring pairs and two host ring
//! pairs, each worker registered for its own pair (`NR_REG_ONE_NIC` and
//! `NR_REG_ONE_SW`), ring pair `i` filled from packet socket `i` of one
//! fanout group as a NIC's RSS fills ring `i`.
//!
//! Prefix `rrnm1-`, subnets `10.194.{1,2}.0/24`.

use super::lab::{self, lab_or_skip, Lab};
use super::{assert_all_succeeded, assert_each_worker_forwarded, split};

#[test]
fn on_the_emulated_netmap_port_each_of_two_workers_serves_its_own_ring_pair() {
    lab_or_skip!();
    let lab = Lab::up("rrnm1-", 194, 1, 3);
    let balancer = lab.start_balancer(
        1,
        &[
            ("RR_IO", "netmap-emulated".into()),
            ("RR_WORKERS", "2".into()),
            ("RR_CORES", "0;1".into()),
        ],
    );
    let log = balancer.log_text();
    assert!(
        log.contains("a worker per NIC ring pair") && log.contains("ring_pairs=2"),
        "{log}"
    );
    let report = lab.mconnect("c1", &["--nconn", "2000"]);
    assert_all_succeeded(&report, 2000);
    assert_eq!(split(&report).len(), 3, "{report}");
    // The balancer's own address still answers: what is not ours goes to
    // the host through the host ring pair of whichever worker took it.
    let ping = lab.exec(
        "r",
        &[
            "ping",
            "-c",
            "3",
            "-W",
            "2",
            &lab.balancer_ip(1).to_string(),
        ],
    );
    assert!(
        ping.status.success(),
        "{}",
        String::from_utf8_lossy(&ping.stdout)
    );
    // Each worker forwards the flows of its own ring pair.
    assert_each_worker_forwarded(&balancer.stop(), 2);
}
