//! Any value of any `RR_*` setting, through the clap parsers the flags and
//! the environment use (targets, MACs, durations, health checks, addresses,
//! cores, BGP peers and prefixes, ...): parsed, or an error that says
//! something. The first byte picks the setting, the rest is its value.
#![no_main]

#[path = "../control_inputs.rs"]
mod control_inputs;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn flags() -> &'static [(String, String)] {
    static FLAGS: OnceLock<Vec<(String, String)>> = OnceLock::new();
    FLAGS.get_or_init(control_inputs::value_flags)
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, value)) = data.split_first() else {
        return;
    };
    let (flag, _) = &flags()[usize::from(pick) % flags().len()];
    if let Err(error) = control_inputs::parse_setting(flag, &String::from_utf8_lossy(value)) {
        assert!(!error.trim().is_empty());
    }
});
