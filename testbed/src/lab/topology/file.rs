//! The topology file as written: TOML read with serde, every value that is
//! checked later kept with its place in the file, so that an error can point
//! at the line and column of the value at fault.

use std::fmt;

use serde::Deserialize;
use toml::Spanned;

/// A whole topology file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopologyFile {
    /// Start of every object's name; `-p` overrides it.
    pub prefix: Option<Spanned<String>>,
    /// The seed of the netem links without their own: the n-th such link
    /// (from 0, in file order) gets this + n; 1 when absent.
    pub seed: Option<u64>,
    #[serde(default, rename = "network")]
    pub networks: Vec<NetworkEntry>,
    #[serde(default, rename = "host")]
    pub hosts: Vec<HostEntry>,
}

/// `[[network]]`: a subnet the hosts link to.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkEntry {
    pub name: Spanned<String>,
    pub cidr: Spanned<String>,
    /// An address for the machine itself on the network's bridge.
    pub address: Option<Spanned<String>>,
    /// A bridge even with exactly two members (default: those get a direct
    /// veth pair).
    #[serde(default)]
    pub bridge: bool,
}

/// `[[host]]`: a namespace with its links, routes, addresses and commands.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostEntry {
    pub name: Spanned<String>,
    /// `net.ipv4.ip_forward=1` in the host's namespace.
    #[serde(default)]
    pub forward: bool,
    #[serde(default)]
    pub links: Vec<LinkEntry>,
    #[serde(default)]
    pub routes: Vec<Spanned<String>>,
    #[serde(default)]
    pub addresses: Vec<Spanned<String>>,
    #[serde(default)]
    pub commands: Vec<Spanned<String>>,
}

/// One entry of `links`: the host's interface on a network.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkEntry {
    pub network: Spanned<String>,
    pub address: Spanned<String>,
    pub tbf: Option<Spanned<String>>,
    pub netem: Option<Spanned<String>>,
    /// The seed of this link's emulator (with `netem`).
    pub seed: Option<Spanned<u64>>,
}

/// A topology file that cannot be used: where, which field, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologyError {
    /// 1-based; 0 when the error has no place in the file (`-p` values).
    pub line: usize,
    pub column: usize,
    /// The field at fault, e.g. `host "router" links[1].address`.
    pub field: String,
    /// What is wrong and what is accepted.
    pub message: String,
}

impl fmt::Display for TopologyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "line {}, column {}: ", self.line, self.column)?;
        }
        if self.field.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for TopologyError {}

/// Line and column (1-based) of byte `offset` of `text`.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |n| before.len() - n - 1)
        + 1;
    (line, column)
}

/// Reads a topology file's text; syntax errors, unknown fields and values
/// of the wrong type point at their place.
pub fn parse(text: &str) -> Result<TopologyFile, TopologyError> {
    toml::from_str(text).map_err(|error| {
        let (line, column) = error.span().map_or((0, 0), |s| line_column(text, s.start));
        TopologyError {
            line,
            column,
            field: String::new(),
            message: error.message().trim().to_owned(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_count_from_one() {
        let text = "a\nbc\nd";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 3), (2, 2));
        assert_eq!(line_column(text, 5), (3, 1));
    }

    #[test]
    fn an_unknown_field_is_refused_at_its_line_with_the_accepted_ones() {
        let text = "prefix = \"t-\"\n[[host]]\nname = \"a\"\nfoward = true\n";
        let error = parse(text).unwrap_err();
        assert_eq!(error.line, 4, "{error}");
        assert!(error.message.contains("unknown field `foward`"), "{error}");
        assert!(error.message.contains("forward"), "{error}");
    }

    #[test]
    fn a_value_of_the_wrong_type_is_refused_at_its_line() {
        let text = "[[host]]\nname = \"a\"\nforward = \"yes\"\n";
        let error = parse(text).unwrap_err();
        assert_eq!(error.line, 3, "{error}");
        assert!(error.message.contains("boolean"), "{error}");
    }

    #[test]
    fn broken_syntax_is_refused_at_its_line() {
        let error = parse("prefix = \"t-\"\n[[network]\n").unwrap_err();
        assert_eq!(error.line, 2, "{error}");
    }
}
