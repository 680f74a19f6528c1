//! netem's impairment syntax, parsed into a typed spec.
//!
//! Accepted (the words of `tc qdisc ... netem`): `delay TIME [JITTER [CORR]]
//! [distribution uniform|normal|pareto|paretonormal]`, `loss [random] P [CORR]`,
//! `loss state P13 [P31 [P32 [P23 [P14]]]]`, `loss gemodel P [R [1-H [1-K]]]`,
//! `duplicate P [CORR]`, `corrupt P [CORR]`, `reorder P [CORR] [gap N]`,
//! `rate RATE`, `limit N`, `seed N`. Probabilities are percentages (`1%`, or a
//! bare `1` meaning 1%, as tc reads them); times take `s`, `ms`, `us` (a bare
//! number is microseconds, as in tc); rates take `bit`, `kbit`, `mbit`,
//! `gbit` or `bps`, `kbps`, `mbps`, `gbps` (bytes per second).

use std::fmt;
use std::time::Duration;

/// A parsed netem specification.
#[derive(Debug, Clone, PartialEq)]
pub struct NetemSpec {
    pub delay: Option<DelaySpec>,
    pub loss: Option<LossSpec>,
    pub duplicate: Option<Chance>,
    pub corrupt: Option<Chance>,
    pub reorder: Option<ReorderSpec>,
    /// Bits per second.
    pub rate_bps: Option<u64>,
    /// Packets queued in the link at most; netem's default is 1000.
    pub limit: usize,
    pub seed: Option<u64>,
}

/// A probability (0..=1) and netem's correlation with the previous draw (0..=1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Chance {
    pub probability: f64,
    pub correlation: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DelaySpec {
    pub mean: Duration,
    pub jitter: Duration,
    pub correlation: f64,
    pub distribution: Distribution,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distribution {
    Uniform,
    Normal,
    Pareto,
    ParetoNormal,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LossSpec {
    Random(Chance),
    /// The 4-state Markov model (netem `loss state`), transition probabilities.
    State {
        p13: f64,
        p31: f64,
        p32: f64,
        p23: f64,
        p14: f64,
    },
    /// Gilbert-Elliott: good->bad `p`, bad->good `r`, loss in bad `1-h`, loss in good `1-k`.
    GilbertElliott {
        p: f64,
        r: f64,
        one_minus_h: f64,
        one_minus_k: f64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReorderSpec {
    pub chance: Chance,
    /// Every `gap`-th packet is a reorder candidate (1: every packet).
    pub gap: u32,
}

/// Why a spec was refused: the word at fault and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub spec: String,
    /// 1-based position of the word in the spec.
    pub position: usize,
    pub word: String,
    pub expected: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.word.is_empty() {
            write!(
                f,
                "netem spec \"{}\": missing word {} ({})",
                self.spec, self.position, self.expected
            )
        } else {
            write!(
                f,
                "netem spec \"{}\": word {} \"{}\" is not accepted here; expected {}",
                self.spec, self.position, self.word, self.expected
            )
        }
    }
}

impl std::error::Error for SpecError {}

impl Default for NetemSpec {
    fn default() -> Self {
        Self {
            delay: None,
            loss: None,
            duplicate: None,
            corrupt: None,
            reorder: None,
            rate_bps: None,
            limit: 1000,
            seed: None,
        }
    }
}

/// A cursor over the spec's words that knows where it is, for errors.
struct Words<'a> {
    spec: &'a str,
    list: Vec<&'a str>,
    at: usize,
}

impl<'a> Words<'a> {
    fn next(&mut self) -> Option<&'a str> {
        let w = self.list.get(self.at).copied();
        if w.is_some() {
            self.at += 1;
        }
        w
    }

    fn peek(&self) -> Option<&'a str> {
        self.list.get(self.at).copied()
    }

    fn error(&self, position: usize, expected: &str) -> SpecError {
        SpecError {
            spec: self.spec.to_string(),
            position: position + 1,
            word: self.list.get(position).copied().unwrap_or("").to_string(),
            expected: expected.to_string(),
        }
    }

    /// The next word parsed by `parse`, or an error naming it.
    fn required<T>(
        &mut self,
        expected: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<T, SpecError> {
        let position = self.at;
        self.next()
            .and_then(&parse)
            .ok_or_else(|| self.error(position, expected))
    }

    /// The next word if `parse` accepts it (an optional argument), else nothing consumed.
    fn optional<T>(&mut self, parse: impl Fn(&str) -> Option<T>) -> Option<T> {
        let value = self.peek().and_then(parse)?;
        self.at += 1;
        Some(value)
    }
}

const KEYWORDS: [&str; 10] = [
    "delay",
    "loss",
    "duplicate",
    "corrupt",
    "reorder",
    "rate",
    "limit",
    "seed",
    "distribution",
    "gap",
];

fn not_keyword(w: &str) -> Option<&str> {
    (!KEYWORDS.contains(&w)).then_some(w)
}

