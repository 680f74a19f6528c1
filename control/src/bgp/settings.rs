//! BGP settings (`RR_BGP_*` and `--bgp-*`): off unless `RR_BGP_LOCAL_AS`
//! (`rusty_rail` starts its own BIRD) or `RR_BGP_SOCKET` (it drives an
//! operator's BIRD) is given. Each value is checked on its own by clap;
//! [`BgpArgs::settings`] checks what only the whole can (peers need a local
//! AS, what to announce in which mode).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

/// The BIRD protocol `rusty_rail` enables to announce and disables to
/// withdraw, unless `RR_BGP_PROTOCOL` names another.
pub const DEFAULT_PROTOCOL: &str = "rusty_rail_routes";

/// Options of BGP, flattened into the live balancer's.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct BgpArgs {
    /// This balancer's AS number; setting it turns BGP on with a BIRD that
    /// `rusty_rail` starts and supervises [default: BGP off].
    #[arg(long = "bgp-local-as", env = "RR_BGP_LOCAL_AS", value_name = "ASN", value_parser = parse_asn)]
    pub local_as: Option<u32>,

    /// BGP router id [default: the balancer's address, `RR_LB_IP`].
    #[arg(long = "bgp-router-id", env = "RR_BGP_ROUTER_ID", value_name = "IPV4", value_parser = parse_router_id)]
    pub router_id: Option<Ipv4Addr>,

    /// The routers to peer with: `address:as` entries, ';'-separated.
    #[arg(long = "bgp-peers", env = "RR_BGP_PEERS", value_name = "IP:AS;...", value_parser = parse_peers)]
    pub peers: Option<Peers>,

    /// BGP hold time: a peer silent this long is down, and its routes go.
    #[arg(long = "bgp-hold", env = "RR_BGP_HOLD", value_name = "DURATION", default_value = "90s", value_parser = parse_hold)]
    pub hold: Duration,

    /// IPv4 prefixes to announce while healthy, ';'-separated [default: the
    /// VIPs as /32 in VIP mode; `RR_LB_IP/32`, the GRE address, in GRE mode].
    #[arg(long = "bgp-routes", env = "RR_BGP_ROUTES", value_name = "PREFIX;...", value_parser = parse_routes)]
    pub routes: Option<Routes>,

    /// An operator's BIRD control socket: `rusty_rail` starts no BIRD and
    /// enables/disables the static protocol `RR_BGP_PROTOCOL` in that BIRD.
    #[arg(long = "bgp-socket", env = "RR_BGP_SOCKET", value_name = "PATH")]
    pub socket: Option<PathBuf>,

    /// The BIRD static protocol that holds the routes to announce.
    #[arg(long = "bgp-protocol", env = "RR_BGP_PROTOCOL", value_name = "NAME", default_value = DEFAULT_PROTOCOL, value_parser = parse_protocol)]
    pub protocol: String,

    /// After SIGTERM, how long to keep forwarding with the routes withdrawn
    /// (routers move flows away meanwhile) before stopping.
    #[arg(long = "bgp-grace", env = "RR_BGP_GRACE", value_name = "DURATION", default_value = "5s", value_parser = parse_grace)]
    pub grace: Duration,

    /// BFD on every session of the BIRD `rusty_rail` starts (the router must
    /// run BFD too): a dead balancer or router is seen in about 0.3 s
    /// instead of the hold time.
    #[arg(long = "bgp-bfd", env = "RR_BGP_BFD", value_name = "BOOL", default_value = "0", value_parser = parse_bfd)]
    pub bfd: bool,

    /// The BIRD 2 daemon to start.
    #[arg(
        long = "bgp-bird",
        env = "RR_BGP_BIRD",
        value_name = "PATH",
        default_value = "bird"
    )]
    pub bird: PathBuf,
}

/// A BGP peer: a router's address and AS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub addr: Ipv4Addr,
    pub asn: u32,
}

/// `RR_BGP_PEERS`, each address once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peers(pub Vec<Peer>);

/// An IPv4 prefix, host bits zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    pub addr: Ipv4Addr,
    pub len: u8,
}

