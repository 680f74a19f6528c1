//! netem's impairment syntax, parsed into a typed spec.
//!
//! Accepted (the words of `tc qdisc ... netem`): `delay TIME [JITTER [CORR]]
//! [distribution uniform|normal|pareto|paretonormal]`, `loss [random] P [CORR]`,
//! `loss state P13 [P31 [P32 [P23 [P14]]]]`, `loss gemodel P [R [1-H [1-K]]]`,
//! `duplicate P [CORR]`, `corrupt P [CORR]`, `reorder P [CORR] [gap N]`,
//! `rate RATE [PACKETOVERHEAD [CELLSIZE [CELLOVERHEAD]]]`, `limit N`, `seed
//! N`. Probabilities are percentages (`1%`, or a bare `1` meaning 1%, as tc
//! reads them); times take `s`, `ms`, `us`, `ns` (or `sec`, `msec`, `usec`,
//! `nsec`; a bare number is microseconds, as in tc); rates take `bit`,
//! `kbit`, `mbit`, `gbit`, `tbit` (and `kibit`...) or `bps`, `kbps`, ...
//! (bytes per second), a bare number being bits per second.
//!
//! Refused as tc refuses them: `reorder` without a delay (netem reorders by
//! sending some packets without the delay the others wait), `distribution`
//! without a delay and a jitter, `loss` twice. Refused because the model
//! does not have them: `slot`, `ecn`.

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
    pub rate: Option<RateSpec>,
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

/// netem's `rate`: packets leave one after another at this rate, each
/// taking `(len + packet_overhead)` bytes, or with a cell size that many
/// whole cells of `cell_size + cell_overhead` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateSpec {
    /// tc's bits per second / 8, truncated.
    pub bytes_per_second: u64,
    pub packet_overhead: i32,
    pub cell_size: u32,
    pub cell_overhead: i32,
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
            rate: None,
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

/// A time: `10ms`, `1.5s`, `100us`, `10msec`, or bare microseconds.
pub fn parse_time(w: &str) -> Option<Duration> {
    let units: [(&str, f64); 12] = [
        ("msecs", 1e-3),
        ("msec", 1e-3),
        ("ms", 1e-3),
        ("usecs", 1e-6),
        ("usec", 1e-6),
        ("us", 1e-6),
        ("nsecs", 1e-9),
        ("nsec", 1e-9),
        ("ns", 1e-9),
        ("secs", 1.0),
        ("sec", 1.0),
        ("s", 1.0),
    ];
    let lower = w.to_ascii_lowercase();
    let (number, scale) = units
        .iter()
        .find_map(|(unit, scale)| lower.strip_suffix(unit).map(|n| (n.to_owned(), *scale)))
        .unwrap_or((lower.clone(), 1e-6));
    if !number.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let v: f64 = number.parse().ok()?;
    (v.is_finite() && v >= 0.0 && v * scale < 3600.0).then(|| Duration::from_secs_f64(v * scale))
}

/// A rate in bits per second, as tc's `get_rate64` reads it.
pub fn parse_rate(w: &str) -> Option<u64> {
    const KI: f64 = 1024.0;
    let units: [(&str, f64); 18] = [
        ("tibit", KI * KI * KI * KI),
        ("gibit", KI * KI * KI),
        ("mibit", KI * KI),
        ("kibit", KI),
        ("tbit", 1e12),
        ("gbit", 1e9),
        ("mbit", 1e6),
        ("kbit", 1e3),
        ("bit", 1.0),
        ("tibps", 8.0 * KI * KI * KI * KI),
        ("gibps", 8.0 * KI * KI * KI),
        ("mibps", 8.0 * KI * KI),
        ("kibps", 8.0 * KI),
        ("tbps", 8e12),
        ("gbps", 8e9),
        ("mbps", 8e6),
        ("kbps", 8e3),
        ("bps", 8.0),
    ];
    let lower = w.to_ascii_lowercase();
    let (number, scale) = units
        .iter()
        .find_map(|(unit, scale)| lower.strip_suffix(unit).map(|n| (n.to_string(), *scale)))
        .unwrap_or((lower.clone(), 1.0));
    if !number.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let v: f64 = number.parse().ok()?;
    let bps = v * scale;
    // Within 1..=1e12 the conversion is exact enough and cannot wrap.
    #[allow(clippy::cast_sign_loss, clippy::cast_possible_truncation)]
    (bps.is_finite() && (8.0..=8e13).contains(&bps)).then_some(bps as u64)
}