/// A percentage, `1%` or `1`, as a probability in 0..=1.
pub fn parse_percent(w: &str) -> Option<f64> {
    let number = w.strip_suffix('%').unwrap_or(w);
    let v: f64 = not_keyword(number)?.parse().ok()?;
    (0.0..=100.0).contains(&v).then_some(v / 100.0)
}

/// A time: `10ms`, `1.5s`, `100us`, or bare microseconds.
pub fn parse_time(w: &str) -> Option<Duration> {
    let (number, scale) = if let Some(n) = w.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = w.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = w.strip_suffix("ns") {
        (n, 1e-9)
    } else if let Some(n) = w.strip_suffix('s') {
        (n, 1.0)
    } else {
        (w, 1e-6)
    };
    let v: f64 = number.parse().ok()?;
    (v.is_finite() && v >= 0.0 && v * scale < 3600.0).then(|| Duration::from_secs_f64(v * scale))
}

/// A rate in bits per second.
pub fn parse_rate(w: &str) -> Option<u64> {
    let units: [(&str, f64); 8] = [
        ("gbit", 1e9),
        ("mbit", 1e6),
        ("kbit", 1e3),
        ("bit", 1.0),
        ("gbps", 8e9),
        ("mbps", 8e6),
        ("kbps", 8e3),
        ("bps", 8.0),
    ];
    let lower = w.to_ascii_lowercase();
    let (number, scale) = units
        .iter()
        .find_map(|(unit, scale)| lower.strip_suffix(unit).map(|n| (n.to_string(), *scale)))?;
    let v: f64 = number.parse().ok()?;
    let bps = v * scale;
    // Within 1..=1e12 the conversion is exact enough and cannot wrap.
    #[allow(clippy::cast_sign_loss, clippy::cast_possible_truncation)]
    (bps.is_finite() && (1.0..=1e12).contains(&bps)).then_some(bps as u64)
}

fn parse_count(w: &str) -> Option<u64> {
    w.parse().ok()
}

impl NetemSpec {
    /// Parses netem's syntax; an error names the word that is wrong.
    pub fn parse(spec: &str) -> Result<Self, SpecError> {
        let mut words = Words {
            spec,
            list: spec.split_whitespace().collect(),
            at: 0,
        };
        let mut out = Self::default();
        if words.list.is_empty() {
            return Err(words.error(
                0,
                "one of delay, loss, duplicate, corrupt, reorder, rate, limit, seed",
            ));
        }
        while let Some(keyword) = words.next() {
            let position = words.at - 1;
            match keyword {
                "delay" => out.delay = Some(parse_delay(&mut words)?),
                "loss" | "drop" => out.loss = Some(parse_loss(&mut words)?),
                "duplicate" => out.duplicate = Some(parse_chance(&mut words)?),
                "corrupt" => out.corrupt = Some(parse_chance(&mut words)?),
                "reorder" => {
                    let chance = parse_chance(&mut words)?;
                    let gap = if words.peek() == Some("gap") {
                        words.next();
                        let g = words.required("a gap of 1 or more packets", parse_count)?;
                        u32::try_from(g).ok().filter(|g| *g >= 1).ok_or_else(|| {
                            words.error(words.at - 1, "a gap of 1 or more packets")
                        })?
                    } else {
                        1
                    };
                    out.reorder = Some(ReorderSpec { chance, gap });
                }
                "rate" => {
                    out.rate_bps = Some(
                        words.required("a rate such as 10mbit, 1gbit or 500kbps", parse_rate)?,
                    );
                }
                "limit" => {
                    let n = words.required("a packet count of 1 or more", parse_count)?;
                    out.limit = usize::try_from(n)
                        .ok()
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| words.error(words.at - 1, "a packet count of 1 or more"))?;
                }
                "seed" => out.seed = Some(words.required("an unsigned 64-bit seed", parse_count)?),
                _ => {
                    return Err(words.error(
                        position,
                        "one of delay, loss, duplicate, corrupt, reorder, rate, limit, seed",
                    ))
                }
            }
        }
        if out.reorder.is_some() && out.delay.is_none() {
            return Err(SpecError {
                spec: spec.to_string(),
                position: 1,
                word: "reorder".into(),
                expected:
                    "a delay as well: netem reorders by sending some packets without the delay"
                        .into(),
            });
        }
        Ok(out)
    }
}

fn parse_chance(words: &mut Words<'_>) -> Result<Chance, SpecError> {
    let probability = words.required("a percentage such as 1% or 0.5%", parse_percent)?;
    let correlation = words.optional(parse_percent).unwrap_or(0.0);
    Ok(Chance {
        probability,
        correlation,
    })
}

fn parse_delay(words: &mut Words<'_>) -> Result<DelaySpec, SpecError> {
    let mean = words.required("a time such as 10ms, 100us or 1s", parse_time)?;
    let jitter = words.optional(parse_time).unwrap_or(Duration::ZERO);
    let correlation = if jitter.is_zero() {
        0.0
    } else {
        words.optional(parse_percent).unwrap_or(0.0)
    };
    let distribution = if words.peek() == Some("distribution") {
        words.next();
        words.required("uniform, normal, pareto or paretonormal", |w| match w {
            "uniform" => Some(Distribution::Uniform),
            "normal" => Some(Distribution::Normal),
            "pareto" => Some(Distribution::Pareto),
            "paretonormal" => Some(Distribution::ParetoNormal),
            _ => None,
        })?
    } else {
        Distribution::Uniform
    };
    Ok(DelaySpec {
        mean,
        jitter,
        correlation,
        distribution,
    })
}

