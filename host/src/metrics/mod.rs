//! Prometheus metrics: what an operator graphs and alerts on, in the Prometheus text
//! format on `[metrics] listen` at `/metrics` (see `serve`).
//!
//! Nothing here is touched per relayed chunk. Sessions, handshakes and fallbacks are
//! counted once each, plugin calls once per call through handles resolved when the
//! plugin loads (`plugin`), and the byte counters are read at scrape time from the
//! stats core the relay already feeds (`collect`). The metrics live as long as the
//! daemon, across reloads, like the stats core.

mod collect;
mod plugin;
mod serve;

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::session::{Network, Outcome};
use crate::stats::Stats;

pub use plugin::{PluginMeters, PluginMetrics};
pub use serve::serve;

/// `inbound`: one inbound's tag.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InboundLabel {
    pub inbound: Arc<str>,
}

/// How sessions ended, by where they came in and went out.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SessionLabels {
    pub inbound: Arc<str>,
    /// Empty for a session that never reached an outbound.
    pub outbound: Arc<str>,
    pub network: &'static str,
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SessionBytesLabels {
    pub inbound: Arc<str>,
    pub outbound: Arc<str>,
    pub outcome: &'static str,
    /// `uplink` (client to target) or `downlink`, as in Xray's counter names.
    pub direction: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    pub inbound: Arc<str>,
    pub reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

/// Every metric of the daemon, and the registry that encodes them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    sessions: Family<SessionLabels, Counter>,
    session_bytes: Family<SessionBytesLabels, Counter>,
    active_sessions: Family<InboundLabel, Gauge>,
    connections: Family<InboundLabel, Gauge>,
    handshake_failures: Family<FailureLabels, Counter>,
    fallbacks: Family<InboundLabel, Counter>,
    sniff_wait: Histogram,
    sniff_expired: Counter,
    reloads: Family<ResultLabel, Counter>,
    dns_lookups: Family<ResultLabel, Counter>,
    pub plugins: PluginMetrics,
}

/// A session's end, as the metrics count it.
pub struct SessionEnd<'a> {
    pub inbound: &'a Arc<str>,
    pub outbound: Option<&'a Arc<str>>,
    pub network: Network,
    pub outcome: Outcome,
    pub up: u64,
    pub down: u64,
}

impl Metrics {
    /// Metrics with the byte counters of `stats`; per-user bytes only if `per_user`
    /// (one series per user is a cardinality an operator must choose).
    pub fn new(stats: Arc<Stats>, per_user: bool) -> Self {
        let mut m = Metrics::unregistered();
        m.register_all();
        m.registry
            .register_collector(Box::new(collect::StatsCollector { stats, per_user }));
        m
    }

    fn unregistered() -> Self {
        Metrics {
            registry: Registry::with_prefix("wasmray"),
            sessions: Family::default(),
            session_bytes: Family::default(),
            active_sessions: Family::default(),
            connections: Family::default(),
            handshake_failures: Family::default(),
            fallbacks: Family::default(),
            // 1 ms .. ~4 s: a sniffer waits at most the sniff window (300 ms default).
            sniff_wait: Histogram::new(exponential_buckets(0.001, 2.0, 13)),
            sniff_expired: Counter::default(),
            reloads: Family::default(),
            dns_lookups: Family::default(),
            plugins: PluginMetrics::default(),
        }
    }

