//! The model against netem's definitions, statistically, with bounds that
//! a broken model cannot meet by accident (99.9% intervals, or exact).

use std::time::Duration;

use super::{DropCause, Fate, ImpairedLink, NetemSpec};

const N: usize = 100_000;

fn link(spec: &str, seed: u64) -> ImpairedLink {
    ImpairedLink::new(&NetemSpec::parse(spec).unwrap(), seed)
}

/// Fates of `n` packets of 100 bytes offered 1 ms apart.
fn run(spec: &str, seed: u64, n: usize) -> Vec<Fate> {
    let mut l = link(spec, seed);
    (0..n)
        .map(|i| l.offer(Duration::from_millis(i as u64), 100))
        .collect()
}

/// The 99.9% normal-approximation interval of a binomial count.
fn binomial_99_9(n: usize, p: f64) -> std::ops::RangeInclusive<f64> {
    let mean = n as f64 * p;
    let half = 3.29 * (n as f64 * p * (1.0 - p)).sqrt();
    (mean - half)..=(mean + half)
}

fn delays(fates: &[Fate]) -> Vec<f64> {
    fates
        .iter()
        .enumerate()
        .filter_map(|(i, f)| match f {
            Fate::Delivered { at, .. } => Some(at.as_secs_f64() - i as f64 * 1e-3),
            Fate::Dropped(_) => None,
        })
        .collect()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn delay_means_are_within_a_millisecond_of_the_asked_mean() {
    for (spec, want) in [
        ("delay 10ms 5ms", 0.010),
        ("delay 100ms 20ms distribution normal", 0.100),
        ("delay 100ms 10ms distribution pareto", 0.100),
        ("delay 100ms 10ms 25% distribution paretonormal", 0.100),
        ("delay 10ms", 0.010),
    ] {
        let d = delays(&run(spec, 1, N));
        let m = mean(&d);
        assert!((m - want).abs() < 0.001, "{spec}: mean {m}");
        assert!(d.iter().all(|x| *x >= 0.0), "{spec}: negative delay");
    }
}

#[test]
fn uniform_jitter_stays_within_its_bounds_and_normal_jitter_has_its_spread() {
    let d = delays(&run("delay 10ms 5ms", 2, N));
    assert!(d.iter().all(|x| (0.005 - 1e-9..=0.015 + 1e-9).contains(x)));
    let d = delays(&run("delay 100ms 20ms distribution normal", 3, N));
    let m = mean(&d);
    let sd = (d.iter().map(|x| (x - m).powi(2)).sum::<f64>() / d.len() as f64).sqrt();
    assert!((sd - 0.020).abs() < 0.001, "sd {sd}");
}

#[test]
fn random_loss_of_1_and_10_percent_falls_in_the_binomial_interval() {
    for p in [0.01, 0.10] {
        let spec = format!("loss random {}%", p * 100.0);
        let lost = run(&spec, 4, N)
            .iter()
            .filter(|f| **f == Fate::Dropped(DropCause::Loss))
            .count();
        assert!(
            binomial_99_9(N, p).contains(&(lost as f64)),
            "{spec}: {lost} lost"
        );
    }
}

#[test]
fn gilbert_elliott_bursts_have_the_model_s_mean_length() {
    // Good->bad 1%, bad->good 10%, everything lost in bad, nothing in good:
    // burst lengths are geometric with mean 1/r = 10 packets.
    let fates = run("loss gemodel 1% 10% 100% 0%", 5, 1_000_000);
    let mut bursts = Vec::new();
    let mut current = 0;
    for f in &fates {
        if matches!(f, Fate::Dropped(DropCause::Loss)) {
            current += 1;
        } else if current > 0 {
            bursts.push(f64::from(current));
            current = 0;
        }
    }
    let m = mean(&bursts);
    // ~9000 bursts: the mean's standard error is about 0.1.
    assert!(
        (m - 10.0).abs() < 0.5,
        "mean burst {m} over {} bursts",
        bursts.len()
    );
}

#[test]
fn the_four_state_model_loses_in_bursts_at_its_stationary_rate() {
    // p13 1%, p31 10%, p32 0, p23 100%... netem defaults for the rest: with
    // p32 = 0 and p14 = 0 the model is Gilbert's; loss rate p13/(p13+p31).
    let fates = run("loss state 1% 10% 0% 0% 0%", 6, 1_000_000);
    let lost = fates
        .iter()
        .filter(|f| matches!(f, Fate::Dropped(_)))
        .count() as f64
        / 1e6;
    let want = 0.01 / (0.01 + 0.10);
    assert!((lost - want).abs() < 0.01, "loss rate {lost}, model {want}");
}

#[test]
fn rate_serialises_packets_within_5_percent() {
    let mut l = link("rate 10mbit limit 100000", 7);
    let mut last = Duration::ZERO;
    for _ in 0..10_000 {
        if let Fate::Delivered { at, .. } = l.offer(Duration::ZERO, 1250) {
            last = at;
        }
    }
    // 10,000 x 1250 bytes at 10 Mbit/s: 10 s.
    assert!(
        (last.as_secs_f64() - 10.0).abs() < 0.5,
        "last departure {last:?}"
    );
}

#[test]
fn reorder_and_duplicate_counts_fall_in_their_intervals() {
    let fates = run("delay 10ms reorder 25% duplicate 5%", 8, N);
    let (mut reordered, mut duplicated) = (0usize, 0usize);
    for (i, f) in fates.iter().enumerate() {
        if let Fate::Delivered { at, duplicate, .. } = f {
            if *at == Duration::from_millis(i as u64) {
                reordered += 1;
            }
            duplicated += usize::from(*duplicate);
        }
    }
    assert!(
        binomial_99_9(N, 0.25).contains(&(reordered as f64)),
        "{reordered}"
    );
    assert!(
        binomial_99_9(N, 0.05).contains(&(duplicated as f64)),
        "{duplicated}"
    );
}

#[test]
fn reorder_gap_makes_only_every_nth_packet_a_candidate() {
    let fates = run("delay 10ms reorder 100% gap 5", 9, 1000);
    for (i, f) in fates.iter().enumerate() {
        let Fate::Delivered { at, .. } = f else {
            panic!("nothing is lost")
        };
        let immediate = *at == Duration::from_millis(i as u64);
        assert_eq!(immediate, i % 5 == 4, "packet {i}");
    }
}

#[test]
fn corruption_flips_a_bit_inside_the_packet() {
    let mut l = link("corrupt 50%", 10);
    let mut seen = 0;
    for i in 0..1000 {
        if let Fate::Delivered {
            corrupt: Some((byte, bit)),
            ..
        } = l.offer(Duration::from_millis(i), 64)
        {
            assert!(byte < 64 && bit < 8);
            seen += 1;
        }
    }
    assert!(binomial_99_9(1000, 0.5).contains(&f64::from(seen)));
}

#[test]
fn the_limit_drops_what_does_not_fit_in_the_link() {
    let fates: Vec<_> = {
        let mut l = link("delay 1s limit 1000", 11);
        (0..2000).map(|_| l.offer(Duration::ZERO, 100)).collect()
    };
    assert_eq!(
        fates
            .iter()
            .filter(|f| **f == Fate::Dropped(DropCause::Limit))
            .count(),
        1000
    );
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

mod emulator {
    use std::time::Duration;

    use dataplane::io::memory::{MemoryIo, MemoryIoConfig};

    use crate::impair::{Emulator, Fate, ImpairedLink, NetemSpec};

    fn memory() -> MemoryIo {
        MemoryIo::new(MemoryIoConfig::default()).unwrap()
    }

    fn emulator(ab: &str, ba: &str, seed: u64) -> Emulator<MemoryIo, MemoryIo> {
        let link = |spec: &str| ImpairedLink::new(&NetemSpec::parse(spec).unwrap(), seed);
        Emulator::new(memory(), memory(), link(ab), link(ba), 1000)
    }

    fn frame(n: u16) -> Vec<u8> {
        let mut f = vec![0u8; 60];
        f[..2].copy_from_slice(&n.to_be_bytes());
        f
    }

    #[test]
    fn frames_leave_the_other_side_after_the_delay_and_not_before() {
        let mut e = emulator("delay 50ms", "delay 10ms", 1);
        assert!(e.a.push_from_wire(&frame(1)));
        assert!(e.b.push_from_wire(&frame(2)));
        e.step(Duration::ZERO).unwrap();
        e.step(Duration::from_millis(49)).unwrap();
        assert_eq!(e.b.wire_tx_len(), 0, "not before 50 ms");
        assert_eq!(
            e.a.pop_wire_tx(),
            Some(frame(2)),
            "the other direction has its own 10 ms"
        );
        assert_eq!(e.next_due(), Some(Duration::from_millis(50)));
        e.step(Duration::from_millis(50)).unwrap();
        assert_eq!(e.b.pop_wire_tx(), Some(frame(1)));
    }

    #[test]
    fn the_emulator_applies_exactly_the_model_s_fates() {
        let spec = "delay 5ms 2ms loss gemodel 5% 30% duplicate 5% corrupt 5%";
        let mut e = emulator(spec, "delay 1ms", 9);
        let mut model = ImpairedLink::new(&NetemSpec::parse(spec).unwrap(), 9);
        let mut expected = 0;
        for n in 0..500u16 {
            let now = Duration::from_millis(u64::from(n));
            assert!(e.a.push_from_wire(&frame(n)));
            e.step(now).unwrap();
            match model.offer(now, 60) {
                Fate::Dropped(_) => {}
                Fate::Delivered { duplicate, .. } => expected += 1 + usize::from(duplicate),
            }
        }
        e.step(Duration::from_secs(10)).unwrap();
        let mut arrived = 0;
        e.b.drain_wire_tx(|_| arrived += 1);
        assert_eq!(arrived, expected);
        let (ab, _) = e.counters();
        assert_eq!(ab.received, 500);
        assert_eq!(ab.sent as usize, expected);
        assert!(
            ab.lost > 0 && ab.duplicated > 0 && ab.corrupted > 0,
            "{ab:?}"
        );
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_growing() {
        let link = |spec: &str| ImpairedLink::new(&NetemSpec::parse(spec).unwrap(), 1);
        let mut e = Emulator::new(memory(), memory(), link("delay 1s"), link("delay 1s"), 4);
        for n in 0..10 {
            assert!(e.a.push_from_wire(&frame(n)));
        }
        e.step(Duration::ZERO).unwrap();
        assert_eq!(e.counters().0.limited, 6);
        e.step(Duration::from_secs(1)).unwrap();
        assert_eq!(e.b.wire_tx_len(), 4);
    }
}
