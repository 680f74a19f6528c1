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
//! - [`topology_file`]: a `[[topology]]` from a `testbed up` topology file.
//! - [`lab`]: a run's lab (generated topology) and processes, removed on drop.
//! - [`system`]: the system under test (`rusty_rail`, `HAProxy`, none) and its fault actions.
//! - [`workload`]: the clients' mconnect processes.
//! - [`streams`]: the clients' iperf3 streams, their throughput and breaks.
//! - [`route_cut`]: a client cut from one balancer, at the router.
//! - [`fault_proxy`]: the fault proxy of `toxic` faults, on the router.
//! - [`samples`]: what the clients saw, per 100 ms and in total.
//! - [`execute`]: one run and its result files.
//! - [`report`]: the summary table and plots of a results folder.
//! - [`command`]: `testbed experiment run|report`.

pub mod command;
pub mod execute;
pub mod fault_proxy;
pub mod file;
pub mod lab;
pub mod matrix;
pub mod plan;
pub mod report;
pub mod resume;
pub mod route_cut;
pub mod samples;
pub mod schedule;
pub mod streams;
pub mod system;
pub mod topology_file;
pub mod workload;

pub use command::{main, ExperimentArgs};
pub use file::{ExperimentError, ExperimentFile};
pub use matrix::RunSpec;
