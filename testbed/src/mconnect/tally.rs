//! What the connections report back, and the counts that become the [`Report`].

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::clock::approx_f64;
use super::latency::LatencySamples;
use super::output::{Disruption, DisruptionKind, HoldReport, Report};

/// One message from a connection task (or from the dispatcher) to the tally.
#[derive(Debug)]
pub enum Message {
    /// A connection's first phase: connect and first reply.
    Opened(Opening),
    /// Connections that never got their turn before the timeout (failed connects).
    NotStarted(u64),
    /// A held connection's life after its first reply.
    Held(HoldOutcome),
}

#[derive(Debug)]
pub enum Opening {
    Replied {
        host: String,
        connect: Duration,
        reply: Duration,
    },
    ConnectFailed,
    ReadFailed {
        connect: Duration,
    },
}

/// How a held connection fared.
#[derive(Debug, Default)]
pub struct HoldOutcome {
    pub probes: u64,
    pub disruptions: Vec<Disruption>,
}

/// Running counts of one client run.
#[derive(Debug, Default)]
pub struct Tally {
    hosts: BTreeMap<String, u64>,
    failed_connects: u64,
    failed_reads: u64,
    /// Connections whose first phase is over, failed or not.
    settled: u64,
    connect_latency: LatencySamples,
    reply_latency: LatencySamples,
    probes: u64,
    disruptions: Vec<Disruption>,
    settled_at: Option<Instant>,
}

/// What the report needs besides the counts.
#[derive(Debug)]
pub struct RunFacts {
    pub base: Report,
    pub start: Instant,
    pub end: Instant,
    pub hold: Option<(Duration, Duration)>,
}

impl Tally {
    pub fn add(&mut self, message: Message) {
        match message {
            Message::Opened(Opening::Replied {
                host,
                connect,
                reply,
            }) => {
                self.settled += 1;
                self.connect_latency.record(connect);
                self.reply_latency.record(reply);
                match self.hosts.get_mut(&host) {
                    Some(count) => *count += 1,
                    None => {
                        self.hosts.insert(host, 1);
                    }
                }
            }
            Message::Opened(Opening::ConnectFailed) => {
                self.settled += 1;
                self.failed_connects += 1;
            }
            Message::Opened(Opening::ReadFailed { connect }) => {
                self.settled += 1;
                self.connect_latency.record(connect);
                self.failed_reads += 1;
            }
            Message::NotStarted(count) => {
                self.settled += count;
                self.failed_connects += count;
            }
            Message::Held(outcome) => {
                self.probes += outcome.probes;
                self.disruptions.extend(outcome.disruptions);
            }
        }
    }

    /// Whether every one of `nconn` connections is past its first phase; the first
    /// time it is, the moment is remembered as the end of the connect phase.
    pub fn all_settled(&mut self, nconn: u64) -> bool {
        let settled = self.settled >= nconn;
        if settled && self.settled_at.is_none() {
            self.settled_at = Some(Instant::now());
        }
        settled
    }

    /// Fills `facts.base` (which carries the run's fixed fields) with the counts.
    pub fn into_report(mut self, facts: RunFacts) -> Report {
        let mut report = facts.base;
        let connect_end = self.settled_at.unwrap_or(facts.end);
        report.connect_duration = connect_end.saturating_duration_since(facts.start);
        report.duration = facts.end.saturating_duration_since(facts.start);
        let seconds = report.connect_duration.as_secs_f64();
        report.connects_per_second = if seconds > 0.0 {
            approx_f64(report.connects) / seconds
        } else {
            0.0
        };
        report.connect_latency = self.connect_latency.summary();
        report.reply_latency = self.reply_latency.summary();
        report.failed_connects = self.failed_connects;
        report.failed_reads = self.failed_reads;
        report.hosts = self.hosts;
        report.hold = facts.hold.map(|(duration, interval)| {
            self.disruptions
                .sort_by_key(|d| (d.elapsed_ns, d.connection));
            let count = |kind| {
                let mut connections: Vec<u64> = self
                    .disruptions
                    .iter()
                    .filter(|d| d.kind == kind)
                    .map(|d| d.connection)
                    .collect();
                connections.sort_unstable();
                connections.dedup();
                connections.len() as u64
            };
            HoldReport {
                duration,
                interval,
                probes: self.probes,
                moved: count(DisruptionKind::Moved),
                broken: count(DisruptionKind::Broken),
                disruptions: self.disruptions,
            }
        });
        report
    }
}
