//! `testbed partition --prefix P SPEC`: applies a partition to a running lab
//! (or heals it), from the lab's state file. Intermittent forms (the bucket
//! form with an interval, or `--mtbf`) run their seeded schedule in the
//! foreground until `--for` has passed, then heal.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::record::{record, PartitionRecord};
use super::schedule::{schedule, timing_of, Action, Timing};
use super::{apply, heal, Grudge, Node, PartitionSpec};
use crate::lab::state::{LabState, STATE_DIR};

/// Options of `testbed partition`.
#[derive(Debug, Clone, clap::Args)]
pub struct PartitionArgs {
    /// The lab (its `--prefix`).
    #[arg(short, long)]
    pub prefix: String,
    /// halves, random-halves, one, bridge, majorities-ring, `a,b|c,d`,
    /// `a->b[;c->d]`, bucket fractions like "0.5 0.5 interval 10s duration 5s",
    /// or `heal`. Nodes are named by instance index (`testbed run`) or by
    /// host name (`testbed up`).
    pub spec: String,
    /// Seed of the random forms and schedules.
    #[arg(long, default_value = "1")]
    pub seed: u64,
    /// Random intermittent partitions: mean time between them (e.g. 30s).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub mtbf: Option<Duration>,
    /// With --mtbf: how long each one lasts.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
    pub outage: Duration,
    /// How long an intermittent schedule runs before the lab is healed.
    #[arg(long = "for", value_parser = humantime::parse_duration, default_value = "60s")]
    pub run_for: Duration,
    /// Where lab state files are.
    #[arg(long, default_value = STATE_DIR, hide = true)]
    pub state_dir: PathBuf,
}

/// Runs `testbed partition`.
pub fn main(args: &PartitionArgs) -> ExitCode {
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("testbed partition: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &PartitionArgs) -> Result<(), String> {
    let state = LabState::load_in(&args.state_dir, &args.prefix)
        .map_err(|e| format!("lab {}: cannot read its state: {e}", args.prefix))?
        .ok_or_else(|| {
            format!(
                "no lab with prefix {} (testbed status lists them)",
                args.prefix
            )
        })?;
    let nodes = nodes_of_lab(&state);
    let keep = |partition| record(&args.state_dir, &args.prefix, partition);
    if args.spec.trim() == "heal" {
        heal(&nodes)?;
        keep(None)?;
        println!("lab {}: healed", args.prefix);
        return Ok(());
    }
    let spec = PartitionSpec::parse(&args.spec).map_err(|e| e.to_string())?;
    let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    let timing = match args.mtbf {
        Some(mean) => Timing::Mtbf {
            mean,
            duration: args.outage,
        },
        None => timing_of(&spec),
    };
    if timing == Timing::Once {
        let grudge = Grudge::from_spec(&spec, &names, args.seed)?;
        apply(&nodes, &grudge)?;
        keep(Some(PartitionRecord::new(
            &args.spec, args.seed, &grudge, &names,
        )))?;
        println!("lab {}: {}", args.prefix, describe(&grudge, &names));
        return Ok(());
    }
    let never = AtomicBool::new(false);
    let mut on_step = |grudge: Option<&Grudge>| {
        let step = grudge.map(|g| PartitionRecord::new(&args.spec, args.seed, g, &names));
        if let Err(error) = keep(step) {
            eprintln!("testbed partition: {error}");
        }
    };
    let played = run_schedule(
        &nodes,
        &spec,
        timing,
        args.seed,
        args.run_for,
        &never,
        &mut on_step,
    );
    // Healed at the end even when a step failed.
    heal(&nodes)?;
    keep(None)?;
    played?;
    println!("{:>8.3}s healed (end)", args.run_for.as_secs_f64());
    Ok(())
}

/// Plays a partition schedule on `nodes` until `horizon` has passed or
/// `stop` is set, printing each step and telling `on_step` (the grudge cut,
/// or `None` for a heal). Leaves the last step in place.
pub fn run_schedule(
    nodes: &[Node],
    spec: &PartitionSpec,
    timing: Timing,
    seed: u64,
    horizon: Duration,
    stop: &AtomicBool,
    on_step: &mut dyn FnMut(Option<&Grudge>),
) -> Result<(), String> {
    let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    let events = schedule(spec, timing, &names, seed, horizon)?;
    let start = Instant::now();
    let wait_until = |at: Duration| {
        while !stop.load(Ordering::Relaxed) {
            let Some(left) = at.checked_sub(start.elapsed()) else {
                return true;
            };
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
        false
    };
    for event in events {
        if !wait_until(event.at) {
            return Ok(());
        }
        match event.action {
            Action::Cut(grudge) => {
                apply(nodes, &grudge)?;
                on_step(Some(&grudge));
                println!(
                    "{:>8.3}s cut: {}",
                    event.at.as_secs_f64(),
                    describe(&grudge, &names)
                );
            }
            Action::Heal => {
                heal(nodes)?;
                on_step(None);
                println!("{:>8.3}s healed", event.at.as_secs_f64());
            }
        }
    }
    wait_until(horizon);
    Ok(())
}

/// The lab's hosts as partition nodes, named by instance index.
pub fn nodes_of(plan: &crate::lab::plan::LabPlan) -> Vec<Node> {
    plan.hosts
        .iter()
        .map(|h| Node {
            name: h.index.to_string(),
            namespace: h.namespace.clone(),
            addrs: vec![h.address.into()],
        })
        .collect()
}

/// The nodes of any lab: a topology lab's hosts by name (with the
/// addresses of their links, not the extra ones, which several hosts may
/// share), or a star lab's instances by index.
pub fn nodes_of_lab(state: &LabState) -> Vec<Node> {
    let Some(topology) = &state.topology else {
        return nodes_of(&state.plan);
    };
    topology
        .hosts
        .iter()
        .map(|h| Node {
            name: h.name.clone(),
            namespace: h.namespace.clone(),
            addrs: h.interfaces.iter().map(|i| i.address.into()).collect(),
        })
        .collect()
}

/// `2 drops 0,1; 3 drops 0,1 ...`: who drops whom.
pub fn describe(grudge: &Grudge, names: &[String]) -> String {
    let parts: Vec<String> = (0..grudge.nodes())
        .filter_map(|r| {
            let senders: Vec<&str> = grudge.dropped_by(r).map(|s| names[s].as_str()).collect();
            (!senders.is_empty()).then(|| format!("{} drops {}", names[r], senders.join(",")))
        })
        .collect();
    if parts.is_empty() {
        "nobody drops anything".into()
    } else {
        parts.join("; ")
    }
}
