//! `testbed mconnect --address HOST:PORT --nconn N`: many connections, a count per
//! server name, and (beyond mconnect) latency percentiles, paced opening, and the
//! moves and breaks of held connections.
//!
//! A dispatcher opens connections in order, at most `max_concurrent` in their first
//! phase (connect, first reply, and without `keep` the close) at once, paced by
//! `rate` when given. Each connection is a task that sends what happened to one
//! tally; the run ends when every task has.
//! `timeout` bounds the whole first phase: a connection not connected by then is a
//! failed connect, one without a reply by then a failed read.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::{sleep_until, timeout_at};

use super::clock::{approx_f64, RunClock};
use super::events::{Event, EventKind, EventLog, EventLogError, EventSink};
use super::flow::Flow;
use super::hold::{hold, HoldPlan};
use super::output::{Protocol, Report};
use super::source_range::SourceRange;
use super::tally::{Message, Opening, RunFacts, Tally};

/// How to run a client.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub target: SocketAddr,
    pub protocol: Protocol,
    pub nconn: u64,
    /// Hold every connection until all have replied (or failed), so the servers see
    /// `nconn` connections at once.
    pub keep: bool,
    /// With `keep`: hold for this long, asking the server's name at each interval.
    pub hold: Option<HoldConfig>,
    pub source_range: Option<SourceRange>,
    /// Seed of the source-address choice; `None` takes one from the clock (reported).
    pub seed: Option<u64>,
    /// Connections being opened at once (connect, first reply, and without `keep`
    /// the close).
    pub max_concurrent: usize,
    /// `None`: [`default_timeout`].
    pub timeout: Option<Duration>,
    /// Connections opened per second; `None`: as fast as possible.
    pub rate: Option<f64>,
    /// How paced connections are spread in time.
    pub arrivals: Arrivals,
    /// Where to write one JSON line per connection event.
    pub events: Option<PathBuf>,
}

/// `--arrivals`: how connections paced by `--rate` are spread in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Arrivals {
    /// Evenly: connection n starts at n / rate.
    #[default]
    Uniform,
    /// A Poisson process of that rate: exponential gaps of mean 1 / rate,
    /// drawn from the seed (the same seed, the same start times).
    Poisson,
}

/// `--duration` and `--interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldConfig {
    /// From the start of the run.
    pub duration: Duration,
    pub interval: Duration,
}

