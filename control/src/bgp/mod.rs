//! Scale-out by BGP: several balancers with one seed and one backend list
//! announce the same routes (the VIPs in VIP mode, the GRE address in GRE
//! mode) and routers spread flows over them by ECMP. The BGP speaker is
//! BIRD 2, not one of our own; `rusty_rail` decides when to announce.
//!
//! - [`settings`]: `RR_BGP_*`, off by default.
//! - [`bird_config`]: the configuration of a BIRD `rusty_rail` starts.
//! - [`bird_process`]: that BIRD, private, supervised, restarted.
//! - [`control_socket`]: BIRD's control socket protocol, with timeouts.
//! - [`speaker`]: announces while the balancer is ready, withdraws when it
//!   is not or is drained (SIGTERM, `POST /drain`).
//! - [`status`]: what `GET /bgp` and the metrics show; [`metrics`]: `rr_bgp_*`.

pub mod bird_config;
pub mod bird_process;
pub mod control_socket;
pub mod metrics;
pub mod settings;
pub mod speaker;
pub mod status;

pub use settings::{BgpArgs, BgpSettings, Route};
pub use speaker::{BgpHandle, BgpSpeaker};
pub use status::BgpStatus;
