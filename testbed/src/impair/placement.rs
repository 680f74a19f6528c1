//! Which packets of a link a netem spec applies to, and where that puts it.
//!
//! netem is an egress qdisc: `tc qdisc add dev eth0 root netem delay 10ms`
//! inside a host delays what the host *sends*, and play applies `--netem`
//! the same way ("added delay for outgoing packets"). So a spec given to a
//! lab means the host's egress unless told otherwise: between two impaired
//! hosts a delay is seen once per direction (a 10 ms spec gives a 20 ms round
//! trip), a one-way stream meets the loss once.
//!
//! This module is the one place where a spec and a [`Direction`] become
//! placements. The kernel mode and the userspace emulator both take theirs
//! from [`LinkSpecs`], so they cannot disagree about what a spec means; they
//! only differ in who applies it:
//!
//! | packets              | kernel (`sch_netem`)                              | userspace emulator |
//! |----------------------|---------------------------------------------------|--------------------|
//! | egress (host sends)  | root qdisc of the host's interface, in its namespace | side A -> side B |
//! | ingress (host gets)  | root qdisc of the link's outer end (the machine's side) | side B -> side A |
//!
//! (The emulator's side A is the link's outer end, where what the host sends
//! arrives; side B leads on to the bridge.)

use clap::ValueEnum;
use serde::{Deserialize, Serialize};

use super::spec::{NetemSpec, SpecError};

/// Which packets of a host's link a spec impairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The packets the host sends, as netem inside the host would.
    #[default]
    Egress,
    /// The packets the host receives.
    Ingress,
    /// Both: between two such hosts every delay and loss counts twice.
    Both,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Self::Egress => "egress",
            Self::Ingress => "ingress",
            Self::Both => "both",
        }
    }
}

/// A link's netem specs by direction, as seen from the host that owns the
/// link; each a spec's text as given (words joined by single spaces).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkSpecs {
    /// Applied to the packets the host sends.
    #[serde(default)]
    pub egress: Option<String>,
    /// Applied to the packets the host receives.
    #[serde(default)]
    pub ingress: Option<String>,
}

/// The two directions of an emulated link, parsed: what the host sends
/// (the emulator's A -> B) and what it receives (B -> A). A direction
/// without a spec passes packets untouched.
#[derive(Debug, Clone, PartialEq)]
pub struct EmulatorSpecs {
    pub from_host: NetemSpec,
    pub to_host: NetemSpec,
}

/// One `sch_netem` qdisc the kernel mode installs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelQdisc {
    /// The namespace of the device; `None`: the machine's.
    pub namespace: Option<String>,
    pub device: String,
    pub spec: String,
}

impl KernelQdisc {
    /// The line for `tc -batch` (in the device's namespace).
    pub fn batch_line(&self) -> String {
        format!("qdisc replace dev {} root netem {}", self.device, self.spec)
    }

    /// The arguments of one `tc` command that installs it.
    pub fn tc_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(namespace) = &self.namespace {
            args.extend(["-n".to_owned(), namespace.clone()]);
        }
        args.extend(["qdisc", "replace", "dev"].map(str::to_owned));
        args.push(self.device.clone());
        args.extend(["root", "netem"].map(str::to_owned));
        args.extend(self.spec.split_whitespace().map(str::to_owned));
        args
    }
}

/// Where a host's link ends: its interface inside the host and the other
/// end, in the machine's namespace.
#[derive(Debug, Clone, Copy)]
pub struct LinkEnds<'a> {
    pub host_namespace: &'a str,
    pub host_interface: &'a str,
    pub outer: &'a str,
}

impl LinkSpecs {
    /// `text` applied in `direction`.
    pub fn new(text: &str, direction: Direction) -> Self {
        let text = Some(text.split_whitespace().collect::<Vec<_>>().join(" "));
        match direction {
            Direction::Egress => Self {
                egress: text,
                ingress: None,
            },
            Direction::Ingress => Self {
                egress: None,
                ingress: text,
            },
            Direction::Both => Self {
                egress: text.clone(),
                ingress: text,
            },
        }
    }

    pub fn is_empty(&self) -> bool {
        self.egress.is_none() && self.ingress.is_none()
    }

