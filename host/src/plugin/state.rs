//! The state each plugin store carries, and the imports every contract shares.
//!
//! Who the plugin is (for its log lines), its memory cap (the store's limiter), the last
//! message it logged at error level (a panic's text, reported with its trap), and the
//! routing data with the lists this instance opened (`geodata_host`).

use std::sync::Arc;

use wasmtime::ResourceLimiter;

use super::bindings::{v02, v03};
use crate::geodata::{DomainList, GeoData, IpListRef};

/// One list an instance opened.
#[derive(Debug, Clone)]
pub enum Opened {
    Domains(DomainList),
    Ips(IpListRef),
    RuleSet(String),
}

/// Plugin log lines are cut to this length.
const MAX_LOG_LINE: usize = 1024;

/// Per-store state: who we are (for logs), the memory cap, the last panic message, and
/// the routing data with the lists this instance opened.
pub struct HostState {
    pub(super) plugin: Arc<str>,
    pub(super) memory_limit: u64,
    pub(super) memory_exceeded: bool,
    pub(super) last_error: Option<String>,
    pub(super) geodata: Arc<GeoData>,
    pub(super) opened: Vec<Opened>,
    /// Lists may be opened only while `configure` runs.
    pub(super) configuring: bool,
}

impl HostState {
    pub(super) fn new(plugin: Arc<str>, memory_limit: u64, geodata: Arc<GeoData>) -> Self {
        HostState {
            plugin,
            memory_limit,
            memory_exceeded: false,
            last_error: None,
            geodata,
            opened: Vec::new(),
            configuring: false,
        }
    }
}

impl ResourceLimiter for HostState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.memory_limit {
            self.memory_exceeded = true;
            return Err(wasmtime::Error::msg(format!(
                "memory limit of {} bytes",
                self.memory_limit
            )));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// Plugin log levels, whichever contract's enum they came in.
#[derive(Clone, Copy)]
enum Level {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

/// The `host` import of one contract version: its `Level` into ours, then `log`.
macro_rules! host_import {
    ($version:ident) => {
        impl $version::wasmray::plugin::host::Host for HostState {
            fn log(&mut self, level: $version::wasmray::plugin::host::Level, message: String) {
                use $version::wasmray::plugin::host::Level as L;
                let level = match level {
                    L::Error => Level::Error,
                    L::Warn => Level::Warn,
                    L::Info => Level::Info,
                    L::Debug => Level::Debug,
                    L::Trace => Level::Trace,
                };
                self.log(level, message);
            }
        }
    };
}

host_import!(v03);
host_import!(v02);

impl HostState {
    fn log(&mut self, level: Level, message: String) {
        let mut message = message;
        if message.len() > MAX_LOG_LINE {
            let cut = (0..=MAX_LOG_LINE)
                .rev()
                .find(|i| message.is_char_boundary(*i))
                .unwrap_or(0);
            message.truncate(cut);
            message.push('…');
        }
        let plugin = &*self.plugin;
        match level {
            Level::Error => {
                tracing::warn!(target: "plugin", plugin, "{message}");
                self.last_error = Some(message);
            }
            Level::Warn => tracing::warn!(target: "plugin", plugin, "{message}"),
            Level::Info => tracing::info!(target: "plugin", plugin, "{message}"),
            Level::Debug => tracing::debug!(target: "plugin", plugin, "{message}"),
            Level::Trace => tracing::trace!(target: "plugin", plugin, "{message}"),
        }
    }
}
