//! The BIRD that `rusty_rail` starts: its configuration and control socket in
//! a private directory (mode 0700, so only root reaches the socket), run in
//! the foreground as a child that dies with the supervisor's thread
//! (`PR_SET_PDEATHSIG`: a balancer killed with SIGKILL must not leave a BIRD
//! announcing for it), restarted with a pause when it exits.

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::bird_config;
use super::control_socket::ControlSocket;
use super::settings::{OwnBird, Route};

/// The pause before starting BIRD again after it exited.
const RESTART_PAUSE: Duration = Duration::from_secs(1);
/// How long a starting BIRD has to open its control socket.
const SOCKET_WAIT: Duration = Duration::from_secs(5);
/// How long a stopping BIRD has between SIGTERM and SIGKILL.
const STOP_WAIT: Duration = Duration::from_secs(2);

/// A supervised BIRD.
#[derive(Debug)]
pub struct BirdProcess {
    program: PathBuf,
    dir: PathBuf,
    child: Option<Child>,
    next_start: Instant,
    pub starts: u64,
}

impl BirdProcess {
    /// Writes the configuration into a fresh private directory and has
    /// BIRD check it (`bird -p`): a BIRD that is missing or refuses it
    /// fails the balancer's start, with BIRD's words.
    pub fn prepare(own: &OwnBird, routes: &[Route], protocol: &str) -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!("rusty_rail-bird-{}", std::process::id()));
        // A directory of an earlier process with our pid is stale.
        let _ = fs::remove_dir_all(&dir);
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| format!("creating BIRD's directory {}: {e}", dir.display()))?;
        let process = Self {
            program: own.program.clone(),
            dir,
            child: None,
            next_start: Instant::now(),
            starts: 0,
        };
        fs::write(process.config(), bird_config::render(own, routes, protocol))
            .map_err(|e| format!("writing {}: {e}", process.config().display()))?;
        let check = Command::new(&process.program)
            .arg("-p")
            .arg("-c")
            .arg(process.config())
            .output()
            .map_err(|e| {
                format!(
                    "RR_BGP_BIRD: cannot run {}: {e}; install BIRD 2 (Debian: apt-get install bird2) or set RR_BGP_BIRD to its path",
                    process.program.display()
                )
            })?;
        if !check.status.success() {
            return Err(format!(
                "BIRD refuses the configuration written to {}: {}",
                process.config().display(),
                String::from_utf8_lossy(&check.stderr).trim()
            ));
        }
        Ok(process)
    }

    /// Has the running BIRD announce `routes` instead (`configure`): the
    /// static protocol changes its routes, the sessions stay up.
    /// `enabled` is whether the protocol is enabled now. The file is left
    /// saying `disabled`, so that a BIRD started again after an exit
    /// announces nothing before the speaker says so.
    pub fn reconfigure(
        &self,
        own: &OwnBird,
        routes: &[Route],
        protocol: &str,
        enabled: bool,
    ) -> Result<(), String> {
        let write = |text: String| {
            fs::write(self.config(), text)
                .map_err(|e| format!("writing {}: {e}", self.config().display()))
        };
        write(bird_config::render_enabled(own, routes, protocol, enabled))?;
        let outcome = ControlSocket::connect(&self.socket())
            .and_then(|mut socket| socket.command("configure"))
            .map_err(|e| format!("configure on {}: {e}", self.socket().display()))
            .and_then(|reply| {
                if reply.ok() {
                    Ok(())
                } else {
                    Err(format!("BIRD refused the new routes: {}", reply.text()))
                }
            });
        write(bird_config::render(own, routes, protocol))?;
        outcome
    }

    pub fn config(&self) -> PathBuf {
        self.dir.join("bird.conf")
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("bird.ctl")
    }

    /// Starts BIRD when it is not running (and the pause after its last
    /// exit is over); `Ok(true)` when it was started now and its socket
    /// answers: a new BIRD has nothing announced.
    pub fn ensure_running(&mut self) -> Result<bool, String> {
        if let Some(child) = self.child.as_mut() {
            match child.try_wait() {
                Ok(None) => return Ok(false),
                Ok(Some(status)) => {
                    warn!(%status, "BIRD exited; starting it again in {RESTART_PAUSE:?}");
                }
                Err(e) => warn!("BIRD's state unknown ({e}); starting it again"),
            }
            self.child = None;
            self.next_start = Instant::now() + RESTART_PAUSE;
        }
        if Instant::now() < self.next_start {
            return Ok(false);
        }
        self.next_start = Instant::now() + RESTART_PAUSE;
        let _ = fs::remove_file(self.socket());
        let mut command = Command::new(&self.program);
        command
            .arg("-f")
            .arg("-c")
            .arg(self.config())
            .arg("-s")
            .arg(self.socket())
            .arg("-P")
            .arg(self.dir.join("bird.pid"))
            .stdin(Stdio::null());
        // SAFETY: between fork and exec only one system call (prctl or
        // procctl), async-signal-safe, is made; it touches no memory of the
        // parent.
        unsafe {
            command.pre_exec(die_with_parent);
        }
        let child = command
            .spawn()
            .map_err(|e| format!("starting {}: {e}", self.program.display()))?;
        info!(pid = child.id(), socket = %self.socket().display(), "BIRD started");
        self.child = Some(child);
        self.starts += 1;
        wait_for_socket(&self.socket(), SOCKET_WAIT)?;
        Ok(true)
    }

    /// Stops BIRD (SIGTERM, then SIGKILL) and removes the directory.
    pub fn stop(mut self) {
        if let Some(mut child) = self.child.take() {
            if let Ok(pid) = i32::try_from(child.id()) {
                // SAFETY: kill has no memory preconditions; the pid is our child's.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
            let deadline = Instant::now() + STOP_WAIT;
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Waits until BIRD answers on its socket.
fn wait_for_socket(path: &Path, limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    loop {
        match ControlSocket::connect(path) {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() >= deadline => {
                return Err(format!(
                    "BIRD's socket {} does not answer after {limit:?}: {e}",
                    path.display()
                ))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// In the child before exec: SIGKILL when the balancer dies (Linux:
/// `PR_SET_PDEATHSIG`).
#[cfg(target_os = "linux")]
fn die_with_parent() -> io::Result<()> {
    // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number and touches
    // no memory.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// In the child before exec: SIGKILL when the balancer dies (FreeBSD:
/// `procctl(PROC_PDEATHSIG_CTL)` on the calling process).
#[cfg(target_os = "freebsd")]
fn die_with_parent() -> io::Result<()> {
    let mut signal: libc::c_int = libc::SIGKILL;
    // SAFETY: PROC_PDEATHSIG_CTL reads one int from the live local passed.
    let rc = unsafe {
        libc::procctl(
            libc::P_PID,
            0,
            libc::PROC_PDEATHSIG_CTL,
            (&raw mut signal).cast(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
