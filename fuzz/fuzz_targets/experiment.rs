//! Any text as an experiment file (`testbed experiment run FILE`): parsed
//! and checked, or refused naming the field.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use testbed::experiment::file::ExperimentFile;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // Topology files are read relative to a folder that does not exist, so
    // only an absolute `file = "/..."` reaches the disk: one naming a device
    // that never ends (/dev/zero) is the operator's own choice, not a fault
    // of the parser, and would only stall the fuzzer.
    if text.contains("file") {
        return;
    }
    if let Err(error) = ExperimentFile::parse_in(&text, Path::new("/nonexistent/rusty-rail-fuzz")) {
        assert!(!error.to_string().trim().is_empty());
    }
});