    /// `egress delay 10ms, ingress loss 1%` (the directions impaired).
    pub fn describe(&self) -> String {
        [("egress", &self.egress), ("ingress", &self.ingress)]
            .into_iter()
            .filter_map(|(name, spec)| spec.as_ref().map(|spec| format!("{name} {spec}")))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The netem qdiscs of the kernel mode: each direction's spec on the
    /// egress of the end its packets leave by.
    pub fn kernel_qdiscs(&self, ends: LinkEnds<'_>) -> Vec<KernelQdisc> {
        let mut qdiscs = Vec::new();
        if let Some(spec) = &self.egress {
            qdiscs.push(KernelQdisc {
                namespace: Some(ends.host_namespace.to_owned()),
                device: ends.host_interface.to_owned(),
                spec: spec.clone(),
            });
        }
        if let Some(spec) = &self.ingress {
            qdiscs.push(KernelQdisc {
                namespace: None,
                device: ends.outer.to_owned(),
                spec: spec.clone(),
            });
        }
        qdiscs
    }

    /// The userspace emulator's two directions.
    pub fn emulator_specs(&self) -> Result<EmulatorSpecs, SpecError> {
        let parse = |spec: &Option<String>| {
            spec.as_deref()
                .map_or_else(|| Ok(NetemSpec::default()), NetemSpec::parse)
        };
        Ok(EmulatorSpecs {
            from_host: parse(&self.egress)?,
            to_host: parse(&self.ingress)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENDS: LinkEnds<'static> = LinkEnds {
        host_namespace: "tb-h0",
        host_interface: "eth0",
        outer: "tb-v0",
    };

    fn qdiscs(direction: Direction) -> Vec<String> {
        LinkSpecs::new("delay  10ms", direction)
            .kernel_qdiscs(ENDS)
            .iter()
            .map(|q| q.tc_args().join(" "))
            .collect()
    }

    #[test]
    fn egress_is_the_default_as_for_netem_inside_the_host() {
        assert_eq!(Direction::default(), Direction::Egress);
    }

    #[test]
    fn the_kernel_mode_puts_an_egress_spec_on_the_host_s_own_interface_only() {
        assert_eq!(
            qdiscs(Direction::Egress),
            ["-n tb-h0 qdisc replace dev eth0 root netem delay 10ms"]
        );
    }

    #[test]
    fn the_kernel_mode_puts_an_ingress_spec_on_the_outer_end_only() {
        assert_eq!(
            qdiscs(Direction::Ingress),
            ["qdisc replace dev tb-v0 root netem delay 10ms"]
        );
        let specs = LinkSpecs::new("delay 10ms", Direction::Ingress);
        assert_eq!(
            specs.kernel_qdiscs(ENDS)[0].batch_line(),
            "qdisc replace dev tb-v0 root netem delay 10ms"
        );
    }

    #[test]
    fn both_directions_put_the_spec_on_both_ends() {
        assert_eq!(
            qdiscs(Direction::Both),
            [
                "-n tb-h0 qdisc replace dev eth0 root netem delay 10ms",
                "qdisc replace dev tb-v0 root netem delay 10ms"
            ]
        );
    }

    #[test]
    fn the_emulator_impairs_the_same_directions_as_the_kernel_mode() {
        let delayed = NetemSpec::parse("delay 10ms").unwrap();
        let untouched = NetemSpec::default();
        for (direction, from_host, to_host) in [
            (Direction::Egress, &delayed, &untouched),
            (Direction::Ingress, &untouched, &delayed),
            (Direction::Both, &delayed, &delayed),
        ] {
            let specs = LinkSpecs::new("delay 10ms", direction);
            let emulator = specs.emulator_specs().unwrap();
            assert_eq!(&emulator.from_host, from_host, "{direction:?}");
            assert_eq!(&emulator.to_host, to_host, "{direction:?}");
            // The kernel's host-side qdisc exactly when the emulator's
            // A -> B direction is impaired: one planner, two appliers.
            let kernel = specs.kernel_qdiscs(ENDS);
            assert_eq!(
                kernel.iter().any(|q| q.namespace.is_some()),
                specs.egress.is_some()
            );
            assert_eq!(
                kernel.iter().any(|q| q.namespace.is_none()),
                specs.ingress.is_some()
            );
        }
    }

    #[test]
    fn a_link_describes_each_impaired_direction() {
        let specs = LinkSpecs {
            egress: Some("delay 10ms".into()),
            ingress: Some("loss 1%".into()),
        };
        assert_eq!(specs.describe(), "egress delay 10ms, ingress loss 1%");
        assert_eq!(
            LinkSpecs::new("loss 1%", Direction::Ingress).describe(),
            "ingress loss 1%"
        );
        assert!(LinkSpecs::default().is_empty());
    }
}
