//! `testbed experiment` end to end: a small matrix through real labs
//! (`rusty_rail` and `HAProxy`, one topology, no fault and a backend kill),
//! its result files, its report against its outcomes, its plots' series,
//! resume, and the clean-up of a run that fails half-way or is interrupted.
//!
//! Each test has its own prefix (`rrex1-`...) and /16 (`10.161.0.0/16`...).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use host::capability::Need;
use serde_json::Value;

const TESTBED: &str = env!("CARGO_BIN_EXE_testbed");

/// `rusty_rail`, built next to `testbed` when `cargo test -p testbed` did not.
fn rusty_rail() -> PathBuf {
    let path = Path::new(TESTBED).with_file_name("rusty_rail");
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "control", "--bin", "rusty_rail"])
            .status()
            .expect("running cargo build -p control");
        assert!(
            status.success(),
            "cargo build -p control --bin rusty_rail failed"
        );
    }
    path
}

fn experiment(args: &[&str]) -> Output {
    Command::new(TESTBED)
        .arg("experiment")
        .args(args)
        .output()
        .expect("running testbed experiment")
}

fn text(output: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Namespaces and state files with `prefix` still on the machine.
fn leftovers(prefix: &str) -> Vec<String> {
    let list = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    let mut left: Vec<String> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .filter(|l| l.starts_with(prefix))
        .map(str::to_owned)
        .collect();
    let state = Path::new("/run/testbed").join(format!("{prefix}.json"));
    if state.exists() {
        left.push(state.display().to_string());
    }
    left
}

/// Removes what an earlier, crashed run of the test left; on drop, what
/// this one left (the runner should have, and the tests check it did).
struct Prefix(&'static str);

impl Prefix {
    fn new(prefix: &'static str) -> Self {
        let _ = Command::new(TESTBED)
            .args(["cleanup", "--prefix", prefix])
            .output();
        Self(prefix)
    }
}

impl Drop for Prefix {
    fn drop(&mut self) {
        let _ = Command::new(TESTBED)
            .args(["cleanup", "--prefix", self.0])
            .output();
    }
}

fn lab_needs() -> bool {
    host::capability::require(&[
        Need::Root,
        Need::Netns,
        Need::Tun,
        Need::Tool("nft"),
        Need::Tool("curl"),
        Need::Tool("ss"),
        Need::Tool("haproxy"),
    ])
    .is_ok()
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn write_file(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("experiment.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_small_matrix_writes_its_results_a_report_that_matches_them_and_plots_with_every_series() {
    if !lab_needs() {
        return;
    }
    let prefix = Prefix::new("rrex1-");
    let work = tempfile::tempdir().unwrap();
    let file = write_file(
        work.path(),
        &format!(
            r#"
name = "ci"
prefix = "{}"
subnet = "10.161.0.0/16"
duration = "3s"
seed = 11
[[system]]
name = "rr"
kind = "rusty_rail"
binary = "{}"
settings = {{ RR_IO = "af_packet" }}
[[system]]
name = "haproxy"
kind = "haproxy"
[[topology]]
name = "1c1lb2s"
servers = 2
[[workload]]
name = "mixed"
rate = 20
hold = 4
interval = "200ms"
[[fault]]
name = "none"
kind = "none"
[[fault]]
name = "s1-kill"
kind = "backend_kill"
target = 1
"#,
            prefix.0,
            rusty_rail().display()
        ),
    );
    let out = work.path().join("results");
    let out_arg = out.to_str().unwrap();
    let output = experiment(&["run", file.to_str().unwrap(), "--out", out_arg]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        leftovers(prefix.0).is_empty(),
        "left behind: {:?}",
        leftovers(prefix.0)
    );
    let socket = std::env::temp_dir().join(format!("{}lb1.haproxy.sock", prefix.0));
    assert!(!socket.exists(), "HAProxy's runtime socket left behind");

    let ids = [
        "rr.1c1lb2s.mixed.none.r1",
        "rr.1c1lb2s.mixed.s1-kill.r1",
        "haproxy.1c1lb2s.mixed.none.r1",
        "haproxy.1c1lb2s.mixed.s1-kill.r1",
    ];
    let mut outcomes = Vec::new();
    for id in ids {
        let dir = out.join(id);
        for name in [
            "config.json",
            "events.jsonl",
            "samples.jsonl",
            "latency.json",
            "topology.toml",
        ] {
            assert!(dir.join(name).is_file(), "{id}: no {name}");
        }
        let stats = if id.starts_with("rr.") {
            "stats-lb1.json"
        } else {
            "stats-lb1.csv"
        };
        assert!(dir.join(stats).is_file(), "{id}: no {stats}");
        assert!(
            dir.join("logs/c1-connects.events.jsonl").is_file(),
            "{id}: no client events"
        );
        let config = read_json(&dir.join("config.json"));
        assert_eq!(config["run"]["id"], id);
        let samples: Vec<Value> = std::fs::read_to_string(dir.join("samples.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(
            samples.len() >= 30,
            "{id}: {} samples for 3 s",
            samples.len()
        );
        for (i, sample) in samples.iter().enumerate() {
            assert_eq!(sample["t_ms"], i as u64 * 100, "{id}: samples every 100 ms");
        }
        let events = std::fs::read_to_string(dir.join("events.jsonl")).unwrap();
        let outcome = read_json(&dir.join("outcome.json"));
        let c = &outcome["connections"];
        if id.contains(".none.") {
            assert!(events.is_empty(), "{id}: {events}");
            // 20/s for 3 s plus 4 held: every one answered, none failed.
            assert_eq!(c["ok"], 64, "{id}: {outcome}");
            assert_eq!(
                (c["failed"].as_u64(), c["broken"].as_u64()),
                (Some(0), Some(0)),
                "{id}"
            );
            if id.starts_with("rr.") {
                let packets = &outcome["packets_per_backend"];
                assert!(
                    packets["s1"].as_u64() > Some(0) && packets["s2"].as_u64() > Some(0),
                    "{id}: {outcome}"
                );
            }
            assert!(
                c["per_backend"]["s1"].as_u64() > Some(0)
                    && c["per_backend"]["s2"].as_u64() > Some(0),
                "{id}: {c}"
            );
        } else {
            let event: Value = serde_json::from_str(events.trim()).unwrap();
            assert_eq!(event["action"], "kill_server", "{id}: {events}");
            assert_eq!(event["at"], 1000);
            assert_eq!(event["result"], "applied");
            // Half the new flows and the held ones on s1 meet a dead server.
            let hurt = c["failed"].as_u64().unwrap() + c["broken"].as_u64().unwrap();
            assert!(hurt > 0, "{id}: {outcome}");
            assert_eq!(outcome["recovery"][0]["action"], "kill_server 1");
            assert!(outcome["recovery"][0]["disrupted_ms"].as_u64() > Some(0));
        }
        outcomes.push(outcome);
    }

    // The report's rows are the outcomes (one repeat: the median is the value).
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    for outcome in &outcomes {
        let key = format!(
            "| {} | {} | {} | {} | 1 |",
            outcome["topology"].as_str().unwrap(),
            outcome["workload"].as_str().unwrap(),
            outcome["fault"].as_str().unwrap(),
            outcome["system"].as_str().unwrap()
        );
        let row = report
            .lines()
            .find(|l| l.starts_with(&key))
            .unwrap_or_else(|| panic!("no row {key} in\n{report}"));
        let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
        let c = &outcome["connections"];
        for (cell, field) in cells[5..9].iter().zip(["ok", "failed", "moved", "broken"]) {
            assert_eq!(*cell, c[field].to_string(), "{key} {field}: {row}");
        }
        let disrupted = outcome["recovery"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["disrupted_ms"].as_u64())
            .max()
            .unwrap_or(0);
        assert_eq!(cells[10], disrupted.to_string(), "{row}");
    }
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        html.contains("<table>") && html.contains("latency-cdf.svg"),
        "{html}"
    );

    // Every plot exists with its series (legend entries) and its lines.
    let svg = |name: &str| {
        let text =
            std::fs::read_to_string(out.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(text.starts_with("<svg"), "{name} is not SVG");
        text
    };
    for fault in ["none", "s1-kill"] {
        let timeline = svg(&format!("timeline-1c1lb2s.mixed.{fault}.svg"));
        for series in [
            "rr replies",
            "rr failures",
            "haproxy replies",
            "haproxy failures",
        ] {
            assert!(timeline.contains(series), "{fault}: no series {series}");
        }
        assert!(
            timeline.matches("<polyline").count() >= 4,
            "{fault}: fewer than 4 lines"
        );
        assert_eq!(
            timeline.contains("fault window"),
            fault != "none",
            "{fault}"
        );
    }
    let cdf = svg("latency-cdf.svg");
    assert!(cdf.contains("rr connect latency") && cdf.contains("haproxy connect latency"));
    let bars = svg("disruptions.svg");
    for series in ["rr broken", "rr moved", "haproxy broken", "haproxy moved"] {
        assert!(bars.contains(series), "disruptions: no series {series}");
    }

    // A rerun resumes: every run is done, none is run again.
    let before = std::fs::metadata(out.join(ids[0]).join("outcome.json"))
        .unwrap()
        .modified()
        .unwrap();
    let again = experiment(&["run", file.to_str().unwrap(), "--out", out_arg]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        text(&again).contains("4 runs, 4 already done"),
        "{}",
        text(&again)
    );
    let after = std::fs::metadata(out.join(ids[0]).join("outcome.json"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(before, after);
}

#[test]
fn a_run_that_fails_half_way_leaves_no_lab_and_no_outcome_and_the_others_still_run() {
    if !lab_needs() {
        return;
    }
    let prefix = Prefix::new("rrex2-");
    let work = tempfile::tempdir().unwrap();
    // The lab and the servers are up when the "balancer" exits at once.
    let file = write_file(
        work.path(),
        &format!(
            r#"
name = "half"
prefix = "{}"
subnet = "10.162.0.0/16"
duration = "1s"
[[system]]
name = "broken"
kind = "rusty_rail"
binary = "/bin/false"
[[system]]
name = "direct"
kind = "none"
[[topology]]
name = "t"
[[workload]]
name = "w"
rate = 10
[[fault]]
name = "none"
kind = "none"
"#,
            prefix.0
        ),
    );
    let out = work.path().join("results");
    let output = experiment(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let failed = out.join("broken.t.w.none.r1");
    let error = std::fs::read_to_string(failed.join("error.txt")).unwrap();
    assert!(error.contains("rusty_rail exited at start"), "{error}");
    assert!(!failed.join("outcome.json").exists());
    assert!(
        failed.join("logs/s1-decap.log").exists(),
        "it failed after the servers started"
    );
    assert!(
        out.join("direct.t.w.none.r1/outcome.json").is_file(),
        "{}",
        text(&output)
    );
    assert!(
        leftovers(prefix.0).is_empty(),
        "left behind: {:?}",
        leftovers(prefix.0)
    );
    // The failed run is not finished: a rerun tries it again (and only it).
    let again = experiment(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--dry-run",
    ]);
    assert!(text(&again).contains("2 runs, 1 to do"), "{}", text(&again));
}

#[test]
fn sigint_stops_the_matrix_and_removes_the_lab_of_the_run_in_progress() {
    if !lab_needs() {
        return;
    }
    let prefix = Prefix::new("rrex3-");
    let work = tempfile::tempdir().unwrap();
    let file = write_file(
        work.path(),
        &format!(
            r#"
name = "interrupted"
prefix = "{}"
subnet = "10.163.0.0/16"
duration = "60s"
[[system]]
name = "direct"
kind = "none"
[[topology]]
name = "t"
[[workload]]
name = "w"
hold = 2
[[fault]]
name = "none"
kind = "none"
"#,
            prefix.0
        ),
    );
    let out = work.path().join("results");
    let mut child = Command::new(TESTBED)
        .args([
            "experiment",
            "run",
            file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The client's log appears when the workload starts, in the lab.
    let client = out.join("direct.t.w.none.r1/logs/c1-hold.log");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !client.exists() {
        assert!(Instant::now() < deadline, "the workload never started");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the runner ended early"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !leftovers(prefix.0).is_empty(),
        "the lab is up while the run is"
    );
    // SAFETY: kill has no memory preconditions; the pid is our child's.
    unsafe { libc::kill(i32::try_from(child.id()).unwrap(), libc::SIGINT) };
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", text(&output));
    assert!(
        text(&output).contains("stopped by SIGINT"),
        "{}",
        text(&output)
    );
    assert!(!out.join("direct.t.w.none.r1/outcome.json").exists());
    assert!(
        leftovers(prefix.0).is_empty(),
        "left behind: {:?}",
        leftovers(prefix.0)
    );
}

#[test]
fn toxic_and_intermittent_faults_are_applied_as_their_schedule_says() {
    if !lab_needs() {
        return;
    }
    let prefix = Prefix::new("rrex8-");
    let work = tempfile::tempdir().unwrap();
    let file = write_file(
        work.path(),
        &format!(
            r#"
name = "scheduled"
prefix = "{}"
subnet = "10.168.0.0/16"
duration = "3s"
seed = 5
[[system]]
name = "direct"
kind = "none"
[[topology]]
name = "t"
[[workload]]
name = "w"
rate = 10
hold = 2
[[fault]]
name = "slow"
kind = "toxic"
toxic = "latency"
attributes = {{ latency = 50 }}
[[fault]]
name = "flaky"
kind = "intermittent"
cut = [["c1", "s1"]]
mtbf = "300ms"
mttr = "100ms"
at = 0.1
until = 0.9
"#,
            prefix.0
        ),
    );
    let out = work.path().join("results");
    let output = experiment(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        leftovers(prefix.0).is_empty(),
        "left behind: {:?}",
        leftovers(prefix.0)
    );
    for id in ["direct.t.w.slow.r1", "direct.t.w.flaky.r1"] {
        let dir = out.join(id);
        let schedule = read_json(&dir.join("config.json"))["schedule"].clone();
        let planned: Vec<(Value, Value)> = schedule
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["action"].clone(), s["at"].clone()))
            .collect();
        let applied: Vec<(Value, Value)> = std::fs::read_to_string(dir.join("events.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .inspect(|e| assert_eq!(e["result"], "applied", "{id}: {e}"))
            .map(|e| (e["action"].clone(), e["at"].clone()))
            .collect();
        assert!(!planned.is_empty(), "{id}: nothing scheduled");
        assert_eq!(planned, applied, "{id}");
    }
    // The clients went through the proxy: it answered them.
    let slow = read_json(&out.join("direct.t.w.slow.r1/outcome.json"));
    assert!(slow["connections"]["ok"].as_u64() > Some(0), "{slow}");
    assert!(out.join("direct.t.w.slow.r1/logs/r-proxy.log").is_file());
}

/// Runs the experiment `file` into `work/results`, which it returns,
/// checking that it succeeded and left nothing with `prefix` behind.
fn run_clean(prefix: &Prefix, file: &Path, work: &Path) -> PathBuf {
    let out = work.join("results");
    let output = experiment(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", text(&output));
    let left = leftovers(prefix.0);
    assert!(left.is_empty(), "left behind: {left:?}");
    out
}

/// The actions of a run's `events.jsonl`, each checked applied.
fn applied(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .inspect(|e| assert_eq!(e["result"], "applied", "{}: {e}", dir.display()))
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

/// The samples of a run, in time order.
fn samples(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("samples.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Failed and broken connections in the samples starting before `ms`.
fn hurt_before(samples: &[Value], ms: u64) -> u64 {
    samples
        .iter()
        .filter(|s| s["t_ms"].as_u64().unwrap() < ms)
        .map(|s| s["failed"].as_u64().unwrap() + s["broken"].as_u64().unwrap())
        .sum()
}

#[test]
fn a_client_cut_from_one_balancer_and_a_timed_link_fault_hurt_only_from_their_time() {
    if !lab_needs() {
        return;
    }
    let prefix = Prefix::new("rrex6-");
    let work = tempfile::tempdir().unwrap();
    let file = write_file(
        work.path(),
        &format!(
            r#"{}
[[topology]]
name = "2lb"
balancers = 2
[[workload]]
name = "w"
rate = 20
hold = 6
interval = "200ms"
[[fault]]
name = "c1-lb1"
kind = "partition"
cut = [["c1", "lb1"]]
[[fault]]
name = "c1-loss"
kind = "link"
host = "c1"
netem = "loss 100%"
at = 0.34
until = 0.67
"#,
            rusty_rail_run("cuts", prefix.0, "10.186.0.0/16", 6)
        ),
    );
    let out = run_clean(&prefix, &file, work.path());
    for (id, actions) in [
        ("rr.2lb.w.c1-lb1.r1", ["cut", "heal"]),
        ("rr.2lb.w.c1-loss.r1", ["impair", "unimpair"]),
    ] {
        let dir = out.join(id);
        assert_eq!(applied(&dir), actions, "{id}");
        let outcome = read_json(&dir.join("outcome.json"));
        let c = &outcome["connections"];
        // The balancers' GRE carries c1's flows past any rule on lb1 or c1:
        // only the router's cut (or the link's loss) can hurt them.
        let hurt = c["failed"].as_u64().unwrap() + c["broken"].as_u64().unwrap();
        assert!(hurt > 0, "{id}: nothing was cut: {outcome}");
        // Nothing before the fault's start (1 s): the link passed frames
        // untouched until then, and the cut was not there.
        let samples = samples(&dir);
        assert_eq!(hurt_before(&samples, 900), 0, "{id}: {samples:?}");
        assert!(c["ok"].as_u64() > Some(0), "{id}: {outcome}");
    }

    // The same prefix, now a lab from a topology file: its own addresses,
    // a shaped link, two balancers of which the topology takes one.
    let lab = work.path().join("lab.toml");
    std::fs::write(
        &lab,
        r#"prefix = "ignored-"
[[network]]
name = "outside"
cidr = "10.186.11.0/24"
bridge = true
[[network]]
name = "inside"
cidr = "10.186.12.0/24"
bridge = true
[[host]]
name = "r"
forward = true
links = [ { network = "outside", address = "10.186.11.254" }, { network = "inside", address = "10.186.12.254" } ]
[[host]]
name = "c1"
links = [ { network = "outside", address = "10.186.11.5" } ]
routes = [ "default via 10.186.11.254" ]
[[host]]
name = "lb1"
links = [ { network = "inside", address = "10.186.12.5" } ]
routes = [ "default via 10.186.12.254" ]
[[host]]
name = "lb2"
links = [ { network = "inside", address = "10.186.12.6" } ]
routes = [ "default via 10.186.12.254" ]
[[host]]
name = "s1"
links = [ { network = "inside", address = "10.186.12.7", tbf = "rate 50mbit burst 32kb latency 50ms" } ]
routes = [ "default via 10.186.12.254" ]
"#,
    )
    .unwrap();
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace(
            "name = \"2lb\"\nbalancers = 2",
            "name = \"mine\"\nfile = \"lab.toml\"\nbalancers = 1",
        )
        .replace("duration = \"3s\"", "duration = \"2s\"");
    std::fs::write(&file, text).unwrap();
    let out = run_clean(&prefix, &file, &work.path().join("again"));
    let dir = out.join("rr.mine.w.c1-lb1.r1");
    let topology = std::fs::read_to_string(dir.join("topology.toml")).unwrap();
    assert!(
        topology.contains("10.186.12.5") && !topology.contains("10.186.12.6"),
        "one balancer of the file's two: {topology}"
    );
    // A cut between c1 and lb1 with lb1 the only balancer: nothing gets through.
    let outcome = read_json(&dir.join("outcome.json"));
    assert!(outcome["connections"]["ok"].as_u64() > Some(0), "{outcome}");
    assert!(
        outcome["connections"]["failed"].as_u64().unwrap()
            + outcome["connections"]["broken"].as_u64().unwrap()
            > 0,
        "{outcome}"
    );
    assert_eq!(applied(&dir), ["cut", "heal"]);
}

fn stream_lab_needs() -> bool {
    lab_needs() && host::capability::require(&[Need::Tool("iperf3")]).is_ok()
}

/// The head of a 3 s experiment file with system `rr` (`rusty_rail` in GRE
/// mode on `AF_PACKET`).
fn rusty_rail_run(name: &str, prefix: &str, subnet: &str, seed: u64) -> String {
    format!(
        "name = \"{name}\"\nprefix = \"{prefix}\"\nsubnet = \"{subnet}\"\nduration = \"3s\"\n\
         seed = {seed}\n[[system]]\nname = \"rr\"\nkind = \"rusty_rail\"\nbinary = \"{}\"\n\
         settings = {{ RR_IO = \"af_packet\" }}",
        rusty_rail().display()
    )
}

/// A run's `samples.jsonl`, `outcome.json` and `events.jsonl`.
fn run_results(dir: &Path) -> (Vec<Value>, Value, String) {
    let events = std::fs::read_to_string(dir.join("events.jsonl")).unwrap();
    (samples(dir), read_json(&dir.join("outcome.json")), events)
}

#[test]
fn iperf3_streams_and_udp_requests_go_through_rusty_rail_in_both_modes() {
    if !stream_lab_needs() {
        return;
    }
    let prefix = Prefix::new("rrex4-");
    let work = tempfile::tempdir().unwrap();
    let binary = rusty_rail();
    let file = write_file(
        work.path(),
        &format!(
            r#"{}
[[system]]
name = "rr-vip"
kind = "rusty_rail"
mode = "vip"
binary = "{1}"
settings = {{ RR_IO = "af_packet" }}
[[system]]
name = "direct"
kind = "none"
[[topology]]
name = "1c1lb2s"
servers = 2
[[workload]]
name = "udp-streams"
protocol = "udp"
rate = 20
iperf3 = {{ streams = 2, bitrate = "4M", reverse = true }}
[[fault]]
name = "none"
kind = "none"
"#,
            rusty_rail_run("streams", prefix.0, "10.184.0.0/16", 4),
            binary.display()
        ),
    );
    let out = run_clean(&prefix, &file, work.path());
    for system in ["rr", "rr-vip", "direct"] {
        let id = format!("{system}.1c1lb2s.udp-streams.none.r1");
        let (samples, outcome, _) = run_results(&out.join(&id));
        assert!(
            outcome["errors"].as_array().unwrap().is_empty(),
            "{id}: {outcome}"
        );
        // UDP: every request answered, through the balancer by both servers
        // (their answers leave from the VIP, or the client would drop them).
        let c = &outcome["connections"];
        assert_eq!(c["attempted"], 60, "{id}: {outcome}");
        assert_eq!(c["failed"], 0, "{id}: {outcome}");
        let servers = c["per_backend"].as_object().unwrap();
        let replies: u64 = servers.values().filter_map(Value::as_u64).sum();
        assert_eq!(replies, 60, "{id}: {outcome}");
        if system != "direct" {
            assert_eq!(
                servers.len(),
                2,
                "{id}: UDP spread over both servers: {outcome}"
            );
        }
        // Streams: both ran to the end and carried about their rate.
        let streams = &outcome["streams"];
        assert_eq!(
            (streams["streams"].as_u64(), streams["ok"].as_u64()),
            (Some(2), Some(2)),
            "{id}: {outcome}"
        );
        assert_eq!(c["ok"], 62, "{id}: 60 replies and 2 streams: {outcome}");
        let mean = streams["mean_bps"].as_f64().unwrap();
        assert!(
            (4e6..12e6).contains(&mean),
            "{id}: two streams of 4 Mbit/s averaged {mean} bit/s"
        );
        let carrying = samples
            .iter()
            .filter(|s| s["stream_bps"].as_f64() > Some(0.0))
            .count();
        assert!(
            carrying * 10 >= samples.len() * 9,
            "{id}: only {carrying} of {} samples carried stream data",
            samples.len()
        );
        assert!(
            out.join(&id).join("logs/c1-iperf3-5202.txt").is_file(),
            "{id}: no output of the second stream"
        );
        // The report's stream columns are the outcome's, in Mbit/s.
        let report = std::fs::read_to_string(out.join("report.md")).unwrap();
        let key = format!("| 1c1lb2s | udp-streams | none | {system} | 1 |");
        let row = report.lines().find(|l| l.starts_with(&key)).unwrap();
        let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
        let megabits = |bps: f64| {
            let m = (bps / 1e5).round() / 10.0;
            if m.fract() == 0.0 {
                format!("{m:.0}")
            } else {
                format!("{m:.1}")
            }
        };
        assert_eq!(cells[11], megabits(mean), "{row}");
        let lowest = streams["min_bps"].as_f64().unwrap();
        assert_eq!(cells[12], megabits(lowest), "{row}");
    }
    let timeline = std::fs::read_to_string(out.join("timeline-1c1lb2s.udp-streams.none.svg"))
        .expect("the streams' timeline");
    for series in [
        "rr stream Mbit/s",
        "rr-vip stream Mbit/s",
        "direct stream Mbit/s",
    ] {
        assert!(timeline.contains(series), "timeline: no series {series}");
    }
}

#[test]
fn a_stream_whose_server_is_killed_counts_as_broken_from_then_on() {
    if !stream_lab_needs() {
        return;
    }
    let prefix = Prefix::new("rrex5-");
    let work = tempfile::tempdir().unwrap();
    let file = write_file(
        work.path(),
        &format!(
            r#"{}
[[system]]
name = "direct"
kind = "none"
[[system]]
name = "haproxy"
kind = "haproxy"
[[topology]]
name = "1s"
[[workload]]
name = "stream"
iperf3 = {{ streams = 1, bitrate = "4M" }}
[[fault]]
name = "s1-kill"
kind = "backend_kill"
at = 0.5
"#,
            rusty_rail_run("stream-kill", prefix.0, "10.185.0.0/16", 5)
        ),
    );
    let out = run_clean(&prefix, &file, work.path());
    for system in ["rr", "direct", "haproxy"] {
        let id = format!("{system}.1s.stream.s1-kill.r1");
        let (samples, outcome, events) = run_results(&out.join(&id));
        let kill: Value = serde_json::from_str(events.trim()).unwrap();
        assert_eq!(kill["action"], "kill_server", "{id}: {events}");
        let killed_at = kill["t_ms"].as_u64().unwrap();
        let streams = &outcome["streams"];
        assert_eq!(
            (streams["ok"].as_u64(), streams["broken"].as_u64()),
            (Some(0), Some(1)),
            "{id}: {outcome}"
        );
        assert_eq!(outcome["connections"]["broken"], 1, "{id}: {outcome}");
        let broke_at = samples
            .iter()
            .find(|s| s["broken"].as_u64() > Some(0))
            .and_then(|s| s["t_ms"].as_u64())
            .expect("a sample with the break");
        // It carried data until about the kill (its last 100 ms report
        // before the kill is where it stopped) and nothing after it.
        assert!(
            broke_at >= killed_at / 2,
            "{id}: broke at {broke_at} ms, long before the kill at {killed_at} ms"
        );
        let after = samples
            .iter()
            .filter(|s| s["t_ms"].as_u64() >= Some(killed_at + 200))
            .filter(|s| s["stream_bps"].as_f64() != Some(0.0))
            .count();
        assert_eq!(after, 0, "{id}: data after the kill");
        let before = samples
            .iter()
            .filter(|s| s["t_ms"].as_u64() < Some(killed_at.saturating_sub(100)))
            .filter(|s| s["stream_bps"].as_f64() > Some(0.0))
            .count();
        assert!(before > 0, "{id}: no data before the kill");
        assert!(
            outcome["recovery"][0]["disrupted_ms"].as_u64() > Some(0),
            "{id}: {outcome}"
        );
    }
}

#[test]
fn in_bgp_mode_a_killed_balancer_is_withdrawn_by_the_routers_bird_and_announced_again() {
    if !lab_needs()
        || host::capability::require(&[Need::Tool("bird"), Need::Tool("birdc")]).is_err()
    {
        return;
    }
    let prefix = Prefix::new("rrex7-");
    let work = tempfile::tempdir().unwrap();
    let file = write_file(
        work.path(),
        &format!(
            r#"
name = "bgp"
prefix = "{}"
subnet = "10.187.0.0/16"
duration = "4s"
seed = 7
[[system]]
name = "rr-bgp"
kind = "rusty_rail"
mode = "bgp"
binary = "{}"
settings = {{ RR_IO = "af_packet" }}
[[topology]]
name = "2lb"
balancers = 2
[[workload]]
name = "w"
rate = 20
hold = 20
interval = "500ms"
[[fault]]
name = "lb1-kill"
kind = "balancer_kill"
target = 1
recover = 0.75
[[fault]]
name = "c1-lb1"
kind = "partition"
cut = [["c1", "lb1"]]
"#,
            prefix.0,
            rusty_rail().display()
        ),
    );
    let out = run_clean(&prefix, &file, work.path());
    let dir = out.join("rr-bgp.2lb.w.lb1-kill.r1");
    let topology = std::fs::read_to_string(dir.join("topology.toml")).unwrap();
    assert!(topology.contains("bgp = { as = 65000"), "{topology}");
    // Plain IP by the routes BIRD installed: no GRE tunnel on the router,
    // whose route to the VIP would win over BIRD's and never learn a withdrawal.
    assert!(!dir.join("logs/r-encap.log").exists());
    let events: Vec<Value> = std::fs::read_to_string(dir.join("events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seen: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["result"].as_str().unwrap()))
        .collect();
    assert_eq!(
        seen,
        [
            ("kill_balancer", "applied"),
            ("withdraw_balancer", "skipped"),
            ("restart_balancer", "applied"),
        ],
        "{events:?}"
    );
    // The runner only watched: the router's BIRD took lb1 out of the routes.
    let detail = events[1]["detail"].as_str().unwrap();
    assert!(
        detail.contains("withdrawn by the router's BIRD"),
        "{detail}"
    );
    println!("{detail}");
    let outcome = read_json(&dir.join("outcome.json"));
    assert!(outcome["connections"]["ok"].as_u64() > Some(0), "{outcome}");
    // Once withdrawn, lb1's share goes to the others: a SYN lost in the dead
    // balancer is sent again a second later and connects then.
    assert_eq!(outcome["connections"]["failed"], 0, "{outcome}");
    // A client cut from lb1, which stays announced: the held connections
    // the router hashed to lb1 go silent (BGP cannot see this fault).
    let cut = read_json(&out.join("rr-bgp.2lb.w.c1-lb1.r1/outcome.json"));
    assert!(cut["connections"]["broken"].as_u64() > Some(0), "{cut}");
    assert!(
        outcome["errors"].as_array().unwrap().is_empty(),
        "{outcome}"
    );
}
