//! `/metrics`: Prometheus counters per proxy (bytes per direction, connections,
//! toxics applied). Links keep their counter handles, so the data path never looks a
//! label set up.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabels {
    proxy: String,
    direction: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProxyLabels {
    proxy: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToxicLabels {
    proxy: String,
    toxic_type: String,
}

/// Every metric of the server.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    received: Family<DirectionLabels, Counter>,
    sent: Family<DirectionLabels, Counter>,
    connections: Family<ProxyLabels, Counter>,
    active: Family<ProxyLabels, Gauge>,
    refused: Family<ProxyLabels, Counter>,
    toxics: Family<ToxicLabels, Counter>,
}

/// One proxy's handles, cloned into its links.
#[derive(Debug, Clone)]
pub struct ProxyMetrics {
    proxy: String,
    pub received_upstream: Counter,
    pub received_downstream: Counter,
    pub sent_upstream: Counter,
    pub sent_downstream: Counter,
    pub connections: Counter,
    pub active: Gauge,
    /// Connections (TCP) or sessions (UDP) refused at the proxy's limit.
    pub refused: Counter,
    toxics: Family<ToxicLabels, Counter>,
}

impl ProxyMetrics {
    /// Counts a toxic taking effect on a connection.
    pub fn toxic_applied(&self, toxic_type: &str) {
        self.toxics
            .get_or_create(&ToxicLabels {
                proxy: self.proxy.clone(),
                toxic_type: toxic_type.to_owned(),
            })
            .inc();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let received = Family::<DirectionLabels, Counter>::default();
        let sent = Family::<DirectionLabels, Counter>::default();
        let connections = Family::<ProxyLabels, Counter>::default();
        let active = Family::<ProxyLabels, Gauge>::default();
        let refused = Family::<ProxyLabels, Counter>::default();
        let toxics = Family::<ToxicLabels, Counter>::default();
        registry.register(
            "toxiproxy_proxy_received_bytes",
            "Bytes read from the sending side, per proxy and direction",
            received.clone(),
        );
        registry.register(
            "toxiproxy_proxy_sent_bytes",
            "Bytes written to the receiving side, per proxy and direction",
            sent.clone(),
        );
        registry.register(
            "testbed_proxy_connections",
            "Connections accepted per proxy",
            connections.clone(),
        );
        registry.register(
            "testbed_proxy_active_connections",
            "Connections open now per proxy",
            active.clone(),
        );
        registry.register(
            "testbed_proxy_refused_connections",
            "TCP connections closed at once, or UDP datagrams from a new client dropped, because the proxy had its limit of connections open",
            refused.clone(),
        );
        registry.register(
            "testbed_proxy_toxics_applied",
            "Toxics that took effect on a connection, per proxy and toxic type",
            toxics.clone(),
        );
        Metrics {
            registry,
            received,
            sent,
            connections,
            active,
            refused,
            toxics,
        }
    }

    pub fn for_proxy(&self, proxy: &str) -> ProxyMetrics {
        let direction = |family: &Family<DirectionLabels, Counter>, direction: &str| {
            family
                .get_or_create(&DirectionLabels {
                    proxy: proxy.to_owned(),
                    direction: direction.to_owned(),
                })
                .clone()
        };
        let labels = ProxyLabels {
            proxy: proxy.to_owned(),
        };
        ProxyMetrics {
            proxy: proxy.to_owned(),
            received_upstream: direction(&self.received, "upstream"),
            received_downstream: direction(&self.received, "downstream"),
            sent_upstream: direction(&self.sent, "upstream"),
            sent_downstream: direction(&self.sent, "downstream"),
            connections: self.connections.get_or_create(&labels).clone(),
            active: self.active.get_or_create(&labels).clone(),
            refused: self.refused.get_or_create(&labels).clone(),
            toxics: self.toxics.clone(),
        }
    }

    /// Drops every series of a deleted proxy: label sets are never freed otherwise,
    /// and proxies created and deleted under new names would grow them without end.
    pub fn forget_proxy(&self, proxy: &str) {
        for direction in ["upstream", "downstream"] {
            let labels = DirectionLabels {
                proxy: proxy.to_owned(),
                direction: direction.to_owned(),
            };
            self.received.remove(&labels);
            self.sent.remove(&labels);
        }
        let labels = ProxyLabels {
            proxy: proxy.to_owned(),
        };
        self.connections.remove(&labels);
        self.active.remove(&labels);
        self.refused.remove(&labels);
        for toxic_type in super::toxics::TOXIC_TYPES {
            self.toxics.remove(&ToxicLabels {
                proxy: proxy.to_owned(),
                toxic_type: (*toxic_type).to_owned(),
            });
        }
    }

    /// The `OpenMetrics` text exposition.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
