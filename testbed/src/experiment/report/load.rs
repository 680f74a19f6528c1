//! The finished runs of a results folder.

use std::path::Path;

use crate::experiment::execute::Outcome;
use crate::experiment::resume::OUTCOME;
use crate::experiment::samples::Sample;

/// A finished run's results.
#[derive(Debug, Clone)]
pub struct Run {
    pub outcome: Outcome,
    pub samples: Vec<Sample>,
    pub latencies: Vec<f64>,
    /// Fault windows `(from, to)` in seconds from the start, from `events.jsonl`.
    pub windows: Vec<(f64, f64)>,
}

/// Every run folder of `dir` with an `outcome.json`, by id.
pub fn runs(dir: &Path) -> Result<Vec<Run>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
    let mut runs = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let outcome_path = path.join(OUTCOME);
        if !outcome_path.is_file() {
            continue;
        }
        let read = |name: &str| std::fs::read_to_string(path.join(name)).unwrap_or_default();
        let outcome: Outcome = serde_json::from_str(&read(OUTCOME))
            .map_err(|e| format!("{}: {e}", outcome_path.display()))?;
        let samples = read("samples.jsonl")
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let latencies = serde_json::from_str(&read("latency.json")).unwrap_or_default();
        let windows = windows(&read("events.jsonl"), outcome.duration_ms as f64 / 1000.0);
        runs.push(Run {
            outcome,
            samples,
            latencies,
            windows,
        });
    }
    runs.sort_by(|a, b| a.outcome.id.cmp(&b.outcome.id));
    Ok(runs)
}

/// The windows during which a fault held: from an applied action that
/// starts one to the next that heals, or to the end `t`.
pub fn windows(events: &str, t: f64) -> Vec<(f64, f64)> {
    let mut windows = Vec::new();
    let mut open: Option<f64> = None;
    for line in events.lines() {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let Some(at) = event.get("at").and_then(serde_json::Value::as_u64) else {
            continue;
        };
        let at = at as f64 / 1000.0;
        let action = event.get("action").and_then(|a| a.as_str()).unwrap_or("");
        let heals = matches!(
            action,
            "heal" | "restart_balancer" | "restart_server" | "remove_toxic" | "unimpair"
        );
        if heals {
            if let Some(from) = open.take() {
                windows.push((from, at));
            }
        } else if open.is_none() && action != "withdraw_balancer" {
            open = Some(at);
        }
    }
    if let Some(from) = open {
        windows.push((from, t));
    }
    windows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_windows_run_from_the_fault_to_its_healing_or_the_end() {
        let events = "{\"at\":1000,\"action\":\"kill_balancer\",\"n\":1}\n\
                      {\"at\":1500,\"action\":\"withdraw_balancer\",\"n\":1}\n\
                      {\"at\":2000,\"action\":\"restart_balancer\",\"n\":1}\n\
                      {\"at\":2500,\"action\":\"cut\",\"pairs\":[]}\n";
        assert_eq!(windows(events, 3.0), vec![(1.0, 2.0), (2.5, 3.0)]);
        assert!(windows("", 3.0).is_empty());
    }
}
