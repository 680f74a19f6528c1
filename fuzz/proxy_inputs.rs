//! The fault proxy's JSON bodies through the checks its API runs before it
//! creates or changes anything, shared by `testbed/tests/inputs_never_panic.rs`
//! and the `proxy_bodies` fuzz target (included by path in both). Each
//! function panics when a refusal says nothing, as it would on a panic of
//! the code it calls.

use testbed::proxy::collection::{checked, ProxyInput, ProxyUpdate};
use testbed::proxy::limits::Limits;
use testbed::proxy::toxic::{Toxic, ToxicInput};
use testbed::proxy::toxic_table::ToxicTable;
use testbed::proxy::toxics::TOXIC_TYPES;

/// An error's text, which must say something.
fn says(error: &impl std::fmt::Display) -> String {
    let text = error.to_string();
    assert!(!text.trim().is_empty(), "an error with no text");
    text
}

/// `POST /proxies` up to binding: the body, its fields and limits, then
/// each toxic. Whether it would be created.
pub fn create_proxy(body: &[u8]) -> bool {
    let Ok(input) = serde_json::from_slice::<ProxyInput>(body) else {
        return false;
    };
    if let Err(error) = checked(&input, &Limits::default()) {
        says(&error);
        return false;
    }
    input
        .toxics
        .unwrap_or_default()
        .into_iter()
        .all(|toxic| ToxicTable::validate(toxic).map_err(|e| says(&e)).is_ok())
}

/// `POST /proxies/{p}`: an update's addresses. Whether they are taken.
pub fn update_proxy(body: &[u8]) -> bool {
    let Ok(update) = serde_json::from_slice::<ProxyUpdate>(body) else {
        return false;
    };
    update.check().map_err(|e| says(&e)).is_ok()
}

/// `POST /proxies/{p}/toxics` (a new toxic) and `POST .../toxics/{t}` (the
/// body merged into an existing toxic of every type, which keeps its type).
/// Whether the new toxic is created.
pub fn create_and_update_toxic(body: &[u8]) -> bool {
    let Ok(input) = serde_json::from_slice::<ToxicInput>(body) else {
        return false;
    };
    for type_name in TOXIC_TYPES {
        let defaults = ToxicInput {
            type_name: Some((*type_name).to_owned()),
            ..ToxicInput::default()
        };
        let existing = Toxic::create(defaults, 1).expect("every toxic type has defaults");
        match existing.updated(input.clone()) {
            Ok(updated) => assert_eq!(updated.kind.type_name(), *type_name),
            Err(error) => {
                says(&error);
            }
        }
    }
    Toxic::create(input, 0).map_err(|e| says(&e)).is_ok()
}
