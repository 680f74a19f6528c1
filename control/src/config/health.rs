//! Health-check settings: what to probe on each backend, how often, and how
//! many results in a row flip its state.

use std::fmt;
use std::ops::RangeInclusive;
use std::time::Duration;

use super::error::{ConfigError, Problem, Setting};
use super::values::{parse_duration, parse_number};

/// What a backend is probed with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum HealthCheck {
    /// No probing: every backend counts as up (the default, so that a
    /// balancer configured only with `RR_TARGET_IPS` forwards at once).
    #[default]
    None,
    /// A TCP connect to this port succeeds.
    Tcp { port: u16 },
    /// `GET path` on this port answers 2xx or 3xx.
    Http { port: u16, path: String },
}

impl fmt::Display for HealthCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("none"),
            Self::Tcp { port } => write!(f, "tcp:{port}"),
            Self::Http { port, path } => write!(f, "http:{port}{path}"),
        }
    }
}

/// Intervals and timeouts accepted: fast enough for tests, slow enough to
/// still be a health check.
const PERIOD_RANGE: RangeInclusive<Duration> =
    Duration::from_millis(10)..=Duration::from_secs(3600);
/// Consecutive results accepted for rise and fall.
const COUNT_RANGE: RangeInclusive<u64> = 1..=100;

/// `RR_HEALTH`: `tcp:PORT`, `http:PORT/PATH` (path defaults to `/`) or `none`.
pub fn parse_health_check(s: &str) -> Result<HealthCheck, ConfigError> {
    let invalid = |problem| ConfigError::invalid(Setting::Health, s, problem);
    let t = s.trim();
    if t.eq_ignore_ascii_case("none") {
        return Ok(HealthCheck::None);
    }
    let (kind, rest) = t
        .split_once(':')
        .ok_or_else(|| invalid(Problem::UnknownHealthCheck))?;
    let (port, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(|| invalid(Problem::OutOfRange))?;
    match kind.to_ascii_lowercase().as_str() {
        "tcp" if path.is_empty() => Ok(HealthCheck::Tcp { port }),
        "http" => {
            // The path goes into a request line as is: no spaces or controls.
            if !path.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(invalid(Problem::UnknownHealthCheck));
            }
            let path = if path.is_empty() { "/" } else { path };
            Ok(HealthCheck::Http {
                port,
                path: path.to_owned(),
            })
        }
        _ => Err(invalid(Problem::UnknownHealthCheck)),
    }
}

fn parse_period(setting: Setting, s: &str) -> Result<Duration, ConfigError> {
    let d = parse_duration(setting, s)?;
    if !PERIOD_RANGE.contains(&d) {
        return Err(ConfigError::invalid(setting, s, Problem::OutOfRange));
    }
    Ok(d)
}

pub(super) fn parse_health_interval(s: &str) -> Result<Duration, ConfigError> {
    parse_period(Setting::HealthInterval, s)
}

pub(super) fn parse_health_timeout(s: &str) -> Result<Duration, ConfigError> {
    parse_period(Setting::HealthTimeout, s)
}

pub(super) fn parse_health_rise(s: &str) -> Result<u32, ConfigError> {
    parse_number(Setting::HealthRise, s, COUNT_RANGE).map(|n| n as u32)
}

pub(super) fn parse_health_fall(s: &str) -> Result<u32, ConfigError> {
    parse_number(Setting::HealthFall, s, COUNT_RANGE).map(|n| n as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err<T: fmt::Debug>(r: Result<T, ConfigError>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn health_checks_are_tcp_http_or_none() {
        assert_eq!(parse_health_check("none").unwrap(), HealthCheck::None);
        assert_eq!(
            parse_health_check("tcp:80").unwrap(),
            HealthCheck::Tcp { port: 80 }
        );
        assert_eq!(
            parse_health_check("http:8080/healthz?full=1").unwrap(),
            HealthCheck::Http {
                port: 8080,
                path: "/healthz?full=1".into()
            }
        );
        assert_eq!(
            parse_health_check(" HTTP:80 ").unwrap(),
            HealthCheck::Http {
                port: 80,
                path: "/".into()
            }
        );
    }

    #[test]
    fn a_health_check_prints_as_it_is_written() {
        for s in ["none", "tcp:22", "http:80/", "http:8080/a/b"] {
            assert_eq!(parse_health_check(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn bad_health_checks_name_the_variable_and_the_forms() {
        assert_eq!(
            err(parse_health_check("icmp")),
            "RR_HEALTH: \"icmp\" is not a health check; expected tcp:PORT (connect), \
             http:PORT/PATH (GET, 2xx or 3xx is healthy) or none, with PORT 1..=65535 \
             and PATH printable ASCII without spaces"
        );
        assert!(
            err(parse_health_check("tcp:0")).starts_with("RR_HEALTH: \"tcp:0\" is out of range")
        );
        assert!(err(parse_health_check("tcp:65536")).contains("is out of range"));
        assert!(err(parse_health_check("tcp:80/x")).contains("is not a health check"));
        assert!(err(parse_health_check("http:80/a b")).contains("is not a health check"));
        assert!(err(parse_health_check("udp:53")).contains("is not a health check"));
    }

    #[test]
    fn intervals_and_counts_are_range_checked() {
        assert_eq!(parse_health_interval("1s").unwrap(), Duration::from_secs(1));
        assert_eq!(
            parse_health_timeout("250ms").unwrap(),
            Duration::from_millis(250)
        );
        assert_eq!(
            err(parse_health_interval("1ms")),
            "RR_HEALTH_INTERVAL: \"1ms\" is out of range; expected a duration from 10ms \
             to 1h such as 1s, 500ms or 2 (seconds)"
        );
        assert!(err(parse_health_timeout("0")).starts_with("RR_HEALTH_TIMEOUT: \"0\" is out"));
        assert_eq!(parse_health_rise("2").unwrap(), 2);
        assert_eq!(
            err(parse_health_fall("0")),
            "RR_HEALTH_FALL: \"0\" is out of range; expected a count of checks from 1 to 100"
        );
        assert!(err(parse_health_rise("two")).starts_with("RR_HEALTH_RISE: \"two\" is not a whole"));
    }
}
