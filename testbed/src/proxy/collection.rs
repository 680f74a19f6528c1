//! All proxies of a server, by name: create, populate, look up, delete, reset.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;

use super::address::{check_upstream, listen_address};
use super::error::ApiError;
use super::instance::{Protocol, Proxy, Settings};
use super::limits::{short_text, Limits};
use super::metrics::Metrics;
use super::toxic::ToxicInput;
use super::toxic_table::ToxicTable;

/// The JSON a client sends to create a proxy. Unknown fields are ignored, as
/// Toxiproxy does; `toxics` and `protocol` are ours.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProxyInput {
    pub name: Option<String>,
    pub listen: Option<String>,
    pub upstream: Option<String>,
    pub enabled: Option<bool>,
    pub protocol: Option<Protocol>,
    pub toxics: Option<Vec<ToxicInput>>,
}

/// The JSON a client sends to update a proxy: what is not sent keeps its value.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProxyUpdate {
    pub listen: Option<String>,
    pub upstream: Option<String>,
    pub enabled: Option<bool>,
}

impl ProxyUpdate {
    /// Checks the addresses sent, before anything changes.
    pub fn check(&self) -> Result<(), ApiError> {
        if let Some(listen) = &self.listen {
            listen_address(listen)?;
        }
        if let Some(upstream) = &self.upstream {
            check_upstream(upstream)?;
        }
        Ok(())
    }
}

/// The server's proxies.
#[derive(Debug)]
pub struct Collection {
    proxies: tokio::sync::Mutex<BTreeMap<String, Arc<Proxy>>>,
    seed: u64,
    metrics: Arc<Metrics>,
    limits: Limits,
}

/// Checks the required fields, as Toxiproxy does before anything else, then the
/// lengths and addresses and the number of toxics, before anything is created.
/// Public so the hostile-input tests and fuzz targets reach it without binding.
pub fn checked(input: &ProxyInput, limits: &Limits) -> Result<(), ApiError> {
    let name = input.name.as_deref().unwrap_or_default();
    if name.is_empty() {
        return Err(ApiError::MissingField("name"));
    }
    let upstream = input.upstream.as_deref().unwrap_or_default();
    if upstream.is_empty() {
        return Err(ApiError::MissingField("upstream"));
    }
    short_text("name", name)?;
    check_upstream(upstream)?;
    listen_address(input.listen.as_deref().unwrap_or_default())?;
    let toxics = input.toxics.as_ref().map_or(0, Vec::len);
    if toxics > limits.toxics_per_proxy {
        return Err(ApiError::LimitReached {
            what: "toxics per proxy",
            limit: limits.toxics_per_proxy,
            hint: "send fewer (the server's --max-toxics sets the limit)",
        });
    }
    Ok(())
}

impl Collection {
    /// A collection with the default [`Limits`].
    pub fn new(seed: u64, metrics: Arc<Metrics>) -> Self {
        Self::with_limits(seed, metrics, Limits::default())
    }

