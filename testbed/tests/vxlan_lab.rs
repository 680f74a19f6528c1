//! `testbed run -h i/N --vxlan-device DEV`: one lab over two "machines",
//! two namespaces joined by a veth (the underlay, 10.207.101.0/24), each
//! running its own `testbed run` under `ip netns exec` with its share of the
//! instances (lab subnet 10.207.1.0/24). Namespace names are machine-wide,
//! so the two shares take different prefixes (`rrvx1-`, `rrvx2-`); the
//! machines themselves are `rrvx4-ma` and `rrvx4-mb`. Needs root, `ip netns`
//! and the kernel's VXLAN; otherwise prints `skipped: <reason>`. A guard
//! stops the runs and removes both labs and both machines, also on failure.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use host::capability::{self, Need};
use testbed::lab::prefixed::entries_named;

const TESTBED: &str = env!("CARGO_BIN_EXE_testbed");
const MACHINES: [&str; 2] = ["rrvx4-ma", "rrvx4-mb"];
const UNDERLAY: [&str; 2] = ["10.207.101.1", "10.207.101.2"];
const UNDERLAY_LINKS: [&str; 2] = ["rrvx4-ua", "rrvx4-ub"];
const PREFIXES: [&str; 2] = ["rrvx1-", "rrvx2-"];
const LAB_CIDR: &str = "10.207.1.0/24";
/// The whole lab's instances, two per machine.
const INSTANCES: usize = 4;
/// How long the two runs get in all before the guard stops them.
const RUN_LIMIT: Duration = Duration::from_secs(120);