    fn register_all(&mut self) {
        let r = &mut self.registry;
        let build = Info::new(BuildLabels {
            version: env!("CARGO_PKG_VERSION"),
        });
        r.register("build", "wasmray's version (always 1)", build);
        r.register(
            "sessions",
            "Sessions ended, by inbound, outbound, network and outcome (ok, blocked, rejected, fallback, timeout, error)",
            self.sessions.clone(),
        );
        r.register(
            "session_bytes",
            "Bytes of ended sessions, by inbound, outbound, outcome and direction",
            self.session_bytes.clone(),
        );
        r.register(
            "active_sessions",
            "Sessions open now (each Mux.Cool sub-stream is one), by inbound",
            self.active_sessions.clone(),
        );
        r.register(
            "connections",
            "Accepted connections open now, by inbound",
            self.connections.clone(),
        );
        r.register(
            "handshake_failures",
            "Connections refused before they became sessions, by inbound and reason",
            self.handshake_failures.clone(),
        );
        r.register(
            "fallbacks",
            "Connections that were not VLESS and went to a fallback, by inbound",
            self.fallbacks.clone(),
        );
        r.register(
            "sniff_wait_seconds",
            "Time a session waited in the sniff window for more client bytes (sessions that waited)",
            self.sniff_wait.clone(),
        );
        r.register(
            "sniff_window_expired",
            "Sessions whose sniff window ran out before the sniffers had their bytes",
            self.sniff_expired.clone(),
        );
        r.register(
            "reloads",
            "Configuration reloads, by result (ok, failed)",
            self.reloads.clone(),
        );
        r.register(
            "dns_lookups",
            "Names route plugins asked the resolver about, by result (ok, failed, timeout)",
            self.dns_lookups.clone(),
        );
        self.plugins.register(r);
    }

    /// Counts a session's end.
    pub fn session_ended(&self, end: &SessionEnd<'_>) {
        let outbound = end.outbound.cloned().unwrap_or_else(|| Arc::from(""));
        let outcome = end.outcome.as_str();
        let labels = SessionLabels {
            inbound: end.inbound.clone(),
            outbound: outbound.clone(),
            network: match end.network {
                Network::Tcp => "tcp",
                Network::Udp => "udp",
            },
            outcome,
        };
        self.sessions.get_or_create(&labels).inc();
        for (direction, n) in [("uplink", end.up), ("downlink", end.down)] {
            if n > 0 {
                let labels = SessionBytesLabels {
                    inbound: end.inbound.clone(),
                    outbound: outbound.clone(),
                    outcome,
                    direction,
                };
                self.session_bytes.get_or_create(&labels).inc_by(n);
            }
        }
    }

    /// The open-sessions gauge of `inbound`, raised until the guard drops.
    pub fn session_open(&self, inbound: &Arc<str>) -> Held {
        Held::raise(self.active_sessions.get_or_create_owned(&InboundLabel {
            inbound: inbound.clone(),
        }))
    }

    /// The open-connections gauge of `inbound` (resolved once per accept loop).
    pub fn connections(&self, inbound: &str) -> Gauge {
        self.connections.get_or_create_owned(&InboundLabel {
            inbound: inbound.into(),
        })
    }

    pub fn handshake_failed(&self, inbound: &Arc<str>, reason: &'static str) {
        let labels = FailureLabels {
            inbound: inbound.clone(),
            reason,
        };
        self.handshake_failures.get_or_create(&labels).inc();
    }

    pub fn fallback(&self, inbound: &Arc<str>) {
        let labels = InboundLabel {
            inbound: inbound.clone(),
        };
        self.fallbacks.get_or_create(&labels).inc();
    }

    /// A session waited `secs` in the sniff window; `expired` if it ran out.
    pub fn sniff_waited(&self, secs: f64, expired: bool) {
        self.sniff_wait.observe(secs);
        if expired {
            self.sniff_expired.inc();
        }
    }

    /// The resolver answered a route plugin's question: `result` is ok, failed or
    /// timeout.
    pub fn dns_looked_up(&self, result: &'static str) {
        self.dns_lookups
            .get_or_create(&ResultLabel { result })
            .inc();
    }

    pub fn reloaded(&self, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.reloads.get_or_create(&ResultLabel { result }).inc();
    }

    /// Everything, in the Prometheus text format (version 0.0.4).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail; a collector's error would leave a partial
        // page, which the scraper reports.
        if let Err(e) =
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
        {
            tracing::warn!("metrics: encoding failed: {e}");
        }
        out
    }
}

impl Default for Metrics {
    /// Metrics that count but read no stats core (for tests and tools).
    fn default() -> Self {
        Metrics::new(Arc::new(Stats::new(false)), false)
    }
}

/// A gauge raised while this lives.
#[derive(Debug)]
pub struct Held(Gauge);

impl Held {
    pub fn raise(gauge: Gauge) -> Self {
        gauge.inc();
        Held(gauge)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests;
