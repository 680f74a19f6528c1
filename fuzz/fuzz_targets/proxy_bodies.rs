//! Any bytes as the fault proxy's JSON bodies, through the checks its API
//! runs before it creates anything: `POST /proxies` (fields, addresses,
//! limits, every toxic), `POST /proxies/{p}` (an update's addresses),
//! `POST /proxies/{p}/toxics` (a toxic) and `POST .../toxics/{t}` (an update
//! merged into an existing toxic of every type). A refusal must say
//! something.
#![no_main]

#[path = "../proxy_inputs.rs"]
mod proxy_inputs;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    proxy_inputs::create_proxy(data);
    proxy_inputs::update_proxy(data);
    proxy_inputs::create_and_update_toxic(data);
});