/// A word tc's `NEXT_IS_NUMBER` takes for an optional number: a digit first.
fn is_number(w: &str) -> bool {
    w.starts_with(|c: char| c.is_ascii_digit())
}

/// tc's `NEXT_IS_SIGNED_NUMBER`: a digit or `-` first.
fn is_signed_number(w: &str) -> bool {
    w.starts_with(|c: char| c.is_ascii_digit() || c == '-')
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
                "loss" | "drop" => {
                    if out.loss.is_some() {
                        return Err(words.error(position, "one loss model (loss is given twice)"));
                    }
                    out.loss = Some(parse_loss(&mut words)?);
                }
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
                "rate" => out.rate = Some(parse_rate_spec(&mut words)?),
                "slot" | "ecn" => {
                    return Err(words.error(
                        position,
                        "one of delay, loss, duplicate, corrupt, reorder, rate, limit, seed \
                         (netem's slot and ecn are not modelled by the testbed)",
                    ))
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
        if out.reorder.is_some() && out.delay.is_none_or(|d| d.mean.is_zero()) {
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

/// `rate RATE [PACKETOVERHEAD [CELLSIZE [CELLOVERHEAD]]]`.
fn parse_rate_spec(words: &mut Words<'_>) -> Result<RateSpec, SpecError> {
    let bps = words.required("a rate such as 10mbit, 1gbit or 500kbps", parse_rate)?;
    let signed = |w: &str| is_signed_number(w).then(|| w.parse::<i32>().ok()).flatten();
    let mut rate = RateSpec {
        bytes_per_second: bps / 8,
        packet_overhead: 0,
        cell_size: 0,
        cell_overhead: 0,
    };
    if words.peek().is_some_and(is_signed_number) {
        rate.packet_overhead = words.required("a packet overhead in bytes", signed)?;
        if words.peek().is_some_and(is_number) {
            rate.cell_size = words.required("a cell size in bytes", |w| w.parse().ok())?;
            if words.peek().is_some_and(is_signed_number) {
                rate.cell_overhead = words.required("a cell overhead in bytes", signed)?;
            }
        }
    }
    Ok(rate)
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
    // As tc: a correlation may follow a jitter, even a zero one.
    let jitter = words.optional(parse_time);
    let correlation = match jitter {
        Some(_) => words.optional(parse_percent).unwrap_or(0.0),
        None => 0.0,
    };
    let jitter = jitter.unwrap_or(Duration::ZERO);
    let distribution = if words.peek() == Some("distribution") {
        words.next();
        if mean.is_zero() || jitter.is_zero() {
            return Err(words.error(
                words.at - 1,
                "a delay and a jitter before it (tc: distribution specified but no latency and \
                 jitter values)",
            ));
        }
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
            "delay 100ms 10ms 25% distribution normal loss random 1% 20% duplicate 0.5% corrupt 0.1 reorder 25% 50% gap 5 rate 10mbit -14 48 5 limit 200 seed 7",
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
            (s.rate, s.limit, s.seed),
            (
                Some(RateSpec {
                    bytes_per_second: 1_250_000,
                    packet_overhead: -14,
                    cell_size: 48,
                    cell_overhead: 5
                }),
                200,
                Some(7)
            )
        );
        let plain = NetemSpec::parse("rate 1mbit limit 5").unwrap();
        assert_eq!(
            (
                plain.rate.map(|r| (r.bytes_per_second, r.packet_overhead)),
                plain.limit
            ),
            (Some((125_000, 0)), 5)
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
        assert_eq!(parse_rate("1kibit"), Some(1024));
        assert_eq!(parse_rate("64000"), Some(64_000));
        assert_eq!(parse_time("2msec"), Some(Duration::from_millis(2)));
        assert_eq!(parse_time("delay"), None);
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
        assert!(NetemSpec::parse("delay 0ms reorder 5%").is_err());
        let e = NetemSpec::parse("delay 10ms distribution normal").unwrap_err();
        assert!(e.to_string().contains("jitter"), "{e}");
        let e = NetemSpec::parse("loss 1% loss 2%").unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
        let e = NetemSpec::parse("slot 1ms").unwrap_err();
        assert!(e.to_string().contains("not modelled"), "{e}");
        assert!(NetemSpec::parse("").is_err());
        assert!(NetemSpec::parse("limit 0").is_err());
    }
}
