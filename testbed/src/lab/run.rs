//! `testbed run`: a star lab of N instances of each command, each in its own
//! namespace on one bridge, with its output tagged, torn down at the end (or
//! on Ctrl-C / SIGTERM) unless `--no-revert`.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Args;

use super::build;
use super::multihost::MultiHostArgs;
use super::netem::{self, ImpairMode, LabImpairment, NetemArg};
use super::netns;
use super::plan::{Ipv4Cidr, LabPlan};
use super::state::{self, LabState};
use super::sysctl;
use super::tbf::{self, TbfSpec};
use crate::impair::Direction;
use crate::partition::record::PartitionRecord;
use crate::partition::schedule::{self, Timing};
use crate::partition::{self, Grudge, PartitionSpec};

/// How long instances get between SIGTERM and SIGKILL at teardown.
const GRACE: Duration = Duration::from_secs(2);
/// Exit code after an interruption (128 + SIGINT, as shells report it).
const INTERRUPTED: u8 = 130;

/// Options of `testbed run`. `-h` is the machine share (as in play's
/// multi-host labs), so help is `--help` only.
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// A command to run in every instance (`sh -c`); `{index}` and `{ip}` are
    /// replaced by the instance's index and address. Repeatable.
    #[arg(short = 'c', long = "command", required = true)]
    pub commands: Vec<String>,
    /// Instances of a command: the i-th `-n` counts the i-th `-c` (default 1).
    #[arg(short = 'n', long = "count")]
    pub counts: Vec<usize>,
    /// Start of every object's name (namespaces, links, bridge, state file).
    #[arg(short = 'p', long, default_value = "tb-")]
    pub prefix: String,
    /// The lab's subnet; the bridge (this machine) takes the first address.
    #[arg(long, default_value = "10.0.0.0/16")]
    pub cidr: Ipv4Cidr,
    /// `KEY=VAL` set in every instance's environment. Repeatable.
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Leave the lab in place when the instances end (remove it with
    /// `testbed cleanup --prefix P`).
    #[arg(long)]
    pub no_revert: bool,
    /// Write each instance's output to `PREFIX{index}.stdout` and `.stderr`
    /// in the work directory instead of tagging it onto ours.
    #[arg(long)]
    pub redirect: bool,
    /// Directory the instances run in (and `--redirect` writes to); default:
    /// the current directory.
    #[arg(long)]
    pub work_dir: Option<std::path::PathBuf>,
    /// Hosts per bridge; beyond it, more bridges are chained to the first.
    #[arg(long, default_value_t = super::plan::DEFAULT_PER_BRIDGE)]
    pub instances_per_bridge: usize,
    /// Token-bucket shaping toward the instances (`tc` tbf syntax, e.g.
    /// "rate 10mbit burst 32kbit latency 50ms"): once for all, or once per
    /// instance in order.
    #[arg(long)]
    pub tbf: Vec<TbfSpec>,
    /// A partition among the instances, applied before they start (see
    /// `testbed partition --help` for the forms); intermittent forms run
    /// their schedule while the instances run.
    #[arg(long, value_parser = |s: &str| PartitionSpec::parse(s).map_err(|e| e.to_string()))]
    pub partition: Option<PartitionSpec>,
    /// Random intermittent partitions: mean time between them.
    #[arg(long, value_parser = humantime::parse_duration, requires = "partition")]
    pub mtbf: Option<Duration>,
    /// Link impairment in netem's syntax (e.g. "delay 50ms loss random 1%")
    /// of the packets each instance sends, as netem inside it would (see
    /// --netem-direction): once for all, or once per instance in order.
    #[arg(long)]
    pub netem: Vec<NetemArg>,
    /// Which packets of an instance's link --netem impairs: those it sends
    /// (egress), those it receives (ingress), or both (between two such
    /// instances every delay and loss then counts twice).
    #[arg(long, value_enum, default_value_t = Direction::Egress)]
    pub netem_direction: Direction,
    /// Where `--netem` is applied: the userspace link emulator (an
    /// `AF_PACKET` thread per instance in this process, seeded with
    /// `--seed` + the instance's index) or the kernel's `sch_netem`.
    #[arg(long, value_enum, default_value_t = ImpairMode::Userspace)]
    pub impair: ImpairMode,
    /// Seed of everything random in the lab (partition draws and schedules,
    /// userspace link impairment).
    #[arg(long, default_value = "1")]
    pub seed: u64,
    /// A lab over several machines (`-h i/N`, `--vxlan-*`).
    #[command(flatten)]
    pub machines: MultiHostArgs,
}

