//! The router's ECMP group: the balancers it currently spreads flows over,
//! either from a file of addresses (one per line, `#` comments), re-read
//! when it changes, or from the router's own routes (`--follow-routes`): a
//! balancer is in the group while the kernel has a route for exactly its
//! address (/32), as the router's BGP daemon installs it from the
//! balancer's announcement (GRE mode's route) and removes it on a
//! withdrawal or a failed session.
//!
//! Both may only name balancers given with `--remote` (their counters
//! exist from the start); a set naming none of them leaves the group as it
//! was (a router keeps its last next hops rather than have none).

use std::fs;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use super::config::EncapConfig;
use super::encap::Encapsulator;
use super::prefix::Prefix;

/// How often the file's modification time (or the routes) are looked at.
const CHECK_EVERY: Duration = Duration::from_millis(100);

/// The ECMP group: which of the `--remote` balancers flows are spread over.
#[derive(Debug)]
pub struct EcmpGroup {
    pub known: Vec<IpAddr>,
    /// Positions in `known` of the balancers in the group, in order; the
    /// encapsulator's remote `i` is `known[active[i]]`.
    pub active: Vec<usize>,
    file: Option<RemotesFile>,
    routes: Option<RouteWatch>,
    key: Option<u32>,
    seed: u64,
    vips: Vec<Prefix>,
}

impl EcmpGroup {
    /// Every `--remote`, and the file that may narrow them.
    pub fn new(config: &EncapConfig) -> Self {
        Self {
            known: config.remote.clone(),
            active: (0..config.remote.len()).collect(),
            file: config.remotes_file.clone().map(RemotesFile::new),
            routes: config.follow_routes.then(RouteWatch::new),
            key: config.key,
            seed: config.seed,
            vips: config.vip.clone(),
        }
    }

    /// Applies a changed remotes file, if any, to the encapsulator.
    pub fn refresh(&mut self, encapsulator: &mut Encapsulator) {
        let polled = match (self.file.as_mut(), self.routes.as_mut()) {
            (Some(file), _) => file.poll(&self.known),
            (None, Some(routes)) => routes.poll(&self.known),
            (None, None) => return,
        };
        match polled {
            None => {}
            Some(Err(why)) => eprintln!("tunnel encap: ECMP group kept: {why}"),
            Some(Ok(active)) if active == self.active => {}
            Some(Ok(active)) => {
                let remotes = active.iter().map(|&i| self.known[i]).collect::<Vec<_>>();
                if let Some(next) =
                    Encapsulator::new(remotes.clone(), self.key, self.seed, self.vips.clone())
                {
                    *encapsulator = next;
                    self.active = active;
                    eprintln!("tunnel encap: ECMP group now {remotes:?}");
                }
            }
        }
    }
}

/// A watched remotes file.
#[derive(Debug)]
pub struct RemotesFile {
    path: PathBuf,
    seen: Option<SystemTime>,
    next_check: Instant,
}

impl RemotesFile {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            seen: None,
            next_check: Instant::now(),
        }
    }

    /// When the file changed since the last look (checked at most every
    /// 100 ms): the positions in `known` of the balancers it lists, or why
    /// it cannot be used.
    pub fn poll(&mut self, known: &[IpAddr]) -> Option<Result<Vec<usize>, String>> {
        let now = Instant::now();
        if now < self.next_check {
            return None;
        }
        self.next_check = now + CHECK_EVERY;
        let modified = fs::metadata(&self.path).and_then(|m| m.modified()).ok();
        if modified.is_none() || modified == self.seen {
            return None;
        }
        self.seen = modified;
        Some(
            fs::read_to_string(&self.path)
                .map_err(|e| format!("{}: {e}", self.path.display()))
                .and_then(|text| parse(&text, known)),
        )
    }
}

/// The router's routes to the balancers, looked at every 100 ms.
#[derive(Debug)]
pub struct RouteWatch {
    netlink: Option<host::netlink::Netlink>,
    next_check: Instant,
    last: Option<Result<Vec<usize>, String>>,
}

impl RouteWatch {
    pub fn new() -> Self {
        Self {
            netlink: None,
            next_check: Instant::now(),
            last: None,
        }
    }

