//! When a run's fault does what: a list of actions at times from the run's
//! start, decided before the run begins (so `--dry-run` prints it and
//! `events.jsonl` can be checked against it).
//!
//! Times are fractions of T. Intermittent partitions alternate an up time
//! and a down time, each exponential with its mean (`mtbf`, `mttr`),
//! drawn from a generator seeded by the run's seed alone: the same seed
//! gives the same cuts, which is what reckon's intermittent partitions
//! could not promise.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::file::{parse_duration, FaultEntry, FaultKind};

/// One thing the runner does to the lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// SIGKILL to balancer `n`'s process.
    KillBalancer { n: usize },
    /// The router stops sending to balancer `n` (its route is withdrawn).
    WithdrawBalancer { n: usize },
    /// Balancer `n` is started again and the router sends to it again.
    RestartBalancer { n: usize },
    /// SIGKILL to server `n`'s processes.
    KillServer { n: usize },
    /// Server `n`'s processes start again.
    RestartServer { n: usize },
    /// Server `n` joins every balancer's set.
    AddBackend { n: usize },
    /// Server `n` leaves every balancer's set.
    RemoveBackend { n: usize },
    /// Server `n` takes no new flows on any balancer.
    DrainBackend { n: usize },
    /// The pairs cannot reach each other (both ways).
    Cut { pairs: Vec<[String; 2]> },
    /// Every cut is healed.
    Heal,
    /// `host`'s link is impaired by its emulator: from the lab's start for
    /// a whole-run link fault (at 0), else switched on at this time.
    Impair { host: String },
    /// `host`'s link passes frames untouched again (a timed link fault's end).
    Unimpair { host: String },
    /// The fault proxy on the router gets the fault's toxic.
    AddToxic,
    /// The toxic goes.
    RemoveToxic,
}

impl Action {
    /// Whether this action ends a fault window (for the plots' shading).
    pub fn heals(&self) -> bool {
        matches!(
            self,
            Self::RestartBalancer { .. }
                | Self::RestartServer { .. }
                | Self::Heal
                | Self::RemoveToxic
                | Self::Unimpair { .. }
        )
    }
}

/// An action and its time from the start of the workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Scheduled {
    #[serde(serialize_with = "as_millis")]
    pub at: Duration,
    #[serde(flatten)]
    pub action: Action,
}

fn as_millis<S: serde::Serializer>(at: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(at.as_millis()).unwrap_or(u64::MAX))
}

/// The most cut/heal pairs one intermittent fault makes: a bound on the
/// work, whatever the means.
pub const MAX_INTERMITTENT_CUTS: usize = 10_000;

/// How long the router keeps sending to a killed balancer by default.
pub const DEFAULT_WITHDRAW: Duration = Duration::from_millis(500);

/// The actions of `fault` in a run of length `t` with seed `seed`, by time.
pub fn schedule(fault: &FaultEntry, t: Duration, seed: u64) -> Vec<Scheduled> {
    let at = t.mul_f64(fault.at.unwrap_or(1.0 / 3.0));
    let until = t.mul_f64(fault.until.unwrap_or(2.0 / 3.0));
    let recover = fault.recover.map(|f| t.mul_f64(f));
    let n = fault.target;
    let mut out = Vec::new();
    let mut push = |at: Duration, action: Action| out.push(Scheduled { at, action });
    match fault.kind {
        FaultKind::None => {}
        FaultKind::BalancerKill => {
            let withdraw = fault
                .withdraw
                .as_deref()
                .and_then(|w| parse_duration("withdraw", w).ok())
                .unwrap_or(DEFAULT_WITHDRAW);
            let targets = n..n + fault.count;
            for n in targets.clone() {
                push(at, Action::KillBalancer { n });
            }
            let withdrawn = at + withdraw;
            if recover.is_none_or(|r| withdrawn < r) {
                for n in targets.clone() {
                    push(withdrawn, Action::WithdrawBalancer { n });
                }
            }
            if let Some(recover) = recover {
                for n in targets {
                    push(recover, Action::RestartBalancer { n });
                }
            }
        }
        FaultKind::BackendKill => {
            for n in n..n + fault.count {
                push(at, Action::KillServer { n });
            }
            if let Some(recover) = recover {
                for n in n..n + fault.count {
                    push(recover, Action::RestartServer { n });
                }
            }
        }
        FaultKind::BackendAdd => push(at, Action::AddBackend { n }),
        FaultKind::BackendRemove => push(at, Action::RemoveBackend { n }),
        FaultKind::BackendDrain => push(at, Action::DrainBackend { n }),
        FaultKind::Partition => {
            push(
                at,
                Action::Cut {
                    pairs: fault.cut.clone(),
                },
            );
            push(until, Action::Heal);
        }
        FaultKind::Toxic => {
            push(at, Action::AddToxic);
            push(until, Action::RemoveToxic);
        }
        FaultKind::Link => {
            let host = fault.host.clone().unwrap_or_default();
            if link_is_timed(fault) {
                push(at, Action::Impair { host: host.clone() });
                if let Some(until) = fault.until {
                    push(t.mul_f64(until), Action::Unimpair { host });
                }
            } else {
                push(Duration::ZERO, Action::Impair { host });
            }
        }
        FaultKind::Intermittent => {
            let mean = |text: &Option<String>| {
                text.as_deref()
                    .and_then(|m| parse_duration("mean", m).ok())
                    .unwrap_or(Duration::from_secs(1))
            };
            let windows = intermittent(at, until, mean(&fault.mtbf), mean(&fault.mttr), seed);
            for (cut, heal) in windows {
                push(
                    cut,
                    Action::Cut {
                        pairs: fault.cut.clone(),
                    },
                );
                push(heal, Action::Heal);
            }
        }
    }
    out
}

