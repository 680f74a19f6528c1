//! `--config FILE`: the balancer's settings and its services in TOML.
//!
//! Every top-level key is an `RR_*` setting named without the prefix, in
//! lower case (`device = "eth0"` is `RR_DEVICE`); a table's keys add the
//! table's name (`[api] token_file = ...` is `RR_API_TOKEN_FILE`). Arrays
//! are `;`-separated lists (`target_ips = ["10.1.0.1", "10.1.0.2:3"]`).
//! The environment overrides the file and flags override both, so the
//! file is applied by setting the variables the environment does not.
//!
//! `[[service]]` sections describe services: a VIP, optionally a protocol
//! and port, backends, a health check, hash fields and a table size.
//!
//! The whole file is checked before anything is used, and every error is
//! reported with its line and field, not only the first.

use std::fmt;
use std::net::IpAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use dataplane::forwarding::{
    BackendSpec, ForwardingSpec, ForwardingTable, HashFields, ServiceSpec,
};
use dataplane::maglev::DEFAULT_TABLE_SIZE;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::health::{parse_health_check, HealthCheck};
use super::targets::{parse_targets, TargetSpec};

/// One setting the file gives: the variable it stands for and its value as
/// the variable would hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSetting {
    pub env: String,
    pub value: String,
    pub line: usize,
}

/// One `[[service]]` section, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfig {
    pub name: String,
    pub vip: IpAddr,
    pub protocol: Option<u8>,
    pub port: Option<u16>,
    pub backends: Vec<TargetSpec>,
    /// `None`: the balancer's `RR_HEALTH`.
    pub health: Option<HealthCheck>,
    pub table_size: u32,
    pub hash: HashFields,
    /// Where the section starts, for errors found later (on reload).
    pub line: usize,
}

/// A checked configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigFile {
    pub settings: Vec<FileSetting>,
    pub services: Vec<ServiceConfig>,
}

/// One thing wrong with a file: where, which field, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    /// 1-based; 0 when the file could not be read at all.
    pub line: usize,
    /// The field's path, `service[2].port`, or empty for the file itself.
    pub field: String,
    pub message: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.field.is_empty()) {
            (0, _) => write!(f, "{}", self.message),
            (line, true) => write!(f, "line {line}: {}", self.message),
            (line, false) => write!(f, "line {line}: {}: {}", self.field, self.message),
        }
    }
}

/// Every error in a file, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileErrors {
    pub path: PathBuf,
    pub errors: Vec<FileError>,
}

impl fmt::Display for FileErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}: {e}", self.path.display())?;
        }
        Ok(())
    }
}

impl std::error::Error for FileErrors {}

/// Reads and checks `path`; `known` are the `RR_*` variables the balancer
/// has (a setting naming another is an error).
pub fn load(path: &Path, known: &[String]) -> Result<ConfigFile, FileErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| FileErrors {
        path: path.to_owned(),
        errors: vec![FileError {
            line: 0,
            field: String::new(),
            message: format!("cannot read the configuration file: {e}"),
        }],
    })?;
    parse(&text, known).map_err(|errors| FileErrors {
        path: path.to_owned(),
        errors,
    })
}

/// Checks a file's text; see [`load`].
pub fn parse(text: &str, known: &[String]) -> Result<ConfigFile, Vec<FileError>> {
    let mut reader = Reader {
        text,
        errors: Vec::new(),
    };
    let table = match DeTable::parse(text) {
        Ok(table) => table,
        Err(e) => {
            let line = e.span().map_or(1, |span| reader.line(&span));
            return Err(vec![FileError {
                line,
                field: String::new(),
                message: format!("not valid TOML: {}", e.message().trim_end()),
            }]);
        }
    };
    let mut file = ConfigFile::default();
    for (key, value) in table.get_ref() {
        if key.get_ref() == "service" {
            file.services = reader.services(value);
        } else {
            reader.setting(&[key.get_ref()], value, known, &mut file.settings);
        }
    }
    file.settings.sort_by_key(|s| s.line);
    reader.check_services_together(&file.services);
    if reader.errors.is_empty() {
        Ok(file)
    } else {
        reader.errors.sort_by_key(|e| e.line);
        Err(reader.errors)
    }
}

