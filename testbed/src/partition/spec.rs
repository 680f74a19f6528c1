//! The partition forms a lab accepts: Jepsen's named grudges, explicit
//! components, one-way cuts, and play's intermittent bucket form.
//!
//! - `halves`, `random-halves`, `one`, `bridge`, `majorities-ring`
//! - `a,b|c,d`: the components cannot reach each other (nodes by name or index)
//! - `a->b` (several with `;`): a's packets to b are dropped, b's to a delivered
//! - `F F ... [interval D] [duration D]`: nodes dealt into buckets of these
//!   fractions (summing to 1), cut from each other for `duration` every
//!   `interval`, dealt again each time
//!
//! Any of them can also come and go at random (`--mtbf`, see `schedule`).

use std::fmt;
use std::time::Duration;

/// A parsed partition spec.
#[derive(Debug, Clone, PartialEq)]
pub enum PartitionSpec {
    Halves,
    RandomHalves,
    One,
    Bridge,
    MajoritiesRing,
    Components(Vec<Vec<String>>),
    OneWay(Vec<(String, String)>),
    Buckets {
        fractions: Vec<f64>,
        interval: Option<Duration>,
        duration: Option<Duration>,
    },
}

/// The spec in the form `parse` accepts (durations as humantime writes
/// them), so a recorded spec reads like the one given.
impl fmt::Display for PartitionSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Halves => f.write_str("halves"),
            Self::RandomHalves => f.write_str("random-halves"),
            Self::One => f.write_str("one"),
            Self::Bridge => f.write_str("bridge"),
            Self::MajoritiesRing => f.write_str("majorities-ring"),
            Self::Components(groups) => {
                let groups: Vec<String> = groups.iter().map(|g| g.join(",")).collect();
                f.write_str(&groups.join("|"))
            }
            Self::OneWay(cuts) => {
                let cuts: Vec<String> = cuts.iter().map(|(a, b)| format!("{a}->{b}")).collect();
                f.write_str(&cuts.join(";"))
            }
            Self::Buckets {
                fractions,
                interval,
                duration,
            } => {
                let fractions: Vec<String> = fractions.iter().map(ToString::to_string).collect();
                f.write_str(&fractions.join(" "))?;
                if let Some(interval) = interval {
                    write!(f, " interval {}", one_word(*interval))?;
                }
                if let Some(duration) = duration {
                    write!(f, " duration {}", one_word(*duration))?;
                }
                Ok(())
            }
        }
    }
}

/// A duration as humantime writes it, without its spaces (`1m26s`, not
/// `1m 26s`): the bucket form is split at whitespace, and humantime reads
/// the units run together as well.
fn one_word(duration: Duration) -> String {
    humantime::format_duration(duration)
        .to_string()
        .replace(' ', "")
}

/// Why a partition spec was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionSpecError {
    pub spec: String,
    pub problem: String,
}

impl fmt::Display for PartitionSpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "partition \"{}\": {}; accepted: halves, random-halves, one, bridge, majorities-ring, \
             a,b|c,d, a->b[;c->d], or bucket fractions like \"0.5 0.5 interval 10s duration 5s\"",
            self.spec, self.problem
        )
    }
}

impl std::error::Error for PartitionSpecError {}