    /// When the routed set changed since the last look: the positions in
    /// `known` of the balancers with a /32 route, or why there are none.
    /// Only IPv4 balancers are looked up (the endpoint refuses IPv6 ones
    /// with `--follow-routes`).
    pub fn poll(&mut self, known: &[IpAddr]) -> Option<Result<Vec<usize>, String>> {
        let now = Instant::now();
        if now < self.next_check {
            return None;
        }
        self.next_check = now + CHECK_EVERY;
        let routed = self.routed(known);
        if self.last.as_ref() == Some(&routed) {
            return None;
        }
        self.last = Some(routed.clone());
        Some(routed)
    }

    fn routed(&mut self, known: &[IpAddr]) -> Result<Vec<usize>, String> {
        if self.netlink.is_none() {
            self.netlink = Some(host::netlink::Netlink::open().map_err(|e| e.to_string())?);
        }
        let netlink = self.netlink.as_mut().ok_or("no netlink socket")?;
        let mut active = Vec::new();
        let ipv4 = known
            .iter()
            .enumerate()
            .filter_map(|(position, balancer)| match balancer {
                IpAddr::V4(a) => Some((position, *a)),
                IpAddr::V6(_) => None,
            });
        for (position, balancer) in ipv4 {
            match netlink.gateways_of(balancer, 32) {
                Ok(gateways) if !gateways.is_empty() => active.push(position),
                Ok(_) => {}
                Err(e) => {
                    // A broken socket is opened again next time.
                    self.netlink = None;
                    return Err(e.to_string());
                }
            }
        }
        if active.is_empty() {
            return Err("no --remote balancer has a route (all withdrawn)".into());
        }
        Ok(active)
    }
}

impl Default for RouteWatch {
    fn default() -> Self {
        Self::new()
    }
}

/// The positions in `known` of the balancers `text` lists (IPv4 or IPv6
/// addresses).
pub fn parse<A: Into<IpAddr> + Copy>(text: &str, known: &[A]) -> Result<Vec<usize>, String> {
    let mut active = Vec::new();
    for line in text.lines() {
        let entry = line.split('#').next().unwrap_or("").trim();
        if entry.is_empty() {
            continue;
        }
        let addr: IpAddr = entry.parse().map_err(|_| {
            format!("{entry:?} is not an IP address; expected one balancer address per line")
        })?;
        let position = known
            .iter()
            .position(|&k| k.into() == addr)
            .ok_or_else(|| {
                format!(
                    "{addr} was not given with --remote; expected some of the --remote balancers"
                )
            })?;
        if !active.contains(&position) {
            active.push(position);
        }
    }
    if active.is_empty() {
        return Err(
            "it lists no balancer; keeping the current set (a router needs a next hop)".into(),
        );
    }
    active.sort_unstable();
    Ok(active)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Vec<IpAddr> {
        ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect()
    }

    #[test]
    fn lists_name_known_balancers_in_their_command_line_order() {
        assert_eq!(
            parse("10.0.0.3\n# lb1 withdrawn\n10.0.0.2\n", &known()),
            Ok(vec![1, 2])
        );
        assert_eq!(
            parse("10.0.0.1 # the only one\n10.0.0.1\n", &known()),
            Ok(vec![0])
        );
    }

    #[test]
    fn unknown_bad_or_empty_lists_are_refused_with_the_reason() {
        assert!(parse("10.0.0.9\n", &known())
            .unwrap_err()
            .contains("10.0.0.9 was not given with --remote"));
        assert!(parse("lb1\n", &known())
            .unwrap_err()
            .contains("\"lb1\" is not an IP address"));
        assert!(parse("# nothing\n\n", &known())
            .unwrap_err()
            .contains("keeping the current set"));
    }

    #[test]
    fn lists_may_name_ipv6_balancers() {
        let known: Vec<IpAddr> = vec!["fd00::1".parse().unwrap(), "fd00::2".parse().unwrap()];
        assert_eq!(parse("fd00::2\n", &known), Ok(vec![1]));
        assert!(parse("fd00::9\n", &known)
            .unwrap_err()
            .contains("fd00::9 was not given with --remote"));
    }

    #[test]
    fn a_changed_file_is_reported_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("remotes");
        fs::write(&path, "10.0.0.2\n").unwrap();
        let mut file = RemotesFile::new(path.clone());
        assert_eq!(file.poll(&known()), Some(Ok(vec![1])));
        file.next_check = Instant::now();
        assert_eq!(file.poll(&known()), None);
    }
}
