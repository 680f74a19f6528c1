//! `testbed link-emulator`: one [`EmulatedLink`] in a process of its own,
//! until SIGTERM or SIGINT. `testbed up` starts one per netem link,
//! detached, because it returns at once while the links must stay
//! impaired; `down` stops them by their recorded pids.
//!
//! It writes [`READY`] on stdout once both sockets are open (what `up`
//! waits for), and at the end one line with what each direction did.
//!
//! Each direction has its own spec and a direction without one passes
//! frames untouched: `up` gives a link's egress spec (what the host sends,
//! arriving on side A) as `--spec` and its ingress spec as `--spec-back`.
//!
//! SIGUSR1 switches the specs on, SIGUSR2 off (frames pass untouched, the
//! link stays up): `testbed experiment` impairs a link from one time to
//! another this way. `--held` starts it switched off.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::Args;

use super::netem::NetemArg;
use crate::impair::live::EmulatedLink;
use crate::impair::{DirectionCounters, NetemSpec};

/// The line written once the emulator runs.
pub const READY: &str = "link emulator ready";

/// Options of `testbed link-emulator`.
#[derive(Debug, Args)]
pub struct LinkEmulatorArgs {
    /// The network namespace (a name under /run/netns) holding both sides.
    #[arg(long)]
    pub namespace: String,
    /// Side A: frames arriving here leave on B, impaired by --spec.
    #[arg(long)]
    pub a: String,
    /// Side B: frames arriving here leave on A, impaired by --spec-back.
    #[arg(long)]
    pub b: String,
    /// Impairment from A to B, in netem's syntax (default: none).
    #[arg(long, value_parser = netem_text, required_unless_present = "spec_back")]
    pub spec: Option<String>,
    /// Impairment from B to A, in netem's syntax (default: none; it is not
    /// --spec's: one spec impairs one direction, as netem does).
    #[arg(long, value_parser = netem_text)]
    pub spec_back: Option<String>,
    /// Seed of the link's random draws (same seed and traffic, same fates).
    #[arg(long)]
    pub seed: u64,
    /// Start with the specs switched off (SIGUSR1 switches them on).
    #[arg(long)]
    pub held: bool,
}

/// Whether the specs apply, as the last SIGUSR1 (on) or SIGUSR2 (off) said.
static IMPAIRED: AtomicBool = AtomicBool::new(true);

extern "C" fn switch(signal: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    IMPAIRED.store(signal == libc::SIGUSR1, Ordering::SeqCst);
}

/// Makes SIGUSR1 and SIGUSR2 set [`IMPAIRED`].
fn switch_on_signals() -> std::io::Result<()> {
    for signal in [libc::SIGUSR1, libc::SIGUSR2] {
        // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = switch as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY: `action` is a valid sigaction whose handler only does an
        // atomic store; the old action is not asked for.
        let rc = unsafe { libc::sigaction(signal, &raw const action, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Checks a spec on the command line, kept as text (parsed specs are
/// large, and the command enum holds its arguments inline).
fn netem_text(text: &str) -> Result<String, String> {
    text.parse::<NetemArg>().map(|_| text.to_owned())
}

/// `testbed link-emulator`: exit code 0 after a clean stop, 1 when the
/// link failed, 2 when it could not start.
pub fn main(args: &LinkEmulatorArgs) -> ExitCode {
    if let Err(e) = host::signals::stop_on_signals() {
        eprintln!("testbed link-emulator: catching SIGINT and SIGTERM: {e}");
        return ExitCode::from(2);
    }
    IMPAIRED.store(!args.held, Ordering::SeqCst);
    if let Err(e) = switch_on_signals() {
        eprintln!("testbed link-emulator: catching SIGUSR1 and SIGUSR2: {e}");
        return ExitCode::from(2);
    }
    let parse = |text: &Option<String>| {
        text.as_deref().map_or_else(
            || Ok(NetemSpec::default()),
            |text| text.parse::<NetemArg>().map(|arg| arg.spec),
        )
    };
    let (there, back) = match (parse(&args.spec), parse(&args.spec_back)) {
        (Ok(there), Ok(back)) => (there, back),
        (Err(error), _) | (_, Err(error)) => {
            eprintln!("testbed link-emulator: {error}");
            return ExitCode::from(2);
        }
    };
    let link = match EmulatedLink::start_switched(
        Some(&args.namespace),
        &args.a,
        &args.b,
        &there,
        &back,
        args.seed,
        !args.held,
    ) {
        Ok(link) => link,
        Err(error) => {
            eprintln!("testbed link-emulator: {error}");
            return ExitCode::from(2);
        }
    };
    println!("{READY}");
    let mut impaired = !args.held;
    while !host::signals::stop_requested() {
        let wanted = IMPAIRED.load(Ordering::SeqCst);
        if wanted != impaired {
            link.set_impaired(wanted);
            impaired = wanted;
            println!("impairment {}", if wanted { "on" } else { "off" });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    match link.stop() {
        Ok(report) => {
            println!(
                "{} -> {}: {}; {} -> {}: {}",
                args.a,
                args.b,
                summary(report.a_to_b),
                args.b,
                args.a,
                summary(report.b_to_a)
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("testbed link-emulator: {error}");
            ExitCode::FAILURE
        }
    }
}

fn summary(c: DirectionCounters) -> String {
    format!(
        "{} in, {} out, {} lost, {} over limit, {} duplicated, {} corrupted",
        c.received, c.sent, c.lost, c.limited, c.duplicated, c.corrupted
    )
}
