//! Resume: a run whose folder holds `outcome.json` is finished and skipped;
//! a folder without one is what an interrupted run left, and is cleared
//! before the run starts again.

use std::io;
use std::path::{Path, PathBuf};

/// The file whose presence marks a finished run.
pub const OUTCOME: &str = "outcome.json";

/// The folder of run `id` under `out`.
pub fn run_dir(out: &Path, id: &str) -> PathBuf {
    out.join(id)
}

/// Whether run `id` finished in an earlier invocation.
pub fn finished(out: &Path, id: &str) -> bool {
    run_dir(out, id).join(OUTCOME).is_file()
}

/// A fresh, empty folder for run `id` (what an interrupted attempt left goes).
pub fn fresh_run_dir(out: &Path, id: &str) -> io::Result<PathBuf> {
    let dir = run_dir(out, id);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_with_an_outcome_is_finished_and_a_half_run_starts_again() {
        let out = tempfile::tempdir().unwrap();
        assert!(!finished(out.path(), "a.r1"));
        let dir = fresh_run_dir(out.path(), "a.r1").unwrap();
        std::fs::write(dir.join("samples.jsonl"), "half").unwrap();
        assert!(!finished(out.path(), "a.r1"), "no outcome yet");
        let dir = fresh_run_dir(out.path(), "a.r1").unwrap();
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            0,
            "the half run's files went"
        );
        std::fs::write(dir.join(OUTCOME), "{}").unwrap();
        assert!(finished(out.path(), "a.r1"));
        assert!(!finished(out.path(), "a.r2"));
    }
}
