//! Any bytes as the body of the balancer API's changes, through the real
//! router: `POST /backends`, `PATCH /backends/{ip}`, `POST /services` and
//! `POST /services/{name}/backends`. The answer is a 2xx, or a 4xx whose
//! JSON `error` says something; never a 5xx, and the API still answers
//! afterwards. The first byte picks the route, the rest is the body.
#![no_main]

#[path = "../control_inputs.rs"]
mod control_inputs;

use std::sync::OnceLock;

use axum::http::StatusCode;
use control_inputs::{fault_in_answer, fresh_api, send};
use libfuzzer_sys::fuzz_target;

const ROUTES: [(&str, &str); 4] = [
    ("POST", "/backends"),
    ("PATCH", "/backends/10.1.0.1"),
    ("POST", "/services/web/backends"),
    ("POST", "/services"),
];

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let (method, path) = ROUTES[usize::from(pick) % ROUTES.len()];
    runtime().block_on(async {
        let api = fresh_api().await;
        let (status, answer) = send(&api, method, path, body.to_vec()).await;
        assert_eq!(fault_in_answer(status, &answer), None);
        let (status, _) = send(&api, "GET", "/services", Vec::new()).await;
        assert_eq!(status, StatusCode::OK);
    });
});
