//! The link emulator on real interfaces: two interfaces of one network
//! namespace bridged by an [`Emulator`] thread through `AF_PACKET`, each
//! direction impaired by its own netem spec, seeded so that the same seed and
//! the same offered traffic give the same fates.
//!
//! ```text
//!   far end A ==veth== side_a  [EmulatedLink thread]  side_b ==veth== far end B
//!                        AF_PACKET   a->b: spec_ab      AF_PACKET
//!                                    b->a: spec_ba
//! ```
//!
//! `side_a` and `side_b` must not be bridge ports or carry addresses: the
//! emulator alone moves frames between them. The thread turns GRO and LRO
//! off on both sides ([`NEAR_END_OFFLOADS`]): merged super-frames would not
//! fit a ring slot and would pass unseen. The far ends, the interfaces that
//! send into `side_a` and `side_b`, need [`FAR_END_OFFLOADS`] off (see
//! [`prepare_far_end`]): their stack would otherwise hand over TCP segments
//! with the checksum left for the device to fill in and segments larger than
//! the MTU, which the emulator would forward unfinished, and a veth would
//! mark the emulator's frames checksum-verified, so a frame `corrupt`
//! damaged would be accepted.
//!
//! One thread per link waits on both sockets at once; it suits labs of tens
//! of impaired links, not thousands.
//!
//! Each step takes a batch from each side and sends at most a batch of what
//! fell due to each (see [`Emulator::step`]): frames whose times bunch (a
//! burst received at once falls due at once) leave over several short kicks,
//! the receive rings served between them, not in one long kick while the
//! rings overflow.
//!
//! A frame leaves at its time, or on a busy link (frames arriving while
//! others wait out a delay) up to two [`ROUND`]s later: the thread then
//! works in rounds, taking what arrived and sending what fell due in one
//! kick each, instead of waking for every arrival and kicking for every
//! frame falling due (which spent a delayed flood's CPU on system calls: a
//! wake per nine frames, 0.65 of veth + bridge). A link without a delay
//! still takes each frame as it comes. netem itself sends from a timer and a
//! softirq, and its manual warns that delays and rates go by the kernel's
//! timers. The
//! thread's timer slack is [`TIMER_SLACK`], not the default 50 us, so that
//! a wait ends when it is asked to.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dataplane::io::af_packet::{AfPacketConfig, AfPacketError, AfPacketIo};
use host::offloads::{self, Offload, OffloadError, OffloadGuard};

use super::emulator::{DirectionCounters, Emulator};
use super::link::ImpairedLink;
use super::spec::NetemSpec;

/// Offloads turned off on the emulator's own interfaces.
pub const NEAR_END_OFFLOADS: [Offload; 2] = [Offload::Gro, Offload::Lro];

/// Offloads to turn off on the interfaces that send into the emulator's:
/// TX checksum (unfinished checksums), TSO and GSO (segments beyond the
/// MTU), RX checksum (so a veth checks what the emulator corrupted).
pub const FAR_END_OFFLOADS: [Offload; 4] = [
    Offload::TxChecksum,
    Offload::Tso,
    Offload::Gso,
    Offload::RxChecksum,
];

/// Slots per ring of each socket: 256 frames of 2 KiB per ring keep a
/// link's rings at 2 MiB while holding more than a burst of the queue.
const RING_FRAMES: u32 = 256;
/// Longest wait between looks at the stop flag.
const IDLE_WAIT: Duration = Duration::from_millis(50);
/// Wait when a due frame found the other side's TX ring full.
const TX_FULL_WAIT: Duration = Duration::from_micros(50);
/// A busy link's round: the thread sleeps (not waking for arrivals) until a
/// round ends, ROUND after its first frame fell due or after it last
/// looked; a frame waits at most a round to be taken and a round to leave.
/// At 1 M frames/s two rounds' arrivals take 100 of a ring's 256 slots.
pub const ROUND: Duration = Duration::from_micros(50);
/// How late the kernel may end the thread's waits (`PR_SET_TIMERSLACK`).
const TIMER_SLACK: Duration = Duration::from_micros(1);
/// Frames queued per direction at most, whatever the specs' `limit`
/// (each queued frame has a preallocated 2 KiB buffer).
const MAX_QUEUE: usize = 16_384;