impl ConfigFile {
    /// Sets each setting's variable where the environment has none, so that
    /// the environment and flags override the file. Call before any thread
    /// starts (the environment is process-wide).
    pub fn apply_to_environment(&self) {
        for setting in &self.settings {
            if std::env::var_os(&setting.env).is_none() {
                std::env::set_var(&setting.env, &setting.value);
            }
        }
    }
}

impl ServiceConfig {
    /// The dataplane's description of the service, its backends in the
    /// given slots and with the given next hops.
    pub fn spec(&self, backends: Vec<BackendSpec>) -> ServiceSpec {
        ServiceSpec {
            name: self.name.clone(),
            vip: self.vip,
            protocol: self.protocol,
            port: self.port,
            backends,
            table_size: self.table_size,
            hash: self.hash,
            // Control gives the service its counter when it applies it.
            counter: dataplane::forwarding::ServiceCounter::default(),
        }
    }
}

/// Walks the parsed file, collecting errors with their lines.
struct Reader<'t> {
    text: &'t str,
    errors: Vec<FileError>,
}

impl Reader<'_> {
    fn line(&self, span: &Range<usize>) -> usize {
        let end = span.start.min(self.text.len());
        self.text[..end].matches('\n').count() + 1
    }

    fn error(&mut self, span: &Range<usize>, field: &str, message: String) {
        let line = self.line(span);
        self.errors.push(FileError {
            line,
            field: field.to_owned(),
            message,
        });
    }

    /// A top-level setting (or a table of them) at key path `path`.
    fn setting(
        &mut self,
        path: &[&str],
        value: &Spanned<DeValue<'_>>,
        known: &[String],
        out: &mut Vec<FileSetting>,
    ) {
        let field = path.join(".");
        if let DeValue::Table(table) = value.get_ref() {
            for (key, value) in table {
                let mut deeper = path.to_vec();
                deeper.push(key.get_ref());
                self.setting(&deeper, value, known, out);
            }
            return;
        }
        let env = format!("RR_{}", path.join("_").to_ascii_uppercase());
        if !known.contains(&env) {
            self.error(
                &value.span(),
                &field,
                format!(
                    "no setting {env}; a key is an RR_* setting without the prefix, in lower case \
                     (device, target_ips, api_token_file or [api] token_file, ...), or [[service]]"
                ),
            );
            return;
        }
        match scalar_text(value.get_ref()) {
            Some(text) => out.push(FileSetting {
                env,
                value: text,
                line: self.line(&value.span()),
            }),
            None => self.error(
                &value.span(),
                &field,
                format!(
                    "a {} is not accepted here; give a string, a number, true/false or an array of them",
                    value.get_ref().type_str()
                ),
            ),
        }
    }

    /// `service = [...]`: every section, each checked on its own.
    fn services(&mut self, value: &Spanned<DeValue<'_>>) -> Vec<ServiceConfig> {
        let DeValue::Array(sections) = value.get_ref() else {
            self.error(
                &value.span(),
                "service",
                "services are [[service]] sections (an array of tables)".into(),
            );
            return Vec::new();
        };
        sections
            .iter()
            .enumerate()
            .filter_map(|(i, section)| {
                let field = format!("service[{i}]");
                if let DeValue::Table(table) = section.get_ref() {
                    self.service(&field, &section.span(), table)
                } else {
                    self.error(&section.span(), &field, "a service is a table".into());
                    None
                }
            })
            .collect()
    }

    fn service(
        &mut self,
        field: &str,
        span: &Range<usize>,
        table: &DeTable<'_>,
    ) -> Option<ServiceConfig> {
        let before = self.errors.len();
        let mut service = ServiceConfig {
            name: String::new(),
            vip: IpAddr::from([0, 0, 0, 0]),
            protocol: None,
            port: None,
            backends: Vec::new(),
            health: None,
            table_size: DEFAULT_TABLE_SIZE,
            hash: HashFields::FiveTuple,
            line: self.line(span),
        };
        let (mut has_name, mut has_vip) = (false, false);
        for (key, value) in table {
            let key = key.get_ref().as_ref();
            let at = value.span();
            let field = format!("{field}.{key}");
            let parsed = match key {
                "name" => {
                    has_name = true;
                    text(value).map(|name| name.clone_into(&mut service.name))
                }
                "vip" => {
                    has_vip = true;
                    text(value).and_then(|vip| {
                        service.vip = vip.parse().map_err(|_| {
                            format!("{vip:?} is not an IP address; give an IPv4 or IPv6 address")
                        })?;
                        Ok(())
                    })
                }
                "protocol" => protocol(value).map(|p| service.protocol = Some(p)),
                "port" => integer(value, 1..=65535).map(|p| service.port = Some(p as u16)),
                // IPv6 ones too: "[2001:db8::1]:3" or "2001:db8::1".
                "backends" => list_text(value).and_then(|list| {
                    let targets = parse_targets(&list).map_err(|e| e.to_string())?;
                    service.backends = targets;
                    Ok(())
                }),
                "health" => text(value).and_then(|h| {
                    let check = parse_health_check(h).map_err(|e| e.to_string())?;
                    service.health = Some(check);
                    Ok(())
                }),
                // RR_TABLE_SIZE's range: a bigger table costs seconds to
                // build and hundreds of MB, for each service an API call adds.
                "table_size" => integer(value, super::values::TABLE_SIZE_RANGE)
                    .map(|size| service.table_size = size as u32),
                "hash" => text(value).and_then(|hash| {
                    service.hash = match hash {
                        "5-tuple" | "five_tuple" => HashFields::FiveTuple,
                        "source" | "source_address" => HashFields::SourceAddress,
                        other => {
                            return Err(format!(
                                "{other:?} is not a hash; use \"5-tuple\" (default) or \"source\""
                            ))
                        }
                    };
                    Ok(())
                }),
                _ => Err(
                    "unknown field; a service has name, vip, protocol, port, backends, health, \
                     table_size and hash"
                        .into(),
                ),
            };
            if let Err(message) = parsed {
                self.error(&at, &field, message);
            }
        }
        for (present, what) in [(has_name, "name"), (has_vip, "vip")] {
            if !present {
                self.error(
                    span,
                    field,
                    format!("a service needs a {what} (name = \"web\", vip = \"192.0.2.1\")"),
                );
            }
        }
        if service.port.is_some() && service.protocol.is_none() {
            self.error(
                span,
                &format!("{field}.port"),
                "a port needs a protocol: add protocol = \"tcp\" or \"udp\", or remove the port"
                    .into(),
            );
        }
        (self.errors.len() == before).then_some(service)
    }

    /// What only all services together can tell: one name each, one VIP,
    /// protocol and port each, each table buildable (size prime, above the
    /// backend count).
    fn check_services_together(&mut self, services: &[ServiceConfig]) {
        let mut owner = std::collections::BTreeMap::new();
        for (i, service) in services.iter().enumerate() {
            for target in &service.backends {
                if let Some(first) = owner.insert(target.addr, &service.name) {
                    self.errors.push(FileError {
                        line: service.line,
                        field: format!("service[{i}].backends"),
                        message: format!(
                            "backend {} is also a backend of service {first:?}; \
                             a backend address belongs to one service",
                            target.addr
                        ),
                    });
                    return;
                }
            }
        }
        for (i, service) in services.iter().enumerate() {
            let alone = std::slice::from_ref(service);
            if let Err(e) = build_check(alone) {
                self.errors.push(FileError {
                    line: service.line,
                    field: format!("service[{i}]"),
                    message: e,
                });
                return;
            }
        }
        if let Err(e) = build_check(services) {
            // Which service: the error names it.
            let line = services
                .iter()
                .rev()
                .find(|s| e.contains(&format!("{:?}", s.name)))
                .map_or(1, |s| s.line);
            self.errors.push(FileError {
                line,
                field: "service".into(),
                message: e,
            });
        }
    }
}

