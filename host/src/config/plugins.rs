//! The `[plugins]` section: the pipeline, its limits and each plugin's own table.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::PluginsConfig;
use super::error::Errors;
use super::policy;
use super::raw::RawPlugins;
use super::units::{parse_duration, parse_size};

/// The pipeline when the config names none: the built-in plugins.
pub const DEFAULT_PIPELINE: [&str; 3] = ["sniff-http", "sniff-tls", "route-rules"];

pub fn validate(
    raw: RawPlugins,
    base: &Path,
    outbound_tags: &[&str],
    errors: &mut Errors,
) -> PluginsConfig {
    let duration =
        |errors: &mut Errors, name: &str, text: &Option<String>, default: Duration| match text {
            Some(t) => errors
                .take(&format!("plugins.{name}"), parse_duration(t))
                .unwrap_or(default),
            None => default,
        };
    let sniff_window = duration(
        errors,
        "sniff_window",
        &raw.sniff_window,
        Duration::from_millis(200),
    );
    let call_timeout = duration(
        errors,
        "call_timeout",
        &raw.call_timeout,
        Duration::from_millis(5),
    );
    // The built-ins are precompiled for this default (plugin::engine_config, checked
    // by a test there): another limit compiles them at start, or loads them from the cache.
    let memory_limit = match &raw.memory_limit {
        Some(t) => errors
            .take("plugins.memory_limit", parse_size(t))
            .unwrap_or(16 << 20),
        None => 16 << 20,
    };
    if memory_limit < 64 * 1024 {
        errors.push(
            "plugins.memory_limit",
            "must be at least 64KiB (one wasm page)",
        );
    }
    let on_error = policy::on_error(raw.on_error.as_deref(), "plugins.on_error", errors);
    let pipeline = raw
        .pipeline
        .unwrap_or_else(|| DEFAULT_PIPELINE.iter().map(|s| s.to_string()).collect());
    check_pipeline(&pipeline, errors);
    let policies = policy::policies(raw.policy, &pipeline, errors);
    let quarantine = policy::quarantine(raw.quarantine, errors);
    let config = raw
        .config
        .into_iter()
        .map(|(name, table)| {
            check_outbound_refs(&name, &table, outbound_tags, errors);
            (name, toml_to_json(toml::Value::Table(table)))
        })
        .collect::<BTreeMap<_, _>>();
    PluginsConfig {
        dir: raw.dir.map(|d| base.join(d)),
        pipeline,
        sniff_window,
        call_timeout,
        memory_limit,
        on_error,
        policies,
        quarantine,
        dest_override: raw
            .dest_override
            .unwrap_or_else(|| vec!["http".into(), "tls".into()]),
        route_only: raw.route_only.unwrap_or(false),
        config,
        cache: match raw.cache {
            Some(c) if c.is_empty() => None,
            Some(c) => Some(base.join(c)),
            None => default_cache_dir(),
        },
        geodata: crate::geodata::Sources::default(),
    }
}

/// Where compiled plugins go when `[plugins] cache` is not set: systemd's
/// `CacheDirectory=` (`$CACHE_DIRECTORY`), else the XDG cache directory.
pub fn default_cache_dir() -> Option<std::path::PathBuf> {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("CACHE_DIRECTORY") {
        // systemd may list several, separated by colons; the first is ours.
        let first = dir
            .to_string_lossy()
            .split(':')
            .next()
            .unwrap_or("")
            .to_string();
        return Some(first.into());
    }
    var("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| var("HOME").map(|h| Path::new(&h).join(".cache")))
        .map(|d| d.join("wasmray"))
}

fn check_pipeline(pipeline: &[String], errors: &mut Errors) {
    for (i, name) in pipeline.iter().enumerate() {
        if pipeline[..i].contains(name) {
            errors.push(
                format!("plugins.pipeline[{i}]"),
                format!("{name:?} is listed twice"),
            );
        }
    }
}

/// A plugin table's `default` and `rule[].outbound` name outbound tags (the convention of
/// route plugins): refuse a tag that does not exist, at load, not at the first session.
fn check_outbound_refs(plugin: &str, table: &toml::Table, tags: &[&str], errors: &mut Errors) {
    let mut check = |path: String, value: &toml::Value| {
        if let Some(tag) = value.as_str()
            && !tags.contains(&tag)
        {
            errors.push(
                path,
                format!("no outbound is tagged {tag:?} (known: {})", tags.join(", ")),
            );
        }
    };
    if let Some(v) = table.get("default") {
        check(format!("plugins.config.{plugin}.default"), v);
    }
    let rules = table.get("rule").and_then(|r| r.as_array());
    for (i, rule) in rules.into_iter().flatten().enumerate() {
        if let Some(v) = rule.get("outbound") {
            check(format!("plugins.config.{plugin}.rule[{i}].outbound"), v);
        }
    }
}

/// TOML to JSON for a plugin's `configure` (datetimes become strings).
pub fn toml_to_json(value: toml::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        toml::Value::String(s) => J::String(s),
        toml::Value::Integer(i) => J::from(i),
        toml::Value::Float(f) => serde_json::Number::from_f64(f).map_or(J::Null, J::Number),
        toml::Value::Boolean(b) => J::Bool(b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(a) => J::Array(a.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => {
            J::Object(t.into_iter().map(|(k, v)| (k, toml_to_json(v))).collect())
        }
    }
}
