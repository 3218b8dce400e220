//! Configured plugin instances, pooled and reused across sessions.
//!
//! Instantiating from the pooling allocator is cheap, but `configure` (parsing the
//! plugin's config, compiling its regexes) is not, so configured instances are kept in
//! a small pool and reused. An instance that trapped, timed out or hit its memory cap
//! is dropped, never reused: its state may be inconsistent.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{ResourceLimiter, Store};

use super::RuntimeLimits;
use super::bindings::{Plugin, PluginPre, types, v02, v03};
use super::engine::PluginEngine;
use super::error::PluginError;
use super::state::HostState;
use super::view::to_wit;
use crate::geodata::GeoData;
use crate::session::{Delta, DeltaLimits, Snapshot};

/// Where a plugin came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    Builtin,
    File(PathBuf),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Builtin => f.write_str("built-in"),
            Source::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Configured instances kept per plugin.
const POOL_CAP: usize = 16;
/// `configure` may compile regexes: it gets this much time, whatever `call_timeout` is.
const CONFIGURE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// A plugin's answer for one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    NeedMore,
    NoMatch,
    Matched(Delta),
}

struct Slot {
    store: Store<HostState>,
    plugin: Plugin,
}

/// A compiled, validated and configured plugin.
pub struct LoadedPlugin {
    pub name: Arc<str>,
    pub version: String,
    pub stage: types::Stage,
    pub payload_bytes: usize,
    pub source: Source,
    engine: PluginEngine,
    pre: PluginPre<HostState>,
    config_json: String,
    limits: RuntimeLimits,
    delta_limits: DeltaLimits,
    pool: Mutex<Vec<Slot>>,
    errors: RateLimit,
    meters: crate::metrics::PluginMeters,
    geodata: Arc<GeoData>,
    /// Failures and quarantine (kept while this version and config serve).
    pub(super) health: super::health::Health,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Plugin({} {} from {})",
            self.name, self.version, self.source
        )
    }
}

/// Every import of both contracts: a component takes the ones it names.
pub fn linker(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    v03::wasmray::plugin::host::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
    v03::wasmray::plugin::geodata::add_to_linker::<HostState, HasSelf<HostState>>(
        &mut linker,
        |s| s,
    )?;
    v02::wasmray::plugin::host::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
    Ok(linker)
}

/// The pieces `load` has gathered before the plugin is configured.
pub struct Parts {
    pub name: Arc<str>,
    pub version: String,
    pub stage: types::Stage,
    pub payload_bytes: usize,
    pub source: Source,
    pub pre: PluginPre<HostState>,
    /// The routing data its instances see.
    pub geodata: Arc<GeoData>,
}

impl LoadedPlugin {
    /// Configures one instance (which then serves as the pool's first).
    pub fn configure(
        parts: Parts,
        engine: &PluginEngine,
        config_json: String,
        limits: RuntimeLimits,
    ) -> Result<Self, PluginError> {
        let plugin = LoadedPlugin {
            meters: engine.metrics.for_plugin(&parts.name),
            name: parts.name,
            version: parts.version,
            stage: parts.stage,
            payload_bytes: parts.payload_bytes,
            source: parts.source,
            engine: engine.clone(),
            pre: parts.pre,
            config_json,
            limits,
            delta_limits: DeltaLimits::default(),
            pool: Mutex::new(Vec::new()),
            errors: RateLimit::default(),
            geodata: parts.geodata,
            health: Default::default(),
        };
        let slot = plugin.new_slot()?;
        plugin.release(slot);
        Ok(plugin)
    }

    /// Calls the plugin for one session (counted on its metrics).
    pub fn handle(&self, snapshot: &Snapshot, payload: &[u8]) -> Result<Answer, PluginError> {
        let started = std::time::Instant::now();
        let answer = self.answer(snapshot, payload);
        let failed = answer.as_ref().err().map(PluginError::kind);
        self.meters.call(started.elapsed(), failed);
        answer
    }

    /// The call itself, not counted (the load-time smoke test is not traffic).
    pub(super) fn answer(
        &self,
        snapshot: &Snapshot,
        payload: &[u8],
    ) -> Result<Answer, PluginError> {
        let view = to_wit(snapshot);
        let payload = payload
            .get(..self.payload_bytes.min(payload.len()))
            .unwrap_or(payload);
        let verdict = self.call(|slot| slot.plugin.call_handle(&mut slot.store, &view, payload))?;
        let answer = match verdict {
            types::Verdict::NeedMore => Answer::NeedMore,
            types::Verdict::NoMatch => Answer::NoMatch,
            types::Verdict::Matched(d) => {
                let delta = Delta {
                    set: d.set,
                    remove: d.remove,
                    protocol: d.protocol,
                    sniffed_domain: d.sniffed_domain,
                    outbound: d.outbound,
                };
                delta.check(&self.delta_limits)?;
                Answer::Matched(delta)
            }
        };
        Ok(answer)
    }