/// Why a client run could not start.
#[derive(Debug)]
pub enum ClientError {
    NoConnections,
    NoConcurrency,
    BadRate(f64),
    ZeroInterval,
    HoldWithoutKeep,
    SourceFamily {
        range: SourceRange,
        target: SocketAddr,
    },
    Events(EventLogError),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoConnections => write!(f, "--nconn is 0; ask for at least one connection"),
            Self::NoConcurrency => write!(
                f,
                "--max-concurrent is 0; allow at least one connection at a time"
            ),
            Self::BadRate(rate) => write!(
                f,
                "--rate {rate} is not a positive number of connections per second"
            ),
            Self::ZeroInterval => write!(f, "--interval is 0; give a positive interval such as 1s"),
            Self::HoldWithoutKeep => write!(f, "--duration holds connections, so it needs --keep"),
            Self::SourceFamily { range, target } => {
                write!(f, "--srccidr {range} and --address {target} are of different IP families; use one family")
            }
            Self::Events(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<EventLogError> for ClientError {
    fn from(error: EventLogError) -> Self {
        Self::Events(error)
    }
}

/// mconnect's default: a second per thousand connections, plus two.
/// Paced runs get the time their pace needs, plus two.
pub fn default_timeout(nconn: u64, rate: Option<f64>) -> Duration {
    let paced = rate.map_or(0.0, |rate| approx_f64(nconn) / rate);
    let fast = Duration::from_millis(nconn);
    Duration::try_from_secs_f64(paced)
        .unwrap_or(Duration::MAX)
        .max(fast)
        .saturating_add(Duration::from_secs(2))
}

impl ClientConfig {
    /// `nconn` TCP connections to `target` with mconnect's defaults.
    pub fn new(target: SocketAddr, nconn: u64) -> Self {
        Self {
            target,
            protocol: Protocol::Tcp,
            nconn,
            keep: false,
            hold: None,
            source_range: None,
            seed: None,
            max_concurrent: 64,
            timeout: None,
            rate: None,
            arrivals: Arrivals::Uniform,
            events: None,
        }
    }

    pub fn effective_timeout(&self) -> Duration {
        self.timeout
            .unwrap_or_else(|| default_timeout(self.nconn, self.rate))
    }

    pub fn validate(&self) -> Result<(), ClientError> {
        if self.nconn == 0 {
            return Err(ClientError::NoConnections);
        }
        if self.max_concurrent == 0 {
            return Err(ClientError::NoConcurrency);
        }
        if let Some(rate) = self.rate {
            if !(rate.is_finite() && rate > 0.0) {
                return Err(ClientError::BadRate(rate));
            }
        }
        if let Some(hold) = self.hold {
            if !self.keep {
                return Err(ClientError::HoldWithoutKeep);
            }
            if hold.interval.is_zero() {
                return Err(ClientError::ZeroInterval);
            }
        }
        if let Some(range) = self.source_range {
            if range.is_ipv4() != self.target.is_ipv4() {
                return Err(ClientError::SourceFamily {
                    range,
                    target: self.target,
                });
            }
        }
        Ok(())
    }
}

/// What every connection task shares.
#[derive(Debug)]
struct Plan {
    protocol: Protocol,
    target: SocketAddr,
    deadline: Instant,
    keep: bool,
    hold: Option<HoldPlan>,
    clock: RunClock,
    events: EventSink,
    release: watch::Receiver<bool>,
}

/// Runs the client to the end and reports. Must be called inside a Tokio runtime
/// with the time and I/O drivers enabled.
pub async fn run_client(config: &ClientConfig) -> Result<Report, ClientError> {
    config.validate()?;
    let seed = config.seed.unwrap_or_else(seed_from_clock);
    let timeout = config.effective_timeout();
    let clock = RunClock::start();
    let start = clock.start_instant();
    let (log, events) = match &config.events {
        Some(path) => {
            let (log, sink) = EventLog::create(path)?;
            (Some(log), sink)
        }
        None => (None, EventSink::disabled()),
    };
    let (release_sender, release) = watch::channel(false);
    let plan = Arc::new(Plan {
        protocol: config.protocol,
        target: config.target,
        deadline: start + timeout,
        keep: config.keep,
        hold: config.hold.map(|hold| HoldPlan {
            end: start + hold.duration,
            interval: hold.interval,
            clock,
            events: events.clone(),
        }),
        clock,
        events,
        release,
    });
    let (sender, mut receiver) = mpsc::unbounded_channel();
    tokio::spawn(dispatch(config.clone(), seed, plan, sender));

    let mut tally = Tally::default();
    while let Some(message) = receiver.recv().await {
        tally.add(message);
        if tally.all_settled(config.nconn) && !*release_sender.borrow() {
            // Every connection has replied or failed: `--keep` connections may close.
            let _ = release_sender.send(true);
        }
    }
    let end = Instant::now();
    if let Some(log) = log {
        log.finish().await?;
    }
    let base = Report {
        hosts: BTreeMap::default(),
        connects: config.nconn,
        failed_connects: 0,
        failed_reads: 0,
        start_time: clock.start_time(),
        timeout,
        duration: Duration::ZERO,
        target: config.target,
        protocol: config.protocol,
        seed,
        rate: config.rate,
        connect_duration: Duration::ZERO,
        connects_per_second: 0.0,
        connect_latency: None,
        reply_latency: None,
        hold: None,
    };
    let hold = config.hold.map(|hold| (hold.duration, hold.interval));
    Ok(tally.into_report(RunFacts {
        base,
        start,
        end,
        hold,
    }))
}

fn seed_from_clock() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as u64)
}

/// Starts the connections in order, each when its pace and a free slot allow.
async fn dispatch(
    config: ClientConfig,
    seed: u64,
    plan: Arc<Plan>,
    sender: mpsc::UnboundedSender<Message>,
) {
    let slots = Arc::new(Semaphore::new(config.max_concurrent));
    let mut rng = StdRng::seed_from_u64(seed);
    let start = plan.clock.start_instant();
    let mut pacing = config
        .rate
        .map(|rate| Pacing::new(rate, config.arrivals, seed));
    for connection in 0..config.nconn {
        if let Some(pacing) = pacing.as_mut() {
            let offset = pacing.next_offset(connection);
            let due = Duration::try_from_secs_f64(offset)
                .ok()
                .and_then(|offset| start.checked_add(offset));
            match due {
                Some(due) if due < plan.deadline => sleep_until(due.into()).await,
                _ => return give_up(connection, &config, &plan, &sender),
            }
        }
        let Ok(Ok(slot)) =
            timeout_at(plan.deadline.into(), Arc::clone(&slots).acquire_owned()).await
        else {
            return give_up(connection, &config, &plan, &sender);
        };
        let source = config.source_range.map(|range| range.pick(&mut rng));
        tokio::spawn(run_connection(
            connection,
            source,
            Arc::clone(&plan),
            slot,
            sender.clone(),
        ));
    }
}

