//! `--config FILE`: Toxiproxy's JSON list of proxies, read at start; unlike
//! Toxiproxy, each entry's `toxics` are applied too.

use std::fmt;
use std::path::{Path, PathBuf};

use super::collection::{Collection, ProxyInput};
use super::error::ApiError;

/// Why a config file was not applied.
#[derive(Debug)]
pub enum ConfigError {
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    Parse {
        path: PathBuf,
        error: serde_json::Error,
    },
    Apply {
        path: PathBuf,
        error: ApiError,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, error } => {
                write!(f, "cannot read config {}: {error}", path.display())
            }
            ConfigError::Parse { path, error } => write!(
                f,
                "config {} is not a JSON list of proxies ({{\"name\", \"listen\", \"upstream\", \"toxics\"}}): {error}",
                path.display()
            ),
            ConfigError::Apply { path, error } => {
                write!(f, "config {}: {error}", path.display())
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// Creates every proxy of the file, with its toxics; returns how many.
pub async fn apply(collection: &Collection, path: &Path) -> Result<usize, ConfigError> {
    let text = std::fs::read(path).map_err(|error| ConfigError::Read {
        path: path.to_owned(),
        error,
    })?;
    let inputs: Vec<ProxyInput> =
        serde_json::from_slice(&text).map_err(|error| ConfigError::Parse {
            path: path.to_owned(),
            error,
        })?;
    let (proxies, error) = collection.populate(inputs).await;
    match error {
        Some(error) => Err(ConfigError::Apply {
            path: path.to_owned(),
            error,
        }),
        None => Ok(proxies.len()),
    }
}
