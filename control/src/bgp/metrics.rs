//! The BGP speaker in `GET /metrics`: whether the routes are announced,
//! each BGP session's state, and how often things changed.

use prometheus_client::registry::Registry;

use super::status::BgpStatus;
use crate::metrics::{counter, gauge, Labels};

/// Registers the `rr_bgp_*` metrics of `status`.
pub fn register(r: &mut Registry, status: &BgpStatus) {
    let one = |v: u64| [(Labels::new(), v)];
    gauge(
        r,
        "rr_bgp",
        "announced",
        "1 while the balancer's routes are announced (ready and not drained)",
        one(status.announced.into()),
    );
    gauge(
        r,
        "rr_bgp",
        "draining",
        "1 while the routes are withdrawn on request (POST /drain, SIGTERM)",
        one(status.draining.into()),
    );
    counter(
        r,
        "rr_bgp",
        "changes",
        "Announcements and withdrawals",
        one(status.changes),
    );
    counter(
        r,
        "rr_bgp",
        "bird_starts",
        "Times rusty_rail started its BIRD (restarts included)",
        one(status.bird_starts),
    );
    gauge(
        r,
        "rr_bgp",
        "last_change_timestamp_seconds",
        "When the routes were last announced or withdrawn (Unix time; 0: never)",
        one(status
            .last_change
            .as_ref()
            .map_or(0, |c| c.at_unix_ms / 1000)),
    );
    gauge(
        r,
        "rr_bgp",
        "session_established",
        "1 while the BGP session is established",
        status.sessions.iter().map(|s| {
            (
                vec![("session", s.name.clone())],
                s.info.starts_with("Established").into(),
            )
        }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bgp::control_socket::ProtocolRow;

    #[test]
    fn the_metrics_show_the_announcement_and_each_session() {
        let mut status = BgpStatus {
            sessions: vec![
                ProtocolRow {
                    name: "peer1".into(),
                    proto: "BGP".into(),
                    state: "up".into(),
                    since: "17:57:05.643".into(),
                    info: "Established".into(),
                },
                ProtocolRow {
                    name: "peer2".into(),
                    proto: "BGP".into(),
                    state: "start".into(),
                    since: "17:57:05.643".into(),
                    info: "Active Socket: Connection refused".into(),
                },
            ],
            ..BgpStatus::default()
        };
        status.record(true, "ready".into());
        let mut r = Registry::default();
        register(&mut r, &status);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &r).unwrap();
        for line in [
            "rr_bgp_announced 1",
            "rr_bgp_draining 0",
            "rr_bgp_changes_total 1",
            "rr_bgp_session_established{session=\"peer1\"} 1",
            "rr_bgp_session_established{session=\"peer2\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
    }
}