/// When paced connections start, in seconds from the run's start.
#[derive(Debug)]
pub struct Pacing {
    rate: f64,
    arrivals: Arrivals,
    /// Its own generator, so the source addresses stay what the seed gave.
    gaps: StdRng,
    offset: f64,
}

impl Pacing {
    pub fn new(rate: f64, arrivals: Arrivals, seed: u64) -> Self {
        Self {
            rate,
            arrivals,
            gaps: StdRng::seed_from_u64(seed ^ 0x6172_7269_7661_6C73),
            offset: 0.0,
        }
    }

    /// The start of `connection`; call it for 0, 1, 2... in order.
    pub fn next_offset(&mut self, connection: u64) -> f64 {
        match self.arrivals {
            Arrivals::Uniform => approx_f64(connection) / self.rate,
            Arrivals::Poisson => {
                // The first starts at once; 1 - u is in (0, 1], so the log is finite.
                if connection > 0 {
                    let u: f64 = self.gaps.gen();
                    self.offset += -(1.0 - u).ln() / self.rate;
                }
                self.offset
            }
        }
    }
}

/// The connections from `first` on never got their turn before the timeout.
fn give_up(
    first: u64,
    config: &ClientConfig,
    plan: &Plan,
    sender: &mpsc::UnboundedSender<Message>,
) {
    let at = Instant::now();
    for connection in first..config.nconn {
        plan.events.emit(|| {
            let mut event = Event::new(&plan.clock, at, connection, EventKind::ConnectFailed);
            event.reason = Some("not started within the timeout".to_owned());
            event
        });
    }
    let _ = sender.send(Message::NotStarted(config.nconn - first));
}

/// One connection's life: connect, first reply, then closed, kept or held.
async fn run_connection(
    connection: u64,
    source: Option<IpAddr>,
    plan: Arc<Plan>,
    slot: OwnedSemaphorePermit,
    sender: mpsc::UnboundedSender<Message>,
) {
    let failed = |kind: EventKind, at: Instant, reason: String| {
        plan.events.emit(|| {
            let mut event = Event::new(&plan.clock, at, connection, kind);
            event.reason = Some(reason);
            event
        });
    };
    let started = Instant::now();
    let opened = timeout_at(
        plan.deadline.into(),
        Flow::open(plan.protocol, source, plan.target),
    )
    .await;
    let connected = Instant::now();
    let mut flow = match opened {
        Ok(Ok(flow)) => flow,
        Ok(Err(error)) => {
            failed(EventKind::ConnectFailed, connected, error.to_string());
            let _ = sender.send(Message::Opened(Opening::ConnectFailed));
            return;
        }
        Err(_) => {
            failed(
                EventKind::ConnectFailed,
                connected,
                "no connection within the timeout".to_owned(),
            );
            let _ = sender.send(Message::Opened(Opening::ConnectFailed));
            return;
        }
    };
    let connect = connected - started;
    plan.events.emit(|| {
        let mut event = Event::new(&plan.clock, connected, connection, EventKind::Opened);
        event.local = flow.local_addr().ok();
        event.connect_ns = Some(super::clock::nanos(connect));
        event
    });
    let reply = timeout_at(plan.deadline.into(), flow.first_reply()).await;
    let replied = Instant::now();
    let host = match reply {
        Ok(Ok(host)) => host,
        Ok(Err(error)) => {
            failed(EventKind::ReadFailed, replied, error.to_string());
            let _ = sender.send(Message::Opened(Opening::ReadFailed { connect }));
            return;
        }
        Err(_) => {
            failed(
                EventKind::ReadFailed,
                replied,
                "no reply within the timeout".to_owned(),
            );
            let _ = sender.send(Message::Opened(Opening::ReadFailed { connect }));
            return;
        }
    };
    plan.events.emit(|| {
        let mut event = Event::new(&plan.clock, replied, connection, EventKind::Reply);
        event.host = Some(host.clone());
        event
    });
    let reply = replied - connected;
    if let Some(hold_plan) = &plan.hold {
        // A held connection leaves its slot to the next one.
        drop(slot);
        let _ = sender.send(Message::Opened(Opening::Replied {
            host: host.clone(),
            connect,
            reply,
        }));
        let outcome = hold(flow, connection, host, hold_plan).await;
        let _ = sender.send(Message::Held(outcome));
        return;
    }
    let _ = sender.send(Message::Opened(Opening::Replied {
        host,
        connect,
        reply,
    }));
    if plan.keep {
        drop(slot);
        let mut release = plan.release.clone();
        // An error means the run is over and nothing waits any more: close too.
        let _ = release.wait_for(|released| *released).await;
        close(flow, connection, &plan);
    } else {
        // The slot is freed after the close, so that `max_concurrent` bounds the open
        // connections and the events of one slot never interleave.
        close(flow, connection, &plan);
        drop(slot);
    }
}

