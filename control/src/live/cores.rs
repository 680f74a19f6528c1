//! Which cores the balancer may use, which the workers get, and where the
//! control threads run.
//!
//! The cores a process may run on are its CPU set (`sched_getaffinity`), not
//! `0..nproc`: under `taskset`, a cgroup cpuset or a container's limits the
//! set can be `{2, 3}` on a four-core machine. `RR_CORES` is checked against
//! that set, the default takes its last cores, and the control threads (the
//! API, health checks, neighbour resolution) are pinned to what the workers
//! leave, so that a busy API never takes a worker's core.

use crate::config::{ConfigError, Problem, Setting};

/// The cores this thread may run on, in ascending order (at least one).
pub fn allowed_cores() -> Vec<usize> {
    let mut ids: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|core| core.id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        ids.push(0);
    }
    ids
}

/// Parses `RR_CORES` (`1;2`, `1-3`) against the cores in `allowed`.
pub fn parse_cores_within(s: &str, allowed: &[usize]) -> Result<Vec<usize>, ConfigError> {
    let bad = |entry: &str, problem| ConfigError::invalid(Setting::Cores, entry, problem);
    let mut list = Vec::new();
    for entry in crate::config::list_entries(s) {
        let (first, last) = match entry.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (entry, entry),
        };
        let first: usize = first.parse().map_err(|_| bad(entry, Problem::NotNumber))?;
        let last: usize = last.parse().map_err(|_| bad(entry, Problem::NotNumber))?;
        if first > last {
            return Err(bad(entry, Problem::OutOfRange));
        }
        for core in first..=last {
            if !allowed.contains(&core) {
                let why = format!(
                    "core {core} is not in this process's CPU set {}",
                    describe(allowed)
                );
                return Err(bad(entry, Problem::Unavailable(why)));
            }
            if list.contains(&core) {
                return Err(bad(entry, Problem::OutOfRange));
            }
            list.push(core);
        }
    }
    if list.is_empty() {
        return Err(bad(s, Problem::Empty));
    }
    Ok(list)
}

/// The default cores for `workers` workers: the last ones of `allowed`, so
/// that the first stays with control while there are spare cores. `None`
/// when `allowed` has fewer cores than workers.
pub fn default_worker_cores(workers: usize, allowed: &[usize]) -> Option<Vec<usize>> {
    let first = allowed.len().checked_sub(workers)?;
    Some(allowed[first..].to_vec())
}

/// The cores the control threads get: `allowed` less the workers' cores, or
/// all of `allowed` when the workers take every core (a one-core machine).
pub fn control_cores(allowed: &[usize], workers: &[usize]) -> Vec<usize> {
    let rest: Vec<usize> = allowed
        .iter()
        .copied()
        .filter(|core| !workers.contains(core))
        .collect();
    if rest.is_empty() {
        allowed.to_vec()
    } else {
        rest
    }
}

/// Pins the calling thread to `cores`. Threads it starts afterwards (the
/// control runtime's, the neighbour thread) inherit the set; the workers pin
/// themselves to their own core.
#[cfg(target_os = "linux")]
pub fn pin_current_thread(cores: &[usize]) -> std::io::Result<()> {
    // SAFETY: cpu_set_t is plain bits, valid when zeroed; CPU_SET writes
    // inside the set for ids below CPU_SETSIZE, which the filter ensures.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &core in cores.iter().filter(|&&c| c < libc::CPU_SETSIZE as usize) {
        // SAFETY: as above.
        unsafe { libc::CPU_SET(core, &mut set) };
    }
    // SAFETY: pid 0 is the calling thread; the set is a live local of the
    // size passed.
    let rc = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &raw const set) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Pins the calling thread to `cores`, as on Linux, through FreeBSD's own
/// call: `cpuset_setaffinity` on the calling thread (`CPU_WHICH_TID`, -1).
#[cfg(target_os = "freebsd")]
pub fn pin_current_thread(cores: &[usize]) -> std::io::Result<()> {
    // SAFETY: cpuset_t is plain bits, valid when zeroed; CPU_SET writes
    // inside the set for ids below CPU_SETSIZE, which the filter ensures.
    let mut set: libc::cpuset_t = unsafe { std::mem::zeroed() };
    for &core in cores.iter().filter(|&&c| c < libc::CPU_SETSIZE as usize) {
        // SAFETY: as above.
        unsafe { libc::CPU_SET(core, &mut set) };
    }
    // SAFETY: id -1 with CPU_WHICH_TID is the calling thread; the set is a
    // live local of the size passed.
    let rc = unsafe {
        libc::cpuset_setaffinity(
            libc::CPU_LEVEL_WHICH,
            libc::CPU_WHICH_TID,
            -1,
            size_of::<libc::cpuset_t>(),
            &raw const set,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// `{0, 1, 3}`, for messages.
fn describe(cores: &[usize]) -> String {
    let list: Vec<String> = cores.iter().map(ToString::to_string).collect();
    format!("{{{}}}", list.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rr_cores_is_checked_against_the_cpu_set_not_the_core_count() {
        let allowed = [2, 3];
        assert_eq!(parse_cores_within("2;3", &allowed).unwrap(), vec![2, 3]);
        assert_eq!(parse_cores_within("2-3", &allowed).unwrap(), vec![2, 3]);
        let error = parse_cores_within("0", &allowed).unwrap_err().to_string();
        assert_eq!(
            error,
            "RR_CORES: \"0\" is not available: core 0 is not in this process's CPU set {2, 3}; \
             expected core numbers such as 1;2 or a range 1-3, one per worker, each once"
        );
        assert!(parse_cores_within("1-2", &allowed).is_err());
        assert!(parse_cores_within("2;2", &allowed).is_err());
        assert!(parse_cores_within("3-2", &allowed).is_err());
        assert!(parse_cores_within("x", &allowed).is_err());
        assert!(parse_cores_within(";", &allowed).is_err());
    }

    #[test]
    fn default_workers_take_the_last_cores_of_the_set() {
        assert_eq!(default_worker_cores(1, &[2, 3]), Some(vec![3]));
        assert_eq!(default_worker_cores(2, &[0, 5, 7]), Some(vec![5, 7]));
        assert_eq!(default_worker_cores(3, &[2, 3]), None);
    }

    #[test]
    fn control_runs_on_the_cores_the_workers_leave() {
        assert_eq!(control_cores(&[0, 1, 2, 3], &[2, 3]), vec![0, 1]);
        assert_eq!(control_cores(&[4, 6], &[6]), vec![4]);
        assert_eq!(control_cores(&[1], &[1]), vec![1]);
    }

    #[test]
    fn a_thread_pinned_to_a_subset_sees_only_that_subset() {
        let all = allowed_cores();
        let last = *all.last().unwrap();
        let seen = std::thread::spawn(move || {
            pin_current_thread(&[last]).unwrap();
            let own = allowed_cores();
            // A thread it starts inherits the set.
            let child = std::thread::spawn(allowed_cores).join().unwrap();
            (own, child)
        })
        .join()
        .unwrap();
        assert_eq!(seen, (vec![last], vec![last]));
        // The rest of the process is untouched.
        assert_eq!(allowed_cores(), all);
    }
}
