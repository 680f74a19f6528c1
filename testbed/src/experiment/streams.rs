//! A run's iperf3 streams (`iperf3 = { streams = N }` in a workload): long
//! TCP streams through the system, their throughput per 100 ms, and which
//! of them stopped.
//!
//! Each stream is its own iperf3 test with one data connection, on its own
//! port (an iperf3 server runs one test at a time), with an iperf3 server
//! for that port on every server host. iperf3 opens a control connection
//! and then its data connection, and both must reach the same server: a
//! balancer that spreads connections by their 5-tuple (`rusty_rail`) sends
//! them to different servers as often as not when there are several. So
//! the streams start before the run's clock does, and a test whose first
//! 100 ms report does not come within [`ATTEMPT_LIMIT`] is stopped, its
//! port's servers restarted, and started again ([`MAX_ATTEMPTS`] times at
//! most; the attempts are in `outcome.json`). `HAProxy` gets `balance source`
//! for such runs instead (see [`super::system`]).
//!
//! The clients print a report per 100 ms (`-i 0.1 --forceflush`) as it
//! happens; the moment the first one appears places the test's own clock
//! on the run's. The runner stops every stream at T; a stream that ended
//! by itself before, or carried nothing in its last [`STALL`], stopped:
//! it counts as a broken connection, where its data stopped (for one that
//! ended while carrying data, when its next report was due: iperf3 does
//! not report the part of an interval it dies in).

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::file::Iperf3Entry;
use super::lab::RunLab;
use super::samples::{Counts, Sample, SAMPLE_MS};

/// The port of the first stream; the others follow.
pub const FIRST_PORT: u16 = 5201;
/// How long a test may take to print its first report.
pub const ATTEMPT_LIMIT: Duration = Duration::from_secs(2);
/// Starts of one stream, at most.
pub const MAX_ATTEMPTS: u32 = 12;
/// A stream that carried nothing for this long before T stopped.
pub const STALL: Duration = Duration::from_secs(1);
/// How long after T the streams are stopped, so that the report of
/// their last 100 ms is out.
pub const STOP_LATE: Duration = Duration::from_millis(250);
/// How long every stream together may take to start.
const START_BUDGET: Duration = Duration::from_secs(30);
/// How long an iperf3 server may take to listen.
const LISTEN_LIMIT: Duration = Duration::from_secs(5);

/// The ports of a workload's streams: client `c` (1-based) has
/// `streams` ports from `FIRST_PORT + (c - 1) * streams`.
pub fn ports(iperf3: &Iperf3Entry, clients: usize) -> Vec<u16> {
    (1..=clients)
        .flat_map(|c| (0..iperf3.streams as usize).map(move |k| port(iperf3, c, k)))
        .collect()
}

/// Client `c`'s stream `k` (0-based).
fn port(iperf3: &Iperf3Entry, c: usize, k: usize) -> u16 {
    // At most MAX_STREAMS streams (the file's check): no overflow.
    let index = (c - 1) * iperf3.streams as usize + k;
    FIRST_PORT.saturating_add(u16::try_from(index).unwrap_or(u16::MAX))
}

/// Fails, saying how to get it, unless iperf3 is on PATH (the servers'
/// and clients' namespaces share the runner's file system).
pub fn check_tool() -> Result<(), String> {
    host::capability::on_path("iperf3")
        .map(drop)
        .ok_or_else(|| {
            "the workload has iperf3 streams, but iperf3 is not on PATH; install it \
         (apt-get install iperf3, or scripts/ensure-tools.sh)"
                .to_owned()
        })
}

/// The process key of an iperf3 on `host` for `port`.
fn key(host: &str, port: u16) -> String {
    format!("{host}-{}", role(port))
}

fn role(port: u16) -> String {
    format!("iperf3-{port}")
}

/// Starts the iperf3 server of `port` on `host`.
pub fn start_server(lab: &mut RunLab, host: &str, port: u16) -> Result<(), String> {
    let port = port.to_string();
    lab.spawn(
        host,
        &format!("iperf3-{port}"),
        &["iperf3", "-s", "-p", &port],
        &[],
    )
    .map(drop)
}

