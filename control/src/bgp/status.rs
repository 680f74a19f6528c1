//! What the BGP speaker has done, shared with the API (`GET /bgp`) and the
//! metrics: whether the routes are announced, why they last changed, the
//! BGP sessions as BIRD reports them.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::control_socket::ProtocolRow;

/// The speaker's state, behind a lock held only to copy or set fields.
#[derive(Debug, Clone, Default)]
pub struct SharedStatus(Arc<Mutex<BgpStatus>>);

/// One look at the speaker.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BgpStatus {
    /// `own` (a BIRD `rusty_rail` runs) or `operator` (through its socket).
    pub bird: &'static str,
    /// The BIRD control socket used.
    pub socket: String,
    /// The static protocol holding the routes.
    pub protocol: String,
    pub routes: Vec<String>,
    /// The routes are in BIRD's table, exported to every established peer.
    pub announced: bool,
    /// Withdrawn on request (`POST /drain`, SIGTERM) whatever the health.
    pub draining: bool,
    pub last_change: Option<Change>,
    /// Announcements and withdrawals so far.
    pub changes: u64,
    /// The BGP protocols of BIRD, as of the last look (about every second).
    pub sessions: Vec<ProtocolRow>,
    /// Times `rusty_rail` started its BIRD (1 after start; more after restarts).
    pub bird_starts: u64,
    /// The last failure talking to or starting BIRD, if the last try failed.
    pub last_error: Option<String>,
}

/// An announcement or a withdrawal.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub announced: bool,
    /// Why: `ready`, the health problems, `drain` or `stopping`.
    pub reason: String,
    /// Milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    #[serde(skip)]
    pub at: Option<Instant>,
}

impl SharedStatus {
    pub fn read(&self) -> BgpStatus {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Changes fields under the lock (a panic elsewhere leaves plain data,
    /// still usable).
    pub fn update(&self, f: impl FnOnce(&mut BgpStatus)) {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

impl BgpStatus {
    /// Records an announcement (`true`) or a withdrawal.
    pub fn record(&mut self, announced: bool, reason: String) {
        let at_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.announced = announced;
        self.changes += 1;
        self.last_error = None;
        self.last_change = Some(Change {
            announced,
            reason,
            at_unix_ms,
            at: Some(Instant::now()),
        });
    }

    /// BGP sessions that are established.
    pub fn established(&self) -> usize {
        self.sessions
            .iter()
            .filter(|s| s.info.starts_with("Established"))
            .count()
    }
}