fn parse_loss(words: &mut Words<'_>) -> Result<LossSpec, SpecError> {
    match words.peek() {
        Some("state") => {
            words.next();
            let p13 = words.required("the p13 percentage", parse_percent)?;
            let p31 = words.optional(parse_percent).unwrap_or(1.0 - p13);
            let p32 = words.optional(parse_percent).unwrap_or(0.0);
            let p23 = words.optional(parse_percent).unwrap_or(1.0);
            let p14 = words.optional(parse_percent).unwrap_or(0.0);
            Ok(LossSpec::State {
                p13,
                p31,
                p32,
                p23,
                p14,
            })
        }
        Some("gemodel") => {
            words.next();
            let p = words.required("the p (good to bad) percentage", parse_percent)?;
            let r = words.optional(parse_percent).unwrap_or(1.0 - p);
            let one_minus_h = words.optional(parse_percent).unwrap_or(1.0);
            let one_minus_k = words.optional(parse_percent).unwrap_or(0.0);
            Ok(LossSpec::GilbertElliott {
                p,
                r,
                one_minus_h,
                one_minus_k,
            })
        }
        Some("random") => {
            words.next();
            Ok(LossSpec::Random(parse_chance(words)?))
        }
        _ => Ok(LossSpec::Random(parse_chance(words)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_spec_parses_into_every_field() {
        let s = NetemSpec::parse(
            "delay 100ms 10ms 25% distribution normal loss random 1% 20% duplicate 0.5% corrupt 0.1 reorder 25% 50% gap 5 rate 10mbit limit 200 seed 7",
        )
        .unwrap();
        let d = s.delay.unwrap();
        assert_eq!(
            (d.mean, d.jitter),
            (Duration::from_millis(100), Duration::from_millis(10))
        );
        assert!((d.correlation - 0.25).abs() < 1e-12);
        assert_eq!(d.distribution, Distribution::Normal);
        assert_eq!(
            s.loss,
            Some(LossSpec::Random(Chance {
                probability: 0.01,
                correlation: 0.2
            }))
        );
        assert!((s.duplicate.unwrap().probability - 0.005).abs() < 1e-12);
        assert!((s.corrupt.unwrap().probability - 0.001).abs() < 1e-12);
        let r = s.reorder.unwrap();
        assert_eq!(
            (r.chance.probability, r.chance.correlation, r.gap),
            (0.25, 0.5, 5)
        );
        assert_eq!(
            (s.rate_bps, s.limit, s.seed),
            (Some(10_000_000), 200, Some(7))
        );
    }

    #[test]
    fn loss_models_take_netem_defaults_for_missing_words() {
        assert_eq!(
            NetemSpec::parse("loss state 1%").unwrap().loss,
            Some(LossSpec::State {
                p13: 0.01,
                p31: 0.99,
                p32: 0.0,
                p23: 1.0,
                p14: 0.0
            })
        );
        assert_eq!(
            NetemSpec::parse("loss gemodel 1% 10% 70%").unwrap().loss,
            Some(LossSpec::GilbertElliott {
                p: 0.01,
                r: 0.1,
                one_minus_h: 0.7,
                one_minus_k: 0.0
            })
        );
        assert_eq!(
            NetemSpec::parse("loss 2%").unwrap().loss,
            Some(LossSpec::Random(Chance {
                probability: 0.02,
                correlation: 0.0
            }))
        );
    }

    #[test]
    fn units_read_as_tc_reads_them() {
        assert_eq!(parse_time("250"), Some(Duration::from_micros(250)));
        assert_eq!(parse_time("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_rate("100kbps"), Some(800_000));
        assert_eq!(parse_rate("1Gbit"), Some(1_000_000_000));
        assert_eq!(parse_percent("150%"), None);
    }

    #[test]
    fn errors_point_at_the_word() {
        let e = NetemSpec::parse("delay 10xs").unwrap_err();
        assert_eq!((e.position, e.word.as_str()), (2, "10xs"));
        assert!(e.to_string().contains("a time such as 10ms"), "{e}");
        let e = NetemSpec::parse("delay 10ms loss").unwrap_err();
        assert_eq!(e.position, 4);
        assert!(e.to_string().contains("missing word 4"), "{e}");
        let e = NetemSpec::parse("jitter 5ms").unwrap_err();
        assert_eq!((e.position, e.word.as_str()), (1, "jitter"));
        let e = NetemSpec::parse("rate fast").unwrap_err();
        assert!(e.to_string().contains("10mbit"), "{e}");
        assert!(NetemSpec::parse("reorder 5%")
            .unwrap_err()
            .to_string()
            .contains("delay"));
        assert!(NetemSpec::parse("").is_err());
        assert!(NetemSpec::parse("limit 0").is_err());
    }
}