impl Route {
    pub fn host(addr: Ipv4Addr) -> Self {
        Self { addr, len: 32 }
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// `RR_BGP_ROUTES`, each once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routes(pub Vec<Route>);

/// Which BIRD is driven.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bird {
    /// One `rusty_rail` starts, configures and restarts.
    Own(OwnBird),
    /// The operator's, through its control socket.
    Operator { socket: PathBuf },
}

/// What the BIRD `rusty_rail` starts is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnBird {
    pub program: PathBuf,
    pub local_as: u32,
    pub router_id: Ipv4Addr,
    pub peers: Vec<Peer>,
    pub hold: Duration,
    /// BFD on every session.
    pub bfd: bool,
}

/// BGP, checked as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpSettings {
    pub bird: Bird,
    pub routes: Vec<Route>,
    /// The routes are the VIPs (VIP mode without `RR_BGP_ROUTES`), so they
    /// follow the VIPs a reload or the API brings or takes away.
    pub routes_are_vips: bool,
    pub protocol: String,
    pub grace: Duration,
}

/// A refused BGP setting: the variable, the value, what is wrong and what
/// would be accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpSettingError {
    pub env: &'static str,
    pub value: String,
    pub problem: String,
    pub accepted: &'static str,
}

impl fmt::Display for BgpSettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {:?} {}; expected {}",
            self.env, self.value, self.problem, self.accepted
        )
    }
}

impl std::error::Error for BgpSettingError {}

const ASN: &str = "an AS number from 1 to 4294967294 (not 23456, AS_TRANS)";
const ROUTER_ID: &str = "an IPv4 address such as 192.0.2.10, not 0.0.0.0";
const PEERS: &str = "address:as entries such as 10.0.0.1:65000;10.0.0.2:65000 \
                     (IPv4, AS 1..=4294967294, each address once)";
const HOLD: &str = "whole seconds from 3 to 65535 such as 3s, 90s or 90";
const ROUTES: &str = "IPv4 prefixes such as 192.0.2.1/32;198.51.100.0/24, \
                      ';'-separated, host bits zero, each once";
const PROTOCOL: &str = "a BIRD symbol: a letter or '_', then letters, digits or '_' (at most 64)";
const BFD: &str = "1, true, yes or on for BFD; 0, false, no or off (default) for none";
const GRACE: &str = "a duration from 0 to 10m such as 5s or 500ms";

fn refuse(
    env: &'static str,
    value: &str,
    problem: &str,
    accepted: &'static str,
) -> BgpSettingError {
    BgpSettingError {
        env,
        value: value.to_owned(),
        problem: problem.to_owned(),
        accepted,
    }
}

/// `RR_BGP_LOCAL_AS`.
pub fn parse_asn(s: &str) -> Result<u32, BgpSettingError> {
    asn(s).ok_or_else(|| refuse("RR_BGP_LOCAL_AS", s, "is not an AS number", ASN))
}

fn asn(s: &str) -> Option<u32> {
    let n: u32 = s.trim().parse().ok()?;
    // 0 and 4294967295 are reserved; 23456 stands in for 4-byte ASes
    // toward old speakers and is no one's.
    (n != 0 && n != u32::MAX && n != 23456).then_some(n)
}

/// `RR_BGP_ROUTER_ID`.
pub fn parse_router_id(s: &str) -> Result<Ipv4Addr, BgpSettingError> {
    s.trim()
        .parse::<Ipv4Addr>()
        .ok()
        .filter(|a| !a.is_unspecified())
        .ok_or_else(|| refuse("RR_BGP_ROUTER_ID", s, "is not a router id", ROUTER_ID))
}

/// `RR_BGP_PEERS`: `addr:as;addr:as`.
pub fn parse_peers(s: &str) -> Result<Peers, BgpSettingError> {
    let mut peers: Vec<Peer> = Vec::new();
    for entry in crate::config::list_entries(s) {
        let bad = |problem: &str| refuse("RR_BGP_PEERS", entry, problem, PEERS);
        let (addr, asn_text) = entry
            .rsplit_once(':')
            .ok_or_else(|| bad("has no ':' between address and AS"))?;
        let addr: Ipv4Addr = addr
            .trim()
            .parse()
            .map_err(|_| bad("does not start with an IPv4 address"))?;
        let asn = asn(asn_text).ok_or_else(|| bad("does not end with an AS number"))?;
        if peers.iter().any(|p| p.addr == addr) {
            return Err(bad("names a peer already listed"));
        }
        peers.push(Peer { addr, asn });
    }
    if peers.is_empty() {
        return Err(refuse("RR_BGP_PEERS", s, "has no entries", PEERS));
    }
    Ok(Peers(peers))
}