/// Why an emulated link could not start or failed while running.
#[derive(Debug)]
pub enum LiveError {
    /// The namespace could not be opened or entered.
    Namespace { name: String, source: io::Error },
    /// Offloads could not be turned off (or back on).
    Offloads(OffloadError),
    /// A packet socket could not be opened on a side.
    Socket(AfPacketError),
    /// Moving frames failed on a side.
    Run {
        interface: String,
        source: io::Error,
    },
    /// The emulator thread could not be started or ended by a panic.
    Thread(String),
}

impl fmt::Display for LiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Namespace { name, source } => write!(
                f,
                "emulated link: network namespace {name:?}: {source}; expected a name \
                 under /run/netns (as `ip netns list` shows)"
            ),
            Self::Offloads(error) => write!(f, "emulated link: {error}"),
            Self::Socket(error) => write!(f, "emulated link: {error}"),
            Self::Run { interface, source } => {
                write!(f, "emulated link: moving frames on {interface}: {source}")
            }
            Self::Thread(what) => write!(f, "emulated link: {what}"),
        }
    }
}

impl std::error::Error for LiveError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Namespace { source, .. } | Self::Run { source, .. } => Some(source),
            Self::Offloads(error) => Some(error),
            Self::Socket(error) => Some(error),
            Self::Thread(_) => None,
        }
    }
}

impl From<OffloadError> for LiveError {
    fn from(error: OffloadError) -> Self {
        Self::Offloads(error)
    }
}

/// What a link did, returned by [`EmulatedLink::stop`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkReport {
    pub a_to_b: DirectionCounters,
    pub b_to_a: DirectionCounters,
    /// CPU time of the emulator thread (user and kernel, including the
    /// kernel's work sending its frames on), from start to stop.
    pub cpu: Duration,
}

/// The seeds of a link's two directions: `seed` from A to B, a different
/// one derived from it from B to A, so that equal specs do not drop the
/// same positions both ways. A spec's own `seed` wins over either.
pub fn direction_seeds(seed: u64) -> (u64, u64) {
    (seed, seed ^ 0x9E37_79B9_7F4A_7C15)
}

/// Runs `work` on a thread in network namespace `namespace` (the caller's
/// when `None`) and returns its result.
fn in_namespace<T: Send + 'static>(
    namespace: Option<&str>,
    work: impl FnOnce() -> Result<T, LiveError> + Send + 'static,
) -> Result<T, LiveError> {
    let file = open_namespace(namespace)?;
    std::thread::spawn(move || {
        enter(file.as_ref(), namespace_name(file.as_ref()))?;
        work()
    })
    .join()
    .map_err(|_| LiveError::Thread("namespace thread panicked".into()))?
}

fn open_namespace(namespace: Option<&str>) -> Result<Option<(String, File)>, LiveError> {
    namespace
        .map(|name| {
            File::open(crate::lab::netns::path(name))
                .map(|file| (name.to_owned(), file))
                .map_err(|source| LiveError::Namespace {
                    name: name.to_owned(),
                    source,
                })
        })
        .transpose()
}

fn namespace_name(file: Option<&(String, File)>) -> &str {
    file.map_or("", |(name, _)| name.as_str())
}

fn enter(file: Option<&(String, File)>, name: &str) -> Result<(), LiveError> {
    if let Some((_, file)) = file {
        crate::lab::netns::enter(file).map_err(|source| LiveError::Namespace {
            name: name.to_owned(),
            source,
        })?;
    }
    Ok(())
}

/// Turns [`FAR_END_OFFLOADS`] off on `interface` in `namespace` (the
/// caller's when `None`); the guard turns them back on when dropped.
pub fn prepare_far_end(
    namespace: Option<&str>,
    interface: &str,
) -> Result<OffloadGuard, LiveError> {
    let interface = interface.to_owned();
    in_namespace(namespace, move || {
        Ok(offloads::disable(&interface, &FAR_END_OFFLOADS)?)
    })
}

