//! `AfXdpIo`: XDP sockets (to be completed).

pub mod asm;
pub mod bpf;
pub mod program;
