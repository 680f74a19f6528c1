//! The client's report, printed as mconnect prints it (text or JSON), plus our additions.
//!
//! Text: mconnect's lines come first and unchanged (`Failed connects; N`,
//! `Failed reads; N`, then `host count` sorted by host), followed by ours in the same
//! `Label; value` form: latency percentiles, and in `--duration` runs the moved and
//! broken counts. JSON: mconnect's fields with their names and units (durations in
//! nanoseconds, `start_time` RFC 3339) plus ours as added fields.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};

use super::clock::{approx_f64, nanos, rfc3339};
use super::latency::LatencySummary;

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Txt,
    Json,
}

/// TCP or UDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

/// The outcome of one client run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    // mconnect's fields, same names and units.
    /// Replies per server name.
    pub hosts: BTreeMap<String, u64>,
    /// Connections attempted (`--nconn`).
    pub connects: u64,
    pub failed_connects: u64,
    pub failed_reads: u64,
    #[serde(serialize_with = "as_rfc3339")]
    pub start_time: DateTime<Utc>,
    #[serde(serialize_with = "as_nanos")]
    pub timeout: Duration,
    /// The whole run, holding included.
    #[serde(serialize_with = "as_nanos")]
    pub duration: Duration,

    // Ours.
    pub target: SocketAddr,
    pub protocol: Protocol,
    /// The seed of the source-address choice; pass it to `--seed` to replay.
    pub seed: u64,
    /// `--rate`, connections per second, when paced.
    pub rate: Option<f64>,
    /// From the start until every connection had replied or failed.
    #[serde(serialize_with = "as_nanos")]
    pub connect_duration: Duration,
    /// `connects` / `connect_duration`.
    pub connects_per_second: f64,
    /// Connect time, nanoseconds.
    pub connect_latency: Option<LatencySummary>,
    /// From the established connection (UDP: the first send) to the server's first reply, nanoseconds.
    pub reply_latency: Option<LatencySummary>,
    /// Flow disruption, present in `--keep --duration` runs.
    pub hold: Option<HoldReport>,
}

/// What happened to the held connections.
#[derive(Debug, Clone, Serialize)]
pub struct HoldReport {
    #[serde(serialize_with = "as_nanos")]
    pub duration: Duration,
    #[serde(serialize_with = "as_nanos")]
    pub interval: Duration,
    /// Names asked for after the first reply, over all connections.
    pub probes: u64,
    /// Connections whose server name changed at least once.
    pub moved: u64,
    /// Connections reset, closed by the server, or silent for an interval.
    pub broken: u64,
    /// Every move and break, in the order they were seen.
    pub disruptions: Vec<Disruption>,
}

/// A move or a break.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Disruption {
    pub connection: u64,
    pub kind: DisruptionKind,
    #[serde(serialize_with = "as_rfc3339")]
    pub time: DateTime<Utc>,
    /// Nanoseconds since the run started.
    pub elapsed_ns: u64,
    /// The server's name before.
    pub host: String,
    /// The new name (`moved`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_host: Option<String>,
    /// What broke it (`broken`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DisruptionKind {
    Moved,
    Broken,
}

impl Report {
    /// mconnect's exit rule, extended: any failed connect, failed read or broken
    /// connection makes the run a failure (exit code 1). A move alone does not.
    pub fn failed(&self) -> bool {
        self.failed_connects > 0
            || self.failed_reads > 0
            || self.hold.as_ref().is_some_and(|hold| hold.broken > 0)
    }

    pub fn render(&self, format: OutputFormat) -> String {
        match format {
            OutputFormat::Txt => self.to_text(),
            OutputFormat::Json => self.to_json(),
        }
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = writeln!(out, "Failed connects; {}", self.failed_connects);
        let _ = writeln!(out, "Failed reads; {}", self.failed_reads);
        for (host, count) in &self.hosts {
            let _ = writeln!(out, "{host} {count}");
        }
        if let Some(latency) = &self.connect_latency {
            let _ = writeln!(out, "Connect latency; {}", percentiles_text(latency));
        }
        if let Some(latency) = &self.reply_latency {
            let _ = writeln!(out, "Reply latency; {}", percentiles_text(latency));
        }
        if let Some(hold) = &self.hold {
            for kind in [DisruptionKind::Moved, DisruptionKind::Broken] {
                let (label, count) = match kind {
                    DisruptionKind::Moved => ("Moved", hold.moved),
                    DisruptionKind::Broken => ("Broken", hold.broken),
                };
                let mut times = hold
                    .disruptions
                    .iter()
                    .filter(|d| d.kind == kind)
                    .map(|d| d.time);
                match (times.next(), times.next_back()) {
                    (Some(first), last) => {
                        let last = last.unwrap_or(first);
                        let _ = writeln!(
                            out,
                            "{label}; {count} first {} last {}",
                            rfc3339(first),
                            rfc3339(last)
                        );
                    }
                    (None, _) => {
                        let _ = writeln!(out, "{label}; {count}");
                    }
                }
            }
        }
        out
    }

