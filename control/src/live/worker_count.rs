//! How many workers run, and on which cores: `RR_CORES`, `RR_WORKERS`, or
//! by default one per NIC ring pair on netmap and one elsewhere.
//!
//! netmap runs a worker per NIC ring pair and refuses to register a port
//! whose receive rings some worker would not read, so a default of one
//! worker would stop the balancer on every multi-queue NIC (FreeBSD's iflib
//! and vtnet drivers give one queue per CPU). Where neither `RR_WORKERS`
//! nor `RR_CORES` is given and the I/O is netmap, the workers are as many
//! as the interface's receive rings, as netmap itself reports them (see
//! `netmap_port::rx_rings`), each pinned to a core of its own. More rings
//! than usable cores is an error that says how to lower the queues: two
//! workers on one core would serve their rings by turns, and fewer workers
//! than rings would leave rings unread. `auto` takes netmap only where that
//! default fits, and otherwise keeps one worker for `AF_XDP` or
//! `AF_PACKET`.

use std::fmt;

use super::cores::default_worker_cores;
use crate::config::{ConfigError, Problem, Setting};

/// Whether the workers' I/O will be netmap, as far as their count goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetmapUse {
    /// `RR_IO=netmap` (and `auto` on FreeBSD, where auto is netmap).
    Chosen,
    /// `RR_IO=auto` where the kernel has netmap: netmap if a worker per
    /// NIC ring pair fits the cores.
    AutoMay,
    /// Another backend (`af_packet`, `af_xdp`, the emulated port, whose
    /// ring pairs are made one per worker, or `auto` without netmap).
    No,
}

/// Where the worker count came from, for the start's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerSource {
    /// One per `RR_CORES` entry.
    Cores,
    /// `RR_WORKERS`.
    Workers,
    /// One per NIC ring pair of the interface (netmap's default).
    RingPairs,
    /// One, the default of the other backends.
    Default,
}

/// The workers' cores (one worker each) and why they are that many.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerPlan {
    pub cores: Vec<usize>,
    pub source: WorkerSource,
}

impl fmt::Display for WorkerPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.cores.len();
        match self.source {
            WorkerSource::Cores => write!(f, "workers: {n}, one per RR_CORES entry"),
            WorkerSource::Workers => write!(f, "workers: {n}, from RR_WORKERS"),
            WorkerSource::RingPairs => write!(f, "workers: {n}, one per NIC ring pair"),
            WorkerSource::Default => write!(f, "workers: {n}, the default"),
        }
    }
}

/// The workers for the given `RR_WORKERS` (`workers`) and `RR_CORES`
/// (`cores`), the I/O's use of netmap, the receive ring count netmap
/// reports for `interface` (`rx_rings`, `None` where it was not asked or
/// not known) and the process's CPU set (`allowed`): see the module docs.
pub fn plan_workers(
    workers: Option<usize>,
    cores: Option<&[usize]>,
    netmap: NetmapUse,
    rx_rings: Option<usize>,
    allowed: &[usize],
    interface: &str,
) -> Result<WorkerPlan, ConfigError> {
    let on_default_cores = |n: usize, source| {
        default_worker_cores(n, allowed)
            .map(|cores| WorkerPlan { cores, source })
            .ok_or_else(|| {
                ConfigError::invalid(Setting::Workers, &n.to_string(), Problem::OutOfRange)
            })
    };
    match (cores, workers) {
        (Some(cores), Some(n)) if cores.len() != n => Err(ConfigError::invalid(
            Setting::Cores,
            &format!("{cores:?}"),
            Problem::WrongCount { expected: n },
        )),
        (Some(cores), _) => Ok(WorkerPlan {
            cores: cores.to_vec(),
            source: WorkerSource::Cores,
        }),
        (None, Some(n)) => on_default_cores(n, WorkerSource::Workers),
        (None, None) => match (netmap, rx_rings) {
            (NetmapUse::Chosen, Some(rings)) if rings > allowed.len() => Err(ConfigError::invalid(
                Setting::Workers,
                &format!("{rings} (one per receive queue of {interface}, netmap's default)"),
                Problem::Unavailable(too_many_rings(interface, rings, allowed.len())),
            )),
            (NetmapUse::Chosen | NetmapUse::AutoMay, Some(rings))
                if (1..=allowed.len()).contains(&rings) =>
            {
                on_default_cores(rings, WorkerSource::RingPairs)
            }
            _ => on_default_cores(1, WorkerSource::Default),
        },
    }
}

