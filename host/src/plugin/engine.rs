//! One wasmtime engine for all plugins: the pooling allocator (instantiation is a few
//! microseconds and memory is capped per instance), epoch interruption (a cheap
//! deadline check instead of fuel metering), component model on, async off (it costs
//! per call and plugin calls are short and synchronous).
//!
//! The epoch ticker runs only while plugin calls are in flight or were lately
//! ([`Ticking`]): an idle daemon, or one relaying bulk data, does not wake a thread a
//! thousand times a second for deadlines nobody is waiting on, and a busy one does not
//! pay a wake-up syscall per call.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use wasmtime::Engine;

use super::cache::DiskCache;
use super::engine_config::{engine_config, slot_size};

/// How often the epoch ticks: the granularity of call deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

#[derive(Clone)]
pub struct PluginEngine {
    pub engine: Engine,
    /// The largest memory any instance may have (the pool's slot size).
    pub max_memory: u64,
    calls: Arc<Calls>,
    cache: Option<DiskCache>,
    /// Where loaded plugins find their call metrics.
    pub metrics: crate::metrics::PluginMetrics,
}

/// Plugin calls in flight, and the ticker's wake-up.
///
/// `sleeping` spares a call the mutex and the wake-up syscall (a `notify` is one even
/// with no waiter) unless the ticker is really parked: the caller raises `active` then
/// reads `sleeping`, the ticker raises `sleeping` then reads `active`, both `SeqCst`,
/// so at least one of them sees the other and the ticker never sleeps through a call.
#[derive(Default)]
struct Calls {
    active: AtomicUsize,
    sleeping: AtomicBool,
    /// Epoch increments so far (for tests and debugging).
    ticks: AtomicU64,
    lock: Mutex<()>,
    wake: Condvar,
}

/// Keeps the epoch ticking while it lives; hold one across every guest call.
pub struct Ticking(Arc<Calls>);

impl Drop for Ticking {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

impl PluginEngine {
    /// Builds the engine with memory slots of `max_memory` bytes and starts the epoch
    /// ticker, which stops when the engine is dropped.
    pub fn new(max_memory: u64) -> anyhow::Result<Self> {
        let max_memory = slot_size(max_memory);
        #[allow(unused_mut)]
        let mut config = engine_config(max_memory)?;
        #[cfg(feature = "profiling")]
        if std::env::var_os("WASMRAY_PERFMAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config)?;
        let calls = Arc::new(Calls::default());
        start_ticker(&engine, calls.clone())?;
        Ok(Self {
            engine,
            max_memory,
            calls,
            cache: None,
            metrics: Default::default(),
        })
    }

    /// Keeps compiled plugins in `dir` (see `cache`); a directory that cannot be used
    /// is logged once and the engine compiles without a cache.
    /// Counts the plugins' calls into `metrics` (the daemon's families).
    pub fn with_metrics(mut self, metrics: crate::metrics::PluginMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    pub fn with_cache(mut self, dir: Option<&std::path::Path>) -> Self {
        self.cache = dir.and_then(|d| {
            DiskCache::open(d)
                .inspect_err(|e| tracing::warn!("compiled plugin cache off: {e}"))
                .ok()
        });
        self
    }

    pub(super) fn cache(&self) -> Option<&DiskCache> {
        self.cache.as_ref()
    }

    /// Marks a guest call in flight (waking the ticker if it was asleep).
    pub fn ticking(&self) -> Ticking {
        if self.calls.active.fetch_add(1, Ordering::SeqCst) == 0
            && self.calls.sleeping.load(Ordering::SeqCst)
        {
            let _held = crate::util::lock(&self.calls.lock);
            self.calls.wake.notify_one();
        }
        Ticking(self.calls.clone())
    }

    /// Epoch ticks that make up `timeout` (at least 1, plus one for the partial tick).
    pub fn deadline_ticks(timeout: Duration) -> u64 {
        (timeout.as_micros() / EPOCH_TICK.as_micros()).max(1) as u64 + 1
    }
}

/// How long the ticker keeps ticking after it last saw a call in flight: under load
/// calls come faster than this, so they find it awake and need no wake-up syscall.
const LINGER: Duration = Duration::from_millis(50);

/// Ticks every [`EPOCH_TICK`] while calls are in flight or were lately ([`LINGER`]),
/// parks otherwise; ends when the engine is dropped.
fn start_ticker(engine: &Engine, calls: Arc<Calls>) -> std::io::Result<()> {
    let weak = engine.weak();
    let linger_ticks = (LINGER.as_micros() / EPOCH_TICK.as_micros()) as u32;
    std::thread::Builder::new()
        .name("wasm-epoch".into())
        .spawn(move || {
            let mut idle_ticks = 0u32;
            loop {
                if calls.active.load(Ordering::SeqCst) == 0 {
                    idle_ticks += 1;
                } else {
                    idle_ticks = 0;
                }
                if idle_ticks > linger_ticks {
                    if !park(&calls, &weak) {
                        return;
                    }
                    idle_ticks = 0;
                }
                let Some(engine) = weak.upgrade() else { return };
                engine.increment_epoch();
                calls.ticks.fetch_add(1, Ordering::Relaxed);
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .map(drop)
}

/// Waits until a call is in flight; false if the engine is gone meanwhile.
fn park(calls: &Calls, engine: &wasmtime::EngineWeak) -> bool {
    let mut held = crate::util::lock(&calls.lock);
    loop {
        calls.sleeping.store(true, Ordering::SeqCst);
        if calls.active.load(Ordering::SeqCst) != 0 {
            break;
        }
        // Wake now and then to notice the engine is gone.
        let waited = calls.wake.wait_timeout(held, Duration::from_secs(1));
        held = waited.unwrap_or_else(|p| p.into_inner()).0;
        if engine.upgrade().is_none() {
            return false;
        }
    }
    calls.sleeping.store(false, Ordering::SeqCst);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// Polls `done` for up to `limit`.
    fn within(limit: Duration, done: impl Fn() -> bool) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if done() {
                return true;
            }
            std::thread::yield_now();
        }
        false
    }

    const LONG: Duration = Duration::from_secs(5);
    /// Shorter than the parked ticker's own 1 s timeout, so only a wake-up passes.
    const WAKE: Duration = Duration::from_millis(700);

    #[test]
    fn the_ticker_parks_when_idle_and_a_call_wakes_it() {
        let engine = PluginEngine::new(1 << 20).unwrap();
        let calls = engine.calls.clone();
        let parked = || calls.sleeping.load(Ordering::SeqCst);
        assert!(within(LONG, parked));
        let parked_at = calls.ticks.load(Ordering::Relaxed);
        let call = engine.ticking();
        assert!(
            within(WAKE, || calls.ticks.load(Ordering::Relaxed)
                >= parked_at + 3),
            "the epoch advances while a call is in flight"
        );
        drop(call);
        assert!(within(LONG, parked));
        let parked_at = calls.ticks.load(Ordering::Relaxed);
        // Calls that begin and end while the ticker is parked still wake it.
        for _ in 0..3 {
            drop(engine.ticking());
        }
        let _call = engine.ticking();
        assert!(within(WAKE, || calls.ticks.load(Ordering::Relaxed) > parked_at));
    }
}
