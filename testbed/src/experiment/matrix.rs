//! The matrix: every combination of system x topology x workload x fault,
//! repeated, filtered by `--only`, in an order shuffled by the seed (as
//! reckon shuffles, so that a slow drift of the machine does not line up
//! with one axis).
//!
//! A run's seed depends only on the experiment's seed, its combination and
//! its repeat number, never on the order or the filter: `--only` of one run
//! replays exactly what the full matrix ran.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::file::ExperimentFile;

/// One run of the matrix: indices into the file's axes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunSpec {
    /// `{system}.{topology}.{workload}.{fault}.r{repeat}`: the run's folder.
    pub id: String,
    pub system: usize,
    pub topology: usize,
    pub workload: usize,
    pub fault: usize,
    /// 1-based.
    pub repeat: u32,
    pub seed: u64,
}

/// A `--only` pattern that is not a glob.
#[derive(Debug)]
pub struct PatternError(pub String);

impl std::fmt::Display for PatternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The runs of `file` repeated `repeat` times, those whose id matches
/// `only` (a glob; a pattern without `*`, `?` or `[` matches ids that
/// contain it), shuffled by `seed`.
pub fn runs(
    file: &ExperimentFile,
    repeat: u32,
    seed: u64,
    only: Option<&str>,
) -> Result<Vec<RunSpec>, PatternError> {
    let pattern = only
        .map(|text| {
            let glob = if text.contains(['*', '?', '[']) {
                text.to_owned()
            } else {
                format!("*{text}*")
            };
            glob::Pattern::new(&glob).map_err(|e| {
                PatternError(format!(
                    "--only `{text}`: {e}; write a glob over run ids such as \"rr.*.kill.*\" or a part of one"
                ))
            })
        })
        .transpose()?;
    let mut all = Vec::new();
    let mut combination = 0u64;
    for (system, s) in file.systems.iter().enumerate() {
        for (topology, t) in file.topologies.iter().enumerate() {
            for (workload, w) in file.workloads.iter().enumerate() {
                for (fault, f) in file.faults.iter().enumerate() {
                    for r in 1..=repeat {
                        let id = format!("{}.{}.{}.{}.r{r}", s.name, t.name, w.name, f.name);
                        let run = RunSpec {
                            seed: run_seed(seed, combination, r),
                            id,
                            system,
                            topology,
                            workload,
                            fault,
                            repeat: r,
                        };
                        if pattern.as_ref().is_none_or(|p| p.matches(&run.id)) {
                            all.push(run);
                        }
                    }
                    combination += 1;
                }
            }
        }
    }
    all.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    Ok(all)
}

/// `SplitMix64` over the three numbers: well mixed, stable across releases
/// (unlike `std`'s hasher), so a run's seed is the same tomorrow.
pub fn run_seed(seed: u64, combination: u64, repeat: u32) -> u64 {
    let mut x = seed
        ^ combination.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ u64::from(repeat).wrapping_mul(0xD1B5_4A32_D192_ED03);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::file::tests::SMALL;
    use proptest::prelude::*;

    fn small() -> ExperimentFile {
        ExperimentFile::parse(SMALL).unwrap()
    }

    #[test]
    fn the_matrix_is_the_product_of_the_axes_times_the_repeats() {
        let runs = runs(&small(), 3, 1, None).unwrap();
        // 2 systems x 1 topology x 1 workload x 2 faults x 3 repeats.
        assert_eq!(runs.len(), 12);
        let mut ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 12);
        assert!(ids.contains(&"direct.one.connects.kill.r3"));
    }

    #[test]
    fn only_keeps_the_matching_runs_with_their_seeds() {
        let all = runs(&small(), 2, 5, None).unwrap();
        let some = runs(&small(), 2, 5, Some("rr.*.kill.*")).unwrap();
        assert_eq!(some.len(), 2);
        for run in &some {
            assert!(run.id.starts_with("rr.") && run.id.contains(".kill."));
            assert!(all.contains(run), "{run:?} differs from the full matrix's");
        }
        assert_eq!(runs(&small(), 2, 5, Some("direct")).unwrap().len(), 4);
        let error = runs(&small(), 1, 5, Some("[")).unwrap_err();
        assert!(error.0.contains("--only `[`"), "{error}");
    }

    proptest! {
        #[test]
        fn the_order_is_a_permutation_fixed_by_the_seed(seed in any::<u64>(), other in any::<u64>()) {
            let first = runs(&small(), 4, seed, None).unwrap();
            prop_assert_eq!(&first, &runs(&small(), 4, seed, None).unwrap());
            let mut sorted = first.clone();
            sorted.sort_by(|a, b| a.id.cmp(&b.id));
            let mut second = runs(&small(), 4, other, None).unwrap();
            second.sort_by(|a, b| a.id.cmp(&b.id));
            // The same runs whatever the seed; only the order and the run seeds change.
            let ids = |runs: &[RunSpec]| runs.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
            prop_assert_eq!(ids(&sorted), ids(&second));
        }
    }
}
