//! A `[[topology]]` from a `testbed up` topology file (`file = "..."`),
//! instead of one the runner generates from counts.
//!
//! The file is a lab like any other `testbed up` takes (its links may carry
//! `netem` or `tbf`, its networks any addresses), whose hosts play the
//! experiment's roles by their names: `r` the router (`forward = true`),
//! `c1`, `c2`... the clients, `lb1`... the balancers, `s1`... the servers,
//! each role numbered from 1 without gaps, every host but `r` with one link,
//! the clients on one network of the router's, the balancers and servers on
//! another. The counts of the `[[topology]]`, when written, take the first
//! so many of each role (one file serves one to four balancers); when not,
//! every host of the role. The runner sets the lab's prefix and seed and
//! adds what a run needs (the VIP on the balancers of a full proxy, a link
//! fault's impairment, the router's BGP), so the file names none of that.
//!
//! A file that does not fit is refused with its path, the line of the host
//! at fault and what is accepted.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use crate::lab::topology::TopologyPlan;

/// What a role file is accepted as, for error messages.
pub const ACCEPTED: &str = "hosts named r (the router, forward = true), c1.. (clients), \
    lb1.. (balancers) and s1.. (servers), each role numbered from 1 without gaps, every host \
    but r with one link, the clients on one network of r's, the balancers and servers on \
    another";

/// A checked role file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleFile {
    pub path: PathBuf,
    pub text: String,
    pub clients: usize,
    pub balancers: usize,
    pub servers: usize,
    /// The addresses of the whole file's roles.
    pub addresses: RoleAddresses,
}

/// Where each role is in a role file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleAddresses {
    /// The router on the clients' network, and on the balancers' and servers'.
    pub router_front: Ipv4Addr,
    pub router_back: Ipv4Addr,
    pub clients: Vec<Ipv4Addr>,
    pub balancers: Vec<Ipv4Addr>,
    pub servers: Vec<Ipv4Addr>,
}

/// A host of a role: its number, address and network.
type Member = (usize, Ipv4Addr, String);

/// The 1-based line of host `name`'s `name = "..."` in `text` (1 when not found).
fn line_of(text: &str, name: &str) -> usize {
    let quoted = format!("\"{name}\"");
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            l.starts_with("name") && l.contains(&quoted)
        })
        .map_or(1, |i| i + 1)
}

/// The role and number of a host name: `("lb", 2)` for `lb2`.
fn role_of(name: &str) -> Option<(&str, usize)> {
    let digits = name.trim_start_matches(|c: char| c.is_ascii_lowercase());
    let role = &name[..name.len() - digits.len()];
    let n: usize = digits.parse().ok().filter(|&n| n > 0)?;
    (matches!(role, "c" | "lb" | "s") && !digits.starts_with('0')).then_some((role, n))
}

