//! `--keep --duration D --interval I`: a held connection asks the server's name at
//! every interval. A different name is a *move* (the flow now reaches another server,
//! possible for UDP, or behind a balancer that proxies); a reset, a close by the
//! server, or no answer within one interval is a *break*, after which the connection
//! is given up. This is the measure of flow disruption.

use std::time::{Duration, Instant};

use tokio::time::{sleep_until, timeout};

use super::clock::{nanos, RunClock};
use super::events::{Event, EventKind, EventSink};
use super::flow::Flow;
use super::output::{Disruption, DisruptionKind};
use super::tally::HoldOutcome;

/// The schedule and the sinks a held connection needs.
#[derive(Debug)]
pub struct HoldPlan {
    pub end: Instant,
    pub interval: Duration,
    pub clock: RunClock,
    pub events: EventSink,
}

/// Holds `flow` (whose first reply named `host`) until `plan.end` or until it breaks.
pub async fn hold(
    mut flow: Flow,
    connection: u64,
    mut host: String,
    plan: &HoldPlan,
) -> HoldOutcome {
    let mut outcome = HoldOutcome::default();
    let mut next = Instant::now() + plan.interval;
    while next < plan.end {
        sleep_until(next.into()).await;
        next += plan.interval;
        outcome.probes += 1;
        let answer = timeout(plan.interval, flow.ask()).await;
        let at = Instant::now();
        let reason = match answer {
            Ok(Ok(name)) if name == host => continue,
            Ok(Ok(name)) => {
                plan.events.emit(|| {
                    let mut event = Event::new(&plan.clock, at, connection, EventKind::Moved);
                    event.host = Some(name.clone());
                    event.previous_host = Some(host.clone());
                    event
                });
                let previous = std::mem::replace(&mut host, name.clone());
                outcome.disruptions.push(disruption(
                    plan,
                    at,
                    connection,
                    DisruptionKind::Moved,
                    previous,
                    Some(name),
                    None,
                ));
                continue;
            }
            Ok(Err(error)) => error.to_string(),
            Err(_) => format!(
                "no answer within {}",
                humantime::format_duration(plan.interval)
            ),
        };
        plan.events.emit(|| {
            let mut event = Event::new(&plan.clock, at, connection, EventKind::Broken);
            event.host = Some(host.clone());
            event.reason = Some(reason.clone());
            event
        });
        outcome.disruptions.push(disruption(
            plan,
            at,
            connection,
            DisruptionKind::Broken,
            host,
            None,
            Some(reason),
        ));
        return outcome;
    }
    drop(flow);
    plan.events
        .emit(|| Event::new(&plan.clock, Instant::now(), connection, EventKind::Closed));
    outcome
}

fn disruption(
    plan: &HoldPlan,
    at: Instant,
    connection: u64,
    kind: DisruptionKind,
    host: String,
    new_host: Option<String>,
    reason: Option<String>,
) -> Disruption {
    Disruption {
        connection,
        kind,
        time: plan.clock.wall(at),
        elapsed_ns: nanos(plan.clock.since_start(at)),
        host,
        new_host,
        reason,
    }
}