/// A running emulated link; stopped by [`stop`](EmulatedLink::stop) or
/// when dropped.
#[derive(Debug)]
pub struct EmulatedLink {
    sides: (String, String),
    stop: Arc<AtomicBool>,
    /// Whether the specs apply now; off, frames pass untouched.
    impaired: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<LinkReport, LiveError>>>,
    offload_changes: Vec<String>,
}

impl EmulatedLink {
    /// Starts bridging `side_a` and `side_b` of `namespace` (the caller's
    /// when `None`): frames from A through `a_to_b`, frames from B through
    /// `b_to_a`, seeded by [`direction_seeds`]`(seed)`. Returns once both
    /// sockets are open and the offloads are off, or with the reason they
    /// are not.
    pub fn start(
        namespace: Option<&str>,
        side_a: &str,
        side_b: &str,
        a_to_b: &NetemSpec,
        b_to_a: &NetemSpec,
        seed: u64,
    ) -> Result<Self, LiveError> {
        Self::start_switched(namespace, side_a, side_b, a_to_b, b_to_a, seed, true)
    }

    /// [`start`](Self::start), with the specs applied from the start or
    /// not (`impaired`) until [`set_impaired`](Self::set_impaired).
    pub fn start_switched(
        namespace: Option<&str>,
        side_a: &str,
        side_b: &str,
        a_to_b: &NetemSpec,
        b_to_a: &NetemSpec,
        seed: u64,
        impaired: bool,
    ) -> Result<Self, LiveError> {
        let file = open_namespace(namespace)?;
        let (seed_ab, seed_ba) = direction_seeds(seed);
        let links = (
            ImpairedLink::new(a_to_b, seed_ab),
            ImpairedLink::new(b_to_a, seed_ba),
        );
        // The models of a link switched off: no spec, frames pass at once.
        let passing = (
            ImpairedLink::new(&NetemSpec::default(), seed_ab),
            ImpairedLink::new(&NetemSpec::default(), seed_ba),
        );
        let queue = a_to_b.limit.max(b_to_a.limit).clamp(1, MAX_QUEUE);
        let sides = (side_a.to_owned(), side_b.to_owned());
        let stop = Arc::new(AtomicBool::new(false));
        let switch = Arc::new(AtomicBool::new(impaired));
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = {
            let sides = sides.clone();
            let stop = Arc::clone(&stop);
            let switch = Arc::clone(&switch);
            std::thread::Builder::new()
                .name(format!("emu {}-{}", sides.0, sides.1))
                .spawn(move || {
                    let setup = (|| {
                        enter(file.as_ref(), namespace_name(file.as_ref()))?;
                        open_sides(&sides)
                    })();
                    match setup {
                        Err(error) => {
                            let _ = ready_tx.send(Err(error));
                            Ok(LinkReport::default())
                        }
                        Ok((a, b, guards)) => {
                            let changes = guards
                                .iter()
                                .flat_map(OffloadGuard::changes)
                                .map(ToString::to_string)
                                .collect();
                            let _ = ready_tx.send(Ok(changes));
                            let (on, off) = if impaired {
                                (links, passing)
                            } else {
                                (passing, links)
                            };
                            let emulator = Emulator::new(a, b, on.0, on.1, queue);
                            let switched = Switched {
                                flag: &switch,
                                spare: off,
                                now: impaired,
                            };
                            let report = serve(emulator, &sides, &stop, switched);
                            // Offloads go back on after the sockets close.
                            drop(guards);
                            report
                        }
                    }
                })
                .map_err(|e| LiveError::Thread(format!("spawning the emulator thread: {e}")))?
        };
        match ready_rx.recv() {
            Ok(Ok(offload_changes)) => Ok(Self {
                sides,
                stop,
                impaired: switch,
                thread: Some(thread),
                offload_changes,
            }),
            Ok(Err(error)) => {
                let _ = thread.join();
                Err(error)
            }
            Err(_) => {
                let _ = thread.join();
                Err(LiveError::Thread(
                    "emulator thread ended before starting".into(),
                ))
            }
        }
    }

