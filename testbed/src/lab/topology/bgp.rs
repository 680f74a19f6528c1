//! A host's `bgp`: the host runs BIRD 2 as a router that learns routes from
//! BGP peers (balancers announcing their VIPs or GRE addresses) and
//! installs them in its namespace's kernel table, equal routes from several
//! peers merged into one multipath route (ECMP), flows spread by their L4
//! hash (`net.ipv4.fib_multipath_hash_policy=3` on the 5-tuple, set by `up`).
//!
//! ```toml
//! [[host]]
//! name = "r"
//! bgp = { as = 65000, peers = [ "10.0.2.10:65001", "10.0.2.11:65001" ], hold = 3 }
//! ```
//!
//! `up` writes `{work dir}/{host}.bird.conf` and starts `bird` in the host
//! with its control socket at `{work dir}/{host}.bird.ctl`; `status` shows
//! the sessions and the routes BIRD installed.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};
use toml::Spanned;

/// `bgp = { ... }` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BgpEntry {
    /// The router's AS.
    #[serde(rename = "as")]
    pub local_as: u32,
    /// `address:as` of each peer.
    pub peers: Vec<Spanned<String>>,
    /// Hold time in seconds (3 or more) [default: 90].
    pub hold: Option<u64>,
    /// BFD on every session (100 ms, three missed) [default: off].
    #[serde(default)]
    pub bfd: bool,
}

/// A host's BGP router, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterBgp {
    pub local_as: u32,
    /// The host's first interface address.
    pub router_id: Ipv4Addr,
    pub peers: Vec<BgpPeer>,
    pub hold: u64,
    #[serde(default)]
    pub bfd: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BgpPeer {
    pub addr: Ipv4Addr,
    pub asn: u32,
}

/// What an `as` may be.
pub const ASN_ACCEPTED: &str = "an AS number from 1 to 4294967294";
/// What a peer may be.
pub const PEER_ACCEPTED: &str = "\"address:as\" such as \"10.0.2.10:65001\", each address once";

fn asn(n: u64) -> Option<u32> {
    u32::try_from(n).ok().filter(|&n| n != 0 && n != u32::MAX)
}

/// One peer, or what is wrong with it.
pub fn parse_peer(text: &str) -> Result<BgpPeer, String> {
    let (addr, asn_text) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("{text:?} has no ':'; expected {PEER_ACCEPTED}"))?;
    let addr = addr.trim().parse().map_err(|_| {
        format!("{text:?} does not start with an IPv4 address; expected {PEER_ACCEPTED}")
    })?;
    let asn = asn_text
        .trim()
        .parse()
        .ok()
        .and_then(asn)
        .ok_or_else(|| format!("{text:?} does not end with {ASN_ACCEPTED}"))?;
    Ok(BgpPeer { addr, asn })
}

impl RouterBgp {
    /// Checks `entry`; errors name the value and what is accepted, with the
    /// peer at fault when there is one.
    pub fn plan(
        entry: &BgpEntry,
        router_id: Option<Ipv4Addr>,
    ) -> Result<Self, (Option<usize>, String)> {
        let local_as = asn(u64::from(entry.local_as)).ok_or_else(|| {
            (
                None,
                format!("as = {}: expected {ASN_ACCEPTED}", entry.local_as),
            )
        })?;
        let hold = entry.hold.unwrap_or(90);
        if !(3..=65535).contains(&hold) {
            return Err((
                None,
                format!("hold = {hold}: expected seconds from 3 to 65535"),
            ));
        }
        let router_id = router_id.ok_or_else(|| {
            (
                None,
                "a BGP router needs an interface address (its router id)".to_owned(),
            )
        })?;
        let mut peers: Vec<BgpPeer> = Vec::new();
        for (index, text) in entry.peers.iter().enumerate() {
            let peer = parse_peer(text.get_ref()).map_err(|e| (Some(index), e))?;
            if peers.iter().any(|p| p.addr == peer.addr) {
                return Err((
                    Some(index),
                    format!("{} is listed twice; expected {PEER_ACCEPTED}", peer.addr),
                ));
            }
            peers.push(peer);
        }
        if peers.is_empty() {
            return Err((
                None,
                format!("no peers; expected a list of {PEER_ACCEPTED}"),
            ));
        }
        Ok(Self {
            local_as,
            router_id,
            peers,
            hold,
            bfd: entry.bfd,
        })
    }

    /// BIRD's configuration: learn everything from the peers, announce
    /// nothing, merge equal routes into multipath kernel routes.
    pub fn config(&self) -> String {
        let mut text = format!(
            "# Written by testbed up.\nlog stderr {{ info, remote, warning, error, auth, fatal, bug }};\n\
             router id {};\nprotocol device {{}}\n\
             protocol kernel {{\n  ipv4 {{ import none; export all; }};\n  merge paths on;\n}}\n",
            self.router_id
        );
        if self.bfd {
            text += "protocol bfd { interface \"*\" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; }; }\n";
        }
        for (index, peer) in self.peers.iter().enumerate() {
            let _ = write!(
                text,
                "protocol bgp peer{} {{\n  description \"{}\";\n  local as {};\n  neighbor {} as {};\n  \
                 hold time {};\n  keepalive time {};\n  connect retry time 1;\n  error wait time 1, 5;\n  \
                 {}ipv4 {{ import all; export none; }};\n}}\n",
                index + 1,
                peer.addr,
                self.local_as,
                peer.addr,
                peer.asn,
                self.hold,
                (self.hold / 3).max(1),
                if self.bfd { "bfd on;\n  " } else { "" },
            );
        }
        text
    }
}