/// `RR_BGP_HOLD`: BGP counts it in whole seconds, at least 3 (RFC 4271).
pub fn parse_hold(s: &str) -> Result<Duration, BgpSettingError> {
    let d = crate::config::parse_duration(crate::config::Setting::TcpTimeout, s)
        .map_err(|_| refuse("RR_BGP_HOLD", s, "is not a duration", HOLD))?;
    if d.subsec_nanos() != 0 || !(3..=65535).contains(&d.as_secs()) {
        return Err(refuse("RR_BGP_HOLD", s, "is out of range", HOLD));
    }
    Ok(d)
}

/// `RR_BGP_BFD`.
pub fn parse_bfd(s: &str) -> Result<bool, BgpSettingError> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err(refuse("RR_BGP_BFD", s, "is not a boolean", BFD)),
    }
}

/// `RR_BGP_GRACE`.
pub fn parse_grace(s: &str) -> Result<Duration, BgpSettingError> {
    let d = crate::config::parse_duration(crate::config::Setting::TcpTimeout, s)
        .map_err(|_| refuse("RR_BGP_GRACE", s, "is not a duration", GRACE))?;
    if d > Duration::from_secs(600) {
        return Err(refuse("RR_BGP_GRACE", s, "is out of range", GRACE));
    }
    Ok(d)
}

/// `RR_BGP_ROUTES`.
pub fn parse_routes(s: &str) -> Result<Routes, BgpSettingError> {
    let mut routes: Vec<Route> = Vec::new();
    for entry in crate::config::list_entries(s) {
        let bad = |problem: &str| refuse("RR_BGP_ROUTES", entry, problem, ROUTES);
        let (addr, len) = entry.split_once('/').unwrap_or((entry, "32"));
        let addr: Ipv4Addr = addr
            .trim()
            .parse()
            .map_err(|_| bad("is not an IPv4 prefix"))?;
        let len: u8 = len
            .trim()
            .parse()
            .ok()
            .filter(|&l| l <= 32)
            .ok_or_else(|| bad("has a length that is not 0 to 32"))?;
        let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
        if u32::from(addr) & !mask != 0 {
            return Err(bad("has host bits set"));
        }
        let route = Route { addr, len };
        if routes.contains(&route) {
            return Err(bad("is listed twice"));
        }
        routes.push(route);
    }
    if routes.is_empty() {
        return Err(refuse("RR_BGP_ROUTES", s, "has no entries", ROUTES));
    }
    Ok(Routes(routes))
}

/// `RR_BGP_PROTOCOL`: written into BIRD's configuration and commands, so
/// only a plain symbol.
pub fn parse_protocol(s: &str) -> Result<String, BgpSettingError> {
    let mut chars = s.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if first_ok && s.len() <= 64 && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(s.to_owned())
    } else {
        Err(refuse(
            "RR_BGP_PROTOCOL",
            s,
            "is not a BIRD symbol",
            PROTOCOL,
        ))
    }
}

