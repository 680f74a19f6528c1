//! `testbed experiment`: a reckon for load balancers. An experiment file
//! names systems, topologies, workloads and faults; the runner takes their
//! product, repeats it, shuffles it with the seed, and runs each
//! combination in a fresh lab, recording what the clients saw.
//!
//! - [`file`]: the experiment file and its checks.
//! - [`matrix`]: the runs, `--only`, `--repeat`, the seeded order.
//! - [`schedule`]: each fault's actions in time, intermittent ones seeded.
//! - [`resume`]: finished runs are skipped on a rerun.
//! - [`plan`]: the plan in words (`--dry-run`).

pub mod file;
pub mod matrix;
pub mod plan;
pub mod resume;
pub mod schedule;

pub use file::{ExperimentError, ExperimentFile};
pub use matrix::RunSpec;
