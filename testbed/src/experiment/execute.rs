//! One run: a fresh lab, the system, the workload, the faults at their
//! times, then the results in the run's folder:
//!
//! - `config.json`: the run's full settings, seed and fault schedule;
//! - `events.jsonl`: every fault action applied (or skipped) with its time;
//! - `samples.jsonl`: per 100 ms, what the clients saw (see [`samples`]);
//! - `latency.json`: every new connection's connect latency (for the CDF);
//! - `outcome.json`: the counts, the disruption after each fault, the
//!   replies per backend; written last, so its presence means "finished";
//! - `logs/`: every process's output; `stats-lbN.*`: the balancers' counters.
//!
//! The lab and every process go when the run ends, however it ends
//! ([`RunLab`]'s drop).
//!
//! [`samples`]: super::samples

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::file::{ExperimentFile, FaultKind, Ingress, Protocol, SystemKind};
use super::lab::{Addresses, LabOptions, RunLab};
use super::matrix::RunSpec;
use super::resume::OUTCOME;
use super::samples::{disrupted_for_ms, percentile, Counts, Tally};
use super::schedule::{held_out_at_start, link_is_timed, schedule, Scheduled};
use super::streams::{self, StreamOutcome, StreamResult};
use super::system::{Applied, System};
use super::{fault_proxy, workload};

/// How long after T the clients may take to finish.
const CLIENT_GRACE: Duration = Duration::from_secs(20);

/// A fault's disruption, in `outcome.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recovery {
    pub action: String,
    pub at_ms: u64,
    /// From the action to the end of the last 100 ms with a failed or
    /// broken connection before the next action (0: none).
    pub disrupted_ms: u64,
}

/// `outcome.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub id: String,
    pub system: String,
    pub topology: String,
    pub workload: String,
    pub fault: String,
    pub repeat: u32,
    pub seed: u64,
    pub duration_ms: u64,
    pub connections: Counts,
    pub connect_latency_p50_ms: Option<f64>,
    pub connect_latency_p99_ms: Option<f64>,
    /// Packets the balancers sent each server (`rusty_rail`'s counters, of
    /// the balancers running at the end; empty for other systems).
    #[serde(default)]
    pub packets_per_backend: std::collections::BTreeMap<String, u64>,
    pub recovery: Vec<Recovery>,
    /// Fault actions that failed (the run still counts; the report shows them).
    pub errors: Vec<String>,
    /// Lines of the clients' event files that did not parse.
    pub unreadable_events: usize,
    /// The iperf3 streams, in a workload that has them (each stream is
    /// also one connection of `connections`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streams: Option<StreamOutcome>,
}

/// What a run needs from the whole experiment.
#[derive(Debug)]
pub struct Context<'a> {
    pub file: &'a ExperimentFile,
    pub testbed: PathBuf,
}

