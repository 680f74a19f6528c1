//! A run's workload: on every client, `testbed mconnect` opening new
//! connections at the workload's rate for T, and another holding
//! connections open for T (`--keep --duration`), each writing its events
//! (`--events`) and its JSON report into the run's `logs/`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::file::{Arrivals, Protocol, WorkloadEntry};
use super::lab::RunLab;
use super::samples::Source;

/// One mconnect process of the workload.
#[derive(Debug)]
pub struct ClientProcess {
    /// `c1-connects`, `c1-hold`: the lab's process key.
    pub key: String,
    pub source: Source,
    pub events: PathBuf,
    pub report: PathBuf,
}

/// Starts the workload on every client toward `target`.
pub fn start(
    lab: &mut RunLab,
    workload: &WorkloadEntry,
    testbed: &std::path::Path,
    target: std::net::SocketAddr,
    t: Duration,
    seed: u64,
) -> Result<Vec<ClientProcess>, String> {
    let testbed = testbed.to_string_lossy().into_owned();
    let target = target.to_string();
    let mut started = Vec::new();
    for c in 1..=lab.topology.clients {
        let host = format!("c{c}");
        let seed = (seed ^ c as u64).to_string();
        let mut start_one =
            |role: &str, source: Source, extra: Vec<String>| -> Result<(), String> {
                let events = lab.logs.join(format!("{host}-{role}.events.jsonl"));
                let report = lab.logs.join(format!("{host}-{role}.json"));
                let mut args: Vec<String> = vec![
                    testbed.clone(),
                    "mconnect".into(),
                    "--address".into(),
                    target.clone(),
                    "--output".into(),
                    "json".into(),
                    "--seed".into(),
                    seed.clone(),
                    "--events".into(),
                    events.to_string_lossy().into_owned(),
                ];
                if workload.protocol == Protocol::Udp {
                    args.push("--udp".into());
                }
                args.extend(extra);
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                lab.spawn_to(&host, role, &args, &[], Some(&report))?;
                started.push(ClientProcess {
                    key: format!("{host}-{role}"),
                    source,
                    events,
                    report,
                });
                Ok(())
            };
        if workload.hold > 0 {
            let millis = format!("{}ms", t.as_millis());
            start_one(
                "hold",
                Source::Hold,
                vec![
                    "--keep".into(),
                    "--nconn".into(),
                    workload.hold.to_string(),
                    "--duration".into(),
                    millis,
                    "--interval".into(),
                    workload.interval.clone(),
                ],
            )?;
        }
        if workload.rate > 0.0 {
            #[allow(clippy::cast_sign_loss)] // the rate is checked positive
            let nconn = (workload.rate * t.as_secs_f64()).ceil().max(1.0) as u64;
            start_one(
                "connects",
                Source::Connects(workload.rate),
                vec![
                    "--nconn".into(),
                    nconn.to_string(),
                    "--rate".into(),
                    workload.rate.to_string(),
                    "--arrivals".into(),
                    match workload.arrivals {
                        Arrivals::Uniform => "uniform".into(),
                        Arrivals::Poisson => "poisson".into(),
                    },
                    "--timeout".into(),
                    format!("{}ms", (t + Duration::from_secs(3)).as_millis()),
                ],
            )?;
        }
    }
    Ok(started)
}

/// Waits until every client process has ended, at most `limit`; stops
/// early (returning an error) when SIGINT or SIGTERM arrives.
pub fn wait(lab: &mut RunLab, clients: &[ClientProcess], limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    loop {
        if clients.iter().all(|c| lab.exited(&c.key).is_some()) {
            return Ok(());
        }
        if host::signals::stop_requested() {
            return Err("interrupted".to_owned());
        }
        if Instant::now() > deadline {
            return Err(format!("the clients did not finish within {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