/// Builds a throwaway table of `services` (slots numbered in order, every
/// backend resolved) to find what the dataplane would refuse.
fn build_check(services: &[ServiceConfig]) -> Result<(), String> {
    let mut slot = 0u16;
    let mut specs = Vec::with_capacity(services.len());
    for (index, service) in services.iter().enumerate() {
        let mut backends = Vec::with_capacity(service.backends.len());
        for target in &service.backends {
            backends.push(BackendSpec {
                slot,
                addr: target.addr,
                weight: target.weight,
                mac: Some([2, 0, 0, 0, 0, 0]),
                generation: 0,
            });
            slot = slot
                .checked_add(1)
                .ok_or_else(|| "more than 65535 backends across all services".to_owned())?;
        }
        // Counter ids numbered in order too: more services than the
        // workers have counter rows for is refused here.
        let id = u16::try_from(index).unwrap_or(u16::MAX);
        specs.push(ServiceSpec {
            counter: dataplane::forwarding::ServiceCounter { id, generation: 0 },
            ..service.spec(backends)
        });
    }
    let spec = ForwardingSpec {
        lb_ipv4: [10, 0, 0, 1].into(),
        // Whether the balancer has an IPv6 address for IPv6 backends is
        // known only where it runs (at start and on reload), not here.
        lb_ipv6: Some(std::net::Ipv6Addr::LOCALHOST),
        lb_mac: [2, 0, 0, 0, 0, 1],
        vips: Vec::new(),
        backends: Vec::new(),
        seed: 0,
        table_size: 2,
        mtu: 1500,
        generation: 1,
    };
    ForwardingTable::build_with_services(&spec, &specs, None)
        .map(drop)
        .map_err(|e| e.to_string())
}