/// One stream of a run.
#[derive(Debug, Clone)]
pub struct Stream {
    /// The client (1-based).
    pub client: usize,
    pub port: u16,
    /// The client's output (its 100 ms reports).
    pub output: PathBuf,
    pub attempts: u32,
    /// Wall-clock time of the test's own second 0, once it reported.
    pub zero: Option<DateTime<Utc>>,
    /// The client ended before the runner stopped it.
    pub ended_early: bool,
    attempt_start: Instant,
}

/// Starts every client's streams toward `target` and waits until each
/// test reports (or gives up on it after [`MAX_ATTEMPTS`]). They are
/// meant to outlast the run; [`stop`] ends them.
pub fn start(
    lab: &mut RunLab,
    iperf3: &Iperf3Entry,
    target: std::net::IpAddr,
    t: Duration,
) -> Result<Vec<Stream>, String> {
    let mut streams = Vec::new();
    for c in 1..=lab.topology.clients {
        for k in 0..iperf3.streams as usize {
            let port = port(iperf3, c, k);
            let output = lab.logs.join(format!("c{c}-iperf3-{port}.txt"));
            streams.push(Stream {
                client: c,
                port,
                output,
                attempts: 0,
                zero: None,
                ended_early: false,
                attempt_start: Instant::now(),
            });
        }
    }
    // Long enough for any start; the runner stops them at T.
    let seconds = (t + START_BUDGET + Duration::from_secs(5))
        .as_secs()
        .to_string();
    let target = target.to_string();
    let spawn = |lab: &mut RunLab, stream: &mut Stream| -> Result<(), String> {
        let port = stream.port.to_string();
        let mut args = vec![
            "iperf3",
            "-c",
            &target,
            "-p",
            &port,
            "-t",
            &seconds,
            "-b",
            &iperf3.bitrate,
            // Small writes: iperf3 paces by whole writes, and its default
            // 128 KiB ones would come as bursts a few 100 ms apart.
            "-l",
            "16K",
            "-i",
            "0.1",
            "--forceflush",
            "-f",
            "k",
            "--connect-timeout",
            "1000",
        ];
        if iperf3.reverse {
            args.push("-R");
        }
        let host = format!("c{}", stream.client);
        lab.spawn_to(&host, &role(stream.port), &args, &[], Some(&stream.output))?;
        stream.attempts += 1;
        stream.attempt_start = Instant::now();
        Ok(())
    };
    for stream in &mut streams {
        spawn(lab, stream)?;
    }
    let deadline = Instant::now() + START_BUDGET;
    loop {
        if host::signals::stop_requested() {
            return Err("interrupted".to_owned());
        }
        let mut waiting = 0;
        for stream in &mut streams {
            if stream.zero.is_some() || stream.attempts > MAX_ATTEMPTS {
                continue;
            }
            let text = fs::read_to_string(&stream.output).unwrap_or_default();
            if let Some(first) = intervals(&text).first() {
                // Seen within one poll of its printing, at the end of its interval.
                let since = chrono::Duration::milliseconds((first.end_s * 1000.0) as i64);
                stream.zero = Some(Utc::now() - since);
                continue;
            }
            let host = format!("c{}", stream.client);
            let stuck = stream.attempt_start.elapsed() > ATTEMPT_LIMIT
                || lab.exited(&key(&host, stream.port)).is_some();
            if stuck {
                // Its control and data connections met different servers (or
                // none answered): clear that port everywhere and try again.
                lab.kill(&key(&host, stream.port));
                if stream.attempts == MAX_ATTEMPTS {
                    stream.attempts += 1;
                    continue;
                }
                for s in 1..=lab.topology.servers {
                    let server = format!("s{s}");
                    lab.kill(&key(&server, stream.port));
                    start_server(lab, &server, stream.port)?;
                }
                for s in 1..=lab.topology.servers {
                    lab.wait_listening(&format!("s{s}"), stream.port, LISTEN_LIMIT)?;
                }
                spawn(lab, stream)?;
            }
            waiting += 1;
        }
        if waiting == 0 || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for stream in &mut streams {
        stream.attempts = stream.attempts.min(MAX_ATTEMPTS);
        if stream.zero.is_none() {
            lab.kill(&key(&format!("c{}", stream.client), stream.port));
        }
    }
    Ok(streams)
}

/// Stops every stream (at T), noting those that had ended by themselves.
pub fn stop(lab: &mut RunLab, streams: &mut [Stream]) {
    for stream in streams {
        let key = key(&format!("c{}", stream.client), stream.port);
        stream.ended_early = stream.zero.is_some() && lab.exited(&key).is_some();
        lab.kill(&key);
    }
}

/// One 100 ms report of an iperf3 client.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// Seconds from the test's start.
    pub start_s: f64,
    pub end_s: f64,
    pub bits_per_second: f64,
}

