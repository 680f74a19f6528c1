//! Token-bucket shaping (`--tbf`) on the bridge side of an instance's link,
//! i.e. on the traffic toward the instance: a typed spec, checked before the
//! lab is built, applied with one `tc -batch` process for the whole lab.

use std::fmt::{self, Write as _};
use std::io::Write;
use std::process::{Command, Stdio};

/// A `tbf` qdisc: `rate R burst B (latency L | limit N)`, values in `tc`'s
/// units (`10mbit`, `32kb`, `50ms`, `1500`). Stored (state files) as its text.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TbfSpec {
    pub rate: String,
    pub burst: String,
    /// `latency L` or `limit N`: tc needs exactly one.
    pub bound: TbfBound,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TbfBound {
    Latency(String),
    Limit(String),
}

/// The tbf forms accepted, for error messages.
pub const ACCEPTED: &str = "expected \"rate R burst B latency L\" (or \"limit N\" for latency), \
                            e.g. \"rate 10mbit burst 32kbit latency 50ms\"";

/// Why a `--tbf` spec was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TbfError {
    pub spec: String,
    pub reason: &'static str,
}

impl fmt::Display for TbfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "--tbf {:?}: {}; {ACCEPTED}", self.spec, self.reason)
    }
}

impl std::error::Error for TbfError {}

/// A tc quantity: digits (with an optional fraction) and a unit of letters.
fn is_quantity(text: &str) -> bool {
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &text[digits.len()..];
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && digits.bytes().filter(|&b| b == b'.').count() <= 1
        && unit.len() <= 5
}

impl std::str::FromStr for TbfSpec {
    type Err = TbfError;

    fn from_str(spec: &str) -> Result<Self, TbfError> {
        let fail = |reason| TbfError {
            spec: spec.to_owned(),
            reason,
        };
        let words: Vec<&str> = spec.split_whitespace().collect();
        if !words.len().is_multiple_of(2) {
            return Err(fail("every parameter needs a value"));
        }
        let (mut rate, mut burst, mut latency, mut limit) = (None, None, None, None);
        for pair in words.chunks(2) {
            let (key, value) = (pair[0], pair[1]);
            if !is_quantity(value) {
                return Err(fail("a value is not a number with a unit"));
            }
            let slot = match key {
                "rate" => &mut rate,
                "burst" | "buffer" | "maxburst" => &mut burst,
                "latency" => &mut latency,
                "limit" => &mut limit,
                _ => return Err(fail("unknown parameter (rate, burst, latency, limit)")),
            };
            if slot.replace(value.to_owned()).is_some() {
                return Err(fail("a parameter is given twice"));
            }
        }
        let bound = match (latency, limit) {
            (Some(latency), None) => TbfBound::Latency(latency),
            (None, Some(limit)) => TbfBound::Limit(limit),
            _ => return Err(fail("give exactly one of latency and limit")),
        };
        Ok(Self {
            rate: rate.ok_or_else(|| fail("rate is missing"))?,
            burst: burst.ok_or_else(|| fail("burst is missing"))?,
            bound,
        })
    }
}

impl TryFrom<String> for TbfSpec {
    type Error = TbfError;

    fn try_from(text: String) -> Result<Self, TbfError> {
        text.parse()
    }
}

impl From<TbfSpec> for String {
    fn from(spec: TbfSpec) -> Self {
        spec.to_string()
    }
}

impl fmt::Display for TbfSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rate {} burst {} ", self.rate, self.burst)?;
        match &self.bound {
            TbfBound::Latency(latency) => write!(f, "latency {latency}"),
            TbfBound::Limit(limit) => write!(f, "limit {limit}"),
        }
    }
}

/// Which spec each of `hosts` instances gets: one spec for all, or one per
/// instance, in order.
pub fn per_instance(specs: &[TbfSpec], hosts: usize) -> Result<Vec<TbfSpec>, String> {
    match specs.len() {
        0 => Ok(Vec::new()),
        1 => Ok(vec![specs[0].clone(); hosts]),
        n if n == hosts => Ok(specs.to_vec()),
        n => Err(format!(
            "{n} --tbf specs for {hosts} instances; give one for all or one per instance"
        )),
    }
}

/// Installs `spec` as the root qdisc of each `(link, spec)`, with one
/// `tc -batch` process.
pub fn apply(links: &[(String, TbfSpec)]) -> Result<(), String> {
    apply_in(None, links)
}

/// [`apply`] for links of network namespace `namespace` (`tc -n`), or of the
/// machine's when `None`.
pub fn apply_in(namespace: Option<&str>, links: &[(String, TbfSpec)]) -> Result<(), String> {
    if links.is_empty() {
        return Ok(());
    }
    let mut batch = String::new();
    for (link, spec) in links {
        // Writing to a String cannot fail.
        let _ = writeln!(batch, "qdisc replace dev {link} root tbf {spec}");
    }
    let mut tc = Command::new("tc");
    if let Some(namespace) = namespace {
        tc.args(["-n", namespace]);
    }
    let mut tc = tc
        .args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting tc (apt-get install iproute2): {e}"))?;
    if let Some(mut stdin) = tc.stdin.take() {
        stdin
            .write_all(batch.as_bytes())
            .map_err(|e| format!("writing to tc: {e}"))?;
    }
    let output = tc.wait_with_output().map_err(|e| format!("tc: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "tc -batch{} failed: {}",
            namespace.map(|n| format!(" in {n}")).unwrap_or_default(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_spec_parses_and_prints_back_in_tc_order() {
        let spec: TbfSpec = "burst 32kbit latency 50ms rate 10mbit".parse().unwrap();
        assert_eq!(spec.to_string(), "rate 10mbit burst 32kbit latency 50ms");
        let spec: TbfSpec = "rate 1.5mbit burst 1540 limit 3000".parse().unwrap();
        assert_eq!(spec.bound, TbfBound::Limit("3000".into()));
    }

    #[test]
    fn incomplete_or_odd_specs_are_refused_with_the_reason() {
        for (spec, reason) in [
            ("rate 10mbit latency 50ms", "burst is missing"),
            (
                "rate 10mbit burst 32kbit",
                "give exactly one of latency and limit",
            ),
            ("rate 10mbit burst", "every parameter needs a value"),
            (
                "rate ten burst 1 latency 1ms",
                "a value is not a number with a unit",
            ),
            (
                "rate 1mbit burst 1k latency 1ms peakrate 2mbit",
                "unknown parameter (rate, burst, latency, limit)",
            ),
            (
                "rate 1mbit rate 2mbit burst 1k latency 1ms",
                "a parameter is given twice",
            ),
            (
                "rate 1mbit burst 1k latency 1ms;reboot",
                "a value is not a number with a unit",
            ),
        ] {
            assert_eq!(
                spec.parse::<TbfSpec>().unwrap_err().reason,
                reason,
                "{spec}"
            );
        }
    }

    #[test]
    fn one_spec_applies_to_all_and_several_must_match_the_instances() {
        let spec: TbfSpec = "rate 1mbit burst 1k latency 1ms".parse().unwrap();
        assert_eq!(
            per_instance(std::slice::from_ref(&spec), 3).unwrap().len(),
            3
        );
        assert!(per_instance(&[spec.clone(), spec.clone()], 3).is_err());
        assert_eq!(per_instance(&[], 3).unwrap(), []);
    }
}
