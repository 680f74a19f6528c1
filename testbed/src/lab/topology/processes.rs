//! The hosts' `commands`: started by `up` as detached processes (their own
//! process group, output to files), recorded with their start time so that
//! `down` signals them only while the pid still names the same process.

use std::fs::File;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::plan::TopologyPlan;
use crate::lab::netns;

/// A command `up` started in a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackgroundProcess {
    pub host: String,
    pub command: String,
    pub pid: i32,
    /// The process's start time (`/proc/PID/stat` field 22, clock ticks
    /// since boot): a pid reused by another process has another.
    pub start_time: u64,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

/// The start time of process `pid`, `None` when there is no such process
/// (or only its zombie is left).
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields
    // are counted after its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (the state).
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

impl BackgroundProcess {
    /// Whether the recorded process still runs.
    pub fn is_running(&self) -> bool {
        start_time(self.pid) == Some(self.start_time)
    }
}

/// Sends `signal` to `process` while its pid still names it.
fn signal(process: &BackgroundProcess, signal: libc::c_int) {
    if process.is_running() {
        // SAFETY: kill has no memory effects; the pid was checked just now
        // to name the process this lab started.
        unsafe { libc::kill(process.pid, signal) };
    }
}

/// Starts every host's commands, in file order, with their working directory
/// and output files in `work_dir`. Returns those started so far with the
/// first error, so that the caller can record and stop them.
pub fn start(plan: &TopologyPlan, work_dir: &Path) -> (Vec<BackgroundProcess>, Result<(), String>) {
    let mut started = Vec::new();
    let result = start_into(plan, work_dir, &mut started);
    (started, result)
}

fn start_into(
    plan: &TopologyPlan,
    work_dir: &Path,
    started: &mut Vec<BackgroundProcess>,
) -> Result<(), String> {
    if plan
        .hosts
        .iter()
        .all(|h| h.commands.is_empty() && h.bgp.is_none())
    {
        return Ok(());
    }
    std::fs::create_dir_all(work_dir).map_err(|e| format!("{}: {e}", work_dir.display()))?;
    for host in &plan.hosts {
        let mut commands = host.commands.clone();
        if let Some(bgp) = &host.bgp {
            let config = super::bgp::config_path(work_dir, &host.name);
            std::fs::write(&config, bgp.config())
                .map_err(|e| format!("{}: {e}", config.display()))?;
            commands.push(super::bgp::bird_command(work_dir, &host.name));
        }
        for (n, command) in commands.iter().enumerate() {
            let stdout = work_dir.join(format!("{}.{n}.stdout", host.name));
            let stderr = work_dir.join(format!("{}.{n}.stderr", host.name));
            let create =
                |path: &Path| File::create(path).map_err(|e| format!("{}: {e}", path.display()));
            let mut child = Command::new("sh");
            child
                .arg("-c")
                .arg(command)
                .env("TESTBED_PREFIX", &plan.prefix)
                .env("TESTBED_HOST", &host.name)
                .env("TESTBED_NAMESPACE", &host.namespace)
                .current_dir(work_dir)
                .stdin(Stdio::null())
                .stdout(create(&stdout)?)
                .stderr(create(&stderr)?)
                // Its own process group: a Ctrl-C meant for the shell that
                // ran `up` does not reach the lab's commands.
                .process_group(0);
            let pid = spawn_in(&host.namespace, &mut child)
                .map_err(|e| format!("starting {command:?} in host {}: {e}", host.name))?;
            started.push(BackgroundProcess {
                host: host.name.clone(),
                command: command.clone(),
                pid,
                start_time: start_time(pid).unwrap_or(0),
                stdout,
                stderr,
            });
        }
    }
    Ok(())
}

/// Starts `program` with `args` detached (its own process group, output
/// to `{work_dir}/{name}.stdout` and `.stderr`) in the caller's network
/// namespace, recorded as a process of `host`.
pub fn start_detached(
    host: &str,
    program: &Path,
    args: &[String],
    work_dir: &Path,
    name: &str,
) -> Result<BackgroundProcess, String> {
    std::fs::create_dir_all(work_dir).map_err(|e| format!("{}: {e}", work_dir.display()))?;
    let stdout = work_dir.join(format!("{name}.stdout"));
    let stderr = work_dir.join(format!("{name}.stderr"));
    let create = |path: &Path| File::create(path).map_err(|e| format!("{}: {e}", path.display()));
    let command = std::iter::once(program.display().to_string())
        .chain(args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    let child = Command::new(program)
        .args(args)
        .current_dir(work_dir)
        .stdin(Stdio::null())
        .stdout(create(&stdout)?)
        .stderr(create(&stderr)?)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("starting {command:?}: {e}"))?;
    let pid = i32::try_from(child.id()).map_err(|e| format!("pid of {command:?}: {e}"))?;
    Ok(BackgroundProcess {
        host: host.to_owned(),
        command,
        pid,
        start_time: start_time(pid).unwrap_or(0),
        stdout,
        stderr,
    })
}

/// Spawns `command` in namespace `name`: the child inherits the network
/// namespace of the spawning thread, so a thread of its own enters it.
fn spawn_in(name: &str, command: &mut Command) -> io::Result<i32> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let namespace = netns::open(name)?;
                netns::enter(&namespace)?;
                let child = command.spawn()?;
                // Not waited for: it outlives `up`, which exits at once.
                i32::try_from(child.id()).map_err(io::Error::other)
            })
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("spawning thread panicked")))
    })
}

/// Stops the recorded processes still running: SIGTERM, then SIGKILL after
/// `grace`.
pub fn stop(processes: &[BackgroundProcess], grace: Duration) {
    let running = || processes.iter().filter(|p| p.is_running());
    if running().next().is_none() {
        return;
    }
    running().for_each(|p| signal(p, libc::SIGTERM));
    let step = Duration::from_millis(20);
    let mut waited = Duration::ZERO;
    while waited < grace {
        std::thread::sleep(step);
        waited += step;
        if running().next().is_none() {
            return;
        }
    }
    running().for_each(|p| signal(p, libc::SIGKILL));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_start_time_and_a_missing_one_has_none() {
        let me = i32::try_from(std::process::id()).unwrap();
        assert!(start_time(me).is_some());
        assert_eq!(start_time(i32::MAX), None);
    }

    #[test]
    fn a_recorded_process_with_another_start_time_is_not_running() {
        let me = i32::try_from(std::process::id()).unwrap();
        let record = |start_time| BackgroundProcess {
            host: "h".into(),
            command: "x".into(),
            pid: me,
            start_time,
            stdout: PathBuf::new(),
            stderr: PathBuf::new(),
        };
        assert!(record(start_time(me).unwrap()).is_running());
        assert!(!record(start_time(me).unwrap() + 1).is_running());
    }
}