/// Whether a link fault impairs from `at` (to `until`, if given) rather
/// than for the whole run: when either is written.
pub fn link_is_timed(fault: &FaultEntry) -> bool {
    fault.kind == FaultKind::Link && (fault.at.is_some() || fault.until.is_some())
}

/// Whether a fault of this kind starts with server `target` outside the set.
pub fn held_out_at_start(fault: &FaultEntry) -> Option<usize> {
    (fault.kind == FaultKind::BackendAdd).then_some(fault.target)
}

/// The down windows `(cut, heal)` of an intermittent partition between
/// `from` and `to`: up for Exp(mtbf), down for Exp(mttr), again; a window
/// still open at `to` heals at `to`.
pub fn intermittent(
    from: Duration,
    to: Duration,
    mtbf: Duration,
    mttr: Duration,
    seed: u64,
) -> Vec<(Duration, Duration)> {
    let mut random = ChaCha8Rng::seed_from_u64(seed ^ 0x696E_7465_726D_6974);
    let mut exponential = |mean: Duration| {
        // Inverse transform: 1 - u is in (0, 1], so the log is finite.
        let u: f64 = random.gen();
        mean.mul_f64(-(1.0 - u).ln())
    };
    let mut windows = Vec::new();
    let mut now = from;
    while windows.len() < MAX_INTERMITTENT_CUTS {
        let cut = now + exponential(mtbf);
        if cut >= to {
            break;
        }
        let heal = (cut + exponential(mttr)).min(to);
        windows.push((cut, heal));
        now = heal;
    }
    windows
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fault(kind: FaultKind) -> FaultEntry {
        FaultEntry {
            name: "f".into(),
            kind,
            at: None,
            recover: None,
            until: None,
            target: 2,
            cut: vec![["lb1".into(), "s1".into()]],
            mtbf: Some("300ms".into()),
            mttr: Some("100ms".into()),
            withdraw: None,
            host: None,
            netem: None,
            netem_in: None,
            count: 1,
            toxic: None,
            stream: None,
            attributes: std::collections::BTreeMap::new(),
        }
    }

    const T: Duration = Duration::from_secs(9);

    #[test]
    fn faults_start_at_a_third_and_heal_at_two_thirds_by_default() {
        let plan = schedule(&fault(FaultKind::Partition), T, 1);
        assert_eq!(plan.len(), 2);
        assert_eq!(plan[0].at, Duration::from_secs(3));
        assert!(matches!(plan[0].action, Action::Cut { .. }));
        assert_eq!(
            plan[1],
            Scheduled {
                at: Duration::from_secs(6),
                action: Action::Heal
            }
        );
        assert!(schedule(&fault(FaultKind::None), T, 1).is_empty());
    }

    #[test]
    fn a_killed_balancer_is_withdrawn_then_recovers_at_its_fraction() {
        let mut kill = fault(FaultKind::BalancerKill);
        kill.recover = Some(2.0 / 3.0);
        kill.target = 1;
        let plan = schedule(&kill, T, 1);
        let actions: Vec<(u128, Action)> = plan
            .into_iter()
            .map(|s| (s.at.as_millis(), s.action))
            .collect();
        assert_eq!(
            actions,
            vec![
                (3000, Action::KillBalancer { n: 1 }),
                (3500, Action::WithdrawBalancer { n: 1 }),
                (6000, Action::RestartBalancer { n: 1 }),
            ]
        );
        let mut quick = kill.clone();
        quick.withdraw = Some("5s".into());
        let plan = schedule(&quick, T, 1);
        assert_eq!(plan.len(), 2, "no withdrawal after the recovery: {plan:?}");
    }

    #[test]
    fn n_nodes_killed_at_start_are_n_kills_at_zero() {
        let mut kill = fault(FaultKind::BackendKill);
        kill.at = Some(0.0);
        kill.count = 2;
        assert_eq!(
            schedule(&kill, T, 1),
            vec![
                Scheduled {
                    at: Duration::ZERO,
                    action: Action::KillServer { n: 2 }
                },
                Scheduled {
                    at: Duration::ZERO,
                    action: Action::KillServer { n: 3 }
                },
            ]
        );
    }

    #[test]
    fn backend_faults_act_on_their_target_at_their_time() {
        let mut add = fault(FaultKind::BackendAdd);
        add.at = Some(0.5);
        assert_eq!(
            schedule(&add, T, 1),
            vec![Scheduled {
                at: Duration::from_millis(4500),
                action: Action::AddBackend { n: 2 }
            }]
        );
        assert_eq!(held_out_at_start(&add), Some(2));
        assert_eq!(held_out_at_start(&fault(FaultKind::BackendDrain)), None);
    }

    #[test]
    fn a_link_fault_impairs_the_whole_run_or_from_at_to_until() {
        let mut link = fault(FaultKind::Link);
        link.host = Some("c1".into());
        let impair = |ms: u64| Scheduled {
            at: Duration::from_millis(ms),
            action: Action::Impair { host: "c1".into() },
        };
        assert_eq!(schedule(&link, T, 1), vec![impair(0)]);
        assert!(!link_is_timed(&link));
        link.at = Some(0.5);
        assert_eq!(schedule(&link, T, 1), vec![impair(4500)]);
        link.until = Some(0.75);
        let plan = schedule(&link, T, 1);
        assert_eq!(
            plan,
            vec![
                impair(4500),
                Scheduled {
                    at: Duration::from_millis(6750),
                    action: Action::Unimpair { host: "c1".into() }
                }
            ]
        );
        assert!(plan[1].action.heals() && !plan[0].action.heals());
        link.at = None;
        assert_eq!(schedule(&link, T, 1)[0], impair(3000), "at defaults to T/3");
    }

    proptest! {
        #[test]
        fn intermittent_schedules_are_fixed_by_the_seed_and_stay_in_their_window(
            seed in any::<u64>(),
            mtbf_ms in 10u64..2000,
            mttr_ms in 10u64..2000,
            from_ms in 0u64..5000,
            length_ms in 0u64..20_000,
        ) {
            let from = Duration::from_millis(from_ms);
            let to = from + Duration::from_millis(length_ms);
            let (mtbf, mttr) = (Duration::from_millis(mtbf_ms), Duration::from_millis(mttr_ms));
            let windows = intermittent(from, to, mtbf, mttr, seed);
            prop_assert_eq!(&windows, &intermittent(from, to, mtbf, mttr, seed));
            let mut previous = from;
            for &(cut, heal) in &windows {
                prop_assert!(previous <= cut && cut < heal && heal <= to, "{:?}", windows);
                previous = heal;
            }
        }

        #[test]
        fn intermittent_faults_alternate_cut_and_heal(seed in any::<u64>()) {
            let plan = schedule(&fault(FaultKind::Intermittent), T, seed);
            prop_assert_eq!(plan.len() % 2, 0);
            for (i, step) in plan.iter().enumerate() {
                prop_assert_eq!(i % 2 == 1, step.action == Action::Heal);
            }
            prop_assert_eq!(plan, schedule(&fault(FaultKind::Intermittent), T, seed));
        }
    }

    #[test]
    fn different_seeds_give_different_intermittent_schedules() {
        let plans: std::collections::BTreeSet<String> = (0..8u64)
            .map(|seed| format!("{:?}", schedule(&fault(FaultKind::Intermittent), T, seed)))
            .collect();
        assert!(plans.len() > 1, "eight seeds, one schedule");
    }
}
