//! The emulator moves frames as the model decides: after the delay and not
//! before, each direction its own, copies for duplicates, one bit flipped
//! for corruption, a full queue counted.

use std::time::Duration;

use dataplane::io::memory::{MemoryIo, MemoryIoConfig};

use crate::impair::{Emulator, ImpairedLink, NetemSpec};

fn memory() -> MemoryIo {
    MemoryIo::new(MemoryIoConfig::default()).unwrap()
}

fn impaired(spec: &str, seed: u64) -> ImpairedLink {
    ImpairedLink::new(&NetemSpec::parse(spec).unwrap(), seed)
}

fn emulator(ab: &str, ba: &str, seed: u64) -> Emulator<MemoryIo, MemoryIo> {
    Emulator::new(
        memory(),
        memory(),
        impaired(ab, seed),
        impaired(ba, seed),
        1000,
    )
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
fn a_direction_without_impairment_passes_frames_at_once() {
    let mut e = Emulator::new(
        memory(),
        memory(),
        impaired("delay 50ms", 1),
        ImpairedLink::new(&NetemSpec::default(), 1),
        1000,
    );
    assert!(e.b.push_from_wire(&frame(7)));
    e.step(Duration::ZERO).unwrap();
    assert_eq!(e.a.pop_wire_tx(), Some(frame(7)));
}

#[test]
fn the_emulator_applies_exactly_the_model_s_fates() {
    let spec = "delay 5ms 2ms loss gemodel 5% 30% duplicate 5% corrupt 5%";
    let mut e = emulator(spec, "delay 1ms", 9);
    let mut model = impaired(spec, 9);
    let mut expected = 0;
    for n in 0..500u16 {
        let now = Duration::from_millis(u64::from(n));
        assert!(e.a.push_from_wire(&frame(n)));
        e.step(now).unwrap();
        expected += model.offer(now, 60).sent().count();
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
fn a_corrupted_frame_differs_from_the_one_sent_in_exactly_one_bit() {
    const FRAMES: u16 = 2000;
    let mut e = emulator("corrupt 20%", "delay 1ms", 3);
    let sent: Vec<Vec<u8>> = (0..FRAMES)
        .map(|n| (0..100).map(|i| (n as usize * 31 + i * 7) as u8).collect())
        .collect();
    let mut received = Vec::new();
    for (n, bytes) in sent.iter().enumerate() {
        assert!(e.a.push_from_wire(bytes));
        e.step(Duration::from_millis(n as u64)).unwrap();
        e.b.drain_wire_tx(|bytes| received.push(bytes.to_vec()));
    }
    assert_eq!(received.len(), sent.len());
    let mut corrupted = 0;
    for (got, want) in received.iter().zip(&sent) {
        let bits: u32 = got
            .iter()
            .zip(want)
            .map(|(g, w)| (g ^ w).count_ones())
            .sum();
        assert!(bits <= 1, "{bits} bits flipped");
        corrupted += bits;
    }
    assert_eq!(u64::from(corrupted), e.counters().0.corrupted);
    let interval = super::stats::binomial(FRAMES.into(), 0.2);
    assert!(interval.contains(&f64::from(corrupted)), "{corrupted}");
}

#[test]
fn a_step_sends_at_most_a_batch_each_way_and_says_more_is_waiting() {
    // 100 frames falling due at once leave over four steps, a kick of 32
    // at most: between kicks the receive rings are served.
    let mut e = emulator("delay 1ms", "delay 1ms", 2);
    for n in 0..100 {
        assert!(e.a.push_from_wire(&frame(n)));
    }
    let mut steps = Vec::new();
    for _ in 0..4 {
        let step = e.step(Duration::ZERO).unwrap();
        steps.push((step.received, step.more_waiting));
    }
    assert_eq!(steps, [(32, true), (32, true), (32, true), (4, false)]);
    let mut sent = Vec::new();
    for _ in 0..4 {
        let step = e.step(Duration::from_millis(1)).unwrap();
        sent.push((step.sent, step.more_waiting));
    }
    assert_eq!(sent, [(32, true), (32, true), (32, true), (4, false)]);
    assert_eq!(e.b.wire_tx_len(), 100);
}

#[test]
fn a_full_queue_drops_and_counts_instead_of_growing() {
    let mut e = Emulator::new(
        memory(),
        memory(),
        impaired("delay 1s", 1),
        impaired("delay 1s", 1),
        4,
    );
    for n in 0..10 {
        assert!(e.a.push_from_wire(&frame(n)));
    }
    e.step(Duration::ZERO).unwrap();
    assert_eq!(e.counters().0.limited, 6);
    e.step(Duration::from_secs(1)).unwrap();
    assert_eq!(e.b.wire_tx_len(), 4);
}
