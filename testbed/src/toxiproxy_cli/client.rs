//! The CLI's HTTP client for a Toxiproxy(-compatible) server, with errors worded as
//! Toxiproxy's Go client words them (`Create: HTTP 409: proxy already exists`).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::proxy::instance::ProxyView;
use crate::proxy::toxic::ToxicView;

/// Why a request failed.
#[derive(Debug)]
pub enum ClientError {
    /// The server could not be reached or answered something that is not HTTP.
    Transport { url: String, message: String },
    /// The server answered with an error status.
    Api {
        action: &'static str,
        status: u16,
        message: String,
    },
    /// The answer was not the JSON expected.
    Decode {
        action: &'static str,
        message: String,
    },
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Transport { url, message } => {
                write!(f, "cannot reach the server at {url}: {message}")
            }
            ClientError::Api {
                action,
                status,
                message,
            } => write!(f, "{action}: HTTP {status}: {message}"),
            ClientError::Decode { action, message } => {
                write!(f, "{action}: unexpected answer: {message}")
            }
        }
    }
}

impl std::error::Error for ClientError {}

/// A client of one server.
#[derive(Debug)]
pub struct Client {
    base: String,
    agent: ureq::Agent,
}

impl Client {
    /// `host` as toxiproxy-cli takes it: a URL, or `host:port` meaning `http://host:port`.
    pub fn new(host: &str) -> Self {
        let base = if host.starts_with("http://") || host.starts_with("https://") {
            host.trim_end_matches('/').to_owned()
        } else {
            format!("http://{}", host.trim_end_matches('/'))
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Client { base, agent }
    }

    fn call(
        &self,
        action: &'static str,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<String, ClientError> {
        let url = format!("{}{path}", self.base);
        let agent = "toxiproxy-cli (testbed)";
        let result = match (method, body) {
            ("GET", _) => self.agent.get(&url).header("User-Agent", agent).call(),
            ("DELETE", _) => self.agent.delete(&url).header("User-Agent", agent).call(),
            ("PATCH", Some(body)) => self
                .agent
                .patch(&url)
                .header("User-Agent", agent)
                .header("Content-Type", "application/json")
                .send(body.to_string()),
            (_, body) => self
                .agent
                .post(&url)
                .header("User-Agent", agent)
                .header("Content-Type", "application/json")
                .send(body.map(Value::to_string).unwrap_or_default()),
        };
        let mut response = result.map_err(|error| ClientError::Transport {
            url: url.clone(),
            message: error.to_string(),
        })?;
        let status = response.status().as_u16();
        let text =
            response
                .body_mut()
                .read_to_string()
                .map_err(|error| ClientError::Transport {
                    url,
                    message: error.to_string(),
                })?;
        if status >= 400 {
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|value| value["error"].as_str().map(str::to_owned))
                .unwrap_or_else(|| text.trim().to_owned());
            return Err(ClientError::Api {
                action,
                status,
                message,
            });
        }
        Ok(text)
    }

    fn decode<T: DeserializeOwned>(action: &'static str, text: &str) -> Result<T, ClientError> {
        serde_json::from_str(text).map_err(|error| ClientError::Decode {
            action,
            message: error.to_string(),
        })
    }

    pub fn proxies(&self) -> Result<BTreeMap<String, ProxyView>, ClientError> {
        let text = self.call("Proxies", "GET", "/proxies", None)?;
        Self::decode("Proxies", &text)
    }

    pub fn proxy(&self, name: &str) -> Result<ProxyView, ClientError> {
        let text = self.call("Proxy", "GET", &format!("/proxies/{name}"), None)?;
        Self::decode("Proxy", &text)
    }

    pub fn create_proxy(
        &self,
        name: &str,
        listen: &str,
        upstream: &str,
    ) -> Result<ProxyView, ClientError> {
        let body = serde_json::json!({"name": name, "listen": listen, "upstream": upstream, "enabled": true});
        let text = self.call("Create", "POST", "/proxies", Some(&body))?;
        Self::decode("Create", &text)
    }

    pub fn set_enabled(&self, name: &str, enabled: bool) -> Result<ProxyView, ClientError> {
        let body = serde_json::json!({"enabled": enabled});
        let text = self.call("Save", "POST", &format!("/proxies/{name}"), Some(&body))?;
        Self::decode("Save", &text)
    }

    pub fn delete_proxy(&self, name: &str) -> Result<(), ClientError> {
        self.call("Delete", "DELETE", &format!("/proxies/{name}"), None)
            .map(drop)
    }

    pub fn add_toxic(&self, proxy: &str, toxic: &Value) -> Result<ToxicView, ClientError> {
        let text = self.call(
            "AddToxic",
            "POST",
            &format!("/proxies/{proxy}/toxics"),
            Some(toxic),
        )?;
        Self::decode("AddToxic", &text)
    }

    pub fn update_toxic(
        &self,
        proxy: &str,
        name: &str,
        update: &Value,
    ) -> Result<ToxicView, ClientError> {
        let path = format!("/proxies/{proxy}/toxics/{name}");
        let text = self.call("UpdateToxic", "PATCH", &path, Some(update))?;
        Self::decode("UpdateToxic", &text)
    }

    pub fn remove_toxic(&self, proxy: &str, name: &str) -> Result<(), ClientError> {
        let path = format!("/proxies/{proxy}/toxics/{name}");
        self.call("RemoveToxic", "DELETE", &path, None).map(drop)
    }
}
