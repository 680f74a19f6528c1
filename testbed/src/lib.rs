//! Rusty Rail's testbed: the tools that prove the balancer works.
//!
//! The `testbed` binary is a thin dispatcher over this library (see [`cli`]), so the
//! experiment runner can call the same code in-process.
//!
//! - [`mconnect`]: the many-connections tester (server and client), compatible with
//!   Nordix mconnect's options and output, and able to see moved and broken flows.
//! - [`lab`]: network labs in namespaces (`testbed run`, `cleanup`, `status`).

pub mod cli;
pub mod lab;
pub mod mconnect;
