//! Who may use the HTTP API, and how much of it: `RR_API_TOKEN` or
//! `RR_API_TOKEN_FILE`, `RR_API_TOKEN_READS`, `RR_API_HOSTS`,
//! `RR_API_MAX_CONNECTIONS` and `RR_API_RATE`.
//!
//! The API can add a backend, which sends it a share of the traffic: on an
//! address other machines can reach, it needs a token. The token is best
//! given as a file (`RR_API_TOKEN_FILE`), which keeps it out of `ps` and out
//! of the process's environment; it is read once, at start.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Shortest token accepted: 16 characters of `openssl rand -hex 32` are 64
/// bits, too many to guess through a rate-limited API.
pub const MIN_TOKEN_LEN: usize = 16;
/// Longest token accepted (it travels in one header line).
pub const MAX_TOKEN_LEN: usize = 512;
/// Concurrent API connections accepted when `RR_API_MAX_CONNECTIONS` is not
/// given: plenty for operators, scripts and a metrics scraper, and a small
/// share of the file descriptors the balancer raises its limit to.
pub const DEFAULT_MAX_CONNECTIONS: usize = 64;
/// Requests per second per client when `RR_API_RATE` is not given.
pub const DEFAULT_RATE: u32 = 20;

/// The API's access settings.
// The field docs are `--help`'s text, where backticks would show.
#[allow(clippy::doc_markdown)]
#[derive(Debug, Clone, clap::Args)]
pub struct ApiAccessArgs {
    /// Bearer token that POST, PATCH and DELETE on the API require (and
    /// GETs too with --api-token-reads), 16 to 512 visible ASCII characters.
    /// Required when RR_API is not a loopback address. Visible in `ps` as a
    /// flag and to root in the environment: prefer RR_API_TOKEN_FILE.
    #[arg(long, env = "RR_API_TOKEN", value_name = "TOKEN", hide_env_values = true, value_parser = parse_api_token)]
    pub api_token: Option<ApiToken>,

    /// A file holding the API token (surrounding whitespace ignored), read at
    /// start; the alternative to RR_API_TOKEN that stays out of `ps` and the
    /// environment.
    #[arg(long, env = "RR_API_TOKEN_FILE", value_name = "PATH")]
    pub api_token_file: Option<PathBuf>,

    /// Require the token on reads (GET /backends, /stats, /metrics) too;
    /// GET /healthz stays open for routers' and orchestrators' checks.
    #[arg(long, env = "RR_API_TOKEN_READS", value_name = "BOOL", default_value = "0", value_parser = parse_token_reads)]
    pub api_token_reads: bool,

    /// Host names the API answers to besides its own address and localhost,
    /// ';'-separated (e.g. lb1.example.net). Other Host headers are refused,
    /// which stops a web page from reaching the API through DNS rebinding.
    #[arg(long, env = "RR_API_HOSTS", value_name = "NAME;...", default_value = "", hide_default_value = true, value_parser = parse_api_hosts)]
    pub api_hosts: ApiHosts,

    /// Concurrent connections the API accepts (a quarter of them from any
    /// one client); more are answered 503 and closed at once.
    #[arg(long, env = "RR_API_MAX_CONNECTIONS", value_name = "N", default_value_t = DEFAULT_MAX_CONNECTIONS, value_parser = parse_max_connections)]
    pub api_max_connections: usize,

    /// Requests per second each client may send to the API (bursts of twice
    /// that); more are answered 429 with Retry-After.
    #[arg(long, env = "RR_API_RATE", value_name = "N", default_value_t = DEFAULT_RATE, value_parser = parse_rate)]
    pub api_rate: u32,
}

/// The API token. Its `Debug` never shows it, and [`matches`](Self::matches)
/// compares in time that does not depend on where a guess goes wrong.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken(String);

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiToken(<{} characters>)", self.0.len())
    }
}

