//! `testbed toxiproxy-cli`: Toxiproxy's command line client, with its commands, flags,
//! aliases and output, for our server or Toxiproxy's. Named after the tool it
//! replaces so that scripts only swap the binary: `toxiproxy-cli X` becomes
//! `testbed toxiproxy-cli X`.

pub mod client;
pub mod render;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{ArgAction, Args, Subcommand};
use serde_json::{Map, Value};

use client::Client;
use render::Style;

/// Toxiproxy command line client (list, inspect, create, toggle, delete, toxic ...).
#[derive(Debug, Clone, Args)]
#[command(disable_help_flag = true)]
pub struct ToxiproxyCliArgs {
    /// Toxiproxy host to connect to.
    #[arg(
        short = 'h',
        long,
        env = "TOXIPROXY_URL",
        default_value = "http://localhost:8474",
        global = true
    )]
    pub host: String,

    /// Show help.
    #[arg(long, action = ArgAction::Help, global = true)]
    pub help: Option<bool>,

    #[command(subcommand)]
    pub command: CliCommand,
}

/// toxiproxy-cli's commands.
#[derive(Debug, Clone, Subcommand)]
pub enum CliCommand {
    /// List all proxies.
    #[command(visible_aliases = ["l", "li", "ls"], disable_help_flag = true)]
    List,
    /// Inspect a single proxy.
    #[command(visible_aliases = ["i", "ins"], disable_help_flag = true)]
    Inspect { proxy: String },
    /// Create a new proxy.
    #[command(visible_aliases = ["c", "new"], disable_help_flag = true)]
    Create {
        /// Proxy will listen on this address.
        #[arg(short = 'l', long)]
        listen: String,
        /// Proxy will forward to this address.
        #[arg(short = 'u', long)]
        upstream: String,
        proxy: String,
    },
    /// Toggle enabled status on a proxy.
    #[command(visible_alias = "tog", disable_help_flag = true)]
    Toggle { proxy: String },
    /// Delete a proxy.
    #[command(visible_alias = "d", disable_help_flag = true)]
    Delete { proxy: String },
    /// Add, remove or update a toxic.
    #[command(visible_alias = "t", subcommand, disable_help_flag = true)]
    Toxic(ToxicCommand),
}

/// `toxic` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum ToxicCommand {
    /// Add a new toxic.
    #[command(visible_alias = "a", disable_help_flag = true)]
    Add {
        /// Name of the toxic [default: <type>_<stream>].
        #[arg(short = 'n', long = "toxicName")]
        toxic_name: Option<String>,
        /// Type of toxic.
        #[arg(short = 't', long = "type")]
        toxic_type: String,
        /// Toxicity of toxic, a float between 0 and 1 [default: 1.0].
        #[arg(long, visible_alias = "tox")]
        toxicity: Option<String>,
        /// Toxic attribute in key=value format (repeatable).
        #[arg(short = 'a', long = "attribute")]
        attributes: Vec<String>,
        /// Add toxic to upstream.
        #[arg(short = 'u', long)]
        upstream: bool,
        /// Add toxic to downstream (the default).
        #[arg(short = 'd', long)]
        downstream: bool,
        proxy: String,
    },
    /// Update an enabled toxic.
    #[command(visible_alias = "u", disable_help_flag = true)]
    Update {
        /// Name of the toxic.
        #[arg(short = 'n', long = "toxicName")]
        toxic_name: String,
        /// Toxicity of toxic, a float between 0 and 1.
        #[arg(long, visible_alias = "tox")]
        toxicity: Option<String>,
        /// Toxic attribute in key=value format (repeatable).
        #[arg(short = 'a', long = "attribute")]
        attributes: Vec<String>,
        proxy: String,
    },
    /// Remove an enabled toxic.
    #[command(visible_aliases = ["r", "delete", "d"], disable_help_flag = true)]
    Remove {
        /// Name of the toxic.
        #[arg(short = 'n', long = "toxicName")]
        toxic_name: String,
        proxy: String,
    },
}

/// A command's failure: the message toxiproxy-cli prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliFailure(pub String);

/// `key=value` pairs as JSON: numbers where the value is one, strings otherwise;
/// entries without `=` are skipped, as toxiproxy-cli does.
pub fn parse_attributes(pairs: &[String]) -> Map<String, Value> {
    pairs
        .iter()
        .filter_map(|pair| pair.split_once('='))
        .map(|(key, value)| {
            let json = if let Ok(integer) = value.parse::<i64>() {
                Value::from(integer)
            } else if let Ok(float) = value.parse::<f64>() {
                Value::from(float)
            } else {
                Value::from(value)
            };
            (key.to_owned(), json)
        })
        .collect()
}

fn parse_toxicity(text: Option<&str>) -> Result<Option<f64>, CliFailure> {
    match text {
        None => Ok(None),
        Some(text) => match text.parse::<f64>() {
            Ok(value) if (0.0..=1.0).contains(&value) => Ok(Some(value)),
            _ => Err(CliFailure(format!(
                "toxicity should be a float between 0 and 1, got {text:?}."
            ))),
        },
    }
}

