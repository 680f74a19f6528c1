//! Whether this machine can run a test, and the one way a test says it cannot.
//!
//! A lab test needs root, network namespaces and tools such as `nft` or
//! `iperf3`; a fast-path test needs a CPU with AVX-512. Where a need is unmet
//! the test reports a skip and returns, passing. There are two kinds of skip:
//!
//! - A missing **lab prerequisite** ([`Need::Root`], [`Need::Netns`],
//!   [`Need::Tun`], [`Need::Tool`], or [`lab_lacks`] for one the test finds
//!   itself): something CI has, since it runs as root on a machine with
//!   namespaces after `scripts/ensure-tools.sh`. With `RR_REQUIRE_LABS=1` in
//!   the environment (`.ci/run` sets it) the check panics instead, and the
//!   test fails: there a lab test that cannot run is a failure.
//! - A **machine feature** this host lacks ([`Need::Avx512`], or
//!   [`machine_lacks`]: a kernel module, a host setting): always a skip, also
//!   under `RR_REQUIRE_LABS=1`, since no script can install it.
//!
//! Each skip prints `skipped: <reason>` once and, when `RR_SKIP_LOG` names a
//! file, appends one line `<test>\t<reason>` to it: `scripts/test.sh` counts
//! skipped tests from that file apart from the ones that passed (libtest
//! counts a test that returned early as passed, and hides its output).
//!
//! ```no_run
//! use host::capability::Need;
//!
//! fn a_lab_test() {
//!     host::skip_unless!(Need::Root, Need::Netns, Need::Tool("nft"));
//!     // ... the lab
//! }
//! ```

use std::fmt::Display;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Set to `1`, turns a missing lab prerequisite into a panic (CI sets it).
pub const REQUIRE_LABS: &str = "RR_REQUIRE_LABS";
/// Names a file each skip appends one line to (`scripts/test.sh` sets it).
pub const SKIP_LOG: &str = "RR_SKIP_LOG";

/// Something a test needs of the machine it runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Effective user id 0: namespaces, links, `AF_PACKET` and nftables need it.
    Root,
    /// `ip netns` works (iproute2 installed, namespaces in the kernel).
    Netns,
    /// `/dev/net/tun`, for tun devices.
    Tun,
    /// A program on `PATH`, one `scripts/ensure-tools.sh` installs.
    Tool(&'static str),
    /// AVX-512F and AVX-512BW, what the fast path's 8-lane code uses: a CPU
    /// feature, so an allowed skip.
    Avx512,
}

impl Need {
    /// Why this need is unmet here, or `None` when it is met.
    pub fn unmet(self) -> Option<String> {
        match self {
            Need::Root => {
                // SAFETY: geteuid has no preconditions and cannot fail.
                let euid = unsafe { libc::geteuid() };
                (euid != 0).then(|| "not root (namespaces, links and AF_PACKET need it)".into())
            }
            Need::Netns => (!succeeds(Command::new("ip").args(["netns", "list"])))
                .then(|| "`ip netns` unavailable (apt-get install iproute2)".into()),
            Need::Tun => (!Path::new("/dev/net/tun").exists())
                .then(|| "/dev/net/tun missing (modprobe tun)".into()),
            Need::Tool(program) => on_path(program)
                .is_none()
                .then(|| format!("`{program}` not on PATH (scripts/ensure-tools.sh installs it)")),
            Need::Avx512 => {
                (!has_avx512()).then(|| "this CPU has no AVX-512F and AVX-512BW".into())
            }
        }
    }

    /// Whether CI must have it: every need but a CPU feature.
    pub fn is_lab_prerequisite(self) -> bool {
        !matches!(self, Need::Avx512)
    }
}

/// A skip that has been reported; the test returns (and passes) on it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a skipped test returns without testing"]
pub struct Skipped {
    pub reason: String,
}

impl Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

/// `Ok` when every need is met; otherwise reports the first unmet one (see
/// the module docs: a skip, or a panic under `RR_REQUIRE_LABS=1` for a lab
/// prerequisite) and returns it.
#[track_caller]
pub fn require(needs: &[Need]) -> Result<(), Skipped> {
    match needs.iter().find_map(|need| Some((*need, need.unmet()?))) {
        None => Ok(()),
        Some((need, reason)) => Err(report(reason, need.is_lab_prerequisite())),
    }
}

/// Reports a lab prerequisite the test found missing itself (a client it
/// could not install, a shell it needs): a skip, or a panic under
/// `RR_REQUIRE_LABS=1`.
#[track_caller]
pub fn lab_lacks(reason: impl Display) -> Skipped {
    report(reason.to_string(), true)
}

/// Reports a feature this machine lacks that CI need not have either (a
/// kernel module, a host setting): a skip, also under `RR_REQUIRE_LABS=1`.
#[track_caller]
pub fn machine_lacks(reason: impl Display) -> Skipped {
    report(reason.to_string(), false)
}