fn ip(args: &[&str]) {
    let output = Command::new("ip").args(args).output().unwrap();
    assert!(
        output.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn text(output: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Two machines joined by a veth; removes them, their labs and their runs
/// when dropped.
struct TwoMachines {
    runs: Vec<Child>,
    work_dir: PathBuf,
}

impl TwoMachines {
    fn new() -> Option<Self> {
        host::skip_unless!(Need::Root, Need::Netns, Need::Tool("ping"));
        let machines = Self {
            runs: Vec::new(),
            work_dir: std::env::temp_dir().join("rrvx1-work"),
        };
        machines.remove();
        for machine in MACHINES {
            ip(&["netns", "add", machine]);
            ip(&["-n", machine, "link", "set", "lo", "up"]);
        }
        ip(&[
            "link",
            "add",
            UNDERLAY_LINKS[0],
            "netns",
            MACHINES[0],
            "type",
            "veth",
            "peer",
            "name",
            UNDERLAY_LINKS[1],
            "netns",
            MACHINES[1],
        ]);
        for side in 0..2 {
            let address = format!("{}/24", UNDERLAY[side]);
            ip(&[
                "-n",
                MACHINES[side],
                "addr",
                "add",
                &address,
                "dev",
                UNDERLAY_LINKS[side],
            ]);
            ip(&[
                "-n",
                MACHINES[side],
                "link",
                "set",
                UNDERLAY_LINKS[side],
                "up",
            ]);
        }
        let probe = Command::new("ip")
            .args([
                "-n",
                MACHINES[0],
                "link",
                "add",
                "rrvx4-probe",
                "type",
                "vxlan",
            ])
            .args(["id", "1", "dstport", "4789", "dev", UNDERLAY_LINKS[0]])
            .output()
            .unwrap();
        if !probe.status.success() {
            let _ = capability::machine_lacks(format!(
                "no VXLAN in this kernel ({})",
                String::from_utf8_lossy(&probe.stderr).trim()
            ));
            return None;
        }
        ip(&["-n", MACHINES[0], "link", "del", "rrvx4-probe"]);
        std::fs::create_dir_all(&machines.work_dir).unwrap();
        Some(machines)
    }

    /// Starts machine `side`'s share (`-h side+1/2`) of a lab whose every
    /// instance runs `command`.
    fn start(&mut self, side: usize, command: &str) {
        let share = format!("{}/2", side + 1);
        let count = INSTANCES.to_string();
        let run = Command::new("ip")
            .args(["netns", "exec", MACHINES[side], TESTBED, "run"])
            .args(["--prefix", PREFIXES[side], "--cidr", LAB_CIDR])
            .args(["-h", &share, "--vxlan-device", UNDERLAY_LINKS[side]])
            .args(["--vxlan-remote", UNDERLAY[1 - side]])
            .arg("--work-dir")
            .arg(&self.work_dir)
            .args(["-n", &count, "-c", command])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        self.runs.push(run);
    }

    /// Waits for every run to end (stopping them after [`RUN_LIMIT`]).
    fn wait(&mut self) -> Vec<Output> {
        let started = Instant::now();
        while self
            .runs
            .iter_mut()
            .any(|run| run.try_wait().ok().flatten().is_none())
            && started.elapsed() < RUN_LIMIT
        {
            std::thread::sleep(Duration::from_millis(100));
        }
        self.stop_runs();
        self.runs
            .drain(..)
            .map(|run| run.wait_with_output().unwrap())
            .collect()
    }

    /// SIGTERM to the runs still going (`ip netns exec` became `testbed`,
    /// which tears its lab down), then SIGKILL after 10 s.
    fn stop_runs(&mut self) {
        for run in &mut self.runs {
            if run.try_wait().ok().flatten().is_none() {
                // SAFETY: kill has no memory effects; the pid is our child's,
                // not yet reaped.
                unsafe { libc::kill(i32::try_from(run.id()).unwrap(), libc::SIGTERM) };
            }
        }
        let started = Instant::now();
        while self
            .runs
            .iter_mut()
            .any(|run| run.try_wait().ok().flatten().is_none())
            && started.elapsed() < Duration::from_secs(10)
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        for run in &mut self.runs {
            let _ = run.kill();
        }
    }

    /// Both labs' cleanup (each in its machine), then the machines.
    fn remove(&self) {
        for (machine, prefix) in MACHINES.iter().zip(PREFIXES) {
            let _ = Command::new("ip")
                .args([
                    "netns", "exec", machine, TESTBED, "cleanup", "--prefix", prefix,
                ])
                .output();
            let _ = Command::new(TESTBED)
                .args(["cleanup", "--prefix", prefix])
                .output();
        }
        for machine in MACHINES {
            let _ = Command::new("ip").args(["netns", "del", machine]).output();
        }
        let _ = std::fs::remove_dir_all(&self.work_dir);
    }

    /// Nothing of either lab is left: no namespace, no state file, and no
    /// link with a lab's prefix in either machine.
    fn assert_labs_gone() {
        for (machine, prefix) in MACHINES.iter().zip(PREFIXES) {
            let named = |dir: &str| entries_named(dir, prefix);
            assert_eq!(named("/run/netns"), Vec::<String>::new());
            assert_eq!(named("/run/testbed"), Vec::<String>::new());
            let links = Command::new("ip")
                .args(["-n", machine, "-o", "link", "show"])
                .output()
                .unwrap();
            let links = String::from_utf8_lossy(&links.stdout);
            assert!(!links.contains(prefix), "{machine}: {links}");
        }
    }
}

impl Drop for TwoMachines {
    fn drop(&mut self) {
        self.stop_runs();
        self.remove();
    }
}

/// The lab address of instance `index` (the bridge holds the first).
fn instance_address(index: usize) -> String {
    format!("10.207.1.{}", index + 2)
}

/// Each instance pings every other one (retrying while the other machine's
/// share comes up), then once at full size with fragmentation forbidden,
/// then the bridge address (on machine 1); prints `reached ADDR` for each;
/// then waits until every instance has written its `done.N`, so that no
/// lab goes away while the other machine still pings it.
fn ping_everyone(work_dir: &std::path::Path, full_size_payload: u32) -> String {
    let others: Vec<String> = (0..INSTANCES).map(instance_address).collect();
    let done: Vec<String> = (0..INSTANCES)
        .map(|n| format!("{}/done.{n}", work_dir.display()))
        .collect();
    format!(
        "for ip in {others} 10.207.1.1; do \
           [ \"$ip\" = \"{{ip}}\" ] && continue; \
           tries=0; \
           until ping -c 1 -W 1 -q $ip >/dev/null; do \
             tries=$((tries + 1)); \
             [ $tries -ge 30 ] && {{ echo \"unreached $ip\"; exit 1; }}; \
             sleep 0.5; \
           done; \
           ping -c 1 -W 2 -M do -s {full_size_payload} -q $ip >/dev/null \
             || {{ echo \"full size to $ip failed\"; exit 1; }}; \
           echo \"reached $ip\"; \
         done; \
         touch {work}/done.{{index}}; \
         waited=0; \
         for f in {done}; do \
           while [ ! -e $f ]; do \
             waited=$((waited + 1)); [ $waited -ge 600 ] && exit 2; sleep 0.1; \
           done; \
         done",
        others = others.join(" "),
        work = work_dir.display(),
        done = done.join(" "),
    )
}

#[test]
fn every_instance_reaches_every_other_across_two_machines_over_vxlan() {
    let Some(mut machines) = TwoMachines::new() else {
        return;
    };
    // The underlay's MTU is 1500: the instances get 1450, whose largest
    // ICMP echo payload is 1450 - 20 (IPv4) - 8 (ICMP).
    let command = ping_everyone(&machines.work_dir, 1450 - 28);
    machines.start(0, &command);
    machines.start(1, &command);
    let outputs = machines.wait();
    let all: String = outputs
        .iter()
        .map(text)
        .collect::<Vec<_>>()
        .join("\n----\n");
    for output in &outputs {
        assert!(output.status.success(), "{all}");
    }
    // Instance i prints `[i] reached ADDR` for every other instance and the
    // bridge, whichever machine it is on.
    for index in 0..INSTANCES {
        for other in (0..INSTANCES).filter(|&o| o != index) {
            let line = format!("[{index}] reached {}", instance_address(other));
            assert!(all.contains(&line), "no {line:?}: {all}");
        }
        let line = format!("[{index}] reached 10.207.1.1");
        assert!(all.contains(&line), "no {line:?}: {all}");
    }
    TwoMachines::assert_labs_gone();
}

#[test]
fn a_machine_beyond_the_count_is_refused_naming_the_value() {
    let output = Command::new(TESTBED)
        .args(["run", "-h", "3/2", "-c", "true"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("-h \"3/2\""), "{said}");
}

#[test]
fn a_share_of_several_machines_without_a_vxlan_device_is_refused() {
    let output = Command::new(TESTBED)
        .args(["run", "-p", "rrvx3-", "-h", "1/2", "-c", "true"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("-h 1/2 needs --vxlan-device"), "{said}");
}
