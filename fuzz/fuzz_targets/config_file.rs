//! Any text as the balancer's `--config` file (read at start, on SIGHUP and
//! on `POST /config/reload`): checked, or refused with every error, each
//! with its line within the file and a message.
#![no_main]

#[path = "../control_inputs.rs"]
mod control_inputs;

use std::sync::OnceLock;

use control::config::file;
use libfuzzer_sys::fuzz_target;

fn known() -> &'static [String] {
    static KNOWN: OnceLock<Vec<String>> = OnceLock::new();
    KNOWN.get_or_init(control_inputs::known_settings)
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match file::parse(&text, known()) {
        Ok(parsed) => {
            for setting in &parsed.settings {
                assert!(known().contains(&setting.env));
            }
        }
        Err(errors) => {
            assert!(!errors.is_empty());
            let lines = text.lines().count() + 1;
            for error in &errors {
                assert!(!error.message.trim().is_empty());
                assert!(error.line <= lines);
            }
        }
    }
});
