//! toxiproxy-cli's output: the proxy table and the toxic listing, with colours and
//! hints on a terminal and plain tab-separated lines otherwise.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::Value;

use crate::proxy::instance::ProxyView;
use crate::proxy::toxic::ToxicView;

const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const BLUE: &str = "\x1b[34m";
const PURPLE: &str = "\x1b[35m";
const NONE: &str = "\x1b[0m";

/// Colours only on a terminal.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub tty: bool,
}

impl Style {
    fn paint(self, colour: &'static str) -> &'static str {
        if self.tty {
            colour
        } else {
            ""
        }
    }

    fn enabled_colour(self, enabled: bool) -> &'static str {
        self.paint(if enabled { GREEN } else { RED })
    }

    fn hint(self, out: &mut String, text: &str) {
        if self.tty {
            let _ = writeln!(
                out,
                "\n{}Hint: {text}{}",
                self.paint(NONE),
                self.paint(NONE)
            );
        }
    }
}

/// A cell padded with tabs to `tabs` eight-column stops, as toxiproxy-cli aligns.
fn cell(out: &mut String, colour: &str, text: &str, tabs: usize) {
    let count = tabs.saturating_sub(text.len() / 8).max(1);
    let _ = write!(out, "{colour}{text}{}", "\t".repeat(count));
}

fn enabled_text(enabled: bool) -> &'static str {
    if enabled {
        "enabled"
    } else {
        "disabled"
    }
}

/// `list`.
pub fn list(proxies: &BTreeMap<String, ProxyView>, style: Style) -> String {
    let mut out = String::new();
    if style.tty {
        let _ = writeln!(
            out,
            "{}Name\t\t\t{}Listen\t\t{}Upstream\t\t{}Enabled\t\t{}Toxics\n{}{}",
            style.paint(GREEN),
            style.paint(BLUE),
            style.paint(YELLOW),
            style.paint(PURPLE),
            style.paint(RED),
            style.paint(NONE),
            "=".repeat(86)
        );
        if proxies.is_empty() {
            let _ = writeln!(out, "{}no proxies{}", style.paint(RED), style.paint(NONE));
            style.hint(&mut out, "create a proxy with `toxiproxy-cli create`");
            return out;
        }
    }
    for proxy in proxies.values() {
        let toxics = match proxy.toxics.len() {
            0 if style.tty => "None".to_owned(),
            count => count.to_string(),
        };
        cell(
            &mut out,
            style.enabled_colour(proxy.enabled),
            &proxy.name,
            3,
        );
        cell(&mut out, style.paint(BLUE), &proxy.listen, 2);
        cell(&mut out, style.paint(YELLOW), &proxy.upstream, 3);
        cell(
            &mut out,
            style.paint(PURPLE),
            enabled_text(proxy.enabled),
            2,
        );
        let _ = writeln!(out, "{}{toxics}{}", style.paint(RED), style.paint(NONE));
    }
    style.hint(
        &mut out,
        "inspect toxics with `toxiproxy-cli inspect <proxyName>`",
    );
    out
}

fn attribute_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn toxics(out: &mut String, toxics: &[&ToxicView], stream: &str, style: Style) {
    if style.tty {
        let _ = writeln!(
            out,
            "{}{stream} toxics:{}",
            style.paint(GREEN),
            style.paint(NONE)
        );
        if toxics.is_empty() {
            let _ = writeln!(
                out,
                "{}Proxy has no {stream} toxics enabled.{}",
                style.paint(RED),
                style.paint(NONE)
            );
            return;
        }
    }
    for toxic in toxics {
        if style.tty {
            let _ = write!(
                out,
                "{}{}:{}\t",
                style.paint(BLUE),
                toxic.name,
                style.paint(NONE)
            );
        } else {
            let _ = write!(out, "{}\t", toxic.name);
        }
        let _ = write!(
            out,
            "type={}\tstream={}\ttoxicity={:.2}\tattributes=[",
            toxic.type_name, toxic.stream, toxic.toxicity
        );
        if let Value::Object(attributes) = &toxic.attributes {
            let sorted: BTreeMap<&String, &Value> = attributes.iter().collect();
            for (key, value) in sorted {
                let _ = write!(out, "\t{key}={}", attribute_text(value));
            }
        }
        out.push_str("\t]\n");
    }
}

/// `inspect`.
pub fn inspect(proxy: &ProxyView, style: Style) -> String {
    let mut out = String::new();
    if !style.tty {
        toxics(
            &mut out,
            &proxy.toxics.iter().collect::<Vec<_>>(),
            "",
            style,
        );
        return out;
    }
    let _ = writeln!(
        out,
        "{}Name: {}{}\t{}Listen: {}{}\t{}Upstream: {}{}",
        style.paint(PURPLE),
        style.paint(NONE),
        proxy.name,
        style.paint(BLUE),
        style.paint(NONE),
        proxy.listen,
        style.paint(YELLOW),
        style.paint(NONE),
        proxy.upstream
    );
    let _ = writeln!(out, "{}{}", style.paint(NONE), "=".repeat(70));
    if proxy.toxics.is_empty() {
        let _ = writeln!(
            out,
            "{}Proxy has no toxics enabled.{}",
            style.paint(RED),
            style.paint(NONE)
        );
    } else {
        let (up, down): (Vec<&ToxicView>, Vec<&ToxicView>) = proxy
            .toxics
            .iter()
            .partition(|toxic| toxic.stream == "upstream");
        toxics(&mut out, &up, "Upstream", style);
        out.push('\n');
        toxics(&mut out, &down, "Downstream", style);
    }
    style.hint(&mut out, "add a toxic with `toxiproxy-cli toxic add`");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::instance::Protocol;
    use serde_json::json;

    fn proxy(toxics: Vec<ToxicView>) -> ProxyView {
        ProxyView {
            name: "redis".into(),
            listen: "127.0.0.1:26379".into(),
            upstream: "localhost:6379".into(),
            enabled: true,
            toxics,
            protocol: Protocol::Tcp,
        }
    }

    fn latency() -> ToxicView {
        ToxicView {
            name: "latency_downstream".into(),
            type_name: "latency".into(),
            stream: "downstream".into(),
            toxicity: 1.0,
            attributes: json!({"latency": 1000, "jitter": 0}),
            clients: vec![],
            duration: None,
        }
    }

    #[test]
    fn plain_list_is_one_tab_aligned_line_per_proxy() {
        let proxies = BTreeMap::from([("redis".to_owned(), proxy(vec![latency()]))]);
        assert_eq!(
            list(&proxies, Style { tty: false }),
            "redis\t\t\t127.0.0.1:26379\tlocalhost:6379\t\tenabled\t\t1\n"
        );
    }

    #[test]
    fn plain_inspect_lists_toxics_with_sorted_attributes() {
        assert_eq!(
            inspect(&proxy(vec![latency()]), Style { tty: false }),
            "latency_downstream\ttype=latency\tstream=downstream\ttoxicity=1.00\tattributes=[\tjitter=0\tlatency=1000\t]\n"
        );
    }

    #[test]
    fn terminal_inspect_splits_streams_and_hints() {
        let text = inspect(&proxy(vec![latency()]), Style { tty: true });
        assert!(
            text.contains("Proxy has no Upstream toxics enabled."),
            "{text}"
        );
        assert!(text.contains("Downstream toxics:"), "{text}");
        assert!(
            text.contains("Hint: add a toxic with `toxiproxy-cli toxic add`"),
            "{text}"
        );
    }
}
