//! The configuration of the BIRD `rusty_rail` starts, written from the
//! settings.
//!
//! The routes to announce sit in one static protocol that starts
//! `disabled`: nothing is announced until the balancer is ready and the
//! supervisor enables it. Withdrawing is disabling it again: BIRD removes
//! its routes from the table and every BGP session sends the withdrawal.
//! (The alternative, toggling each BGP protocol's export, would drop the
//! sessions' other state and take one command per peer.) The static
//! routes are `blackhole` only inside BIRD: there is no kernel protocol, so
//! the balancer's own routing table is never touched.

use std::fmt::Write as _;

use super::settings::{OwnBird, Route};

/// BIRD's configuration for `own`, announcing `routes` through the static
/// protocol `protocol`, which starts disabled.
pub fn render(own: &OwnBird, routes: &[Route], protocol: &str) -> String {
    render_enabled(own, routes, protocol, false)
}

/// [`render`] with the static protocol enabled or not: a reconfiguration
/// must say what the running protocol is, because BIRD restarts a
/// protocol whose `disabled` differs from its state, withdrawing its
/// routes (or announcing them) for a moment.
pub fn render_enabled(own: &OwnBird, routes: &[Route], protocol: &str, enabled: bool) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "# Written by rusty_rail: its routes are announced while it is ready."
    );
    let _ = writeln!(
        text,
        "log stderr {{ info, remote, warning, error, auth, fatal, bug }};"
    );
    let _ = writeln!(text, "router id {};", own.router_id);
    let _ = writeln!(text, "protocol device {{}}");
    if own.bfd {
        // 100 ms, three missed: a silent peer is down after about 0.3 s.
        let _ = writeln!(
            text,
            "protocol bfd {{ interface \"*\" {{ min rx interval 100 ms; min tx interval 100 ms; multiplier 3; }}; }}"
        );
    }
    let _ = writeln!(text, "protocol static {protocol} {{");
    if !enabled {
        let _ = writeln!(text, "  disabled;");
    }
    let _ = writeln!(text, "  ipv4;");
    for route in routes {
        let _ = writeln!(text, "  route {route} blackhole;");
    }
    let _ = writeln!(text, "}}");
    for (index, peer) in own.peers.iter().enumerate() {
        let _ = writeln!(text, "protocol bgp peer{} {{", index + 1);
        let _ = writeln!(text, "  description \"{}\";", peer.addr);
        let _ = writeln!(text, "  local as {};", own.local_as);
        let _ = writeln!(text, "  neighbor {} as {};", peer.addr, peer.asn);
        let _ = writeln!(text, "  hold time {};", own.hold.as_secs());
        // Keepalives at a third of the hold time, as RFC 4271 suggests;
        // BIRD wants at least one second.
        let _ = writeln!(
            text,
            "  keepalive time {};",
            (own.hold.as_secs() / 3).max(1)
        );
        // A restarted router is retried soon, not after BIRD's 120 s.
        let _ = writeln!(text, "  connect retry time 1;");
        let _ = writeln!(text, "  error wait time 1, 10;");
        if own.bfd {
            let _ = writeln!(text, "  bfd on;");
        }
        let _ = writeln!(text, "  ipv4 {{");
        let _ = writeln!(text, "    import none;");
        let _ = writeln!(text, "    export where proto = \"{protocol}\";");
        let _ = writeln!(text, "    next hop self;");
        let _ = writeln!(text, "  }};");
        let _ = writeln!(text, "}}");
    }
    text
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::process::Command;
    use std::time::Duration;

    use super::*;
    use crate::bgp::settings::Peer;

    fn own() -> OwnBird {
        OwnBird {
            program: "bird".into(),
            local_as: 65001,
            router_id: Ipv4Addr::new(10, 0, 0, 10),
            peers: vec![
                Peer {
                    addr: Ipv4Addr::new(10, 0, 0, 1),
                    asn: 65000,
                },
                Peer {
                    addr: Ipv4Addr::new(10, 0, 0, 2),
                    asn: 4_200_000_000,
                },
            ],
            hold: Duration::from_secs(3),
            bfd: false,
        }
    }

    fn routes() -> Vec<Route> {
        vec![
            Route::host(Ipv4Addr::new(192, 0, 2, 1)),
            Route {
                addr: Ipv4Addr::new(198, 51, 100, 0),
                len: 24,
            },
        ]
    }

    const GOLDEN: &str = r#"# Written by rusty_rail: its routes are announced while it is ready.
log stderr { info, remote, warning, error, auth, fatal, bug };
router id 10.0.0.10;
protocol device {}
protocol static rusty_rail_routes {
  disabled;
  ipv4;
  route 192.0.2.1/32 blackhole;
  route 198.51.100.0/24 blackhole;
}
protocol bgp peer1 {
  description "10.0.0.1";
  local as 65001;
  neighbor 10.0.0.1 as 65000;
  hold time 3;
  keepalive time 1;
  connect retry time 1;
  error wait time 1, 10;
  ipv4 {
    import none;
    export where proto = "rusty_rail_routes";
    next hop self;
  };
}
protocol bgp peer2 {
  description "10.0.0.2";
  local as 65001;
  neighbor 10.0.0.2 as 4200000000;
  hold time 3;
  keepalive time 1;
  connect retry time 1;
  error wait time 1, 10;
  ipv4 {
    import none;
    export where proto = "rusty_rail_routes";
    next hop self;
  };
}
"#;

    #[test]
    fn the_configuration_announces_only_the_static_routes_and_starts_withdrawn() {
        assert_eq!(render(&own(), &routes(), "rusty_rail_routes"), GOLDEN);
    }

    #[test]
    fn a_reconfiguration_of_an_announcing_balancer_leaves_the_protocol_enabled() {
        let text = render_enabled(&own(), &routes(), "rusty_rail_routes", true);
        let without: Vec<&str> = GOLDEN.lines().filter(|l| *l != "  disabled;").collect();
        assert_eq!(text.lines().collect::<Vec<_>>(), without);
    }

    #[test]
    fn with_bfd_every_session_asks_for_it() {
        let mut bfd = own();
        bfd.bfd = true;
        let text = render(&bfd, &routes(), "rusty_rail_routes");
        assert!(text.contains(
            "protocol bfd { interface \"*\" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; }; }\n"
        ));
        assert_eq!(text.matches("  bfd on;\n").count(), 2, "{text}");
        let without: Vec<&str> = text
            .lines()
            .filter(|l| *l != "  bfd on;" && !l.starts_with("protocol bfd"))
            .collect();
        assert_eq!(without, GOLDEN.lines().collect::<Vec<_>>());
    }

    /// BIRD itself parses what is written (`bird -p`), when installed.
    #[test]
    fn bird_accepts_the_configuration() {
        host::skip_unless!(host::capability::Need::Tool("bird"));
        let dir = std::env::temp_dir().join(format!("rr-bird-conf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bird.conf");
        let mut long_hold = own();
        long_hold.hold = Duration::from_secs(65535);
        let mut bfd = own();
        bfd.bfd = true;
        for (own, name) in [
            (own(), "rusty_rail_routes"),
            (long_hold, "_x1"),
            (bfd, "rr_vips"),
        ] {
            std::fs::write(&path, render(&own, &routes(), name)).unwrap();
            let out = Command::new("bird")
                .args(["-p", "-c"])
                .arg(&path)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "bird -p: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