fn text<'v>(value: &'v Spanned<DeValue<'_>>) -> Result<&'v str, String> {
    value
        .get_ref()
        .as_str()
        .ok_or_else(|| format!("expected a string, found a {}", value.get_ref().type_str()))
}

/// A string, or an array of strings joined with `;`.
fn list_text(value: &Spanned<DeValue<'_>>) -> Result<String, String> {
    match value.get_ref() {
        DeValue::String(s) => Ok(s.to_string()),
        DeValue::Array(items) => items
            .iter()
            .map(|item| text(item).map(str::to_owned))
            .collect::<Result<Vec<_>, _>>()
            .map(|items| items.join(";")),
        other => Err(format!(
            "expected an array of \"ip[:weight]\" strings, found a {}",
            other.type_str()
        )),
    }
}

fn integer(
    value: &Spanned<DeValue<'_>>,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, String> {
    let Some(int) = value.get_ref().as_integer() else {
        return Err(format!(
            "expected a number, found a {}",
            value.get_ref().type_str()
        ));
    };
    u64::from_str_radix(&int.as_str().replace('_', ""), int.radix())
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            format!(
                "{} is out of range; use {} to {}",
                int.as_str(),
                range.start(),
                range.end()
            )
        })
}

fn protocol(value: &Spanned<DeValue<'_>>) -> Result<u8, String> {
    if value.get_ref().is_integer() {
        return integer(value, 0..=255).map(|p| p as u8);
    }
    match text(value)?.to_ascii_lowercase().as_str() {
        "tcp" => Ok(6),
        "udp" => Ok(17),
        other => Err(format!(
            "{other:?} is not a protocol; use \"tcp\", \"udp\" or an IP protocol number"
        )),
    }
}

/// A setting's value as its variable would hold it.
fn scalar_text(value: &DeValue<'_>) -> Option<String> {
    match value {
        DeValue::String(s) => Some(s.to_string()),
        DeValue::Integer(i) => Some(i.as_str().replace('_', "")),
        DeValue::Float(f) => Some(f.as_str().to_owned()),
        DeValue::Boolean(b) => Some(b.to_string()),
        DeValue::Array(items) => items
            .iter()
            .map(|item| match item.get_ref() {
                DeValue::Array(_) | DeValue::Table(_) => None,
                scalar => scalar_text(scalar),
            })
            .collect::<Option<Vec<_>>>()
            .map(|items| items.join(";")),
        DeValue::Datetime(_) | DeValue::Table(_) => None,
    }
}

#[cfg(test)]
mod tests;
