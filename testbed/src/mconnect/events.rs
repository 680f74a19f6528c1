//! `--events FILE`: one JSON line per connection event, for the experiment runner.
//!
//! Every connection writes `opened` (or `connect_failed`), then `reply` (or
//! `read_failed`), then in `--duration` runs any number of `moved`, and ends with
//! exactly one of `connect_failed`, `read_failed`, `broken` or `closed`.
//! Lines are written by a blocking thread fed through a channel, so a slow disk never
//! stalls a connection; when no file is asked for, nothing is built at all.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::clock::{nanos, rfc3339, RunClock};

/// What happened to a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Opened,
    ConnectFailed,
    Reply,
    ReadFailed,
    Moved,
    Broken,
    Closed,
}

/// One line of the events file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Wall-clock time, RFC 3339.
    pub time: String,
    /// Nanoseconds since the run started (monotonic: use this for intervals).
    pub elapsed_ns: u64,
    /// The connection's number, 0 to nconn-1.
    pub connection: u64,
    pub event: EventKind,
    /// The local address (`opened`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local: Option<SocketAddr>,
    /// The server's name (`reply`; `moved`: the new name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The name before a move (`moved`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_host: Option<String>,
    /// Why a connection failed or broke.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// From the start of the connect to the connection (`opened`), nanoseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_ns: Option<u64>,
}

impl Event {
    pub fn new(clock: &RunClock, at: Instant, connection: u64, event: EventKind) -> Self {
        Self {
            time: rfc3339(clock.wall(at)),
            elapsed_ns: nanos(clock.since_start(at)),
            connection,
            event,
            local: None,
            host: None,
            previous_host: None,
            reason: None,
            connect_ns: None,
        }
    }
}

/// Where connections send their events; cheap to clone, free when disabled.
#[derive(Debug, Clone, Default)]
pub struct EventSink {
    sender: Option<mpsc::UnboundedSender<Event>>,
}

impl EventSink {
    pub fn disabled() -> Self {
        Self { sender: None }
    }

    /// Records the event built by `build`, which is only called when a file was asked for.
    pub fn emit(&self, build: impl FnOnce() -> Event) {
        if let Some(sender) = &self.sender {
            // The writer only stops early after a write error, which `EventLog::finish` reports.
            let _ = sender.send(build());
        }
    }
}

/// Why the events file could not be written.
#[derive(Debug)]
pub struct EventLogError {
    pub path: PathBuf,
    pub source: io::Error,
}

impl std::fmt::Display for EventLogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot write events file {}: {}",
            self.path.display(),
            self.source
        )
    }
}

impl std::error::Error for EventLogError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// The thread writing the events file.
#[derive(Debug)]
pub struct EventLog {
    path: PathBuf,
    writer: JoinHandle<io::Result<u64>>,
}

impl EventLog {
    /// Creates (truncates) `path` and starts the writer. Must be called inside a runtime.
    pub fn create(path: &Path) -> Result<(Self, EventSink), EventLogError> {
        let file = File::create(path).map_err(|source| EventLogError {
            path: path.to_owned(),
            source,
        })?;
        let (sender, mut receiver) = mpsc::unbounded_channel::<Event>();
        let writer = tokio::task::spawn_blocking(move || {
            let mut out = BufWriter::new(file);
            let mut lines = 0u64;
            while let Some(event) = receiver.blocking_recv() {
                serde_json::to_writer(&mut out, &event)?;
                out.write_all(b"\n")?;
                lines += 1;
            }
            out.flush()?;
            Ok(lines)
        });
        Ok((
            Self {
                path: path.to_owned(),
                writer,
            },
            EventSink {
                sender: Some(sender),
            },
        ))
    }

    /// Waits until every event sent so far is on disk; all sinks must have been dropped.
    /// Returns the number of lines written.
    pub async fn finish(self) -> Result<u64, EventLogError> {
        let path = self.path;
        match self.writer.await {
            Ok(result) => result.map_err(|source| EventLogError { path, source }),
            Err(join) => Err(EventLogError {
                path,
                source: io::Error::other(join.to_string()),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moved_event_is_one_json_object_with_only_its_fields() {
        let clock = RunClock::start();
        let mut event = Event::new(&clock, clock.start_instant(), 3, EventKind::Moved);
        event.host = Some("b".into());
        event.previous_host = Some("a".into());
        let line = serde_json::to_value(&event).unwrap();
        let object = line.as_object().unwrap();
        let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "connection",
                "elapsed_ns",
                "event",
                "host",
                "previous_host",
                "time"
            ]
        );
        assert_eq!(object["event"], "moved");
        assert_eq!(object["connection"], 3);
        assert_eq!(object["elapsed_ns"], 0);
    }

    #[test]
    fn a_disabled_sink_never_builds_events() {
        EventSink::disabled().emit(|| unreachable!("built an event nobody asked for"));
    }

    #[tokio::test]
    async fn the_log_writes_one_line_per_event_in_order() {
        let path =
            std::env::temp_dir().join(format!("mconnect-events-{}.jsonl", std::process::id()));
        let (log, sink) = EventLog::create(&path).unwrap();
        let clock = RunClock::start();
        for connection in 0..3 {
            sink.emit(|| Event::new(&clock, Instant::now(), connection, EventKind::Opened));
        }
        drop(sink);
        assert_eq!(log.finish().await.unwrap(), 3);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let connections: Vec<u64> = text
            .lines()
            .map(|line| {
                serde_json::from_str::<serde_json::Value>(line).unwrap()["connection"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(connections, [0, 1, 2]);
    }
}