/// Returns from the calling test (with `Default::default()`: `()` or
/// `None`) unless every [`Need`] is met; see [`require`].
#[macro_export]
macro_rules! skip_unless {
    ($($need:expr),+ $(,)?) => {
        if $crate::capability::require(&[$($need),+]).is_err() {
            return ::core::default::Default::default();
        }
    };
}

#[track_caller]
fn report(reason: String, prerequisite: bool) -> Skipped {
    let required = std::env::var_os(REQUIRE_LABS).is_some_and(|v| v == "1");
    let log = std::env::var_os(SKIP_LOG).map(PathBuf::from);
    report_to(reason, prerequisite, required, log.as_deref())
}

#[track_caller]
fn report_to(reason: String, prerequisite: bool, required: bool, log: Option<&Path>) -> Skipped {
    assert!(
        !(prerequisite && required),
        "required by {REQUIRE_LABS}=1 but {reason}"
    );
    println!("skipped: {reason}");
    if let Some(log) = log {
        // One short write to a file opened for appending: lines from tests
        // running in parallel, in threads or processes, do not interleave.
        let line = format!("{}\t{}\n", test_name(), reason.replace('\n', " "));
        let written = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .and_then(|mut file| file.write_all(line.as_bytes()));
        if let Err(error) = written {
            eprintln!("cannot log the skip to {}: {error}", log.display());
        }
    }
    Skipped { reason }
}

/// The running test: libtest names each test's thread after it; a plain
/// `fn main` (a bench) goes by its program's name.
fn test_name() -> String {
    let program = std::env::args()
        .next()
        .map(|arg0| {
            let name = Path::new(&arg0)
                .file_name()
                .map_or(arg0.clone(), |n| n.to_string_lossy().into_owned());
            // Cargo's test binaries end in `-<hash>`.
            match name.rsplit_once('-') {
                Some((stem, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => stem.into(),
                _ => name,
            }
        })
        .unwrap_or_default();
    match std::thread::current().name() {
        Some(thread) if thread != "main" => format!("{program} {thread}"),
        _ => program,
    }
}

fn succeeds(command: &mut Command) -> bool {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Where `program` is on `PATH`, if it is there as an executable file.
pub fn on_path(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| {
            candidate
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tool_on_path_is_found_and_a_missing_one_is_named() {
        assert!(Need::Tool("sh").unmet().is_none());
        assert_eq!(
            Need::Tool("rr-no-such-tool").unmet().unwrap(),
            "`rr-no-such-tool` not on PATH (scripts/ensure-tools.sh installs it)"
        );
    }

    #[test]
    fn only_cpu_features_are_allowed_skips() {
        for need in [Need::Root, Need::Netns, Need::Tun, Need::Tool("nft")] {
            assert!(need.is_lab_prerequisite(), "{need:?}");
        }
        assert!(!Need::Avx512.is_lab_prerequisite());
    }

    #[test]
    fn require_is_ok_when_every_need_is_met() {
        assert_eq!(require(&[Need::Tool("sh")]), Ok(()));
        assert_eq!(require(&[]), Ok(()));
    }

    #[test]
    fn a_skip_appends_one_line_naming_the_test_and_the_reason() {
        let log = std::env::temp_dir().join(format!("rr-skip-log-{}", std::process::id()));
        let _ = std::fs::remove_file(&log);
        let skipped = report_to("no widget".into(), true, false, Some(&log));
        assert_eq!(skipped.reason, "no widget");
        let _ = report_to("no gadget\nat all".into(), false, true, Some(&log));
        let lines = std::fs::read_to_string(&log).unwrap();
        std::fs::remove_file(&log).unwrap();
        let test = "capability::tests::a_skip_appends_one_line_naming_the_test_and_the_reason";
        let expected: Vec<String> = ["no widget", "no gadget at all"]
            .iter()
            .map(|reason| format!("{test}\t{reason}"))
            .collect();
        let lines: Vec<&str> = lines.lines().collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        for (line, expected) in lines.iter().zip(&expected) {
            assert!(line.ends_with(expected.as_str()), "{line:?}");
            assert!(line.starts_with("host "), "{line:?}");
        }
    }

    #[test]
    #[should_panic(expected = "required by RR_REQUIRE_LABS=1 but no widget")]
    fn a_missing_prerequisite_fails_when_labs_are_required() {
        let _ = report_to("no widget".into(), true, true, None);
    }

    #[test]
    fn a_missing_machine_feature_stays_a_skip_when_labs_are_required() {
        let skipped = report_to("no sch_netem".into(), false, true, None);
        assert_eq!(skipped.to_string(), "no sch_netem");
    }
}
