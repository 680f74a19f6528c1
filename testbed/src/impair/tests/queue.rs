//! What netem's enqueue does besides delay and loss, and in which order:
//! duplicate (and its meeting with loss), corrupt, reorder with and
//! without gap, rate with netem's packet overhead and cell size, limit.

use std::time::Duration;

use super::stats::{binomial, Chain};
use super::{link, run, SPACING};
use crate::impair::link::{DropCause, Fate, Offer};

const N: usize = 100_000;

fn sent_at(fate: Fate) -> Option<Duration> {
    match fate {
        Fate::Sent { at, .. } => Some(at),
        Fate::Dropped(_) => None,
    }
}

/// Copies of each packet that leave.
fn copies(offer: &Offer) -> usize {
    offer.sent().count()
}

#[test]
fn duplicate_sends_a_second_copy_with_the_given_probability() {
    let duplicated = run("duplicate 10%", 1, N)
        .iter()
        .filter(|o| copies(o) == 2)
        .count();
    assert!(
        binomial(N, 0.1).contains(&(duplicated as f64)),
        "{duplicated}"
    );
}

#[test]
fn a_duplicated_packet_survives_its_loss_once_and_its_duplicate_meets_loss_again() {
    // netem counts copies: duplicate +1, loss -1, dropped at 0. So with
    // duplicate D and loss L: none leaves with (1-D) L, two with D (1-L)^2
    // (the duplicate is enqueued again and meets the loss on its own).
    let (d, l) = (0.5, 0.5);
    let offers = run("duplicate 50% loss 50%", 2, N);
    let count = |k: usize| offers.iter().filter(|o| copies(o) == k).count() as f64;
    let none = (1.0 - d) * l;
    let two = d * (1.0 - l) * (1.0 - l);
    assert!(
        binomial(N, none).contains(&count(0)),
        "{} with none",
        count(0)
    );
    assert!(
        binomial(N, two).contains(&count(2)),
        "{} with two",
        count(2)
    );
    assert!(
        binomial(N, 1.0 - none - two).contains(&count(1)),
        "{} with one",
        count(1)
    );
}

#[test]
fn a_duplicate_has_a_delay_of_its_own() {
    let offers = run("delay 10ms 5ms duplicate 100%", 3, 1000);
    let apart = offers
        .iter()
        .filter(|o| sent_at(o.packet) != o.duplicate.and_then(sent_at))
        .count();
    assert!(
        apart > 990,
        "{apart} of 1000 duplicates leave at another time"
    );
}

#[test]
fn corrupt_flips_one_bit_of_a_uniformly_drawn_byte() {
    let offers = run("corrupt 20%", 4, N);
    let flips: Vec<(usize, u8)> = offers
        .iter()
        .filter_map(|o| match o.packet {
            Fate::Sent { corrupt, .. } => corrupt,
            Fate::Dropped(_) => None,
        })
        .collect();
    assert!(
        binomial(N, 0.2).contains(&(flips.len() as f64)),
        "{}",
        flips.len()
    );
    assert!(flips.iter().all(|(byte, bit)| *byte < 100 && *bit < 8));
    // Byte positions uniform over 0..100: mean 49.5, deviation 28.9.
    let m = flips.len() as f64;
    let mean = flips.iter().map(|(byte, _)| *byte as f64).sum::<f64>() / m;
    assert!(
        (mean - 49.5).abs() < 3.29 * 28.87 / m.sqrt(),
        "mean byte {mean}"
    );
    let mean_bit = flips.iter().map(|(_, bit)| f64::from(*bit)).sum::<f64>() / m;
    assert!(
        (mean_bit - 3.5).abs() < 3.29 * 2.29 / m.sqrt(),
        "mean bit {mean_bit}"
    );
}

/// Whether each packet left at once (reordered) rather than after its delay.
fn reordered(spec: &str, seed: u64, n: usize) -> Vec<bool> {
    run(spec, seed, n)
        .iter()
        .enumerate()
        .map(|(i, o)| sent_at(o.packet) == Some(SPACING * i as u32))
        .collect()
}

#[test]
fn reorder_sends_a_share_of_packets_at_once_ahead_of_the_delayed_ones() {
    let at_once = reordered("delay 10ms reorder 25%", 5, N);
    let count = at_once.iter().filter(|r| **r).count() as f64;
    assert!(binomial(N, 0.25).contains(&count), "{count}");
    // Sent at once, 1 ms after a packet that waits 10 ms: it overtakes it.
    let first = at_once.iter().skip(1).position(|r| *r).unwrap() + 1;
    let offers = run("delay 10ms reorder 25%", 5, first + 1);
    assert!(sent_at(offers[first].packet) < sent_at(offers[first - 1].packet));
}