    /// Logs and counts a quarantine taken or lifted.
    pub(super) fn transition(&self, t: super::health::Transition) {
        use super::health::Transition;
        match t {
            Transition::None => {}
            Transition::Quarantined(backoff) => {
                tracing::warn!(plugin = %self.name, source = %self.source, "plugin quarantined for {}s after repeated failures: its stage follows its on_error until a trial call succeeds", backoff.as_secs_f64());
                self.meters.quarantined(true);
            }
            Transition::Recovered => {
                tracing::info!(plugin = %self.name, "plugin back in the pipeline: its trial call succeeded");
                self.meters.quarantined(false);
            }
        }
    }

    /// Logs a failed call with the plugin's name, at most once a second per plugin
    /// (with the count of failures not logged in between).
    pub fn report(&self, err: &PluginError) {
        if let Some(suppressed) = self.errors.allow() {
            tracing::warn!(plugin = %self.name, source = %self.source, suppressed, "plugin call failed: {err}");
        }
    }

    fn call<R>(&self, f: impl FnOnce(&mut Slot) -> wasmtime::Result<R>) -> Result<R, PluginError> {
        let pooled = crate::util::lock(&self.pool).pop();
        let mut slot = match pooled {
            Some(slot) => slot,
            None => self.new_slot()?,
        };
        let _ticking = self.engine.ticking();
        slot.store
            .set_epoch_deadline(PluginEngine::deadline_ticks(self.limits.call_timeout));
        slot.store.data_mut().last_error = None;
        match f(&mut slot) {
            Ok(r) => {
                self.release(slot);
                Ok(r)
            }
            Err(e) => Err(self.classify(e, slot.store.data())),
        }
    }

    fn release(&self, slot: Slot) {
        let mut pool = crate::util::lock(&self.pool);
        if pool.len() < POOL_CAP {
            pool.push(slot);
        }
    }

    fn new_slot(&self) -> Result<Slot, PluginError> {
        let state = HostState::new(
            self.name.clone(),
            self.limits.memory_limit.min(self.engine.max_memory),
            self.geodata.clone(),
        );
        let mut store = Store::new(&self.engine.engine, state);
        store.limiter(|s| s as &mut dyn ResourceLimiter);
        let _ticking = self.engine.ticking();
        store.set_epoch_deadline(PluginEngine::deadline_ticks(CONFIGURE_TIMEOUT));
        let plugin = self
            .pre
            .instantiate(&mut store)
            .map_err(|e| PluginError::Instantiate(format!("{e:#}")))?;
        store.data_mut().configuring = true;
        let configured = plugin
            .call_configure(&mut store, &self.config_json)
            .map_err(|e| self.classify(e, store.data()))?;
        store.data_mut().configuring = false;
        configured.map_err(PluginError::Configure)?;
        Ok(Slot { store, plugin })
    }

    fn classify(&self, e: wasmtime::Error, state: &HostState) -> PluginError {
        if state.memory_exceeded {
            return PluginError::MemoryLimit(state.memory_limit);
        }
        if let Some(wasmtime::Trap::Interrupt) = e.downcast_ref::<wasmtime::Trap>() {
            return PluginError::Timeout(self.limits.call_timeout.as_millis() as u64);
        }
        let trap = e
            .downcast_ref::<wasmtime::Trap>()
            .map_or_else(|| format!("{e:#}"), |t| t.to_string());
        PluginError::Trap {
            trap,
            panic: state.last_error.clone(),
        }
    }
}

/// Describes a freshly instantiated plugin (used by `load` before configuring).
pub fn describe(
    engine: &PluginEngine,
    pre: &PluginPre<HostState>,
    name_hint: &str,
) -> Result<types::Descriptor, PluginError> {
    let state = HostState::new(name_hint.into(), engine.max_memory, Arc::default());
    let mut store = Store::new(&engine.engine, state);
    store.limiter(|s| s as &mut dyn ResourceLimiter);
    let _ticking = engine.ticking();
    store.set_epoch_deadline(PluginEngine::deadline_ticks(CONFIGURE_TIMEOUT));
    let plugin = pre
        .instantiate(&mut store)
        .map_err(|e| PluginError::Instantiate(format!("{e:#}")))?;
    plugin.call_describe(&mut store).map_err(|e| {
        let data = store.data();
        PluginError::Trap {
            trap: format!("{e:#}"),
            panic: data.last_error.clone(),
        }
    })
}

/// Allows one event a second; counts the rest.
#[derive(Debug, Default)]
struct RateLimit {
    state: Mutex<(Option<std::time::Instant>, u64)>,
}

impl RateLimit {
    /// `Some(suppressed since the last allowed event)` if this one may be logged.
    fn allow(&self) -> Option<u64> {
        let mut state = crate::util::lock(&self.state);
        let now = std::time::Instant::now();
        match state.0 {
            Some(last) if now.duration_since(last) < std::time::Duration::from_secs(1) => {
                state.1 += 1;
                None
            }
            _ => {
                let suppressed = std::mem::take(&mut state.1);
                state.0 = Some(now);
                Some(suppressed)
            }
        }
    }
}
