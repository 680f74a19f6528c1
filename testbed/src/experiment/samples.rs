//! What the clients saw, from mconnect's event files: `samples.jsonl` (one
//! line per 100 ms of the run) and the counts of `outcome.json`.
//!
//! Times are taken from each event's wall-clock time relative to the
//! moment the runner started the workload, the same origin as the fault
//! times of `events.jsonl`. A new connection's connect latency is the
//! `connect_ns` mconnect measured for its `opened` event (from the start of
//! the connect; a SYN retransmitted shows as a second more).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The width of a sample.
pub const SAMPLE_MS: u64 = 100;

/// Which of a client's mconnect processes an event came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Source {
    /// New connections at a rate (the rate, connections per second).
    Connects(f64),
    /// Held connections.
    Hold,
}

/// One line of mconnect's `--events` file (the fields used here).
#[derive(Debug, Clone, Deserialize)]
pub struct ClientEvent {
    pub time: String,
    /// Nanoseconds since the mconnect process's own start.
    #[serde(default)]
    pub elapsed_ns: u64,
    /// `opened`: the connect's own duration, nanoseconds.
    #[serde(default)]
    pub connect_ns: Option<u64>,
    pub connection: u64,
    pub event: String,
    #[serde(default)]
    pub host: Option<String>,
}

/// One line of `samples.jsonl`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Start of the sample, milliseconds from the workload's start.
    pub t_ms: u64,
    /// New connections that were opened or failed to connect in the sample.
    pub attempted: u64,
    /// New connections whose first reply came in the sample.
    pub succeeded: u64,
    /// Connections (new or held) that failed to connect or read.
    pub failed: u64,
    /// Held connections that broke.
    pub broken: u64,
    /// Held connections that moved to another server.
    pub moved: u64,
    /// First replies per second (of new and of held connections).
    pub throughput: f64,
    /// The iperf3 streams' summed throughput, bits per second.
    #[serde(default)]
    pub stream_bps: f64,
    /// Median and 99th percentile connect latency of the sample's new
    /// connections, milliseconds.
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
}

/// The counts of a run, over every client.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    /// Connections that replied and never broke.
    pub ok: u64,
    /// Connections that failed to connect or to read their first reply.
    pub failed: u64,
    pub moved: u64,
    pub broken: u64,
    /// New connections attempted.
    pub attempted: u64,
    /// First replies per server name.
    pub per_backend: BTreeMap<String, u64>,
}

/// Accumulates the events of every client process of a run.
#[derive(Debug, Default)]
pub struct Tally {
    samples: Vec<Sample>,
    latencies: Vec<Vec<f64>>,
    /// Every new connection's connect latency, milliseconds.
    pub all_latencies: Vec<f64>,
    pub counts: Counts,
}

impl Tally {
    /// A tally for a run of `duration_ms` (later events extend it).
    pub fn new(duration_ms: u64) -> Self {
        let n = duration_ms.div_ceil(SAMPLE_MS) as usize;
        let mut tally = Self::default();
        tally.grow(n.saturating_sub(1));
        tally
    }

    fn grow(&mut self, index: usize) {
        while self.samples.len() <= index {
            let t_ms = self.samples.len() as u64 * SAMPLE_MS;
            self.samples.push(Sample {
                t_ms,
                ..Sample::default()
            });
            self.latencies.push(Vec::new());
        }
    }

    /// Adds one process's events; `start` is the workload's start.
    /// Lines that do not parse are counted and skipped.
    pub fn add(&mut self, source: Source, start: DateTime<Utc>, lines: &str) -> usize {
        let mut bad = 0;
        let mut opened_at: BTreeMap<u64, f64> = BTreeMap::new();
        for line in lines.lines().filter(|l| !l.trim().is_empty()) {
            let Ok(event) = serde_json::from_str::<ClientEvent>(line) else {
                bad += 1;
                continue;
            };
            let Ok(time) = DateTime::parse_from_rfc3339(&event.time) else {
                bad += 1;
                continue;
            };
            let ms = (time.with_timezone(&Utc) - start)
                .num_microseconds()
                .unwrap_or(0)
                .max(0) as f64
                / 1000.0;
            #[allow(clippy::cast_sign_loss)] // `ms` is clamped to 0 or more above
            let index = (ms as u64 / SAMPLE_MS) as usize;
            // Bounded: a clock far off would make a huge table otherwise.
            if index > 1_000_000 {
                bad += 1;
                continue;
            }
            self.grow(index);
            let sample = &mut self.samples[index];
            match (event.event.as_str(), source) {
                ("opened", Source::Connects(rate)) => {
                    sample.attempted += 1;
                    self.counts.attempted += 1;
                    opened_at.insert(event.connection, ms);
                    // mconnect's own measure; without it (older mconnect), from
                    // the uniform pacing's due time on mconnect's own clock.
                    let latency = event.connect_ns.map_or_else(
                        || {
                            (event.elapsed_ns as f64 / 1e6
                                - event.connection as f64 / rate * 1000.0)
                                .max(0.0)
                        },
                        |ns| ns as f64 / 1e6,
                    );
                    self.latencies[index].push(latency);
                    self.all_latencies.push(latency);
                }
                ("connect_failed", source) => {
                    if matches!(source, Source::Connects(_)) {
                        sample.attempted += 1;
                        self.counts.attempted += 1;
                    }
                    sample.failed += 1;
                    self.counts.failed += 1;
                }
                ("read_failed", _) => {
                    sample.failed += 1;
                    self.counts.failed += 1;
                }
                ("reply", source) => {
                    if matches!(source, Source::Connects(_)) {
                        sample.succeeded += 1;
                    }
                    sample.throughput += 1000.0 / SAMPLE_MS as f64;
                    self.counts.ok += 1;
                    if let Some(host) = event.host {
                        *self.counts.per_backend.entry(host).or_default() += 1;
                    }
                }
                ("moved", _) => {
                    sample.moved += 1;
                    self.counts.moved += 1;
                }
                ("broken", _) => {
                    sample.broken += 1;
                    self.counts.broken += 1;
                    // It replied once (counted ok) but did not stay ok.
                    self.counts.ok = self.counts.ok.saturating_sub(1);
                }
                _ => {}
            }
        }
        bad
    }