    pub fn with_limits(seed: u64, metrics: Arc<Metrics>, limits: Limits) -> Self {
        Collection {
            proxies: tokio::sync::Mutex::new(BTreeMap::new()),
            seed,
            metrics,
            limits,
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn proxy_limit_error(&self) -> ApiError {
        ApiError::LimitReached {
            what: "proxies",
            limit: self.limits.proxies,
            hint: "delete one first (the server's --max-proxies sets the limit)",
        }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn build(&self, input: &ProxyInput) -> Result<Arc<Proxy>, ApiError> {
        let name = input.name.clone().unwrap_or_default();
        // Toxics are checked before anything is added, so a bad one leaves no proxy
        // (and no metrics under its name).
        let toxics = input.toxics.clone().unwrap_or_default();
        for toxic in &toxics {
            ToxicTable::validate(toxic.clone())?;
        }
        let proxy = Arc::new(Proxy::new(
            name.clone(),
            input.protocol.unwrap_or_default(),
            Settings {
                listen: input.listen.clone().unwrap_or_default(),
                upstream: input.upstream.clone().unwrap_or_default(),
                enabled: input.enabled.unwrap_or(true),
            },
            self.seed,
            self.metrics.for_proxy(&name),
            self.limits,
        ));
        for toxic in toxics {
            if let Err(error) = proxy.toxics.add(toxic) {
                self.metrics.forget_proxy(&name);
                return Err(error);
            }
        }
        Ok(proxy)
    }

    /// `POST /proxies`: a new proxy (with its toxics, atomically), started if enabled.
    pub async fn create(&self, input: ProxyInput) -> Result<Arc<Proxy>, ApiError> {
        checked(&input, &self.limits)?;
        let mut proxies = self.proxies.lock().await;
        let name = input.name.clone().unwrap_or_default();
        if proxies.contains_key(&name) {
            return Err(ApiError::ProxyAlreadyExists(name));
        }
        if proxies.len() >= self.limits.proxies {
            return Err(self.proxy_limit_error());
        }
        let proxy = self.build(&input)?;
        if let Err(error) = proxy.start_if_enabled().await {
            self.metrics.forget_proxy(&name);
            return Err(error);
        }
        proxies.insert(name, Arc::clone(&proxy));
        Ok(proxy)
    }

    /// `POST /populate`: creates or replaces the listed proxies; one whose listen and
    /// upstream are unchanged is kept as it is. On an error, the proxies done so far
    /// come back with it.
    pub async fn populate(&self, inputs: Vec<ProxyInput>) -> (Vec<Arc<Proxy>>, Option<ApiError>) {
        for input in &inputs {
            if let Err(error) = checked(input, &self.limits) {
                return (Vec::new(), Some(error));
            }
        }
        let mut done = Vec::new();
        let mut proxies = self.proxies.lock().await;
        for input in inputs {
            let name = input.name.clone().unwrap_or_default();
            if let Some(existing) = proxies.get(&name) {
                let settings = existing.settings();
                let same_listen = input
                    .listen
                    .as_deref()
                    .is_none_or(|listen| listen == settings.listen);
                if same_listen && input.upstream.as_deref() == Some(settings.upstream.as_str()) {
                    done.push(Arc::clone(existing));
                    continue;
                }
                existing.stop().await;
                proxies.remove(&name);
            }
            if proxies.len() >= self.limits.proxies {
                return (done, Some(self.proxy_limit_error()));
            }
            let proxy = match self.build(&input) {
                Ok(proxy) => proxy,
                Err(error) => return (done, Some(error)),
            };
            if let Err(error) = proxy.start_if_enabled().await {
                self.metrics.forget_proxy(&name);
                return (done, Some(error));
            }
            proxies.insert(name, Arc::clone(&proxy));
            done.push(proxy);
        }
        (done, None)
    }

    pub async fn get(&self, name: &str) -> Result<Arc<Proxy>, ApiError> {
        self.proxies
            .lock()
            .await
            .get(name)
            .cloned()
            .ok_or_else(|| ApiError::ProxyNotFound(name.to_owned()))
    }

    pub async fn list(&self) -> Vec<Arc<Proxy>> {
        self.proxies.lock().await.values().cloned().collect()
    }

    /// `DELETE /proxies/{p}`: stops it (port freed, connections cut) and forgets it.
    pub async fn remove(&self, name: &str) -> Result<(), ApiError> {
        let proxy = self
            .proxies
            .lock()
            .await
            .remove(name)
            .ok_or_else(|| ApiError::ProxyNotFound(name.to_owned()))?;
        proxy.stop().await;
        // Its counters go too, so creating and deleting proxies under new names does
        // not grow the metrics without end.
        self.metrics.forget_proxy(name);
        Ok(())
    }

    /// `POST /reset`: every proxy enabled, every toxic removed.
    pub async fn reset(&self) -> Result<(), ApiError> {
        for proxy in self.list().await {
            proxy.start().await?;
            proxy.toxics.clear();
        }
        Ok(())
    }
}