fn close(flow: Flow, connection: u64, plan: &Plan) {
    drop(flow);
    plan.events
        .emit(|| Event::new(&plan.clock, Instant::now(), connection, EventKind::Closed));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ClientConfig {
        ClientConfig::new("127.0.0.1:5001".parse().unwrap(), 10)
    }

    #[test]
    fn uniform_pacing_starts_connection_n_at_n_over_the_rate() {
        let mut pacing = Pacing::new(4.0, Arrivals::Uniform, 1);
        let offsets: Vec<f64> = (0..4).map(|n| pacing.next_offset(n)).collect();
        assert_eq!(offsets, [0.0, 0.25, 0.5, 0.75]);
    }

    #[test]
    fn poisson_pacing_is_fixed_by_the_seed_increasing_and_of_the_rate_s_mean() {
        let offsets = |seed: u64| {
            let mut pacing = Pacing::new(50.0, Arrivals::Poisson, seed);
            (0..10_000)
                .map(|n| pacing.next_offset(n))
                .collect::<Vec<f64>>()
        };
        let first = offsets(7);
        assert_eq!(first, offsets(7));
        assert_ne!(first, offsets(8));
        assert!(first[0].abs() < f64::EPSILON, "the first starts at once");
        assert!(first.windows(2).all(|w| w[0] <= w[1]));
        // 9,999 gaps of mean 1/50 s: about 200 s (a seeded draw, not a timing).
        let total = first[9_999];
        assert!((180.0..220.0).contains(&total), "{total}");
        let gaps: Vec<f64> = first.windows(2).map(|w| w[1] - w[0]).collect();
        let distinct = gaps.iter().filter(|g| (*g - 0.02).abs() > 1e-3).count();
        assert!(distinct > 9_000, "exponential gaps, not even ones");
    }

    #[test]
    fn the_default_timeout_is_a_second_per_thousand_connections_plus_two() {
        assert_eq!(default_timeout(1, None), Duration::from_millis(2_001));
        assert_eq!(default_timeout(10_000, None), Duration::from_secs(12));
        // Paced at 100/s, 1000 connections need 10 s.
        assert_eq!(default_timeout(1_000, Some(100.0)), Duration::from_secs(12));
    }

    #[test]
    fn validation_names_what_is_wrong() {
        let refused = |change: fn(&mut ClientConfig)| {
            let mut config = config();
            change(&mut config);
            config.validate().unwrap_err().to_string()
        };
        assert!(refused(|c| c.nconn = 0).contains("--nconn"));
        assert!(refused(|c| c.max_concurrent = 0).contains("--max-concurrent"));
        assert!(refused(|c| c.rate = Some(-1.0)).contains("--rate -1"));
        assert!(refused(|c| c.rate = Some(f64::NAN)).contains("--rate"));
        assert!(refused(|c| c.hold = Some(HoldConfig {
            duration: Duration::from_secs(1),
            interval: Duration::from_secs(1),
        }))
        .contains("--keep"));
        assert!(refused(|c| {
            c.keep = true;
            c.hold = Some(HoldConfig {
                duration: Duration::from_secs(1),
                interval: Duration::ZERO,
            });
        })
        .contains("--interval"));
        assert!(
            refused(|c| c.source_range = Some("fd00::/64".parse().unwrap()))
                .contains("different IP families")
        );
        assert!(config().validate().is_ok());
    }
}