/// Runs `run` with its results in `dir` (fresh); `phase` hears what it is doing.
pub fn execute(
    ctx: &Context<'_>,
    run: &RunSpec,
    dir: &Path,
    phase: &dyn Fn(&str),
) -> Result<Outcome, String> {
    let file = ctx.file;
    let t = file.run_duration();
    let system_entry = &file.systems[run.system];
    let topology = &file.topologies[run.topology];
    let workload_entry = &file.workloads[run.workload];
    let fault = &file.faults[run.fault];
    if system_entry.kind == SystemKind::Haproxy && workload_entry.protocol == Protocol::Udp {
        return Err(format!(
            "system {:?} is HAProxy in TCP mode, which does not carry workload {:?}'s UDP; \
             leave the pair out with --only",
            system_entry.name, workload_entry.name
        ));
    }
    if workload_entry.iperf3.is_some() {
        streams::check_tool()?;
    }
    let plan = schedule(fault, t, run.seed);
    write_json(
        &dir.join("config.json"),
        &serde_json::json!({
            "run": run, "duration_ms": millis(t), "prefix": file.prefix, "subnet": file.subnet,
            "system": system_entry, "topology": topology, "workload": workload_entry,
            "fault": fault, "schedule": plan,
        }),
    )?;
    phase("lab up");
    let addresses = Addresses::for_topology(file.cidr(), topology);
    let options = LabOptions {
        vip_on_balancers: system_entry.kind == SystemKind::Haproxy,
        impaired: (fault.kind == FaultKind::Link).then(|| {
            (
                fault.host.clone().unwrap_or_default(),
                fault.netem.clone(),
                fault.netem_in.clone(),
            )
        }),
        seed: run.seed,
        router_bgp: (system_entry.kind == SystemKind::RustyRail
            && system_entry.mode == Some(Ingress::Bgp))
        .then(|| {
            system_entry
                .settings
                .get("RR_BGP_BFD")
                .is_some_and(|v| matches!(v.as_str(), "1" | "true" | "yes" | "on"))
        }),
    };
    let mut lab = RunLab::up(
        &file.prefix,
        &addresses,
        topology,
        &options,
        dir,
        &ctx.testbed,
    )?;
    if link_is_timed(fault) {
        // Impaired from its time on: the link passes frames untouched until then.
        lab.switch_impairment(fault.host.as_deref().unwrap_or_default(), false)?;
    }
    phase("starting the system");
    let stream_ports = workload_entry
        .iperf3
        .as_ref()
        .map(|iperf3| streams::ports(iperf3, topology.clients))
        .unwrap_or_default();
    let token = format!("rrex-{:016x}", run.seed);
    let mut system = System::start(
        system_entry,
        &mut lab,
        &ctx.testbed,
        dir,
        token,
        held_out_at_start(fault),
        &stream_ports,
    )?;
    system.timed_link = link_is_timed(fault);
    // Before the run's clock: a stream may need several starts (see [`streams`]).
    // Straight to the system, also with a toxic fault (its proxy carries mconnect's port).
    let mut running_streams = match &workload_entry.iperf3 {
        Some(iperf3) => {
            phase("starting iperf3 streams");
            let ip = system.target(&lab).ip();
            streams::start(&mut lab, iperf3, ip, t)?
        }
        None => Vec::new(),
    };
    phase("running");
    let wall_start = Utc::now();
    let start = Instant::now();
    let mut target = system.target(&lab);
    if fault.kind == FaultKind::Toxic {
        target = fault_proxy::start(&mut lab, &ctx.testbed, dir, target, run.seed)?;
        system.toxic = Some(fault_proxy::toxic_body(fault));
    }
    let clients = workload::start(&mut lab, workload_entry, &ctx.testbed, target, t, run.seed)?;
    let mut events =
        fs::File::create(dir.join("events.jsonl")).map_err(|e| format!("events.jsonl: {e}"))?;
    let mut errors = Vec::new();
    for step in &plan {
        sleep_until(start + step.at)?;
        let result = system.apply(&mut lab, &step.action);
        let (outcome, detail) = match &result {
            Ok(Applied::Done) => ("applied", None),
            Ok(Applied::Skipped(why)) => ("skipped", Some(why.clone())),
            Err(error) => {
                errors.push(format!(
                    "{}: {error}",
                    super::plan::action_name(&step.action)
                ));
                ("failed", Some(error.clone()))
            }
        };
        let mut line = serde_json::to_value(step).unwrap_or_default();
        if let Some(map) = line.as_object_mut() {
            map.insert("t_ms".into(), millis(start.elapsed()).into());
            map.insert("time".into(), Utc::now().to_rfc3339().into());
            map.insert("result".into(), outcome.into());
            if let Some(detail) = detail {
                map.insert("detail".into(), detail.into());
            }
        }
        writeln!(events, "{line}").map_err(|e| format!("events.jsonl: {e}"))?;
    }
    if !running_streams.is_empty() {
        sleep_until(start + t + streams::STOP_LATE)?;
        streams::stop(&mut lab, &mut running_streams);
    }
    phase("waiting for the clients");
    workload::wait(&mut lab, &clients, t + CLIENT_GRACE)?;
    phase("collecting");
    errors.extend(system.save_stats(&lab));
    let packets = super::system::packets_per_backend(dir, &lab);
    drop(system);
    drop(lab);
    let mut tally = Tally::new(millis(t));
    let mut unreadable = 0;
    for client in &clients {
        let text = fs::read_to_string(&client.events).unwrap_or_default();
        unreadable += tally.add(client.source, wall_start, &text);
    }
    let mut samples = tally.samples();
    let stream_outcome = workload_entry.iperf3.as_ref().map(|_| {
        let results: Vec<StreamResult> = running_streams.iter().map(StreamResult::read).collect();
        streams::tally(
            &results,
            wall_start,
            millis(t),
            &mut samples,
            &mut tally.counts,
        )
    });
    let mut lines = String::new();
    for sample in &samples {
        lines.push_str(&serde_json::to_string(sample).unwrap_or_default());
        lines.push('\n');
    }
    fs::write(dir.join("samples.jsonl"), lines).map_err(|e| format!("samples.jsonl: {e}"))?;
    let mut latencies = tally.all_latencies.clone();
    latencies.sort_by(f64::total_cmp);
    write_json(&dir.join("latency.json"), &latencies)?;
    let outcome = Outcome {
        id: run.id.clone(),
        system: system_entry.name.clone(),
        topology: topology.name.clone(),
        workload: workload_entry.name.clone(),
        fault: fault.name.clone(),
        repeat: run.repeat,
        seed: run.seed,
        duration_ms: millis(t),
        connections: tally.counts.clone(),
        connect_latency_p50_ms: percentile(&latencies, 0.5),
        connect_latency_p99_ms: percentile(&latencies, 0.99),
        packets_per_backend: packets,
        recovery: recoveries(&plan, &samples, millis(t)),
        errors,
        unreadable_events: unreadable,
        streams: stream_outcome,
    };
    write_json(&dir.join(OUTCOME), &outcome)?;
    Ok(outcome)
}

/// The disruption after each action that starts a fault.
fn recoveries(plan: &[Scheduled], samples: &[super::samples::Sample], t_ms: u64) -> Vec<Recovery> {
    plan.iter()
        .enumerate()
        .filter(|(_, s)| !s.action.heals())
        .map(|(i, step)| {
            let at_ms = millis(step.at);
            let next = plan.get(i + 1).map_or(t_ms + 10_000, |n| millis(n.at));
            Recovery {
                action: super::plan::action_name(&step.action),
                at_ms,
                disrupted_ms: disrupted_for_ms(samples, at_ms, next),
            }
        })
        .collect()
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Sleeps until `when` in 50 ms steps, ending early on SIGINT/SIGTERM.
fn sleep_until(when: Instant) -> Result<(), String> {
    loop {
        if host::signals::stop_requested() {
            return Err("interrupted".to_owned());
        }
        let now = Instant::now();
        if now >= when {
            return Ok(());
        }
        std::thread::sleep((when - now).min(Duration::from_millis(50)));
    }
}

/// Writes `value` as pretty JSON to `path`.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    fs::write(path, text + "\n").map_err(|e| format!("writing {}: {e}", path.display()))
}