/// Why a worker per ring cannot run, and how to lower the queues.
fn too_many_rings(interface: &str, rings: usize, usable: usize) -> String {
    format!(
        "{interface} has {rings} receive queues and this process may use {usable} cores; netmap \
         runs a worker per NIC ring pair, each on a core of its own: give {interface} at most \
         {usable} queues (Linux: ethtool -L {interface} combined {usable}; FreeBSD iflib \
         drivers: dev.DRIVER.UNIT.iflib.override_nrxqs and override_ntxqs in loader.conf), or \
         run on more cores"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const FOUR: [usize; 4] = [0, 1, 2, 3];

    fn plan(
        workers: Option<usize>,
        cores: Option<&[usize]>,
        netmap: NetmapUse,
        rx_rings: Option<usize>,
    ) -> Result<WorkerPlan, ConfigError> {
        plan_workers(workers, cores, netmap, rx_rings, &FOUR, "ix0")
    }

    #[test]
    fn on_netmap_the_default_is_a_worker_per_nic_ring_pair_on_the_last_cores() {
        let chosen = plan(None, None, NetmapUse::Chosen, Some(4)).unwrap();
        assert_eq!(chosen.cores, vec![0, 1, 2, 3]);
        assert_eq!(chosen.source, WorkerSource::RingPairs);
        assert_eq!(chosen.to_string(), "workers: 4, one per NIC ring pair");
        let two = plan(None, None, NetmapUse::Chosen, Some(2)).unwrap();
        assert_eq!(two.cores, vec![2, 3], "core 0 stays with control");
        let auto = plan(None, None, NetmapUse::AutoMay, Some(3)).unwrap();
        assert_eq!(
            (auto.cores, auto.source),
            (vec![1, 2, 3], WorkerSource::RingPairs)
        );
    }

    #[test]
    fn more_rings_than_cores_on_netmap_is_refused_with_how_to_lower_the_queues() {
        let message = plan(None, None, NetmapUse::Chosen, Some(8))
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with("RR_WORKERS: \"8 (one per receive queue of ix0"),
            "{message}"
        );
        assert!(message.contains("ix0 has 8 receive queues"), "{message}");
        assert!(message.contains("may use 4 cores"), "{message}");
        assert!(message.contains("ethtool -L ix0 combined 4"), "{message}");
        assert!(message.contains("iflib.override_nrxqs"), "{message}");
    }

    #[test]
    fn auto_keeps_one_worker_where_a_worker_per_ring_does_not_fit() {
        let auto = plan(None, None, NetmapUse::AutoMay, Some(8)).unwrap();
        assert_eq!((auto.cores, auto.source), (vec![3], WorkerSource::Default));
        let unknown = plan(None, None, NetmapUse::AutoMay, None).unwrap();
        assert_eq!(unknown.source, WorkerSource::Default);
        let zero = plan(None, None, NetmapUse::Chosen, Some(0)).unwrap();
        assert_eq!(zero.cores.len(), 1, "a port without rings fails at open");
    }

    #[test]
    fn other_backends_keep_one_worker_whatever_the_rings() {
        let other = plan(None, None, NetmapUse::No, Some(4)).unwrap();
        assert_eq!(
            (other.cores, other.source),
            (vec![3], WorkerSource::Default)
        );
        let none = plan(None, None, NetmapUse::No, None).unwrap();
        assert_eq!(none.to_string(), "workers: 1, the default");
    }

    #[test]
    fn given_workers_or_cores_are_kept_on_netmap_too() {
        let given = plan(Some(2), None, NetmapUse::Chosen, Some(4)).unwrap();
        assert_eq!(
            (given.cores, given.source),
            (vec![2, 3], WorkerSource::Workers),
            "a mismatch is refused when the port is opened, before registering"
        );
        let cores = plan(None, Some(&[1, 3]), NetmapUse::Chosen, Some(4)).unwrap();
        assert_eq!(
            (cores.cores, cores.source),
            (vec![1, 3], WorkerSource::Cores)
        );
        assert!(plan(Some(5), None, NetmapUse::No, None).is_err());
        let count = plan(Some(3), Some(&[1, 3]), NetmapUse::No, None)
            .unwrap_err()
            .to_string();
        assert!(count.starts_with("RR_CORES"), "{count}");
    }
}
