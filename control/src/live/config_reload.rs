//! The `--config` file's services at start and on every SIGHUP: the file is
//! read and checked whole first; a bad file changes nothing (its errors are
//! logged with their lines), a good one is applied as a difference
//! ([`Publisher::set_services`]): one table, untouched services' flows and
//! Maglev tables kept.
//!
//! Only `[[service]]` sections are reloaded; the other settings (device,
//! workers, API, ...) take effect at the next start.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::Args as _;
use tracing::{info, warn};

use super::neighbours::{NextHop, Resolver};
use super::{next_hops, LiveArgs};
use crate::backends::Publisher;
use crate::config::{file, MacAddr};

/// How often the SIGHUP flag is looked at.
const TICK: Duration = Duration::from_millis(100);

/// Set by the SIGHUP handler, taken by [`reload_on_sighup`].
static HANGUP: AtomicBool = AtomicBool::new(false);

/// Every `RR_*` variable the live balancer reads: what a file may set.
pub fn known_settings() -> Vec<String> {
    LiveArgs::augment_args(clap::Command::new("rusty_rail"))
        .get_arguments()
        .filter_map(|arg| arg.get_env())
        .map(|env| env.to_string_lossy().into_owned())
        .filter(|env| env != "RR_CONFIG")
        .collect()
}

/// Reads and checks `path`, then makes its services the published ones;
/// returns how many there are. On any error nothing changes.
pub fn apply_services(path: &Path, publisher: &Publisher) -> Result<usize, String> {
    let file = file::load(path, &known_settings()).map_err(|e| e.to_string())?;
    publisher
        .set_services(&file.services)
        .map_err(|e| format!("{}: the services cannot be applied: {e}", path.display()))?;
    Ok(file.services.len())
}

/// Resolves the next hops of the backends the file added (the default
/// service's were resolved with the first table), waiting a little as for
/// those, so that services forward from the first packet.
pub fn resolve_at_start(
    resolver: &mut Resolver,
    publisher: &Publisher,
    static_macs: &BTreeMap<IpAddr, MacAddr>,
) {
    let unresolved: Vec<IpAddr> = publisher
        .backends()
        .iter()
        .filter(|b| b.mac.is_none())
        .map(|b| b.addr)
        .collect();
    let hops = next_hops::resolve_at_start(resolver, &unresolved);
    for addr in unresolved {
        let is_static = static_macs.contains_key(&addr);
        next_hops::report_next_hop(addr, is_static, hops.get(&addr));
        let mac = static_macs
            .get(&addr)
            .map(|m| m.0)
            .or_else(|| hops.get(&addr).and_then(NextHop::mac));
        if mac.is_some() {
            // The backend was just added: it cannot be unknown.
            let _ = publisher.set_mac(addr, mac);
        }
    }
}

extern "C" fn on_hangup(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    HANGUP.store(true, Ordering::Relaxed);
}

/// Reloads `path`'s services on every SIGHUP until the task is dropped.
pub async fn reload_on_sighup(path: PathBuf, publisher: Publisher) {
    // SAFETY: `on_hangup` only stores to an atomic, which is
    // async-signal-safe; the handler stays valid for the process's life (a
    // plain function). `sa_mask` is emptied before use.
    let installed = unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_hangup as extern "C" fn(libc::c_int) as usize;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(std::ptr::addr_of_mut!(action.sa_mask));
        libc::sigaction(
            libc::SIGHUP,
            std::ptr::addr_of!(action),
            std::ptr::null_mut(),
        ) == 0
    };
    if !installed {
        warn!(
            "cannot catch SIGHUP ({}); reload through the API instead",
            std::io::Error::last_os_error()
        );
        return;
    }
    let mut tick = tokio::time::interval(TICK);
    loop {
        tick.tick().await;
        if HANGUP.swap(false, Ordering::Relaxed) {
            reload_logged(&path, &publisher);
        }
    }
}

/// One reload, its outcome logged.
pub fn reload_logged(path: &Path, publisher: &Publisher) {
    match apply_services(path, publisher) {
        Ok(count) => info!(
            file = %path.display(),
            services = count,
            generation = publisher.generation(),
            "configuration reloaded"
        ),
        Err(e) => warn!("configuration not reloaded, nothing changed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;
    use crate::backends::{BackendSet, TableSettings};

    fn publisher() -> Publisher {
        publisher_with(None)
    }

    fn publisher_with(lb_ipv6: Option<Ipv6Addr>) -> Publisher {
        let settings = TableSettings {
            lb_ipv4: Ipv4Addr::new(192, 0, 2, 10),
            lb_ipv6,
            lb_mac: [2, 0, 0, 0, 0, 1],
            vips: Vec::new(),
            seed: 7,
            table_size: 1009,
            mtu: 1500,
        };
        Publisher::new(settings, BackendSet::default()).unwrap()
    }

    fn file_with(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        file
    }

    const TWO: &str = "device = \"lo\"\n[[service]]\nname = \"a\"\nvip = \"192.0.2.1\"\nbackends = [\"10.2.0.1\"]\ntable_size = 251\n\n[[service]]\nname = \"b\"\nvip = \"192.0.2.2\"\nbackends = [\"10.3.0.1\", \"10.3.0.2\"]\ntable_size = 251\n";

    #[test]
    fn the_balancer_s_own_settings_are_the_ones_a_file_may_set() {
        let known = known_settings();
        for env in [
            "RR_DEVICE",
            "RR_TARGET_IPS",
            "RR_WORKERS",
            "RR_API_TOKEN_FILE",
        ] {
            assert!(known.iter().any(|k| k == env), "{env} missing: {known:?}");
        }
    }

    #[test]
    fn a_file_s_services_are_published_and_a_bad_file_changes_nothing() {
        let p = publisher();
        let good = file_with(TWO);
        assert_eq!(apply_services(good.path(), &p), Ok(2));
        let generation = p.generation();
        let bad = file_with(&TWO.replace("192.0.2.2", "192.0.2.1"));
        let e = apply_services(bad.path(), &p).unwrap_err();
        assert!(e.contains("same VIP"), "{e}");
        assert_eq!(p.generation(), generation);
        assert_eq!(p.handle().load().services.len(), 2);
        let unreadable = apply_services(Path::new("/nonexistent/rrsv.toml"), &p).unwrap_err();
        assert!(unreadable.contains("cannot read"), "{unreadable}");
    }

    const IPV6_BACKENDS: &str = "[[service]]\nname = \"v6\"\nvip = \"192.0.2.6\"\nbackends = [\"[fd00:195:2::21]:2\", \"fd00:195:2::22\"]\ntable_size = 251\n";

    #[test]
    fn a_file_s_ipv6_backends_need_the_balancer_s_ipv6_address() {
        let without = publisher();
        let file = file_with(IPV6_BACKENDS);
        let e = apply_services(file.path(), &without).unwrap_err();
        assert!(
            e.contains("backend fd00:195:2::21 is IPv6, but the balancer has no IPv6 address")
                && e.contains("RR_LB_IPV6"),
            "{e}"
        );
        assert_eq!(without.generation(), 1, "nothing changed");

        let with = publisher_with(Some("fd00:195:2::10".parse().unwrap()));
        assert_eq!(apply_services(file.path(), &with), Ok(1));
        let table = with.handle().load();
        let service = &with.services().0[0];
        let first = with.backend(service.members[0]).unwrap();
        assert_eq!(first.addr, "fd00:195:2::21".parse::<IpAddr>().unwrap());
        assert_eq!(first.weight, 2);
        assert!(table.backends()[usize::from(first.slot)].is_ipv6);
    }
}