impl BgpArgs {
    /// The checked whole: `None` when BGP is off. `lb_ip` is the balancer's
    /// address (router id and GRE-mode route by default), `vips` its VIPs
    /// (VIP mode's routes by default).
    pub fn settings(
        &self,
        lb_ip: Ipv4Addr,
        vips: &[IpAddr],
    ) -> Result<Option<BgpSettings>, BgpSettingError> {
        let bird = match (&self.socket, self.local_as) {
            (None, None) => {
                if let Some(peers) = &self.peers {
                    return Err(refuse(
                        "RR_BGP_PEERS",
                        &peers_text(peers),
                        "is given without RR_BGP_LOCAL_AS",
                        "RR_BGP_LOCAL_AS set too (or neither, which keeps BGP off)",
                    ));
                }
                return Ok(None);
            }
            (Some(socket), None) => {
                if self.bfd {
                    return Err(refuse(
                        "RR_BGP_BFD",
                        "1",
                        "is given with RR_BGP_SOCKET, whose BIRD has its own sessions",
                        "BFD configured in your BIRD, or RR_BGP_LOCAL_AS for a BIRD rusty_rail starts",
                    ));
                }
                if let Some(peers) = &self.peers {
                    return Err(refuse(
                        "RR_BGP_PEERS",
                        &peers_text(peers),
                        "is given with RR_BGP_SOCKET, whose BIRD has its own peers",
                        "RR_BGP_SOCKET alone (peers in your BIRD's configuration), or RR_BGP_LOCAL_AS with RR_BGP_PEERS",
                    ));
                }
                Bird::Operator {
                    socket: socket.clone(),
                }
            }
            (Some(socket), Some(local_as)) => {
                return Err(refuse(
                    "RR_BGP_SOCKET",
                    &socket.display().to_string(),
                    &format!("is given with RR_BGP_LOCAL_AS={local_as}"),
                    "one of them: RR_BGP_LOCAL_AS with RR_BGP_PEERS for a BIRD rusty_rail starts, or RR_BGP_SOCKET for yours",
                ));
            }
            (None, Some(local_as)) => {
                let peers = self.peers.as_ref().ok_or_else(|| {
                    refuse(
                        "RR_BGP_PEERS",
                        "",
                        &format!("is not given, and RR_BGP_LOCAL_AS={local_as} needs a router to peer with"),
                        PEERS,
                    )
                })?;
                Bird::Own(OwnBird {
                    program: self.bird.clone(),
                    local_as,
                    router_id: self.router_id.unwrap_or(lb_ip),
                    peers: peers.0.clone(),
                    hold: self.hold,
                    bfd: self.bfd,
                })
            }
        };
        let routes = match &self.routes {
            Some(routes) => routes.0.clone(),
            None => default_routes(lb_ip, vips)?,
        };
        Ok(Some(BgpSettings {
            bird,
            routes,
            routes_are_vips: self.routes.is_none() && !vips.is_empty(),
            protocol: self.protocol.clone(),
            grace: self.grace,
        }))
    }
}

/// VIP mode announces the VIPs; GRE mode the address routers tunnel to.
fn default_routes(lb_ip: Ipv4Addr, vips: &[IpAddr]) -> Result<Vec<Route>, BgpSettingError> {
    if vips.is_empty() {
        return Ok(vec![Route::host(lb_ip)]);
    }
    vips.iter()
        .map(|vip| match vip {
            IpAddr::V4(v4) => Ok(Route::host(*v4)),
            IpAddr::V6(v6) => Err(refuse(
                "RR_VIPS (or a service's vip)",
                &v6.to_string(),
                "is IPv6, and the BGP announcement is IPv4 only",
                "RR_BGP_ROUTES listing the IPv4 prefixes to announce",
            )),
        })
        .collect()
}