/// Runs one command against the server; returns what to print.
pub fn run(args: &ToxiproxyCliArgs, style: Style) -> Result<String, CliFailure> {
    let client = Client::new(&args.host);
    let fail = |context: String| {
        move |error: client::ClientError| CliFailure(format!("{context}: {error}"))
    };
    match &args.command {
        CliCommand::List => {
            let proxies = client
                .proxies()
                .map_err(fail("Failed to retrieve proxies".into()))?;
            Ok(render::list(&proxies, style))
        }
        CliCommand::Inspect { proxy } => {
            let view = client
                .proxy(proxy)
                .map_err(fail(format!("Failed to retrieve proxy {proxy}")))?;
            Ok(render::inspect(&view, style))
        }
        CliCommand::Create {
            listen,
            upstream,
            proxy,
        } => {
            client
                .create_proxy(proxy, listen, upstream)
                .map_err(fail("Failed to create proxy".into()))?;
            Ok(format!("Created new proxy {proxy}\n"))
        }
        CliCommand::Toggle { proxy } => {
            let view = client
                .proxy(proxy)
                .map_err(fail(format!("Failed to retrieve proxy {proxy}")))?;
            let view = client
                .set_enabled(proxy, !view.enabled)
                .map_err(fail(format!("Failed to toggle proxy {proxy}")))?;
            let state = if view.enabled { "enabled" } else { "disabled" };
            Ok(format!("Proxy {proxy} is now {state}\n"))
        }
        CliCommand::Delete { proxy } => {
            client
                .proxy(proxy)
                .map_err(fail(format!("Failed to retrieve proxy {proxy}")))?;
            client
                .delete_proxy(proxy)
                .map_err(fail("Failed to delete proxy".into()))?;
            Ok(format!("Deleted proxy {proxy}\n"))
        }
        CliCommand::Toxic(command) => run_toxic(&client, command),
    }
}

fn run_toxic(client: &Client, command: &ToxicCommand) -> Result<String, CliFailure> {
    let fail = |context: &'static str| {
        move |error: client::ClientError| CliFailure(format!("{context}: {error}"))
    };
    match command {
        ToxicCommand::Add {
            toxic_name,
            toxic_type,
            toxicity,
            attributes,
            upstream,
            downstream,
            proxy,
        } => {
            if *upstream && *downstream {
                return Err(CliFailure(
                    "Only one should be specified: upstream or downstream.".into(),
                ));
            }
            let stream = if *upstream { "upstream" } else { "downstream" };
            let mut body = serde_json::json!({
                "type": toxic_type,
                "stream": stream,
                "toxicity": parse_toxicity(toxicity.as_deref())?.unwrap_or(1.0),
                "attributes": parse_attributes(attributes),
            });
            if let Some(name) = toxic_name {
                body["name"] = Value::from(name.as_str());
            }
            let toxic = client
                .add_toxic(proxy, &body)
                .map_err(fail("Failed to add toxic"))?;
            Ok(format!(
                "Added {} {} toxic '{}' on proxy '{proxy}'\n",
                toxic.stream, toxic.type_name, toxic.name
            ))
        }
        ToxicCommand::Update {
            toxic_name,
            toxicity,
            attributes,
            proxy,
        } => {
            let mut body = serde_json::json!({"attributes": parse_attributes(attributes)});
            if let Some(toxicity) = parse_toxicity(toxicity.as_deref())? {
                body["toxicity"] = Value::from(toxicity);
            }
            let toxic = client
                .update_toxic(proxy, toxic_name, &body)
                .map_err(fail("Failed to update toxic"))?;
            Ok(format!(
                "Updated toxic '{}' on proxy '{proxy}'\n",
                toxic.name
            ))
        }
        ToxicCommand::Remove { toxic_name, proxy } => {
            client
                .remove_toxic(proxy, toxic_name)
                .map_err(fail("Failed to remove toxic"))?;
            Ok(format!("Removed toxic '{toxic_name}' on proxy '{proxy}'\n"))
        }
    }
}

/// `testbed toxiproxy-cli`: prints the result; exit code 1 on failure, as
/// toxiproxy-cli.
pub fn main(args: &ToxiproxyCliArgs) -> ExitCode {
    let style = Style {
        tty: std::io::stdout().is_terminal(),
    };
    match run(args, style) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(CliFailure(message)) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn attributes_become_numbers_where_they_are_numbers() {
        let pairs = ["latency=100", "ratio=0.5", "name=x", "broken"].map(String::from);
        assert_eq!(
            Value::Object(parse_attributes(&pairs)),
            json!({"latency": 100, "ratio": 0.5, "name": "x"})
        );
    }

    #[test]
    fn toxicity_outside_zero_to_one_is_refused() {
        assert!(parse_toxicity(Some("1.5")).is_err());
        assert!(parse_toxicity(Some("lots")).is_err());
        assert_eq!(parse_toxicity(Some("0.25")), Ok(Some(0.25)));
    }
}