    /// One line, like Go's `json.Marshal`.
    pub fn to_json(&self) -> String {
        let mut line = serde_json::to_string(self)
            .unwrap_or_else(|error| format!("{{\"error\":\"{error}\"}}"));
        line.push('\n');
        line
    }
}

/// `p50 0.120ms p90 0.300ms p99 1.200ms max 3.000ms`
fn percentiles_text(latency: &LatencySummary) -> String {
    let ms = |ns: u64| format!("{:.3}ms", approx_f64(ns) / 1e6);
    format!(
        "p50 {} p90 {} p99 {} max {}",
        ms(latency.p50),
        ms(latency.p90),
        ms(latency.p99),
        ms(latency.max)
    )
}

fn as_nanos<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(nanos(*duration))
}

fn as_rfc3339<S: Serializer>(time: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&rfc3339(*time))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2024-05-01T10:20:30Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn report() -> Report {
        Report {
            hosts: [("server-b".to_owned(), 2), ("server-a".to_owned(), 3)]
                .into_iter()
                .collect(),
            connects: 6,
            failed_connects: 1,
            failed_reads: 0,
            start_time: start(),
            timeout: Duration::from_secs(2),
            duration: Duration::from_millis(5),
            target: "[fd00::1]:5001".parse().unwrap(),
            protocol: Protocol::Tcp,
            seed: 9,
            rate: None,
            connect_duration: Duration::from_millis(4),
            connects_per_second: 1500.0,
            connect_latency: Some(LatencySummary {
                count: 5,
                p50: 120_000,
                p90: 300_000,
                p99: 1_200_000,
                max: 3_000_000,
            }),
            reply_latency: None,
            hold: None,
        }
    }

    #[test]
    fn text_starts_with_mconnects_lines_hosts_sorted_then_latency() {
        assert_eq!(
            report().to_text(),
            "Failed connects; 1\n\
             Failed reads; 0\n\
             server-a 3\n\
             server-b 2\n\
             Connect latency; p50 0.120ms p90 0.300ms p99 1.200ms max 3.000ms\n"
        );
    }

    #[test]
    fn json_has_mconnects_fields_in_its_units_and_ours_added() {
        let value: serde_json::Value = serde_json::from_str(&report().to_json()).unwrap();
        assert_eq!(
            value["hosts"],
            serde_json::json!({"server-a": 3, "server-b": 2})
        );
        assert_eq!(value["connects"], 6);
        assert_eq!(value["failed_connects"], 1);
        assert_eq!(value["failed_reads"], 0);
        assert_eq!(value["start_time"], "2024-05-01T10:20:30.000000000Z");
        assert_eq!(value["timeout"], 2_000_000_000u64);
        assert_eq!(value["duration"], 5_000_000u64);
        assert_eq!(value["target"], "[fd00::1]:5001");
        assert_eq!(value["protocol"], "tcp");
        assert_eq!(value["connect_latency"]["p99"], 1_200_000);
        assert!(value["reply_latency"].is_null());
        assert!(value["hold"].is_null());
    }

    #[test]
    fn held_runs_report_moves_and_breaks_with_first_and_last_times() {
        let mut report = report();
        let at = |secs| start() + chrono::TimeDelta::seconds(secs);
        let broken = |connection, secs| Disruption {
            connection,
            kind: DisruptionKind::Broken,
            time: at(secs),
            elapsed_ns: 0,
            host: "server-a".into(),
            new_host: None,
            reason: Some("connection reset".into()),
        };
        report.hold = Some(HoldReport {
            duration: Duration::from_secs(10),
            interval: Duration::from_secs(1),
            probes: 40,
            moved: 0,
            broken: 2,
            disruptions: vec![broken(0, 3), broken(4, 5)],
        });
        let text = report.to_text();
        assert!(text.ends_with(
            "Moved; 0\nBroken; 2 first 2024-05-01T10:20:33.000000000Z last 2024-05-01T10:20:35.000000000Z\n"
        ));
        let value: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(value["hold"]["broken"], 2);
        assert_eq!(value["hold"]["disruptions"][1]["connection"], 4);
        assert_eq!(value["hold"]["disruptions"][1]["kind"], "broken");
        assert!(report.failed());
    }

    #[test]
    fn a_clean_run_is_not_a_failure_and_a_move_alone_is_not_either() {
        let mut report = report();
        report.failed_connects = 0;
        assert!(!report.failed());
        report.hold = Some(HoldReport {
            duration: Duration::from_secs(1),
            interval: Duration::from_secs(1),
            probes: 1,
            moved: 1,
            broken: 0,
            disruptions: Vec::new(),
        });
        assert!(!report.failed());
        report.failed_reads = 1;
        assert!(report.failed());
    }
}
