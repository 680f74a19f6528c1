//! `--config FILE` and `rusty_rail check --config FILE` through the binary:
//! a valid file checks clean, a bad one exits 2 with every error's line and
//! field, the environment overrides the file, and the live balancer refuses
//! a bad file before it touches anything (no root needed).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_rusty_rail");

/// Runs `rusty_rail ARGS` with only `env` set among the `RR_*` variables.
fn rusty_rail(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("RR_") {
            command.env_remove(key);
        }
    }
    command
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("running rusty_rail")
}

fn file_with(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().expect("a temporary file");
    file.write_all(text.as_bytes()).expect("writing it");
    file
}

fn check(path: &Path, env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let output = rusty_rail(&["check", "--config", path.to_str().unwrap()], env);
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_example_file_checks_clean() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/services.toml");
    let (code, stdout, stderr) = check(&example, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("3 services"), "{stdout}");
}

#[test]
fn a_bad_file_exits_2_naming_every_error_s_line_and_field() {
    let file = file_with(
        "device = \"lo\"\ntarget_ips = \"10.1.0.1\"\nworkerz = 2\n\n[[service]]\nname = \"web\"\nvip = \"192.0.2.1\"\nport = 80\n",
    );
    let (code, _, stderr) = check(file.path(), &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("line 3: workerz: no setting RR_WORKERZ"),
        "{stderr}"
    );
    assert!(
        stderr.contains("line 5: service[0].port: a port needs a protocol"),
        "{stderr}"
    );
}

#[test]
fn a_setting_s_value_is_checked_as_the_balancer_would_parse_it() {
    let file = file_with("device = \"lo\"\ntarget_ips = [\"10.1.0.1:99999\"]\n");
    let (code, _, stderr) = check(file.path(), &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("10.1.0.1:99999"), "{stderr}");
}

#[test]
fn the_environment_overrides_the_file() {
    let file = file_with("device = \"lo\"\ntarget_ips = [\"10.1.0.1:99999\"]\n");
    let (code, _, stderr) = check(file.path(), &[("RR_TARGET_IPS", "10.1.0.1")]);
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn the_live_balancer_refuses_a_bad_file_before_starting() {
    let file = file_with("device = \"lo\"\ntarget_ips = \"10.1.0.1\"\n[[service]]\nname = \"a b\"\nvip = \"192.0.2.1\"\n");
    let output = rusty_rail(&["--config", file.path().to_str().unwrap()], &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("\"a b\" is not accepted"), "{stderr}");
}
