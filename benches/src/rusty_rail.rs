//! A live `rusty_rail` process in a network namespace, for the benches that
//! measure the balancer end to end: found or built, started with settings
//! from the environment, known to run once it logs so, stopped on drop.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::system::process_cpu;

/// What the balancer logs once its workers run.
const RUNNING: &str = "running; SIGINT or SIGTERM stops";
/// How long a start may take (offloads, nftables, the XDP program).
const START_LIMIT: Duration = Duration::from_secs(15);
/// How long a stop may take before the process is killed.
const STOP_LIMIT: Duration = Duration::from_secs(5);

/// The `rusty_rail` binary next to the running bench's target directory
/// (`target/<profile>/deps/<bench>-*` -> `target/<profile>/rusty_rail`),
/// built with cargo when it is not there.
///
/// It is not rebuilt when it is there: under `cargo test` cargo holds the
/// build lock, so a build from here would wait forever. Build it first
/// (`cargo build [--release] -p control --bin rusty_rail`) after changing it.
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the bench's own path");
    let path = exe
        .parent()
        .and_then(Path::parent)
        .expect("a bench runs from target/<profile>/deps")
        .join("rusty_rail");
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "-p", "control", "--bin", "rusty_rail"]);
        if exe.to_string_lossy().contains("/release/") {
            build.arg("--release");
        }
        assert!(
            build.status().is_ok_and(|s| s.success()),
            "building rusty_rail"
        );
    }
    path
}

/// A running balancer; dropping it stops it (SIGTERM, then SIGKILL after
/// [`STOP_LIMIT`]) and removes its log.
#[derive(Debug)]
pub struct RustyRail {
    child: Child,
    log: PathBuf,
}

impl RustyRail {
    /// Starts `binary` in namespace `namespace` with `env` (the `RR_*`
    /// settings; `RR_LOG` is set to `info`, which the start is read from)
    /// and waits until it runs. On failure returns its log.
    pub fn start(binary: &Path, namespace: &str, env: &[(&str, String)]) -> Result<Self, String> {
        static STARTS: AtomicU32 = AtomicU32::new(0);
        let log = std::env::temp_dir().join(format!(
            "{namespace}-rusty_rail-{}-{}.log",
            std::process::id(),
            STARTS.fetch_add(1, Ordering::Relaxed)
        ));
        let file = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        // Its counters, printed to stdout when it stops, go to the log too.
        let out = file
            .try_clone()
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", namespace])
            .arg(binary)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("RR_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(file);
        let child = command
            .spawn()
            .map_err(|e| format!("{}: {e}", binary.display()))?;
        // `ip netns exec` execs the binary: the child's pid is the balancer's.
        let mut balancer = Self { child, log };
        let deadline = Instant::now() + START_LIMIT;
        while Instant::now() < deadline {
            if balancer.log_text().contains(RUNNING) {
                return Ok(balancer);
            }
            if let Ok(Some(status)) = balancer.child.try_wait() {
                return Err(format!("exited ({status}): {}", balancer.log_text()));
            }
            thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "not running after {START_LIMIT:?}: {}",
            balancer.log_text()
        ))
    }

    /// Everything it logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log line that says which packet I/O it opened, and how.
    pub fn io_line(&self) -> String {
        self.log_text()
            .lines()
            .find(|line| line.contains("packet I/O:"))
            .map(|line| {
                // From the message on: the timestamp and level say nothing here.
                line.find("packet I/O:")
                    .map_or(line, |at| &line[at..])
                    .to_owned()
            })
            .unwrap_or_default()
    }

    /// Stops it and returns everything it printed, its workers' final
    /// counters last.
    pub fn stop(mut self) -> String {
        self.terminate();
        self.log_text()
    }

    /// SIGTERM, then SIGKILL after [`STOP_LIMIT`]; waits for it to exit.
    fn terminate(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: kill has no memory preconditions; the pid is our
            // child's, not yet reaped, so it names no other process.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + STOP_LIMIT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        eprintln!("rusty_rail did not stop within {STOP_LIMIT:?}: killed");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// CPU time all its threads have used so far.
    pub fn cpu(&self) -> Duration {
        process_cpu(self.child.id())
    }
}

impl Drop for RustyRail {
    fn drop(&mut self) {
        self.terminate();
        let _ = std::fs::remove_file(&self.log);
    }
}
