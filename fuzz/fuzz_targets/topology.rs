//! Any text as a lab topology file (`testbed up FILE`): planned, or refused
//! pointing at the field at fault. A plan that is accepted also yields its
//! link emulators' specs, which must parse (the planner checked them).
#![no_main]

use libfuzzer_sys::fuzz_target;
use testbed::lab::topology::plan::TopologyPlan;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match TopologyPlan::from_toml(&text, None) {
        Ok(plan) => {
            let _ = plan.emulated_links();
        }
        Err(error) => assert!(!error.to_string().trim().is_empty()),
    }
});
