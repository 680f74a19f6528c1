//! The BGP speaker against a real BIRD 2, in a network namespace of its
//! own (BIRD listens on port 179): it announces while the balancer is
//! ready, withdraws on a drain and when no backend is in rotation, and
//! starts BIRD again (and announces again) when BIRD dies.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use control::api::{Liveness, DEFAULT_STALL_LIMIT};
use control::bgp::control_socket::ControlSocket;
use control::bgp::settings::{parse_peers, BgpArgs, DEFAULT_PROTOCOL};
use control::bgp::{BgpHandle, BgpSpeaker};
use control::readiness::Readiness;
use host::capability::Need;

const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

/// Waits (at most 10 s) until `check` holds for the speaker's status.
fn wait(bgp: &BgpHandle, what: &str, check: impl Fn(&control::bgp::BgpStatus) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = bgp.status();
        if check(&status) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {status:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether BIRD's table holds the VIP's route.
fn bird_has_route(socket: &Path) -> bool {
    let reply = ControlSocket::connect(socket)
        .and_then(|mut s| s.command("show route"))
        .expect("show route");
    reply.text().contains(&format!("{VIP}/32"))
}

fn in_new_network_namespace(body: impl FnOnce() + Send + 'static) {
    std::thread::spawn(move || {
        // SAFETY: unshare changes only this thread's namespaces.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "unshare: {}", std::io::Error::last_os_error());
        let lo = Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status();
        assert!(lo.is_ok_and(|s| s.success()), "lo up");
        body();
    })
    .join()
    .expect("the test's thread");
}

#[test]
fn the_speaker_follows_readiness_and_drains_and_restarts_a_dead_bird() {
    host::skip_unless!(Need::Root, Need::Tool("bird"), Need::Tool("ip"));
    in_new_network_namespace(|| {
        let publisher = common::publisher(2);
        let readiness = Readiness {
            publisher: publisher.clone(),
            // No workers: only the backends decide.
            counters: Arc::from(Vec::new()),
            liveness: Arc::new(Liveness::new(&[], DEFAULT_STALL_LIMIT)),
        };
        let args = BgpArgs {
            local_as: Some(65001),
            // No router: BIRD refuses a loopback neighbour and leaves the
            // session down, which does not keep the route out of its table
            // (what an announcement puts there, for the sessions to send).
            peers: Some(parse_peers("127.0.0.2:65000").unwrap()),
            hold: Duration::from_secs(3),
            protocol: DEFAULT_PROTOCOL.into(),
            grace: Duration::from_secs(1),
            bird: PathBuf::from("bird"),
            ..BgpArgs::default()
        };
        let settings = args
            .settings(Ipv4Addr::new(192, 0, 2, 10), &[IpAddr::V4(VIP)])
            .unwrap()
            .unwrap();
        let speaker = BgpSpeaker::start(&settings, readiness).unwrap();
        let bgp = speaker.handle();
        let socket = PathBuf::from(bgp.status().socket);

        wait(&bgp, "announced once ready", |s| s.announced);
        assert!(bird_has_route(&socket));
        let status = bgp.status();
        assert_eq!(status.routes, vec![format!("{VIP}/32")]);
        assert_eq!(
            status.sessions.first().map(|s| s.name.as_str()),
            Some("peer1")
        );

        bgp.drain();
        wait(&bgp, "withdrawn on drain", |s| !s.announced && s.draining);
        assert!(!bird_has_route(&socket));
        bgp.resume();
        wait(&bgp, "announced after resume", |s| s.announced);

        for last in 1..=2 {
            publisher.set_drain(common::ip(last), true).unwrap();
        }
        wait(&bgp, "withdrawn without a backend in rotation", |s| {
            !s.announced
                && s.last_change
                    .as_ref()
                    .is_some_and(|c| c.reason.contains("no backend is in rotation"))
        });
        assert!(!bird_has_route(&socket));
        publisher.set_drain(common::ip(2), false).unwrap();
        wait(&bgp, "announced with a backend back", |s| s.announced);

        let pid: i32 = std::fs::read_to_string(socket.with_file_name("bird.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // SAFETY: kill has no memory preconditions; the pid is our BIRD's.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        wait(
            &bgp,
            "BIRD started again and the route announced again",
            |s| s.bird_starts == 2 && s.announced,
        );
        assert!(bird_has_route(&socket));

        let dir = socket.parent().unwrap().to_owned();
        speaker.stop();
        assert!(!dir.exists(), "the private directory is removed at stop");
    });
}

#[test]
fn with_an_operators_bird_the_speaker_toggles_its_protocol_and_leaves_it_running() {
    host::skip_unless!(Need::Root, Need::Tool("bird"), Need::Tool("ip"));
    in_new_network_namespace(|| {
        // The operator's BIRD, configured by hand (here: as ours would be).
        let dir = tempfile::tempdir().unwrap();
        let own = control::bgp::settings::OwnBird {
            program: PathBuf::from("bird"),
            local_as: 65001,
            router_id: Ipv4Addr::new(192, 0, 2, 10),
            peers: parse_peers("127.0.0.2:65000").unwrap().0,
            hold: Duration::from_secs(3),
            bfd: false,
        };
        let routes = [control::bgp::settings::Route::host(VIP)];
        let config = dir.path().join("bird.conf");
        std::fs::write(
            &config,
            control::bgp::bird_config::render(&own, &routes, "operator_vips"),
        )
        .unwrap();
        let socket = dir.path().join("bird.ctl");
        let mut bird = KillOnDrop(
            Command::new("bird")
                .arg("-f")
                .arg("-c")
                .arg(&config)
                .arg("-s")
                .arg(&socket)
                .arg("-P")
                .arg(dir.path().join("bird.pid"))
                .spawn()
                .unwrap(),
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while ControlSocket::connect(&socket).is_err() {
            assert!(
                Instant::now() < deadline,
                "the operator's BIRD did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }

        let args = BgpArgs {
            socket: Some(socket.clone()),
            protocol: "operator_vips".into(),
            grace: Duration::from_secs(1),
            bird: PathBuf::from("bird"),
            ..BgpArgs::default()
        };
        let settings = args
            .settings(Ipv4Addr::new(192, 0, 2, 10), &[IpAddr::V4(VIP)])
            .unwrap()
            .unwrap();
        let publisher = common::publisher(1);
        let readiness = Readiness {
            publisher,
            counters: Arc::from(Vec::new()),
            liveness: Arc::new(Liveness::new(&[], DEFAULT_STALL_LIMIT)),
        };
        let speaker = BgpSpeaker::start(&settings, readiness).unwrap();
        let bgp = speaker.handle();
        wait(&bgp, "announced in the operator's BIRD", |s| {
            s.announced && s.bird == "operator"
        });
        assert!(bird_has_route(&socket));
        speaker.stop();
        assert!(
            !bird_has_route(&socket),
            "stopping withdraws the routes from the operator's BIRD"
        );
        assert!(
            matches!(bird.0.try_wait(), Ok(None)),
            "the operator's BIRD keeps running"
        );
    });
}

/// A child killed when the test ends, also when it fails.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