impl RunArgs {
    /// Each command with its count.
    fn commands(&self) -> Vec<(String, usize)> {
        self.commands
            .iter()
            .enumerate()
            .map(|(i, command)| (command.clone(), self.counts.get(i).copied().unwrap_or(1)))
            .collect()
    }

    fn env(&self) -> Result<Vec<(String, String)>, String> {
        self.env
            .iter()
            .map(|pair| match pair.split_once('=') {
                Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
                _ => Err(format!("-e {pair:?}: expected KEY=VAL")),
            })
            .collect()
    }
}

/// `testbed run`.
pub fn main(args: &RunArgs) -> ExitCode {
    match run(args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("testbed run: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &RunArgs) -> Result<ExitCode, String> {
    let env = args.env()?;
    args.machines.check()?;
    let share = args.machines.share();
    if share.machines > 1 && args.partition.is_some() {
        return Err(format!(
            "--partition with -h {share}: a partition is applied among one machine's              instances; partition a lab over several machines with `testbed partition` on              each"
        ));
    }
    let whole =
        LabPlan::new(&args.prefix, args.cidr, &args.commands()).map_err(|e| e.to_string())?;
    // Per-instance specs count the whole lab's instances; this machine
    // takes those of its share.
    let mine = share.range(whole.hosts.len());
    let impairments = netem::directed(
        &of_share(netem::per_instance(&args.netem, whole.hosts.len())?, &mine),
        args.netem_direction,
    );
    let shaped = of_share(tbf::per_instance(&args.tbf, whole.hosts.len())?, &mine);
    let mut plan = whole
        .with_share(share)
        .with_instances_per_bridge(args.instances_per_bridge)
        .map_err(|e| e.to_string())?;
    plan.vxlan = args.machines.plan(&plan.prefix)?;
    let shaping: Vec<(String, TbfSpec)> = plan
        .hosts
        .iter()
        .map(|host| netem::shaped_link(&plan, host, !impairments.is_empty(), args.impair))
        .zip(shaped)
        .collect();
    if !impairments.is_empty() && args.impair == ImpairMode::Kernel {
        // Both shape toward the instance on its root-side link; netem on
        // the instance's egress sits on `eth0` inside it.
        if !shaping.is_empty() && impairments.iter().any(|specs| specs.ingress.is_some()) {
            return Err(
                "--tbf and --netem-direction ingress or both with --impair kernel both \
                 need the root qdisc of the instances' root-side links; use --impair \
                 userspace"
                    .into(),
            );
        }
        netem::check_kernel_netem(&plan.prefix)?;
    }
    let state_dir = std::path::Path::new(state::STATE_DIR);
    if LabState::load_in(state_dir, &plan.prefix)
        .map_err(|e| format!("reading {}: {e}", state::path(&plan.prefix).display()))?
        .is_some()
    {
        return Err(format!(
            "a lab with prefix {:?} exists ({}); remove it with `testbed cleanup --prefix {}`",
            plan.prefix,
            state::path(&plan.prefix).display(),
            plan.prefix
        ));
    }
    // SIGINT and SIGTERM end the run through its clean-up, not the process.
    host::signals::stop_on_signals().map_err(|e| format!("catching SIGINT and SIGTERM: {e}"))?;
    let changes = sysctl::needed(plan.hosts.len(), sysctl::read);
    let lab_state = LabState {
        plan: plan.clone(),
        owner_pid: std::process::id(),
        created_at: chrono::Utc::now().to_rfc3339(),
        sysctls: sysctl::save(&changes),
        topology: None,
        processes: Vec::new(),
        partition: None,
        netem: netem::records(&plan, &impairments, args.impair, args.seed),
    };
    // Saved before anything changes, so that cleanup can undo any part.
    lab_state
        .save_in(state_dir)
        .map_err(|e| format!("writing {}: {e}", state::path(&plan.prefix).display()))?;
    if let Err(error) = sysctl::apply(&changes) {
        teardown(&lab_state);
        return Err(error);
    }

    let started = Instant::now();
    let built = build::create(&plan).map_err(|e| e.to_string());
    let created = started.elapsed();
    if let Err(error) = built {
        teardown(&lab_state);
        return Err(format!("building the lab: {error}"));
    }
    eprintln!(
        "testbed: lab {}: {} hosts created in {} ms",
        plan.prefix,
        plan.hosts.len(),
        created.as_millis()
    );
    // Impaired first: the emulator's pair is where --tbf then shapes.
    let impairment = match netem::apply(&plan, &impairments, args.impair, args.seed, started)
        .and_then(|impairment| tbf::apply(&shaping).map(|()| impairment))
    {
        Ok(impairment) => impairment,
        Err(error) => {
            teardown(&lab_state);
            return Err(format!("impairing or shaping the lab's links: {error}"));
        }
    };
    let partitions = match start_partitions(&plan, args) {
        Ok(handle) => handle,
        Err(error) => {
            stop_impairment(&plan.prefix, impairment);
            teardown(&lab_state);
            return Err(format!("partitioning the lab: {error}"));
        }
    };
    let outcome = start_instances(&plan, &env, args).map(|mut instances| {
        eprintln!(
            "testbed: lab {}: {} instances ready in {} ms",
            plan.prefix,
            instances.len(),
            started.elapsed().as_millis()
        );
        wait_all(&mut instances)
    });
    PARTITIONS_DONE.store(true, Ordering::SeqCst);
    if let Some(handle) = partitions {
        let _ = handle.join();
    }
    if !args.no_revert || host::signals::stop_requested() {
        // The emulators hold sockets in the lab's links: stopped first, so
        // that deleting the namespaces deletes the links at once.
        stop_impairment(&plan.prefix, impairment);
        teardown(&lab_state);
    } else if !impairments.is_empty() && args.impair == ImpairMode::Userspace {
        eprintln!(
            "testbed: lab {}: --no-revert: the userspace link emulators end with this \
             process; the impaired instances are cut off from the bridge until \
             `testbed cleanup --prefix {}`",
            plan.prefix, plan.prefix
        );
        stop_impairment(&plan.prefix, impairment);
    }
    outcome
}

/// The entries of `specs` (one per instance of the whole lab, or none)
/// for the instances in `mine`.
fn of_share<T>(specs: Vec<T>, mine: &std::ops::Range<usize>) -> Vec<T> {
    specs
        .into_iter()
        .skip(mine.start)
        .take(mine.len())
        .collect()
}

/// Stops the link emulators and prints what each link did.
fn stop_impairment(prefix: &str, impairment: LabImpairment) {
    for line in impairment.stop() {
        eprintln!("testbed: lab {prefix}: {line}");
    }
}

/// Set when the instances have ended, so an intermittent schedule stops.
static PARTITIONS_DONE: AtomicBool = AtomicBool::new(false);

/// Applies `--partition`: a fixed one at once; an intermittent one on a
/// thread that plays its schedule until the instances end.
fn start_partitions(
    plan: &LabPlan,
    args: &RunArgs,
) -> Result<Option<std::thread::JoinHandle<()>>, String> {
    let Some(spec) = args.partition.clone() else {
        return Ok(None);
    };
    let nodes = partition::command::nodes_of(plan);
    let timing = match args.mtbf {
        Some(mean) => Timing::Mtbf {
            mean,
            duration: mean / 4,
        },
        None => schedule::timing_of(&spec),
    };
    if timing == Timing::Once {
        let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
        let grudge = Grudge::from_spec(&spec, &names, args.seed)?;
        partition::apply(&nodes, &grudge)?;
        record_partition(plan, Some(&grudge), &spec, args.seed, &names);
        eprintln!(
            "testbed: lab {}: partition: {}",
            plan.prefix,
            partition::command::describe(&grudge, &names)
        );
        return Ok(None);
    }
    let seed = args.seed;
    let prefix_plan = plan.clone();
    Ok(Some(std::thread::spawn(move || {
        let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
        // A day is a horizon no lab outlives; the instances ending stops it.
        let horizon = Duration::from_secs(24 * 3600);
        if let Err(error) = partition::command::run_schedule(
            &nodes,
            &spec,
            timing,
            seed,
            horizon,
            &PARTITIONS_DONE,
            &mut |grudge| record_partition(&prefix_plan, grudge, &spec, seed, &names),
        ) {
            eprintln!("testbed: partition schedule: {error}");
        }
    })))
}

/// Keeps the lab's state file telling `status` which partition is in force
/// (`None`: healed). A failure only loses the display, so it is printed.
fn record_partition(
    plan: &LabPlan,
    grudge: Option<&Grudge>,
    spec: &PartitionSpec,
    seed: u64,
    names: &[String],
) {
    let record = grudge.map(|g| PartitionRecord::new(&spec.to_string(), seed, g, names));
    if let Err(error) =
        partition::record::record(std::path::Path::new(state::STATE_DIR), &plan.prefix, record)
    {
        eprintln!("testbed: {error}");
    }
}

fn teardown(lab: &LabState) {
    let plan = &lab.plan;
    let mut problems = build::remove(&plan.prefix, &plan.bridge, GRACE);
    problems.extend(sysctl::restore(&lab.sysctls));
    for problem in problems {
        eprintln!("testbed: cleanup: {problem}");
    }
    if let Err(error) = LabState::remove_in(std::path::Path::new(state::STATE_DIR), &plan.prefix) {
        eprintln!("testbed: cleanup: state file: {error}");
    }
}

/// A running instance.
struct Instance {
    index: usize,
    child: Child,
    readers: Vec<std::thread::JoinHandle<()>>,
}

fn start_instances(
    plan: &LabPlan,
    env: &[(String, String)],
    args: &RunArgs,
) -> Result<Vec<Instance>, String> {
    let work_dir = args.work_dir.clone().unwrap_or_else(|| ".".into());
    let root = &std::fs::File::open("/proc/thread-self/ns/net")
        .map_err(|e| format!("opening the machine's namespace: {e}"))?;
    let mut instances = Vec::with_capacity(plan.hosts.len());
    for host in &plan.hosts {
        let namespace = netns::open(&host.namespace)
            .map_err(|e| format!("opening namespace {}: {e}", host.namespace))?;
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(&host.command)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("TESTBED_INDEX", host.index.to_string())
            .env("TESTBED_IP", host.address.to_string())
            .current_dir(&work_dir)
            .stdin(Stdio::null());
        if args.redirect {
            let file = |stream: &str| {
                let path = work_dir.join(format!("{}{}.{stream}", plan.prefix, host.index));
                std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))
            };
            command.stdout(file("stdout")?).stderr(file("stderr")?);
        } else {
            command.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
        // The child inherits the network namespace of the thread that spawns
        // it, so this thread steps into the instance's namespace for the
        // spawn. That keeps the spawn a vfork-style posix_spawn (a `pre_exec`
        // hook would force a full fork, about ten times slower with a
        // thousand instances), at the price of `PR_SET_PDEATHSIG`: after a
        // `kill -9` of the run, `testbed cleanup` stops the instances.
        netns::enter(&namespace).map_err(|e| format!("entering {}: {e}", host.namespace))?;
        let spawned = command.spawn();
        netns::enter(root).map_err(|e| format!("returning to the machine's namespace: {e}"))?;
        let mut child = spawned.map_err(|e| format!("starting instance {}: {e}", host.index))?;
        let tag = format!("[{}] ", host.index);
        let readers = if args.redirect {
            Vec::new()
        } else {
            vec![
                relay(child.stdout.take(), tag.clone(), false),
                relay(child.stderr.take(), tag, true),
            ]
        };
        instances.push(Instance {
            index: host.index,
            child,
            readers,
        });
    }
    Ok(instances)
}

/// Copies `stream` line by line to our stdout (or stderr), each line tagged.
fn relay(
    stream: Option<impl Read + Send + 'static>,
    tag: String,
    to_stderr: bool,
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .stack_size(64 * 1024)
        .spawn(move || {
            let Some(stream) = stream else { return };
            for line in BufReader::new(stream).split(b'\n').map_while(Result::ok) {
                let mut text = tag.clone().into_bytes();
                text.extend_from_slice(&line);
                text.push(b'\n');
                if to_stderr {
                    let _ = std::io::stderr().lock().write_all(&text);
                } else {
                    let _ = std::io::stdout().lock().write_all(&text);
                }
            }
        })
        .expect("spawning an output relay thread")
}

/// Waits for every instance; returns the exit code of the first that failed
/// (in the order they ended), or 0. On a stop signal, returns 130 (the
/// teardown stops the instances).
fn wait_all(instances: &mut Vec<Instance>) -> ExitCode {
    let mut first_failure: Option<u8> = None;
    while !instances.is_empty() {
        if host::signals::stop_requested() {
            eprintln!("testbed: interrupted, tearing down");
            return ExitCode::from(INTERRUPTED);
        }
        let mut i = 0;
        while i < instances.len() {
            match instances[i].child.try_wait() {
                Ok(Some(status)) => {
                    let instance = instances.swap_remove(i);
                    for reader in instance.readers {
                        let _ = reader.join();
                    }
                    let code = status
                        .code()
                        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
                    if code != 0 {
                        eprintln!("testbed: instance {} exited with {code}", instance.index);
                        first_failure.get_or_insert(u8::try_from(code.clamp(1, 255)).unwrap_or(1));
                    }
                }
                Ok(None) => i += 1,
                Err(error) => {
                    eprintln!(
                        "testbed: waiting for instance {}: {error}",
                        instances[i].index
                    );
                    instances.swap_remove(i);
                    first_failure.get_or_insert(1);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    ExitCode::from(first_failure.unwrap_or(0))
}
