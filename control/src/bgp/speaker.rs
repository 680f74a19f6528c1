//! The BGP speaker: a thread that keeps BIRD running (when it is ours),
//! announces the balancer's routes while [`Readiness`] holds and nothing
//! asked for a drain, withdraws them otherwise, and reads the BGP sessions'
//! states for `GET /bgp`.
//!
//! It is a plain thread, not a task of the control runtime: BIRD dies with
//! the thread that started it (see [`bird_process`](super::bird_process)),
//! so that thread must live exactly as long as the speaker.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::bird_process::BirdProcess;
use super::control_socket::{parse_protocols, ControlSocket};
use super::settings::{BgpSettings, Bird, OwnBird, Route};
use super::status::{BgpStatus, SharedStatus};
use crate::readiness::Readiness;

/// How often readiness is judged: a change is announced within this.
const TICK: Duration = Duration::from_millis(100);
/// How often the sessions are read from BIRD.
const SESSIONS_EVERY: Duration = Duration::from_secs(1);

/// What the API and the stop sequence may ask of the speaker.
#[derive(Debug, Clone)]
pub struct BgpHandle {
    status: SharedStatus,
    drain: Arc<AtomicBool>,
    /// Routes to announce instead of the present ones, until the speaker
    /// has BIRD take them.
    new_routes: Arc<Mutex<Option<Vec<Route>>>>,
}

impl BgpHandle {
    /// Announces `routes` from now on instead of the routes at start (a
    /// BIRD `rusty_rail` starts only: the operator's keeps its own). Applied
    /// within a tick; the sessions stay up.
    pub fn set_routes(&self, routes: Vec<Route>) {
        if let Ok(mut pending) = self.new_routes.lock() {
            *pending = Some(routes);
        }
    }

    pub fn status(&self) -> BgpStatus {
        self.status.read()
    }

    /// Withdraws the routes (and keeps them withdrawn) whatever the health.
    pub fn drain(&self) {
        self.drain.store(true, Ordering::SeqCst);
    }

    /// Lets the routes be announced again while ready.
    pub fn resume(&self) {
        self.drain.store(false, Ordering::SeqCst);
    }