#[test]
fn reorder_with_a_gap_draws_only_after_gap_minus_one_delayed_packets() {
    // netem's counter: after a reordered packet, gap - 1 are delayed, then
    // each is reordered with P. A chain over the counter (0: this packet
    // was reordered; 4: drawing); the share reordered is 1 / (4 + 1/P) =
    // 1/8, where "every 5th packet with P" would give 1/20.
    let p = 0.25;
    let mut rows = vec![vec![0.0; 5]; 5];
    for (c, row) in rows.iter_mut().enumerate().take(4) {
        row[c + 1] = 1.0;
    }
    rows[4][0] = p;
    rows[4][4] = 1.0 - p;
    let chain = Chain { p: rows };
    let once = [1.0, 0.0, 0.0, 0.0, 0.0];
    assert!((chain.mean(&once) - 0.125).abs() < 1e-12);
    let count = reordered("delay 10ms reorder 25% gap 5", 6, N)
        .iter()
        .filter(|r| **r)
        .count();
    assert!(
        chain.interval(&once, N).contains(&(count as f64)),
        "{count}"
    );
}

#[test]
fn reorder_gap_with_certainty_reorders_every_gap_th_packet() {
    let at_once = reordered("delay 10ms reorder 100% gap 5", 9, 1000);
    for (i, once) in at_once.iter().enumerate() {
        assert_eq!(*once, i % 5 == 4, "packet {i}");
    }
}

#[test]
fn jitter_reorders_unless_a_rate_holds_the_order() {
    let departures = |spec: &str| -> Vec<Duration> {
        run(spec, 10, 10_000)
            .iter()
            .filter_map(|o| sent_at(o.packet))
            .collect()
    };
    let overtaken = departures("delay 10ms 5ms")
        .windows(2)
        .filter(|w| w[1] < w[0])
        .count();
    assert!(overtaken > 1000, "{overtaken} overtaken");
    let ordered = departures("delay 10ms 5ms rate 100mbit");
    assert!(ordered.windows(2).all(|w| w[0] <= w[1]));
}

/// Departures of `n` packets of `len` bytes offered all at once.
fn burst(spec: &str, n: usize, len: usize) -> Vec<Fate> {
    let mut l = link(spec, 11);
    (0..n)
        .map(|_| l.offer(Duration::ZERO, len).packet)
        .collect()
}

#[test]
fn rate_sends_packets_back_to_back_at_netem_s_transmission_time() {
    // 1 mbit: 125,000 bytes a second, 8 ns a byte.
    let nanos = |fates: &[Fate]| -> Vec<u128> {
        fates
            .iter()
            .map(|f| sent_at(*f).unwrap().as_nanos())
            .collect()
    };
    // 1000 bytes: 8 ms each.
    assert_eq!(
        nanos(&burst("rate 1mbit", 3, 1000)),
        [8_000_000, 16_000_000, 24_000_000]
    );
    // 100 bytes with 20 of overhead in cells of 48 bytes plus 5: 3 cells,
    // 159 bytes, 1.272 ms each.
    assert_eq!(
        nanos(&burst("rate 1mbit 20 48 5", 2, 100)),
        [1_272_000, 2_544_000]
    );
    // A negative overhead: the Ethernet header not counted, 86 bytes.
    assert_eq!(nanos(&burst("rate 1mbit -14", 1, 100)), [688_000]);
    // With a delay, the packets queued behind the first wait its delay
    // once: netem takes what the queue waits off each one's delay.
    assert_eq!(
        nanos(&burst("delay 10ms rate 1mbit", 3, 1000)),
        [18_000_000, 26_000_000, 34_000_000]
    );
}

#[test]
fn rate_delays_rather_than_drops_until_the_limit_is_reached() {
    let fates = burst("rate 1mbit limit 100", 150, 1000);
    assert!(fates[..100].iter().all(|f| sent_at(*f).is_some()));
    assert!(fates[100..]
        .iter()
        .all(|f| *f == Fate::Dropped(DropCause::Limit)));
}

#[test]
fn the_limit_drops_what_does_not_fit_and_takes_packets_again_once_some_left() {
    let mut l = link("delay 1s limit 1000", 12);
    let fates: Vec<Fate> = (0..2000)
        .map(|_| l.offer(Duration::ZERO, 100).packet)
        .collect();
    let limited = fates
        .iter()
        .filter(|f| **f == Fate::Dropped(DropCause::Limit))
        .count();
    assert_eq!(limited, 1000);
    assert!(sent_at(l.offer(Duration::from_secs(1), 100).packet).is_some());
}