/// Where `up` puts host `host`'s BIRD files.
pub fn config_path(work_dir: &Path, host: &str) -> PathBuf {
    work_dir.join(format!("{host}.bird.conf"))
}

pub fn socket_path(work_dir: &Path, host: &str) -> PathBuf {
    work_dir.join(format!("{host}.bird.ctl"))
}

/// The command line `up` starts BIRD with.
pub fn bird_command(work_dir: &Path, host: &str) -> String {
    format!(
        "exec bird -f -c {} -s {} -P {}",
        config_path(work_dir, host).display(),
        socket_path(work_dir, host).display(),
        work_dir.join(format!("{host}.bird.pid")).display()
    )
}

/// `status`'s lines for a BGP router: BIRD's protocols and the routes it
/// installed in the host's namespace.
pub fn describe(namespace: &str, socket: &Path) -> String {
    let mut text = String::new();
    let protocols = Command::new("birdc")
        .arg("-s")
        .arg(socket)
        .args(["show", "protocols"])
        .output();
    match protocols {
        Ok(out) if out.status.success() => {
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                if line.contains(" BGP ") {
                    let _ = writeln!(text, "    bgp {}", line.trim_end());
                }
            }
        }
        Ok(out) => {
            let _ = writeln!(
                text,
                "    bgp: birdc -s {}: {}",
                socket.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Err(e) => {
            let _ = writeln!(text, "    bgp: birdc: {e}");
        }
    }
    if let Ok(out) = Command::new("ip")
        .args(["-n", namespace, "-4", "route", "show", "proto", "bird"])
        .output()
    {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let _ = writeln!(text, "    bgp route {}", line.trim());
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(text: &str) -> BgpEntry {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn the_router_learns_from_every_peer_and_merges_equal_routes() {
        let plan = RouterBgp::plan(
            &entry("as = 65000\npeers = [\"10.0.2.10:65001\", \"10.0.2.11:65001\"]\nhold = 3\n"),
            Some(Ipv4Addr::new(10, 0, 2, 1)),
        )
        .unwrap();
        let golden = "# Written by testbed up.\n\
            log stderr { info, remote, warning, error, auth, fatal, bug };\n\
            router id 10.0.2.1;\nprotocol device {}\n\
            protocol kernel {\n  ipv4 { import none; export all; };\n  merge paths on;\n}\n\
            protocol bgp peer1 {\n  description \"10.0.2.10\";\n  local as 65000;\n  neighbor 10.0.2.10 as 65001;\n  \
            hold time 3;\n  keepalive time 1;\n  connect retry time 1;\n  error wait time 1, 5;\n  \
            ipv4 { import all; export none; };\n}\n\
            protocol bgp peer2 {\n  description \"10.0.2.11\";\n  local as 65000;\n  neighbor 10.0.2.11 as 65001;\n  \
            hold time 3;\n  keepalive time 1;\n  connect retry time 1;\n  error wait time 1, 5;\n  \
            ipv4 { import all; export none; };\n}\n";
        assert_eq!(plan.config(), golden);
    }

    #[test]
    fn bad_values_are_refused_naming_the_value_and_what_is_accepted() {
        let id = Some(Ipv4Addr::new(10, 0, 2, 1));
        for (text, peer, words) in [
            ("as = 0\npeers = [\"10.0.2.10:1\"]", None, "as = 0"),
            ("as = 1\npeers = []", None, "no peers"),
            (
                "as = 1\npeers = [\"10.0.2.10:1\"]\nhold = 2",
                None,
                "hold = 2",
            ),
            ("as = 1\npeers = [\"lb1:1\"]", Some(0), "IPv4 address"),
            ("as = 1\npeers = [\"10.0.2.10\"]", Some(0), "no ':'"),
            (
                "as = 1\npeers = [\"10.0.2.10:1\", \"10.0.2.10:2\"]",
                Some(1),
                "twice",
            ),
        ] {
            let (at, message) = RouterBgp::plan(&entry(text), id).unwrap_err();
            assert_eq!(at, peer, "{text}");
            assert!(message.contains(words), "{text}: {message}");
        }
        assert!(RouterBgp::plan(&entry("as = 1\npeers = [\"10.0.2.10:1\"]"), None).is_err());
    }

    #[test]
    fn with_bfd_the_router_runs_it_on_every_session() {
        let plan = RouterBgp::plan(
            &entry("as = 65000\npeers = [\"10.0.2.10:65001\", \"10.0.2.11:65001\"]\nbfd = true\n"),
            Some(Ipv4Addr::new(10, 0, 2, 1)),
        )
        .unwrap();
        let text = plan.config();
        assert!(text.contains("protocol bfd { interface \"*\""), "{text}");
        assert_eq!(text.matches("  bfd on;\n").count(), 2, "{text}");
    }

    /// BIRD parses the configuration (`bird -p`), when installed.
    #[test]
    fn bird_accepts_the_routers_configuration() {
        host::skip_unless!(host::capability::Need::Tool("bird"));
        let plan = RouterBgp::plan(
            &entry("as = 65000\npeers = [\"10.0.2.10:65001\"]\nhold = 3\nbfd = true\n"),
            Some(Ipv4Addr::new(10, 0, 2, 1)),
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bird.conf");
        std::fs::write(&path, plan.config()).unwrap();
        let out = Command::new("bird")
            .arg("-p")
            .arg("-c")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