impl ApiToken {
    /// A token of [`MIN_TOKEN_LEN`] to [`MAX_TOKEN_LEN`] visible ASCII
    /// characters (what an HTTP header carries unchanged).
    pub fn new(token: &str) -> Result<Self, ApiAccessError> {
        let len = token.chars().count();
        if !(MIN_TOKEN_LEN..=MAX_TOKEN_LEN).contains(&len) {
            return Err(ApiAccessError::TokenLength(len));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ApiAccessError::TokenCharacters);
        }
        Ok(Self(token.to_owned()))
    }

    /// Whether `presented` is the token. Every byte of the token is compared
    /// whatever the others hold, and a length difference is folded into the
    /// same result, so the time taken says nothing about a guess.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let expected = self.0.as_bytes();
        let mut difference = u8::from(presented.len() != expected.len());
        for (i, &byte) in expected.iter().enumerate() {
            difference |= byte ^ presented.get(i).copied().unwrap_or(0);
        }
        std::hint::black_box(difference) == 0
    }
}

/// Extra Host names the API answers to, lower-case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiHosts(pub Vec<String>);

/// Why the API's access settings were refused. Each message names the
/// setting and says what to give instead.
#[derive(Debug)]
pub enum ApiAccessError {
    TokenLength(usize),
    TokenCharacters,
    /// Both `RR_API_TOKEN` and `RR_API_TOKEN_FILE`.
    TwoTokens,
    TokenFile {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The file's token is refused (the inner error says why).
    TokenFileContent {
        path: PathBuf,
        error: Box<ApiAccessError>,
    },
    /// A non-loopback `RR_API` without a token.
    Exposed(SocketAddr),
    BadHost(String),
    TokenReads(String),
    MaxConnections(String),
    Rate(String),
}

impl fmt::Display for ApiAccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const TOKEN_HINT: &str = "generate one with `openssl rand -hex 32`";
        match self {
            Self::TokenLength(n) => write!(
                f,
                "RR_API_TOKEN: the token has {n} characters; expected {MIN_TOKEN_LEN} to {MAX_TOKEN_LEN} ({TOKEN_HINT})"
            ),
            Self::TokenCharacters => write!(
                f,
                "RR_API_TOKEN: the token has spaces, control or non-ASCII characters, which a header cannot carry; expected visible ASCII ({TOKEN_HINT})"
            ),
            Self::TwoTokens => f.write_str(
                "RR_API_TOKEN and RR_API_TOKEN_FILE are both given; give one (the file keeps the token out of ps and the environment)",
            ),
            Self::TokenFile { path, error } => write!(
                f,
                "RR_API_TOKEN_FILE: cannot read {}: {error}; expected a file holding the API token",
                path.display()
            ),
            Self::TokenFileContent { path, error } => {
                let why = error.to_string();
                let why = why.strip_prefix("RR_API_TOKEN: ").unwrap_or(&why);
                write!(f, "RR_API_TOKEN_FILE: {}: {why}", path.display())
            }
            Self::Exposed(addr) => write!(
                f,
                "RR_API: {addr} can be reached from other machines, and anyone who reaches the API can add a backend and receive traffic; \
                 set RR_API_TOKEN_FILE (or RR_API_TOKEN) to a token ({TOKEN_HINT}), or listen on 127.0.0.1"
            ),
            Self::BadHost(name) => write!(
                f,
                "RR_API_HOSTS: {name:?} is not a host name; expected names such as lb1.example.net, ';'-separated"
            ),
            Self::TokenReads(v) => write!(
                f,
                "RR_API_TOKEN_READS: {v:?} is not a boolean; expected 1, true or yes to require the token on reads, 0, false or no (default) not to"
            ),
            Self::MaxConnections(v) => write!(
                f,
                "RR_API_MAX_CONNECTIONS: {v:?} is out of range; expected a number of connections from 4 to 10000"
            ),
            Self::Rate(v) => write!(
                f,
                "RR_API_RATE: {v:?} is out of range; expected requests per second per client from 1 to 100000"
            ),
        }
    }
}

impl std::error::Error for ApiAccessError {}

