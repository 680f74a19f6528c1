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
    /// A BGP router (BIRD) learning routes from peers, ECMP in the kernel.
    pub bgp: Option<super::bgp::BgpEntry>,
}

/// One entry of `links`: the host's interface on a network.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkEntry {
    pub network: Spanned<String>,
    pub address: Spanned<String>,
    pub tbf: Option<Spanned<String>>,
    /// netem on the packets the host sends on this link (its egress, as
    /// netem inside the host would), or a table `{ out = SPEC, in = SPEC }`
    /// with a spec for either direction.
    pub netem: Option<Spanned<NetemEntry>>,
    /// netem on the packets the host sends (as `netem = SPEC`).
    pub netem_out: Option<Spanned<String>>,
    /// netem on the packets the host receives on this link.
    pub netem_in: Option<Spanned<String>>,
    /// The seed of this link's emulator (with `netem`).
    pub seed: Option<Spanned<u64>>,
}

/// `netem = "SPEC"` (the host's egress) or `netem = { out = "SPEC", in =
/// "SPEC" }` (either or both directions).
#[derive(Debug, PartialEq, Eq)]
pub struct NetemEntry {
    /// What the host sends.
    pub out: Option<String>,
    /// What the host receives.
    pub r#in: Option<String>,
}

impl<'de> Deserialize<'de> for NetemEntry {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NetemEntryVisitor)
    }
}

/// Reads a [`NetemEntry`] from either form, with an error naming both.
struct NetemEntryVisitor;

impl<'de> serde::de::Visitor<'de> for NetemEntryVisitor {
    type Value = NetemEntry;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "a netem spec for the packets the host sends (\"delay 10ms\"), or a table \
             { out = \"SPEC\", in = \"SPEC\" } for each direction",
        )
    }

    fn visit_str<E: serde::de::Error>(self, spec: &str) -> Result<NetemEntry, E> {
        Ok(NetemEntry {
            out: Some(spec.to_owned()),
            r#in: None,
        })
    }

    fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> Result<NetemEntry, M::Error> {
        let mut entry = NetemEntry {
            out: None,
            r#in: None,
        };
        while let Some(key) = map.next_key::<String>()? {
            let slot = match key.as_str() {
                "out" => &mut entry.out,
                "in" => &mut entry.r#in,
                _ => return Err(serde::de::Error::unknown_field(&key, &["out", "in"])),
            };
            if slot.replace(map.next_value()?).is_some() {
                return Err(serde::de::Error::duplicate_field("out or in"));
            }
        }
        if entry.out.is_none() && entry.r#in.is_none() {
            return Err(serde::de::Error::invalid_length(0, &self));
        }
        Ok(entry)
    }
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
    fn netem_is_a_spec_for_the_host_s_egress_or_a_table_of_directions() {
        let link = |value: &str| {
            let text = format!(
                "[[host]]\nname = \"a\"\nlinks = [ {{ network = \"n\", address = \"10.0.0.1\", \
                 netem = {value} }} ]\n"
            );
            parse(&text).map(|mut file| file.hosts.remove(0).links.remove(0).netem.unwrap())
        };
        let spec = |text: &str| Some(text.to_owned());
        assert_eq!(
            link("\"delay 10ms\"").unwrap().into_inner(),
            NetemEntry {
                out: spec("delay 10ms"),
                r#in: None
            }
        );
        assert_eq!(
            link("{ in = \"loss 1%\", out = \"delay 5ms\" }")
                .unwrap()
                .into_inner(),
            NetemEntry {
                out: spec("delay 5ms"),
                r#in: spec("loss 1%")
            }
        );
        let error = link("{ inbound = \"loss 1%\" }").unwrap_err();
        assert!(error.message.contains("expected `out` or `in`"), "{error}");
        let error = link("{ }").unwrap_err();
        assert!(error.message.contains("{ out = "), "{error}");
        let error = link("5").unwrap_err();
        assert!(error.message.contains("a netem spec"), "{error}");
    }

    #[test]
    fn broken_syntax_is_refused_at_its_line() {
        let error = parse("prefix = \"t-\"\n[[network]\n").unwrap_err();
        assert_eq!(error.line, 2, "{error}");
    }
}
