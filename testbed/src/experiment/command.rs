//! `testbed experiment run FILE` and `testbed experiment report DIR`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use super::execute::{execute, Context};
use super::file::ExperimentFile;
use super::plan::{describe, OVERHEAD_PER_RUN};
use super::{matrix, resume};

/// `testbed experiment`.
#[derive(Debug, Args)]
pub struct ExperimentArgs {
    #[command(subcommand)]
    pub command: ExperimentCommand,
}

/// The experiment runner's commands.
#[derive(Debug, Subcommand)]
pub enum ExperimentCommand {
    /// Runs every combination of the file's systems, topologies, workloads and faults.
    Run(RunArgs),
    /// Writes the summary table (Markdown, HTML) and the SVG plots of a results folder.
    Report(ReportArgs),
}

/// Options of `testbed experiment run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The experiment file (TOML; see testbed/examples/experiments/).
    pub file: PathBuf,
    /// Results folder (one sub-folder per run); default: results/{name}.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Runs of each combination (overrides the file's `repeat`).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub repeat: Option<u32>,
    /// Seed of the run order, faults and workloads (overrides the file's `seed`).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Only the runs whose id matches this glob (or contains this text),
    /// ids being SYSTEM.TOPOLOGY.WORKLOAD.FAULT.rN.
    #[arg(long)]
    pub only: Option<String>,
    /// Print the runs and their fault schedules, run nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Options of `testbed experiment report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A results folder written by `testbed experiment run`.
    pub dir: PathBuf,
}

/// `testbed experiment`.
pub fn main(args: &ExperimentArgs) -> ExitCode {
    match &args.command {
        ExperimentCommand::Run(args) => run(args),
        ExperimentCommand::Report(args) => match super::report::write(&args.dir) {
            Ok(summary) => {
                print!("{summary}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("testbed experiment report: {error}");
                ExitCode::from(2)
            }
        },
    }
}

fn run(args: &RunArgs) -> ExitCode {
    let fail = |message: String| {
        eprintln!("testbed experiment run: {message}");
        ExitCode::from(2)
    };
    let file = match ExperimentFile::load(&args.file) {
        Ok(file) => file,
        Err(error) => return fail(format!("{}: {error}", args.file.display())),
    };
    let repeat = args.repeat.unwrap_or(file.repeat);
    let seed = args.seed.unwrap_or(file.seed);
    let runs = match matrix::runs(&file, repeat, seed, args.only.as_deref()) {
        Ok(runs) => runs,
        Err(error) => return fail(error.to_string()),
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| Path::new("results").join(&file.name));
    if args.dry_run {
        print!("{}", describe(&file, &runs, &out));
        return ExitCode::SUCCESS;
    }
    if let Err(error) = host::signals::stop_on_signals() {
        return fail(format!("catching SIGINT/SIGTERM: {error}"));
    }
    if let Err(error) = std::fs::create_dir_all(&out) {
        return fail(format!("creating {}: {error}", out.display()));
    }
    let testbed = match std::env::current_exe() {
        Ok(path) => path,
        Err(error) => return fail(format!("finding this executable: {error}")),
    };
    let ctx = Context {
        file: &file,
        testbed,
    };
    let to_do: Vec<_> = runs
        .iter()
        .filter(|r| !resume::finished(&out, &r.id))
        .collect();
    let skipped = runs.len() - to_do.len();
    eprintln!(
        "experiment {}: {} runs, {skipped} already done, results in {}",
        file.name,
        runs.len(),
        out.display()
    );
    let bar = ProgressBar::new(to_do.len() as u64);
    let per_run = file.run_duration() + OVERHEAD_PER_RUN;
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} (matrix left: {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut failed = Vec::new();
    for run in to_do {
        let message = |phase: &str| bar.set_message(format!("{}: {phase}", run.id));
        let dir = match resume::fresh_run_dir(&out, &run.id) {
            Ok(dir) => dir,
            Err(error) => return fail(format!("creating the folder of {}: {error}", run.id)),
        };
        match execute(&ctx, run, &dir, &message) {
            Ok(outcome) => say(
                &bar,
                format!(
                    "{}: ok {} failed {} moved {} broken {}",
                    run.id,
                    outcome.connections.ok,
                    outcome.connections.failed,
                    outcome.connections.moved,
                    outcome.connections.broken
                ),
            ),
            Err(error) => {
                let _ = std::fs::write(dir.join("error.txt"), format!("{error}\n"));
                say(&bar, format!("{}: FAILED: {error}", run.id));
                failed.push(run.id.clone());
            }
        }
        bar.inc(1);
        if host::signals::stop_requested() {
            break;
        }
        // indicatif's own estimate needs a few runs; until then, ours.
        if bar.position() < 2 {
            bar.set_length(bar.length().unwrap_or(0));
            let left =
                per_run * u32::try_from(bar.length().unwrap_or(0) - bar.position()).unwrap_or(0);
            bar.set_message(format!(
                "about {} left",
                humantime::format_duration(Duration::from_secs(left.as_secs()))
            ));
        }
    }
    bar.finish_and_clear();
    if let Some(signal) = host::signals::received() {
        eprintln!("experiment {}: stopped by {signal}; the lab of the run in progress was removed; rerun to resume", file.name);
        return ExitCode::from(130);
    }
    match super::report::write(&out) {
        Ok(summary) => print!("{summary}"),
        Err(error) => eprintln!("testbed experiment run: report: {error}"),
    }
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "experiment {}: {} runs failed: {}",
            file.name,
            failed.len(),
            failed.join(", ")
        );
        ExitCode::FAILURE
    }
}

/// A line above the bar, or on stderr when there is no bar (not a terminal).
fn say(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}