/// The interval reports in an iperf3 client's text output (`-f k`), in
/// order; the header, connection lines and the final summaries (`sender`,
/// `receiver`) are left out, as is anything cut off.
pub fn intervals(text: &str) -> Vec<Interval> {
    text.lines().filter_map(interval).collect()
}

fn interval(line: &str) -> Option<Interval> {
    // "[  5]   0.10-0.20   sec   128 KBytes  10486 Kbits/sec    0   1.12 MBytes"
    let rest = line.strip_prefix('[')?;
    let (id, rest) = rest.split_once(']')?;
    id.trim().parse::<u32>().ok()?;
    if line.contains("sender") || line.contains("receiver") {
        return None;
    }
    let words: Vec<&str> = rest.split_whitespace().collect();
    let (start, end) = words.first()?.split_once('-')?;
    let (start_s, end_s) = (start.parse::<f64>().ok()?, end.parse::<f64>().ok()?);
    if *words.get(1)? != "sec" || *words.get(5)? != "Kbits/sec" {
        return None;
    }
    let kilobits: f64 = words.get(4)?.parse().ok()?;
    let valid = start_s.is_finite() && end_s > start_s && kilobits.is_finite() && kilobits >= 0.0;
    valid.then_some(Interval {
        start_s,
        end_s,
        bits_per_second: kilobits * 1000.0,
    })
}

/// The streams of a run in `outcome.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamOutcome {
    pub streams: u64,
    /// Ran until T.
    pub ok: u64,
    /// Stopped before T (ended, or carried nothing in their last second).
    pub broken: u64,
    /// Never started (no report after every attempt).
    pub failed: u64,
    /// Starts over every stream (more than one each: control and data
    /// connections met different servers).
    pub attempts: u64,
    /// Bytes carried during T, over every stream.
    pub bytes: u64,
    /// Mean over T of the streams' summed throughput, bits per second.
    pub mean_bps: f64,
    /// The lowest 100 ms sample of the summed throughput during T.
    pub min_bps: Option<f64>,
}

/// What one stream carried: its reports and how it ended.
#[derive(Debug, Clone)]
pub struct StreamResult {
    pub zero: Option<DateTime<Utc>>,
    pub ended_early: bool,
    pub attempts: u32,
    pub intervals: Vec<Interval>,
}

impl StreamResult {
    /// Reads a stopped stream's output.
    pub fn read(stream: &Stream) -> Self {
        let text = fs::read_to_string(&stream.output).unwrap_or_default();
        Self {
            zero: stream.zero,
            ended_early: stream.ended_early,
            attempts: stream.attempts,
            intervals: intervals(&text),
        }
    }
}