    /// The samples, their latency percentiles filled in.
    pub fn samples(&mut self) -> Vec<Sample> {
        for (sample, latencies) in self.samples.iter_mut().zip(&mut self.latencies) {
            latencies.sort_by(f64::total_cmp);
            sample.latency_p50_ms = percentile(latencies, 0.5);
            sample.latency_p99_ms = percentile(latencies, 0.99);
        }
        self.samples.clone()
    }
}

/// The `q` quantile of sorted `values` (nearest rank).
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    #[allow(clippy::cast_sign_loss)] // q is a fraction: the product is not negative
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// How long after `from_ms` the clients kept seeing trouble: the end of
/// the last sample before `to_ms` with a failure or a break, minus
/// `from_ms`; 0 when none came.
pub fn disrupted_for_ms(samples: &[Sample], from_ms: u64, to_ms: u64) -> u64 {
    samples
        .iter()
        .filter(|s| s.t_ms + SAMPLE_MS > from_ms && s.t_ms < to_ms)
        .filter(|s| s.failed > 0 || s.broken > 0)
        .map(|s| (s.t_ms + SAMPLE_MS).saturating_sub(from_ms))
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(
        start: DateTime<Utc>,
        ms: i64,
        connection: u64,
        event: &str,
        host: Option<&str>,
    ) -> String {
        let time = start + chrono::Duration::milliseconds(ms);
        let host = host.map_or(String::new(), |h| format!(r#","host":"{h}""#));
        format!(
            r#"{{"time":"{}","elapsed_ns":{},"connection":{connection},"event":"{event}"{host}}}"#,
            time.to_rfc3339(),
            ms * 1_000_000
        ) + "\n"
    }

    #[test]
    fn events_land_in_their_100ms_sample_with_their_kind() {
        let start = Utc::now();
        let mut tally = Tally::new(500);
        let connects = [
            line(start, 5, 0, "opened", None),
            line(start, 8, 0, "reply", Some("s1")),
            line(start, 150, 1, "opened", None),
            line(start, 160, 1, "reply", Some("s2")),
            line(start, 210, 2, "connect_failed", None),
            "not json\n".to_owned(),
        ]
        .concat();
        assert_eq!(tally.add(Source::Connects(10.0), start, &connects), 1);
        let held = [
            line(start, 20, 0, "opened", None),
            line(start, 30, 0, "reply", Some("s1")),
            line(start, 320, 0, "moved", Some("s2")),
            line(start, 420, 0, "broken", None),
        ]
        .concat();
        assert_eq!(tally.add(Source::Hold, start, &held), 0);
        let samples = tally.samples();
        assert_eq!(samples.len(), 5);
        assert_eq!(
            (
                samples[0].attempted,
                samples[0].succeeded,
                samples[0].throughput
            ),
            (1, 1, 20.0)
        );
        // Connection 1 was due at 100 ms (rate 10/s) and opened at 150 ms.
        assert_eq!(samples[1].latency_p50_ms, Some(50.0));
        assert_eq!((samples[2].attempted, samples[2].failed), (1, 1));
        assert_eq!((samples[3].moved, samples[4].broken), (1, 1));
        let counts = &tally.counts;
        assert_eq!(
            (
                counts.ok,
                counts.failed,
                counts.moved,
                counts.broken,
                counts.attempted
            ),
            (2, 1, 1, 1, 3)
        );
        assert_eq!(counts.per_backend["s1"], 2);
        assert_eq!(disrupted_for_ms(&samples, 150, 500), 350);
        assert_eq!(disrupted_for_ms(&samples, 0, 200), 0);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.5), Some(50.0));
        assert_eq!(percentile(&values, 0.99), Some(99.0));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