impl RoleFile {
    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading topology file {}: {e}", path.display()))?;
        Self::check(path, text)
    }

    /// Checks `text`, read from `path`.
    pub fn check(path: &Path, text: String) -> Result<Self, String> {
        let shown = path.display();
        let plan = TopologyPlan::from_toml(&text, None).map_err(|e| format!("{shown}: {e}"))?;
        let at = |name: &str, problem: String| {
            format!(
                "{shown}, line {}: {problem}; accepted: {ACCEPTED}",
                line_of(&text, name)
            )
        };
        let router = plan.host("r").ok_or_else(|| {
            format!("{shown}: no host named r (the router); accepted: {ACCEPTED}")
        })?;
        if !router.forward {
            return Err(at("r", "host r does not forward (forward = true)".into()));
        }
        let mut roles: [(&str, Vec<Member>); 3] =
            [("c", Vec::new()), ("lb", Vec::new()), ("s", Vec::new())];
        for host in plan.hosts.iter().filter(|h| h.name != "r") {
            let Some((role, n)) = role_of(&host.name) else {
                return Err(at(
                    &host.name,
                    format!("host `{}` plays no role", host.name),
                ));
            };
            let [link] = host.interfaces.as_slice() else {
                return Err(at(
                    &host.name,
                    format!(
                        "host `{}` has {} links, not one",
                        host.name,
                        host.interfaces.len()
                    ),
                ));
            };
            if let Some((_, list)) = roles.iter_mut().find(|(r, _)| *r == role) {
                list.push((n, link.address, link.network.clone()));
            }
        }
        let mut found = Vec::new();
        for (role, list) in &mut roles {
            list.sort_by_key(|(n, _, _)| *n);
            if list.is_empty() {
                return Err(format!("{shown}: no host {role}1; accepted: {ACCEPTED}"));
            }
            for (i, (n, _, _)) in list.iter().enumerate() {
                if *n != i + 1 {
                    let name = format!("{role}{n}");
                    return Err(at(
                        &name,
                        format!("host `{name}` comes without {role}{}", i + 1),
                    ));
                }
            }
            found.push(list.clone());
        }
        let router_on = |network: &str| {
            router
                .interfaces
                .iter()
                .find(|i| i.network == network)
                .map(|i| i.address)
        };
        let front = found[0][0].2.clone();
        let back = found[1][0].2.clone();
        let on_network = |list: &[Member], role: &str, network: &str| {
            for (n, _, net) in list {
                if net != network {
                    let name = format!("{role}{n}");
                    return Err(at(
                        &name,
                        format!("host `{name}` is on network `{net}`, not `{network}`"),
                    ));
                }
            }
            Ok(())
        };
        on_network(&found[0], "c", &front)?;
        on_network(&found[1], "lb", &back)?;
        on_network(&found[2], "s", &back)?;
        if front == back {
            return Err(at(
                "c1",
                format!("the clients and the balancers share network `{front}`"),
            ));
        }
        let (Some(router_front), Some(router_back)) = (router_on(&front), router_on(&back)) else {
            return Err(at(
                "r",
                format!("host r is not on both `{front}` and `{back}`"),
            ));
        };
        let addresses = |list: &[Member]| list.iter().map(|e| e.1).collect();
        Ok(Self {
            path: path.to_owned(),
            clients: found[0].len(),
            balancers: found[1].len(),
            servers: found[2].len(),
            addresses: RoleAddresses {
                router_front,
                router_back,
                clients: addresses(&found[0]),
                balancers: addresses(&found[1]),
                servers: addresses(&found[2]),
            },
            text,
        })
    }

    /// The run's topology file: this one with `prefix` and `seed`, only the
    /// first `clients`, `balancers` and `servers` of each role, and `edit`
    /// applied to each kept host's table (the runner's additions).
    pub fn for_run(
        &self,
        prefix: &str,
        seed: u64,
        counts: (usize, usize, usize),
        edit: &dyn Fn(&str, &mut toml::Table),
    ) -> Result<String, String> {
        let mut table: toml::Table = self
            .text
            .parse()
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        table.insert("prefix".into(), prefix.into());
        // TOML integers are signed: the top bit goes.
        table.insert(
            "seed".into(),
            toml::Value::Integer(i64::try_from(seed >> 1).unwrap_or(0)),
        );
        if let Some(toml::Value::Array(hosts)) = table.get_mut("host") {
            hosts.retain(|host| {
                let name = host.get("name").and_then(toml::Value::as_str).unwrap_or("");
                match role_of(name) {
                    Some(("c", n)) => n <= counts.0,
                    Some(("lb", n)) => n <= counts.1,
                    Some(("s", n)) => n <= counts.2,
                    _ => true,
                }
            });
            for host in hosts.iter_mut() {
                if let toml::Value::Table(host) = host {
                    let name = host
                        .get("name")
                        .and_then(toml::Value::as_str)
                        .unwrap_or("")
                        .to_owned();
                    edit(&name, host);
                }
            }
        }
        toml::to_string(&table).map_err(|e| format!("{}: {e}", self.path.display()))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::experiment::file::ExperimentFile;

    pub const GOOD: &str = r#"prefix = "x-"
[[network]]
name = "clients"
cidr = "10.186.1.0/24"
bridge = true
[[network]]
name = "servers"
cidr = "10.186.2.0/24"
bridge = true
[[host]]
name = "r"
forward = true
links = [ { network = "clients", address = "10.186.1.1" }, { network = "servers", address = "10.186.2.1" } ]
[[host]]
name = "c1"
links = [ { network = "clients", address = "10.186.1.11", netem = "delay 5ms" } ]
routes = [ "default via 10.186.1.1" ]
[[host]]
name = "lb1"
links = [ { network = "servers", address = "10.186.2.11" } ]
routes = [ "default via 10.186.2.1" ]
[[host]]
name = "lb2"
links = [ { network = "servers", address = "10.186.2.12" } ]
routes = [ "default via 10.186.2.1" ]
[[host]]
name = "s1"
links = [ { network = "servers", address = "10.186.2.41" } ]
routes = [ "default via 10.186.2.1" ]
"#;

    fn check(text: &str) -> Result<RoleFile, String> {
        RoleFile::check(Path::new("lab.toml"), text.to_owned())
    }

    #[test]
    fn a_file_with_every_role_gives_its_counts_and_addresses() {
        let file = check(GOOD).unwrap();
        assert_eq!((file.clients, file.balancers, file.servers), (1, 2, 1));
        assert_eq!(file.addresses.router_front, Ipv4Addr::new(10, 186, 1, 1));
        assert_eq!(file.addresses.router_back, Ipv4Addr::new(10, 186, 2, 1));
        assert_eq!(file.addresses.balancers[1], Ipv4Addr::new(10, 186, 2, 12));
    }

    #[test]
    fn a_file_that_does_not_fit_is_refused_with_its_path_line_and_what_is_accepted() {
        for (from, to, line, words) in [
            ("name = \"lb2\"", "name = \"lb3\"", 23, "`lb3` comes without lb2"),
            ("name = \"s1\"", "name = \"db1\"", 27, "`db1` plays no role"),
            ("forward = true\n", "", 11, "does not forward"),
            (
                "network = \"servers\", address = \"10.186.2.41\" } ]\nroutes = [ \"default via 10.186.2.1\"",
                "network = \"clients\", address = \"10.186.1.41\" } ]\nroutes = [ \"default via 10.186.1.1\"",
                27,
                "`s1` is on network `clients`, not `servers`",
            ),
        ] {
            assert!(GOOD.contains(from), "{from}");
            let e = check(&GOOD.replacen(from, to, 1)).unwrap_err();
            assert!(e.starts_with(&format!("lab.toml, line {line}: ")), "{e}");
            assert!(e.contains(words) && e.contains(ACCEPTED), "{e}");
        }
        let e = check(&GOOD.replacen("name = \"c1\"", "name = \"c1\"\nlinx = 1", 1)).unwrap_err();
        assert!(e.starts_with("lab.toml: line 16"), "{e}");
        let e = check(&GOOD.replace("name = \"r\"", "name = \"gw\"")).unwrap_err();
        assert!(e.contains("no host named r"), "{e}");
    }

    #[test]
    fn an_experiment_s_topology_file_gives_the_counts_not_written_and_refuses_more() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("lab.toml"), GOOD).unwrap();
        let small = crate::experiment::file::tests::SMALL;
        let with = |entry: &str| {
            small.replacen(
                "[[topology]]\nname = \"one\"\nservers = 2",
                &format!("[[topology]]\nname = \"one\"\n{entry}"),
                1,
            )
        };
        let experiment =
            with("file = \"lab.toml\"\nbalancers = 1").replace("target = 2", "target = 1");
        let file = ExperimentFile::parse_in(&experiment, dir.path()).unwrap();
        let t = &file.topologies[0];
        assert_eq!((t.clients, t.balancers, t.servers), (1, 1, 1));
        assert!(t.roles.is_some());
        let e = ExperimentFile::parse_in(&with("file = \"lab.toml\"\nservers = 2"), dir.path())
            .unwrap_err();
        assert_eq!(e.field, "topology \"one\" servers");
        assert!(e.message.contains("lab.toml has 1; accepted 1 to 1"), "{e}");
        let e = ExperimentFile::parse_in(&with("file = \"nope.toml\""), dir.path()).unwrap_err();
        assert_eq!(e.field, "topology \"one\" file");
        assert!(e.message.contains("nope.toml"), "{e}");
        std::fs::write(
            dir.path().join("bad.toml"),
            GOOD.replace("\"lb2\"", "\"lb3\""),
        )
        .unwrap();
        let e = ExperimentFile::parse_in(&with("file = \"bad.toml\""), dir.path()).unwrap_err();
        assert!(e.message.contains("bad.toml, line 23: host `lb3`"), "{e}");
    }

    #[test]
    fn a_run_takes_the_first_hosts_of_each_role_with_its_prefix_and_additions() {
        let file = check(GOOD).unwrap();
        let text = file
            .for_run("rrex7-", 10, (1, 1, 1), &|name, host| {
                if name == "lb1" {
                    host.insert("addresses".into(), vec!["10.186.9.1/32 dev lo"].into());
                }
            })
            .unwrap();
        let plan = TopologyPlan::from_toml(&text, None).unwrap();
        let names: Vec<&str> = plan.hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["r", "c1", "lb1", "s1"]);
        assert_eq!(plan.prefix, "rrex7-");
        assert_eq!(plan.hosts[2].addresses.len(), 1, "{text}");
        assert_eq!(
            plan.hosts[1].interfaces[0].netem.egress.as_deref(),
            Some("delay 5ms")
        );
        assert_eq!(plan.hosts[1].interfaces[0].netem_seed, Some(5));
    }
}
