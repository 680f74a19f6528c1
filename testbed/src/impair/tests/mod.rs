//! The model against netem's definitions (`net/sched/sch_netem.c` and the
//! iproute2 programs that build its tables), statistically, with seeded
//! runs and 99.9% intervals computed from the definitions: a wrong model
//! fails them, and the same seed always gives the same verdict. Sized to
//! take a few seconds in all.
//!
//! - [`stats`]: the intervals (binomial, Markov chains, Kolmogorov-Smirnov).
//! - [`delay`]: jitter of each distribution, with correlation.
//! - [`loss`]: `loss random` with correlation, `loss state`, `loss gemodel`.
//! - [`queue`]: duplicate, corrupt, reorder with and without gap, rate with
//!   overheads and cells, limit, and their order.
//! - [`emulator`]: the emulator moves frames as the model decides.

mod delay;
mod emulator;
mod loss;
mod queue;
mod stats;

use std::time::Duration;

use super::{ImpairedLink, NetemSpec, Offer};

/// Packets are offered this far apart unless a test says otherwise.
const SPACING: Duration = Duration::from_millis(1);

fn link(spec: &str, seed: u64) -> ImpairedLink {
    ImpairedLink::new(&NetemSpec::parse(spec).unwrap(), seed)
}

/// What happens to `n` packets of 100 bytes offered [`SPACING`] apart.
fn run(spec: &str, seed: u64, n: usize) -> Vec<Offer> {
    let mut l = link(spec, seed);
    (0..n).map(|i| l.offer(SPACING * i as u32, 100)).collect()
}

#[test]
fn the_same_seed_replays_the_same_fates_and_another_seed_does_not() {
    let spec = "delay 20ms 5ms 25% loss gemodel 2% 20% duplicate 1% corrupt 1% reorder 10% 30%";
    assert_eq!(run(spec, 42, 10_000), run(spec, 42, 10_000));
    assert_ne!(run(spec, 42, 10_000), run(spec, 43, 10_000));
    // A seed in the spec wins over the link's.
    assert_eq!(
        run(&format!("{spec} seed 5"), 1, 1000),
        run(&format!("{spec} seed 5"), 2, 1000)
    );
}
