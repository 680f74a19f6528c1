//! Any text as a partition spec (`testbed partition`, an experiment's
//! partition fault): parsed, printed back to itself, and turned into a
//! grudge over labs of 0 to 7 nodes, or refused with a reason.
#![no_main]

use libfuzzer_sys::fuzz_target;
use testbed::partition::grudge::Grudge;
use testbed::partition::spec::PartitionSpec;

fuzz_target!(|data: &[u8]| {
    let Some((&nodes, text)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(text);
    match PartitionSpec::parse(&text) {
        Ok(spec) => {
            assert_eq!(PartitionSpec::parse(&spec.to_string()), Ok(spec.clone()));
            let names: Vec<String> = (0..nodes % 8).map(|i| format!("n{i}")).collect();
            match Grudge::from_spec(&spec, &names, u64::from(nodes)) {
                Ok(grudge) => assert_eq!(grudge.nodes(), names.len()),
                Err(error) => assert!(!error.trim().is_empty()),
            }
        }
        Err(error) => assert!(!error.to_string().trim().is_empty()),
    }
});