impl PartitionSpec {
    pub fn parse(spec: &str) -> Result<Self, PartitionSpecError> {
        let fail = |problem: String| PartitionSpecError {
            spec: spec.to_string(),
            problem,
        };
        let trimmed = spec.trim();
        match trimmed {
            "halves" => return Ok(Self::Halves),
            "random-halves" => return Ok(Self::RandomHalves),
            "one" => return Ok(Self::One),
            "bridge" => return Ok(Self::Bridge),
            "majorities-ring" => return Ok(Self::MajoritiesRing),
            "" => return Err(fail("it is empty".into())),
            _ => {}
        }
        if trimmed.contains("->") {
            let mut cuts = Vec::new();
            for part in trimmed.split(';').map(str::trim).filter(|p| !p.is_empty()) {
                let (from, to) = part
                    .split_once("->")
                    .ok_or_else(|| fail(format!("\"{part}\" is not of the form a->b")))?;
                let (from, to) = (from.trim(), to.trim());
                if from.is_empty() || to.is_empty() || from == to {
                    return Err(fail(format!("\"{part}\" needs two different nodes")));
                }
                cuts.push((from.to_string(), to.to_string()));
            }
            return Ok(Self::OneWay(cuts));
        }
        if trimmed.contains('|') {
            let components: Vec<Vec<String>> = trimmed
                .split('|')
                .map(|c| {
                    c.split(',')
                        .map(str::trim)
                        .filter(|n| !n.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .collect();
            if components.iter().any(Vec::is_empty) {
                return Err(fail("a component between '|' is empty".into()));
            }
            let mut all: Vec<&String> = components.iter().flatten().collect();
            all.sort();
            if all.windows(2).any(|w| w[0] == w[1]) {
                return Err(fail("a node is in two components".into()));
            }
            return Ok(Self::Components(components));
        }
        parse_buckets(trimmed).map_err(fail)
    }
}

fn parse_buckets(spec: &str) -> Result<PartitionSpec, String> {
    let words: Vec<&str> = spec.split_whitespace().collect();
    let mut fractions = Vec::new();
    let (mut interval, mut duration) = (None, None);
    let mut i = 0;
    while i < words.len() {
        match words[i] {
            key @ ("interval" | "duration") => {
                let value = words
                    .get(i + 1)
                    .ok_or(format!("\"{key}\" needs a time such as 10s"))?;
                let d = humantime::parse_duration(value).map_err(|_| {
                    format!("\"{value}\" after {key} is not a time such as 10s or 500ms")
                })?;
                if key == "interval" {
                    interval = Some(d);
                } else {
                    duration = Some(d);
                }
                i += 2;
            }
            word => {
                let f: f64 = word.parse().map_err(|_| {
                    format!("\"{word}\" is not a grudge name, a node list or a bucket fraction")
                })?;
                if !(f > 0.0 && f <= 1.0) {
                    return Err(format!("bucket fraction {word} is not in (0, 1]"));
                }
                fractions.push(f);
                i += 1;
            }
        }
    }
    if fractions.len() < 2 {
        return Err("the bucket form needs two or more fractions".into());
    }
    let total: f64 = fractions.iter().sum();
    if (total - 1.0).abs() > 1e-6 {
        return Err(format!("bucket fractions add up to {total}, not 1"));
    }
    if let (Some(i), Some(d)) = (interval, duration) {
        if d >= i {
            return Err(format!(
                "duration {d:?} must be shorter than interval {i:?}"
            ));
        }
    }
    Ok(PartitionSpec::Buckets {
        fractions,
        interval,
        duration,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_prints_in_a_form_that_parses_back_to_it() {
        for text in [
            "halves",
            "random-halves",
            "one",
            "bridge",
            "majorities-ring",
            "a,b|c,d",
            "0->1;2->3",
            "0.5 0.5 interval 10s duration 5s",
            "0.25 0.75",
        ] {
            let spec = PartitionSpec::parse(text).unwrap();
            assert_eq!(
                PartitionSpec::parse(&spec.to_string()).unwrap(),
                spec,
                "{text} -> {spec}"
            );
        }
    }

    #[test]
    fn a_duration_of_several_units_prints_as_one_word_that_parses_back() {
        let spec = PartitionSpec::parse("0.5 0.5 interval 3601001ms duration 86s").unwrap();
        assert_eq!(spec.to_string(), "0.5 0.5 interval 1h1s1ms duration 1m26s");
        assert_eq!(PartitionSpec::parse(&spec.to_string()).unwrap(), spec);
    }

    #[test]
    fn every_form_parses() {
        assert_eq!(
            PartitionSpec::parse("halves").unwrap(),
            PartitionSpec::Halves
        );
        assert_eq!(
            PartitionSpec::parse("majorities-ring").unwrap(),
            PartitionSpec::MajoritiesRing
        );
        assert_eq!(
            PartitionSpec::parse("a,b|c,d").unwrap(),
            PartitionSpec::Components(vec![
                vec!["a".into(), "b".into()],
                vec!["c".into(), "d".into()]
            ])
        );
        assert_eq!(
            PartitionSpec::parse("0->1; 2->3").unwrap(),
            PartitionSpec::OneWay(vec![("0".into(), "1".into()), ("2".into(), "3".into())])
        );
        assert_eq!(
            PartitionSpec::parse("0.5 0.5 interval 10s duration 5s").unwrap(),
            PartitionSpec::Buckets {
                fractions: vec![0.5, 0.5],
                interval: Some(Duration::from_secs(10)),
                duration: Some(Duration::from_secs(5))
            }
        );
    }

    #[test]
    fn bad_specs_say_what_is_wrong_and_what_is_accepted() {
        for (spec, says) in [
            ("", "empty"),
            ("halfs", "not a grudge name"),
            ("a,b|", "empty"),
            ("a,b|b,c", "two components"),
            ("a->a", "two different nodes"),
            ("0.5 0.4", "add up to"),
            ("0.5 0.5 interval 5s duration 10s", "shorter than interval"),
            ("0.5 0.5 interval soon", "not a time"),
        ] {
            let e = PartitionSpec::parse(spec).unwrap_err().to_string();
            assert!(e.contains(says), "{spec}: {e}");
            assert!(e.contains("accepted: halves"), "{spec}: {e}");
        }
    }
}