fn peers_text(peers: &Peers) -> String {
    peers
        .0
        .iter()
        .map(|p| format!("{}:{}", p.addr, p.asn))
        .collect::<Vec<_>>()
        .join(";")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lb() -> Ipv4Addr {
        Ipv4Addr::new(10, 0, 0, 10)
    }

    #[test]
    fn peers_are_address_and_as_pairs_each_address_once() {
        let peers = parse_peers("10.0.0.1:65000; 10.0.0.2:4200000000;").unwrap();
        assert_eq!(
            peers.0,
            vec![
                Peer {
                    addr: Ipv4Addr::new(10, 0, 0, 1),
                    asn: 65000
                },
                Peer {
                    addr: Ipv4Addr::new(10, 0, 0, 2),
                    asn: 4_200_000_000
                }
            ]
        );
        for (bad, problem) in [
            ("10.0.0.1", "no ':'"),
            ("router:65000", "IPv4 address"),
            ("10.0.0.1:0", "AS number"),
            ("10.0.0.1:23456", "AS number"),
            ("10.0.0.1:1;10.0.0.1:2", "already listed"),
            (";", "no entries"),
        ] {
            let e = parse_peers(bad).unwrap_err().to_string();
            assert!(
                e.starts_with("RR_BGP_PEERS: ") && e.contains(problem) && e.contains(PEERS),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn hold_is_whole_seconds_from_three() {
        assert_eq!(parse_hold("3s").unwrap(), Duration::from_secs(3));
        assert_eq!(parse_hold("90").unwrap(), Duration::from_secs(90));
        for bad in ["2s", "1500ms", "0", "65536", "soon"] {
            let e = parse_hold(bad).unwrap_err().to_string();
            assert!(e.starts_with("RR_BGP_HOLD: ") && e.contains(HOLD), "{e}");
        }
    }

    #[test]
    fn routes_are_ipv4_prefixes_without_host_bits() {
        let routes = parse_routes("192.0.2.1;198.51.100.0/24").unwrap();
        assert_eq!(
            routes.0.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["192.0.2.1/32", "198.51.100.0/24"]
        );
        for (bad, problem) in [
            ("198.51.100.1/24", "host bits"),
            ("192.0.2.1/33", "length"),
            ("2001:db8::1/128", "IPv4 prefix"),
            ("192.0.2.1;192.0.2.1/32", "twice"),
        ] {
            let e = parse_routes(bad).unwrap_err().to_string();
            assert!(e.contains(problem) && e.contains(ROUTES), "{bad}: {e}");
        }
    }

    #[test]
    fn a_protocol_name_is_a_plain_bird_symbol() {
        assert_eq!(parse_protocol("rr_vips2").unwrap(), "rr_vips2");
        for bad in ["", "2rr", "rr; export all", "a\"b", &"x".repeat(65)] {
            assert!(parse_protocol(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bgp_is_off_without_a_local_as_or_socket() {
        assert_eq!(BgpArgs::default().settings(lb(), &[]), Ok(None));
        let peers_alone = BgpArgs {
            peers: Some(parse_peers("10.0.0.1:65000").unwrap()),
            ..BgpArgs::default()
        };
        let e = peers_alone.settings(lb(), &[]).unwrap_err().to_string();
        assert!(e.contains("without RR_BGP_LOCAL_AS"), "{e}");
    }

    #[test]
    fn own_bird_needs_peers_and_defaults_router_id_and_routes_by_mode() {
        let mut args = BgpArgs {
            local_as: Some(65001),
            hold: Duration::from_secs(3),
            protocol: DEFAULT_PROTOCOL.into(),
            ..BgpArgs::default()
        };
        let e = args.settings(lb(), &[]).unwrap_err().to_string();
        assert!(e.starts_with("RR_BGP_PEERS: \"\" is not given"), "{e}");
        args.peers = Some(parse_peers("10.0.0.1:65000").unwrap());
        let gre = args.settings(lb(), &[]).unwrap().unwrap();
        assert_eq!(gre.routes, vec![Route::host(lb())]);
        let Bird::Own(own) = &gre.bird else {
            panic!("{gre:?}")
        };
        assert_eq!(own.router_id, lb());
        let vip: IpAddr = "192.0.2.1".parse().unwrap();
        let vip_mode = args.settings(lb(), &[vip]).unwrap().unwrap();
        assert_eq!(
            vip_mode.routes,
            vec![Route::host(Ipv4Addr::new(192, 0, 2, 1))]
        );
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let e = args.settings(lb(), &[vip, v6]).unwrap_err().to_string();
        assert!(
            e.starts_with("RR_VIPS (or a service's vip): \"2001:db8::1\"")
                && e.contains("RR_BGP_ROUTES"),
            "{e}"
        );
    }

    #[test]
    fn an_operators_socket_excludes_our_own_peers_and_as() {
        let socket = BgpArgs {
            socket: Some("/run/bird/bird.ctl".into()),
            protocol: DEFAULT_PROTOCOL.into(),
            ..BgpArgs::default()
        };
        let settings = socket.settings(lb(), &[]).unwrap().unwrap();
        assert_eq!(
            settings.bird,
            Bird::Operator {
                socket: "/run/bird/bird.ctl".into()
            }
        );
        let both = BgpArgs {
            local_as: Some(65001),
            ..socket.clone()
        };
        assert!(both
            .settings(lb(), &[])
            .unwrap_err()
            .to_string()
            .starts_with("RR_BGP_SOCKET"));
    }
}
