//! The backend set and how its changes reach the workers: backends keyed by
//! address with weight, drain flag, health and next-hop MAC, held in stable
//! slots with generations, published as immutable forwarding tables.

mod backend;
mod error;
mod health_state;
mod publisher;
mod services;
mod set;
mod slots;

pub use backend::{Backend, MAX_WEIGHT};
pub use error::BackendError;
pub use health_state::{HealthState, Transition};
pub use publisher::{Publisher, TableSettings};
pub use services::{NamedServices, ServiceEntry};
pub use set::BackendSet;
pub use slots::Slots;