fn parse_api_token(s: &str) -> Result<ApiToken, ApiAccessError> {
    ApiToken::new(s)
}

fn parse_token_reads(s: &str) -> Result<bool, ApiAccessError> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err(ApiAccessError::TokenReads(s.to_owned())),
    }
}

/// Names of letters, digits, '-' and '.', as DNS has them (an IP address
/// needs no entry: the API answers to addresses anyway).
fn parse_api_hosts(s: &str) -> Result<ApiHosts, ApiAccessError> {
    let mut names = Vec::new();
    for entry in super::list_entries(s) {
        let name = entry.to_ascii_lowercase();
        let valid = name.len() <= 253
            && name
                .split('.')
                .all(|label| !label.is_empty() && label.len() <= 63)
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if !valid {
            return Err(ApiAccessError::BadHost(entry.to_owned()));
        }
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(ApiHosts(names))
}

fn parse_max_connections(s: &str) -> Result<usize, ApiAccessError> {
    s.trim()
        .parse()
        .ok()
        .filter(|n| (4..=10_000).contains(n))
        .ok_or_else(|| ApiAccessError::MaxConnections(s.to_owned()))
}

fn parse_rate(s: &str) -> Result<u32, ApiAccessError> {
    s.trim()
        .parse()
        .ok()
        .filter(|n| (1..=100_000).contains(n))
        .ok_or_else(|| ApiAccessError::Rate(s.to_owned()))
}

impl ApiAccessArgs {
    /// The token, from `RR_API_TOKEN` or read now from `RR_API_TOKEN_FILE`,
    /// and whether an API on `listen` may run with what was given: one
    /// reachable from other machines needs a token.
    pub fn token_for(&self, listen: SocketAddr) -> Result<Option<ApiToken>, ApiAccessError> {
        let token = match (&self.api_token, &self.api_token_file) {
            (Some(_), Some(_)) => return Err(ApiAccessError::TwoTokens),
            (Some(token), None) => Some(token.clone()),
            (None, Some(path)) => Some(read_token_file(path)?),
            (None, None) => None,
        };
        if token.is_none() && !listen.ip().is_loopback() {
            return Err(ApiAccessError::Exposed(listen));
        }
        Ok(token)
    }
}

/// The token in `path`, without surrounding whitespace (a trailing newline).
fn read_token_file(path: &Path) -> Result<ApiToken, ApiAccessError> {
    let text = std::fs::read_to_string(path).map_err(|error| ApiAccessError::TokenFile {
        path: path.to_owned(),
        error,
    })?;
    ApiToken::new(text.trim()).map_err(|error| ApiAccessError::TokenFileContent {
        path: path.to_owned(),
        error: Box::new(error),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef0123";

    fn args(token: Option<&str>, file: Option<&Path>) -> ApiAccessArgs {
        ApiAccessArgs {
            api_token: token.map(|t| ApiToken::new(t).unwrap()),
            api_token_file: file.map(Path::to_owned),
            api_token_reads: false,
            api_hosts: ApiHosts::default(),
            api_max_connections: DEFAULT_MAX_CONNECTIONS,
            api_rate: DEFAULT_RATE,
        }
    }

    fn at(addr: &str) -> SocketAddr {
        addr.parse().unwrap()
    }

    #[test]
    fn a_token_matches_itself_only() {
        let token = ApiToken::new(TOKEN).unwrap();
        assert!(token.matches(TOKEN.as_bytes()));
        assert!(!token.matches(b"0123456789abcdef012"), "a prefix");
        assert!(!token.matches(b"0123456789abcdef01234"), "longer");
        assert!(!token.matches(b"1123456789abcdef0123"));
        assert!(!token.matches(b""));
        // A guess that is the token followed by NULs is still wrong.
        assert!(!token.matches(b"0123456789abcdef0123\0\0"));
    }

    #[test]
    fn a_token_is_never_printed() {
        let shown = format!("{:?}", ApiToken::new(TOKEN).unwrap());
        assert!(!shown.contains("0123"), "{shown}");
    }

    #[test]
    fn short_or_unsendable_tokens_are_refused_with_how_to_make_one() {
        let short = ApiToken::new("secret").unwrap_err().to_string();
        assert!(short.starts_with("RR_API_TOKEN: the token has 6 characters; expected 16 to 512"));
        assert!(short.contains("openssl rand -hex 32"), "{short}");
        let spaced = ApiToken::new("0123456789 abcdef0123")
            .unwrap_err()
            .to_string();
        assert!(spaced.contains("spaces"), "{spaced}");
    }

    #[test]
    fn a_loopback_api_may_run_without_a_token_and_others_may_not() {
        assert!(args(None, None)
            .token_for(at("127.0.0.1:9700"))
            .unwrap()
            .is_none());
        assert!(args(None, None)
            .token_for(at("[::1]:9700"))
            .unwrap()
            .is_none());
        for exposed in ["0.0.0.0:9700", "192.0.2.10:9700", "[::]:9700"] {
            let e = args(None, None)
                .token_for(at(exposed))
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with(&format!(
                    "RR_API: {exposed} can be reached from other machines"
                )) && e.contains("set RR_API_TOKEN_FILE (or RR_API_TOKEN)"),
                "{e}"
            );
        }
        let token = args(Some(TOKEN), None)
            .token_for(at("0.0.0.0:9700"))
            .unwrap();
        assert!(token.unwrap().matches(TOKEN.as_bytes()));
    }

    #[test]
    fn the_token_file_is_read_at_start_and_named_when_it_cannot_be() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, format!("{TOKEN}\n")).unwrap();
        let token = args(None, Some(&path)).token_for(at("0.0.0.0:1")).unwrap();
        assert!(token.unwrap().matches(TOKEN.as_bytes()), "newline trimmed");

        let missing = dir.path().join("missing");
        let e = args(None, Some(&missing))
            .token_for(at("127.0.0.1:1"))
            .unwrap_err();
        assert!(
            e.to_string().starts_with(&format!(
                "RR_API_TOKEN_FILE: cannot read {}: ",
                missing.display()
            )),
            "{e}"
        );
        std::fs::write(&path, "short\n").unwrap();
        let e = args(None, Some(&path))
            .token_for(at("127.0.0.1:1"))
            .unwrap_err();
        assert!(
            e.to_string().starts_with(&format!(
                "RR_API_TOKEN_FILE: {}: the token has 5 characters",
                path.display()
            )),
            "{e}"
        );
    }

    #[test]
    fn a_token_and_a_token_file_together_are_refused() {
        let e = args(Some(TOKEN), Some(Path::new("/nonexistent")))
            .token_for(at("127.0.0.1:9700"))
            .unwrap_err();
        assert!(e
            .to_string()
            .starts_with("RR_API_TOKEN and RR_API_TOKEN_FILE are both given"));
    }

    #[test]
    fn hosts_are_names_lower_cased_once_each() {
        assert_eq!(
            parse_api_hosts("LB1.example.net; lb1.example.net;api").unwrap(),
            ApiHosts(vec!["lb1.example.net".into(), "api".into()])
        );
        assert!(parse_api_hosts("evil.example:80")
            .unwrap_err()
            .to_string()
            .starts_with("RR_API_HOSTS: \"evil.example:80\" is not a host name"));
        assert_eq!(parse_api_hosts("").unwrap(), ApiHosts::default());
    }

    #[test]
    fn limits_are_refused_outside_their_ranges() {
        assert_eq!(parse_max_connections("64").unwrap(), 64);
        assert!(parse_max_connections("0").is_err());
        assert!(parse_max_connections("100000").is_err());
        assert_eq!(parse_rate("20").unwrap(), 20);
        assert!(parse_rate("0")
            .unwrap_err()
            .to_string()
            .starts_with("RR_API_RATE: \"0\" is out of range"));
        assert!(parse_token_reads("yes").unwrap());
        assert!(parse_token_reads("maybe").is_err());
    }
}