    /// Drains and waits (at most `limit`) until BIRD has the routes
    /// withdrawn; false if it did not confirm in time.
    pub fn drain_and_wait(&self, limit: Duration) -> bool {
        self.drain();
        let deadline = Instant::now() + limit;
        loop {
            let status = self.status.read();
            if status.draining && !status.announced {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(TICK / 4);
        }
    }
}

/// The running speaker.
#[derive(Debug)]
pub struct BgpSpeaker {
    handle: BgpHandle,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl BgpSpeaker {
    /// Checks BIRD's configuration (ours: written and `bird -p`-checked),
    /// then starts the thread, which starts BIRD.
    pub fn start(settings: &BgpSettings, readiness: Readiness) -> Result<Self, String> {
        let (process, socket, own) = match &settings.bird {
            Bird::Own(own) => {
                let process = BirdProcess::prepare(own, &settings.routes, &settings.protocol)?;
                let socket = process.socket();
                (Some(process), socket, Some(own.clone()))
            }
            Bird::Operator { socket } => (None, socket.clone(), None),
        };
        let status = SharedStatus::default();
        status.update(|s| {
            s.bird = if process.is_some() { "own" } else { "operator" };
            s.socket = socket.display().to_string();
            s.protocol.clone_from(&settings.protocol);
            s.routes = settings.routes.iter().map(ToString::to_string).collect();
        });
        let handle = BgpHandle {
            status,
            drain: Arc::new(AtomicBool::new(false)),
            new_routes: Arc::new(Mutex::new(None)),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            process,
            own,
            routes: settings.routes.clone(),
            socket,
            protocol: settings.protocol.clone(),
            readiness,
            handle: handle.clone(),
            stop: Arc::clone(&stop),
            announced: None,
            sessions_read: None,
        };
        let thread = std::thread::Builder::new()
            .name("rr-bgp".into())
            .spawn(move || worker.run())
            .map_err(|e| format!("starting the BGP thread: {e}"))?;
        Ok(Self {
            handle,
            stop,
            thread: Some(thread),
        })
    }

    pub fn handle(&self) -> BgpHandle {
        self.handle.clone()
    }

    /// Withdraws, stops BIRD when it is ours, and ends the thread.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for BgpSpeaker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The thread's state.
struct Worker {
    process: Option<BirdProcess>,
    /// What a BIRD of ours is configured with, and the routes it announces.
    own: Option<OwnBird>,
    routes: Vec<Route>,
    socket: PathBuf,
    protocol: String,
    readiness: Readiness,
    handle: BgpHandle,
    stop: Arc<AtomicBool>,
    /// What BIRD was last told; `None` after a (re)start: tell it again.
    announced: Option<bool>,
    sessions_read: Option<Instant>,
}

impl Worker {
    fn run(mut self) {
        while !self.stop.load(Ordering::SeqCst) {
            self.keep_bird_running();
            self.follow_routes();
            self.follow_readiness();
            self.read_sessions();
            std::thread::sleep(TICK);
        }
        if self.announced != Some(false) {
            self.tell(false, "stopping".into());
        }
        if let Some(process) = self.process.take() {
            process.stop();
        }
    }

    fn keep_bird_running(&mut self) {
        let Some(process) = self.process.as_mut() else {
            return;
        };
        match process.ensure_running() {
            Ok(true) => {
                self.announced = None;
                self.sessions_read = None;
                let starts = process.starts;
                self.handle.status.update(|s| {
                    s.bird_starts = starts;
                    s.announced = false;
                });
            }
            Ok(false) => {}
            Err(e) => {
                warn!("BGP: {e}");
                self.handle.status.update(|s| s.last_error = Some(e));
            }
        }
    }

    /// Has our BIRD announce the routes [`BgpHandle::set_routes`] asked
    /// for; a refusal is said and tried again at the next tick.
    fn follow_routes(&mut self) {
        let (Some(process), Some(own)) = (self.process.as_ref(), self.own.as_ref()) else {
            return;
        };
        let Some(routes) = self
            .handle
            .new_routes
            .lock()
            .ok()
            .and_then(|mut p| p.take())
        else {
            return;
        };
        if routes == self.routes {
            return;
        }
        let enabled = self.announced == Some(true);
        match process.reconfigure(own, &routes, &self.protocol, enabled) {
            Ok(()) => {
                info!(?routes, before = ?self.routes, "BGP: routes to announce changed");
                self.handle
                    .status
                    .update(|s| s.routes = routes.iter().map(ToString::to_string).collect());
                self.routes = routes;
            }
            Err(e) => {
                // Tried again next tick; said once per distinct error.
                if self.handle.status.read().last_error.as_deref() != Some(e.as_str()) {
                    warn!("BGP: {e}");
                }
                self.handle.status.update(|s| s.last_error = Some(e));
                if let Ok(mut pending) = self.handle.new_routes.lock() {
                    pending.get_or_insert(routes);
                }
            }
        }
    }

    /// Announces while ready and not drained, withdraws otherwise.
    fn follow_readiness(&mut self) {
        let draining = self.handle.drain.load(Ordering::SeqCst);
        let verdict = self.readiness.check();
        let (want, reason) = match (draining, verdict.ready()) {
            (true, _) => (false, "drain".to_owned()),
            (false, true) => (true, "ready".to_owned()),
            (false, false) => (false, verdict.problems.join("; ")),
        };
        self.handle.status.update(|s| s.draining = draining);
        if self.announced != Some(want) {
            self.tell(want, reason);
        }
    }

    /// Enables (announce) or disables (withdraw) the static protocol.
    fn tell(&mut self, announce: bool, reason: String) {
        let verb = if announce { "enable" } else { "disable" };
        let command = format!("{verb} {}", self.protocol);
        let outcome = ControlSocket::connect(&self.socket)
            .and_then(|mut socket| socket.command(&command))
            .map_err(|e| format!("{command} on {}: {e}", self.socket.display()))
            .and_then(|reply| {
                if reply.ok() {
                    Ok(())
                } else {
                    Err(format!("BIRD refused {command:?}: {}", reply.text()))
                }
            });
        match outcome {
            Ok(()) => {
                let word = if announce { "announced" } else { "withdrawn" };
                info!(routes = ?self.handle.status.read().routes, %reason, "BGP: routes {word}");
                self.announced = Some(announce);
                self.handle.status.update(|s| s.record(announce, reason));
            }
            Err(e) => {
                // Tried again next tick; said once per distinct error.
                let status = self.handle.status.read();
                if status.last_error.as_deref() != Some(e.as_str()) {
                    warn!("BGP: {e}");
                }
                self.handle.status.update(|s| s.last_error = Some(e));
            }
        }
    }

    fn read_sessions(&mut self) {
        if self
            .sessions_read
            .is_some_and(|at| at.elapsed() < SESSIONS_EVERY)
        {
            return;
        }
        self.sessions_read = Some(Instant::now());
        let reply = ControlSocket::connect(&self.socket)
            .and_then(|mut socket| socket.command("show protocols"));
        if let Ok(reply) = reply {
            let sessions: Vec<_> = parse_protocols(&reply)
                .into_iter()
                .filter(|row| row.proto == "BGP")
                .collect();
            self.handle.status.update(|s| s.sessions = sessions);
        }
    }
}
