//! Any text as a netem spec (`testbed run --netem`, a topology's `netem`):
//! parsed, or refused naming the word at fault. A spec that parses drives a
//! link model through packets of every size, so no accepted spec (a huge
//! rate, a zero limit, an extreme correlation) can panic the emulator.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use testbed::impair::{ImpairedLink, NetemSpec};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match NetemSpec::parse(&text) {
        Ok(spec) => {
            let mut link = ImpairedLink::new(&spec, 1);
            for (i, byte) in data.iter().take(64).enumerate() {
                let now = Duration::from_micros(u64::from(*byte) * 100 * i as u64);
                let _ = link.offer(now, usize::from(*byte) * 60);
            }
        }
        Err(error) => {
            assert!(!error.to_string().trim().is_empty());
            assert!(!error.expected.is_empty());
        }
    }
});
