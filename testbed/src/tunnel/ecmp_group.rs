//! The router's ECMP group: the balancers it currently spreads flows over, as a routing
//! daemon would install them: a file of addresses (one per line, `#`
//! comments), re-read when it changes. Withdrawing a balancer from the file
//! is what a BGP withdrawal does to a real router's ECMP group.
//!
//! The file may only name balancers given with `--remote` (their counters
//! exist from the start); a file naming none of them leaves the set as it was.

use std::fs;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use super::config::EncapConfig;
use super::encap::Encapsulator;
use super::prefix::Prefix;

/// How often the file's modification time is looked at.
const CHECK_EVERY: Duration = Duration::from_millis(100);

/// The ECMP group: which of the `--remote` balancers flows are spread over.
#[derive(Debug)]
pub struct EcmpGroup {
    pub known: Vec<Ipv4Addr>,
    /// Positions in `known` of the balancers in the group, in order; the
    /// encapsulator's remote `i` is `known[active[i]]`.
    pub active: Vec<usize>,
    file: Option<RemotesFile>,
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
            key: config.key,
            seed: config.seed,
            vips: config.vip.clone(),
        }
    }

    /// Applies a changed remotes file, if any, to the encapsulator.
    pub fn refresh(&mut self, encapsulator: &mut Encapsulator) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        match file.poll(&self.known) {
            None => {}
            Some(Err(why)) => eprintln!("tunnel encap: remotes file ignored: {why}"),
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
    pub fn poll(&mut self, known: &[Ipv4Addr]) -> Option<Result<Vec<usize>, String>> {
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

/// The positions in `known` of the balancers `text` lists.
pub fn parse(text: &str, known: &[Ipv4Addr]) -> Result<Vec<usize>, String> {
    let mut active = Vec::new();
    for line in text.lines() {
        let entry = line.split('#').next().unwrap_or("").trim();
        if entry.is_empty() {
            continue;
        }
        let addr: Ipv4Addr = entry.parse().map_err(|_| {
            format!("{entry:?} is not an IPv4 address; expected one balancer address per line")
        })?;
        let position = known.iter().position(|k| *k == addr).ok_or_else(|| {
            format!("{addr} was not given with --remote; expected some of the --remote balancers")
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

    fn known() -> Vec<Ipv4Addr> {
        vec![
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
            Ipv4Addr::new(10, 0, 0, 3),
        ]
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
            .contains("\"lb1\" is not an IPv4 address"));
        assert!(parse("# nothing\n\n", &known())
            .unwrap_err()
            .contains("keeping the current set"));
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