    /// The two sides, as given.
    pub fn sides(&self) -> (&str, &str) {
        (&self.sides.0, &self.sides.1)
    }

    /// The offloads turned off on the two sides, one line each
    /// (`tb-v0: gro on -> off`).
    pub fn offload_changes(&self) -> &[String] {
        &self.offload_changes
    }

    /// Switches the specs on (`true`) or off: off, frames pass untouched.
    /// The emulator's loop takes the change within its longest wait (50 ms).
    pub fn set_impaired(&self, on: bool) {
        self.impaired.store(on, Ordering::SeqCst);
    }

    /// Asks the thread to stop without waiting for it: a caller stopping
    /// many links asks them all first, then [`stop`](Self::stop)s each.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Stops the thread (within 50 ms), closes the sockets, turns the
    /// offloads back on, and returns what each direction did.
    pub fn stop(mut self) -> Result<LinkReport, LiveError> {
        self.finish()
    }

    fn finish(&mut self) -> Result<LinkReport, LiveError> {
        self.stop.store(true, Ordering::SeqCst);
        let Some(thread) = self.thread.take() else {
            return Ok(LinkReport::default());
        };
        thread
            .join()
            .map_err(|_| LiveError::Thread("emulator thread panicked".into()))?
    }
}

impl Drop for EmulatedLink {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// Turns the near-end offloads off and opens a socket on each side. The
/// socket ignores what it sends itself, so a frame passes each side once.
fn open_sides(
    sides: &(String, String),
) -> Result<(AfPacketIo, AfPacketIo, Vec<OffloadGuard>), LiveError> {
    let mut guards = Vec::with_capacity(2);
    for side in [&sides.0, &sides.1] {
        guards.push(offloads::disable(side, &NEAR_END_OFFLOADS)?);
    }
    let open = |interface: &str| {
        let config = AfPacketConfig {
            ring_frames: RING_FRAMES,
            // Through the qdisc: shaping configured on a side still applies.
            qdisc_bypass: false,
            ignore_outgoing: true,
            ..AfPacketConfig::new(interface)
        };
        AfPacketIo::open(&config).map_err(LiveError::Socket)
    };
    Ok((open(&sides.0)?, open(&sides.1)?, guards))
}

/// The impairment switch of a running link: the flag set from outside,
/// the models not in use, and which ones are.
struct Switched<'a> {
    flag: &'a AtomicBool,
    spare: (ImpairedLink, ImpairedLink),
    now: bool,
}

impl Switched<'_> {
    /// Puts the models the flag asks for in place, if they are not.
    fn follow(&mut self, emulator: &mut Emulator<AfPacketIo, AfPacketIo>) {
        let wanted = self.flag.load(Ordering::Relaxed);
        if wanted != self.now {
            emulator.swap_models(&mut self.spare.0, &mut self.spare.1);
            self.now = wanted;
        }
    }
}

