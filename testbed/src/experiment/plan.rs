//! The plan of a matrix in words: what `--dry-run` prints, and the header
//! of a real run.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use super::file::ExperimentFile;
use super::matrix::RunSpec;
use super::resume;
use super::schedule::schedule;

/// Rough cost of one run beyond T: lab up, system start, teardown.
pub const OVERHEAD_PER_RUN: Duration = Duration::from_secs(4);

/// One line per run (its order, id, seed, whether it is already done and
/// its fault's actions), then the total.
pub fn describe(file: &ExperimentFile, runs: &[RunSpec], out: &Path) -> String {
    let t = file.run_duration();
    let mut text = String::new();
    let mut to_do = 0u32;
    for (i, run) in runs.iter().enumerate() {
        let done = resume::finished(out, &run.id);
        if !done {
            to_do += 1;
        }
        let actions: Vec<String> = schedule(&file.faults[run.fault], t, run.seed)
            .iter()
            .map(|s| format!("{:.1}s {}", s.at.as_secs_f64(), action_name(&s.action)))
            .collect();
        let _ = writeln!(
            text,
            "{:>4} {} seed={:#018x}{}{}{}",
            i + 1,
            run.id,
            run.seed,
            if done { " (done, skipped)" } else { "" },
            if actions.is_empty() { "" } else { ": " },
            actions.join(", ")
        );
    }
    let estimate = (t + OVERHEAD_PER_RUN) * to_do;
    let _ = writeln!(
        text,
        "{} runs, {} to do, about {} ({} each + setup)",
        runs.len(),
        to_do,
        humantime::format_duration(Duration::from_secs(estimate.as_secs())),
        humantime::format_duration(t)
    );
    text
}

/// An action's name as `events.jsonl` spells it.
pub fn action_name(action: &super::schedule::Action) -> String {
    serde_json::to_value(action)
        .ok()
        .and_then(|v| {
            let name = v.get("action")?.as_str()?.to_owned();
            let n = v.get("n").and_then(serde_json::Value::as_u64);
            Some(n.map_or(name.clone(), |n| format!("{name} {n}")))
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::file::tests::SMALL;
    use crate::experiment::matrix::runs;

    #[test]
    fn the_dry_run_lists_every_run_its_faults_and_what_is_done() {
        let file = ExperimentFile::parse(SMALL).unwrap();
        let runs = runs(&file, 1, 3, None).unwrap();
        let out = tempfile::tempdir().unwrap();
        let kill = runs
            .iter()
            .find(|r| r.id == "rr.one.connects.kill.r1")
            .unwrap();
        let dir = resume::fresh_run_dir(out.path(), &kill.id).unwrap();
        std::fs::write(dir.join(resume::OUTCOME), "{}").unwrap();
        let text = describe(&file, &runs, out.path());
        assert!(text.contains("rr.one.connects.kill.r1 seed="), "{text}");
        assert!(
            text.contains("(done, skipped): 1.0s kill_server 2"),
            "{text}"
        );
        assert!(text.contains("4 runs, 3 to do"), "{text}");
    }
}
