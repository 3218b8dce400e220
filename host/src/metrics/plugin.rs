//! Per-plugin call metrics. A plugin resolves its [`PluginMeters`] once, when it is
//! loaded, so a call adds to a counter and a histogram it already holds; the
//! families keep each plugin's series across reloads (they are keyed by name).

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginLabel {
    pub plugin: Arc<str>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginErrorLabels {
    pub plugin: Arc<str>,
    /// `timeout`, `memory`, `trap`, `malformed` or `instantiate`.
    pub kind: &'static str,
}

#[derive(Debug, Clone, Copy)]
struct Buckets;

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        // 5 µs .. ~160 ms: a call is tens of microseconds; the deadline is 50 ms.
        Histogram::new(exponential_buckets(5e-6, 2.0, 16))
    }
}

/// The plugin families (shared by the registry and every loaded plugin).
#[derive(Debug, Clone)]
pub struct PluginMetrics {
    calls: Family<PluginLabel, Counter>,
    quarantines: Family<PluginLabel, Counter>,
    quarantined: Family<PluginLabel, Gauge>,
    errors: Family<PluginErrorLabels, Counter>,
    seconds: Family<PluginLabel, Histogram, Buckets>,
}

impl Default for PluginMetrics {
    fn default() -> Self {
        PluginMetrics {
            calls: Family::default(),
            quarantines: Family::default(),
            quarantined: Family::default(),
            errors: Family::default(),
            seconds: Family::new_with_constructor(Buckets),
        }
    }
}

impl PluginMetrics {
    pub(super) fn register(&self, r: &mut Registry) {
        r.register(
            "plugin_calls",
            "Plugin calls, by plugin",
            self.calls.clone(),
        );
        r.register(
            "plugin_errors",
            "Failed plugin calls, by plugin and kind (timeout, memory, trap, malformed, instantiate)",
            self.errors.clone(),
        );
        r.register(
            "plugin_quarantines",
            "Times a plugin was taken out of the pipeline after repeated failures, by plugin",
            self.quarantines.clone(),
        );
        r.register(
            "plugin_quarantined",
            "1 while a plugin is out of the pipeline (its stage follows its on_error), by plugin",
            self.quarantined.clone(),
        );
        r.register(
            "plugin_call_seconds",
            "Time of one plugin call, by plugin",
            self.seconds.clone(),
        );
    }

    /// The handles of the plugin `name`.
    pub fn for_plugin(&self, name: &Arc<str>) -> PluginMeters {
        let label = PluginLabel {
            plugin: name.clone(),
        };
        PluginMeters {
            name: name.clone(),
            calls: self.calls.get_or_create_owned(&label),
            quarantines: self.quarantines.get_or_create_owned(&label),
            quarantined: self.quarantined.get_or_create_owned(&label),
            seconds: self.seconds.get_or_create_owned(&label),
            errors: self.errors.clone(),
        }
    }
}

/// One plugin's handles.
#[derive(Debug, Clone)]
pub struct PluginMeters {
    name: Arc<str>,
    calls: Counter,
    quarantines: Counter,
    quarantined: Gauge,
    seconds: Histogram,
    errors: Family<PluginErrorLabels, Counter>,
}

impl PluginMeters {
    /// The plugin was taken out of the pipeline (`true`) or put back.
    pub fn quarantined(&self, out: bool) {
        if out {
            self.quarantines.inc();
        }
        self.quarantined.set(i64::from(out));
    }

    /// One call that took `took`, failed with an error of `kind` if any.
    pub fn call(&self, took: Duration, failed: Option<&'static str>) {
        self.calls.inc();
        self.seconds.observe(took.as_secs_f64());
        if let Some(kind) = failed {
            let labels = PluginErrorLabels {
                plugin: self.name.clone(),
                kind,
            };
            self.errors.get_or_create(&labels).inc();
        }
    }
}