/// The emulator loop: a step on the elapsed time, the frames sent, then a
/// wait on both sockets until a frame arrives or the next queued one is due.
fn serve(
    mut emulator: Emulator<AfPacketIo, AfPacketIo>,
    sides: &(String, String),
    stop: &AtomicBool,
    mut switched: Switched<'_>,
) -> Result<LinkReport, LiveError> {
    // Names for errors, made once: the loop allocates nothing per round.
    let either = format!("{} or {}", sides.0, sides.1);
    let both = format!("{} and {}", sides.0, sides.1);
    let run_error = |interface: &str, source| LiveError::Run {
        interface: interface.to_owned(),
        source,
    };
    set_timer_slack(TIMER_SLACK);
    let started = Instant::now();
    let cpu_at_start = thread_cpu();
    while !stop.load(Ordering::Relaxed) {
        switched.follow(&mut emulator);
        let step = emulator
            .step(started.elapsed())
            .map_err(|e| run_error(&either, e))?;
        emulator.a.flush().map_err(|e| run_error(&sides.0, e))?;
        emulator.b.flush().map_err(|e| run_error(&sides.1, e))?;
        if step.more_waiting {
            continue;
        }
        let now = started.elapsed();
        let wait = match emulator.next_due() {
            // Nothing waits: wake for the next arrival.
            None => IDLE_WAIT,
            // Far off, and frames arriving while others wait (a busy
            // link): take this round's arrivals together.
            Some(due) if due > now + ROUND && step.received > 0 => {
                std::thread::sleep(ROUND);
                continue;
            }
            // Far off on a quiet link: wake for an arrival or when it falls due.
            Some(due) if due > now + ROUND => due.saturating_sub(now).min(IDLE_WAIT),
            // Due within a round: sleep until the round ends, ROUND after it
            // fell due, and send all then due in one kick.
            Some(due) => match (due + ROUND).checked_sub(now) {
                Some(left) if !left.is_zero() => {
                    std::thread::sleep(left);
                    continue;
                }
                // Overdue and nothing sent: the other side's TX ring is full.
                _ if step.sent == 0 => TX_FULL_WAIT,
                _ => continue,
            },
        };
        wait_readable(&emulator.a, &emulator.b, wait).map_err(|e| run_error(&both, e))?;
    }
    let (a_to_b, b_to_a) = emulator.counters();
    Ok(LinkReport {
        a_to_b,
        b_to_a,
        cpu: thread_cpu().saturating_sub(cpu_at_start),
    })
}

/// Asks the kernel to end the calling thread's timed waits within `slack`
/// of their time (best effort: a refusal leaves the default, 50 us).
fn set_timer_slack(slack: Duration) {
    let nanos = libc::c_ulong::try_from(slack.as_nanos()).unwrap_or(libc::c_ulong::MAX);
    // SAFETY: PR_SET_TIMERSLACK takes one integer and changes only the
    // calling thread's timer slack; no memory is passed.
    let _ = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, nanos, 0, 0, 0) };
}

/// CPU time of the calling thread so far.
fn thread_cpu() -> Duration {
    let mut spec = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a live timespec for the kernel to fill; the clock id is valid.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &raw mut spec) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(spec.tv_sec).unwrap_or(0),
        u32::try_from(spec.tv_nsec).unwrap_or(0),
    )
}

/// Waits until either socket has a frame or `timeout` passes.
fn wait_readable(a: &AfPacketIo, b: &AfPacketIo, timeout: Duration) -> io::Result<()> {
    let mut fds = [a.as_raw_fd(), b.as_raw_fd()].map(|fd| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    });
    let spec = libc::timespec {
        tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
        // Below 10^9, so it fits any c_long.
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: two live pollfds and a live timespec; no signal mask change.
    let rc = unsafe { libc::ppoll(fds.as_mut_ptr(), 2, &raw const spec, std::ptr::null()) };
    if rc < 0 {
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> NetemSpec {
        NetemSpec::parse("delay 1ms").unwrap()
    }

    #[test]
    fn an_unknown_interface_is_an_error_naming_it() {
        let error =
            EmulatedLink::start(None, "rrne-none0", "rrne-none1", &spec(), &spec(), 1).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("\"rrne-none0\""), "{text}");
    }

    #[test]
    fn an_unknown_namespace_is_an_error_naming_it() {
        let error =
            EmulatedLink::start(Some("rrne-nons"), "a", "b", &spec(), &spec(), 1).unwrap_err();
        assert!(
            matches!(&error, LiveError::Namespace { name, .. } if name == "rrne-nons"),
            "{error}"
        );
        let error = prepare_far_end(Some("rrne-nons"), "eth0").unwrap_err();
        assert!(error.to_string().contains("\"rrne-nons\""), "{error}");
    }

    #[test]
    fn the_two_directions_draw_from_different_seeds() {
        let (ab, ba) = direction_seeds(5);
        assert_eq!(ab, 5);
        assert_ne!(ab, ba);
        assert_eq!(direction_seeds(5), (ab, ba), "derived, not random");
    }
}