/// Adds the streams to `samples` (their throughput per 100 ms, where each
/// broke) and to `counts` (each stream a connection: ok, broken, or failed
/// to start), for a run that started at `origin` and lasted `t_ms`.
pub fn tally(
    results: &[StreamResult],
    origin: DateTime<Utc>,
    t_ms: u64,
    samples: &mut Vec<Sample>,
    counts: &mut Counts,
) -> StreamOutcome {
    let mut outcome = StreamOutcome {
        streams: results.len() as u64,
        ..StreamOutcome::default()
    };
    let n = t_ms.div_ceil(SAMPLE_MS) as usize;
    while samples.len() < n.max(1) {
        let t = samples.len() as u64 * SAMPLE_MS;
        samples.push(Sample {
            t_ms: t,
            ..Sample::default()
        });
    }
    let mut bits = vec![0.0_f64; samples.len()];
    for result in results {
        outcome.attempts += u64::from(result.attempts);
        let Some(zero) = result.zero else {
            outcome.failed += 1;
            counts.failed += 1;
            samples[0].failed += 1;
            continue;
        };
        // Milliseconds from the run's start of the test's own second `s`.
        let offset_ms = (zero - origin).num_microseconds().unwrap_or(0) as f64 / 1000.0;
        let at = |s: f64| offset_ms + s * 1000.0;
        let mut last_carrying_ms = None;
        for interval in &result.intervals {
            let (from, to) = (at(interval.start_s), at(interval.end_s));
            if interval.bits_per_second > 0.0 {
                last_carrying_ms = Some(to);
            }
            let carried = interval.bits_per_second * (interval.end_s - interval.start_s);
            // Spread over the samples it overlaps, by the overlap.
            #[allow(clippy::cast_sign_loss)] // clamped to 0 or more
            let first = (from.max(0.0) / SAMPLE_MS as f64) as usize;
            for (index, sample_bits) in bits.iter_mut().enumerate().skip(first) {
                let lo = (index as u64 * SAMPLE_MS) as f64;
                let hi = (lo + SAMPLE_MS as f64).min(t_ms as f64);
                if lo >= to || lo >= t_ms as f64 {
                    break;
                }
                let overlap = (hi.min(to) - lo.max(from)).max(0.0);
                *sample_bits += carried * overlap / (to - from);
            }
        }
        let last_report_ms = result.intervals.last().map(|i| at(i.end_s));
        let stopped_at = match last_carrying_ms {
            // It carried data in its last report and ended before the next
            // one was due: it broke within those 100 ms, by their end.
            Some(end) if result.ended_early && Some(end) == last_report_ms => {
                end + SAMPLE_MS as f64
            }
            Some(end) => end,
            None => offset_ms,
        }
        .max(0.0);
        let stalled = stopped_at < t_ms as f64 - STALL.as_secs_f64() * 1000.0;
        if result.ended_early || stalled {
            outcome.broken += 1;
            counts.broken += 1;
            #[allow(clippy::cast_sign_loss)] // clamped to 0 or more above
            let index = ((stopped_at as u64) / SAMPLE_MS).min(samples.len() as u64 - 1) as usize;
            samples[index].broken += 1;
        } else {
            outcome.ok += 1;
            counts.ok += 1;
        }
    }
    let per_second = 1000.0 / SAMPLE_MS as f64;
    let mut total_bits = 0.0;
    let mut lowest: Option<f64> = None;
    for (sample, &b) in samples.iter_mut().zip(&bits) {
        sample.stream_bps = b * per_second;
        total_bits += b;
        if sample.t_ms + SAMPLE_MS <= t_ms {
            lowest = Some(lowest.map_or(sample.stream_bps, |l| l.min(sample.stream_bps)));
        }
    }
    #[allow(clippy::cast_sign_loss, clippy::cast_possible_truncation)]
    // a sum of non-negative figures
    {
        outcome.bytes = (total_bits / 8.0).round() as u64;
    }
    outcome.mean_bps = total_bits / (t_ms.max(1) as f64 / 1000.0);
    outcome.min_bps = lowest;
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "Connecting to host 10.184.9.1, port 5201
[  5] local 10.184.1.11 port 40000 connected to 10.184.9.1 port 5201
[ ID] Interval           Transfer     Bitrate         Retr  Cwnd
[  5]   0.00-0.10   sec   128 KBytes  10000 Kbits/sec    0    944 KBytes
[  5]   0.10-0.20   sec   128 KBytes  20000 Kbits/sec    0   1.12 MBytes
[ 12]   0.20-0.30   sec  0.00 Bytes  0.00 Kbits/sec    3   1.12 MBytes
- - - - - - - - - - - - - - - - - - - - - - - - -
[  5]   0.00-0.30   sec   384 KBytes  10000 Kbits/sec    0             sender
[  5]   0.30-0.4
";

    #[test]
    fn interval_reports_are_read_and_summaries_and_cut_lines_left_out() {
        let got = intervals(OUTPUT);
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(
            got[1],
            Interval {
                start_s: 0.1,
                end_s: 0.2,
                bits_per_second: 20e6
            }
        );
        assert!(got[2].bits_per_second.abs() < 1e-9, "{got:?}");
        // Reverse mode has no Retr and Cwnd columns.
        let reverse = "[  5]   1.00-1.10   sec  1.25 MBytes  104858 Kbits/sec\n";
        let bits = intervals(reverse)[0].bits_per_second;
        assert!((bits - 104_858_000.0).abs() < 1e-3, "{bits}");
        assert!(intervals("[  5]   0.00-0.10   sec   128 KBytes  10 Mbits/sec").is_empty());
    }

    /// 100 ms reports of `bps` from `from_s` to `to_s`, their times as
    /// iperf3 prints them (two decimals).
    fn steady(from_s: f64, to_s: f64, bps: f64) -> Vec<Interval> {
        let tenth = |i: i32| f64::from(i) / 10.0;
        #[allow(clippy::cast_possible_truncation)] // test figures
        let (from, to) = ((from_s * 10.0).round() as i32, (to_s * 10.0).round() as i32);
        (from..to)
            .map(|i| Interval {
                start_s: tenth(i),
                end_s: tenth(i + 1),
                bits_per_second: bps,
            })
            .collect()
    }

    #[test]
    fn reports_land_in_the_samples_they_overlap_on_the_run_s_clock() {
        let origin = Utc::now();
        // Started 250 ms before the run; 8 Mbit/s throughout a 1 s run.
        let result = StreamResult {
            zero: Some(origin - chrono::Duration::milliseconds(250)),
            ended_early: false,
            attempts: 2,
            intervals: steady(0.0, 1.5, 8e6),
        };
        let mut samples = Vec::new();
        let mut counts = Counts::default();
        let outcome = tally(&[result], origin, 1000, &mut samples, &mut counts);
        assert_eq!(samples.len(), 10);
        for sample in &samples {
            assert!((sample.stream_bps - 8e6).abs() < 1.0, "{sample:?}");
        }
        assert_eq!(outcome.bytes, 1_000_000);
        assert!((outcome.mean_bps - 8e6).abs() < 1.0);
        assert_eq!(
            (outcome.ok, outcome.broken, counts.ok, outcome.attempts),
            (1, 0, 1, 2)
        );
    }

    #[test]
    fn a_stream_that_stops_or_ends_early_is_broken_where_its_data_stopped() {
        let origin = Utc::now();
        let stalled = StreamResult {
            zero: Some(origin),
            ended_early: false,
            attempts: 1,
            intervals: [steady(0.0, 0.4, 1e6), steady(0.4, 3.0, 0.0)].concat(),
        };
        let ended = StreamResult {
            zero: Some(origin),
            ended_early: true,
            attempts: 1,
            intervals: steady(0.0, 2.0, 1e6),
        };
        let never = StreamResult {
            zero: None,
            ended_early: false,
            attempts: MAX_ATTEMPTS,
            intervals: Vec::new(),
        };
        let mut samples = Vec::new();
        let mut counts = Counts::default();
        let outcome = tally(
            &[stalled, ended, never],
            origin,
            3000,
            &mut samples,
            &mut counts,
        );
        assert_eq!(
            (outcome.ok, outcome.broken, outcome.failed),
            (0, 2, 1),
            "{outcome:?}"
        );
        assert_eq!((counts.broken, counts.failed), (2, 1));
        assert_eq!(samples[4].broken, 1, "the stalled one stopped at 400 ms");
        // Its report of 1.9-2.0 s carried data; the next one never came.
        assert_eq!(samples[21].broken, 1, "the ended one by 2100 ms");
        assert_eq!(samples[0].failed, 1);
        assert_eq!(outcome.min_bps, Some(0.0));
        // A stream that ran to the end is not broken.
        let whole = StreamResult {
            zero: Some(origin),
            ended_early: false,
            attempts: 1,
            intervals: steady(0.0, 3.0, 1e6),
        };
        let outcome = tally(
            &[whole],
            origin,
            3000,
            &mut Vec::new(),
            &mut Counts::default(),
        );
        assert_eq!((outcome.ok, outcome.broken), (1, 0));
        assert!((outcome.min_bps.unwrap() - 1e6).abs() < 1.0);
    }

    #[test]
    fn each_client_has_its_own_ports() {
        let entry = Iperf3Entry {
            streams: 3,
            bitrate: "1M".into(),
            reverse: false,
        };
        assert_eq!(ports(&entry, 2), [5201, 5202, 5203, 5204, 5205, 5206]);
    }
}
