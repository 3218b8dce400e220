//! Built-in plugins plus the plugin directory, swapped atomically.
//!
//! A reload (directory change, SIGHUP) builds a whole new [`Pipeline`] off the hot
//! path: unchanged files are reused, changed ones are compiled and validated (see
//! `load`), and only then is the pipeline swapped in with one `ArcSwap::store`.
//! A file that fails is refused with one log line and the previous version of that
//! plugin keeps serving. Removing a file removes its plugin (a built-in of the same
//! name comes back).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;

use super::RuntimeLimits;
use super::builtin::BUILTIN;
use super::engine::PluginEngine;
use super::instance::LoadedPlugin;
use super::instance::Source;
use super::load::{Code, load_plugin};
use super::pipeline::{Pipeline, PipelineSettings};
use crate::config::PluginsConfig;
use crate::geodata::{GeoData, Sources};

/// Identifies one version of one plugin's bytes and configuration.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    source: Source,
    /// The built-in's name (all built-ins share `Source::Builtin`).
    builtin: Option<&'static str>,
    /// File length and mtime (for built-ins: none).
    stamp: Option<(u64, SystemTime)>,
    config: String,
    limits: String,
    /// The routing data's generation: new data reconfigures the plugins.
    geodata: u64,
}

struct State {
    config: PluginsConfig,
    cache: HashMap<CacheKey, Arc<LoadedPlugin>>,
    /// Keys already refused, so a broken file is reported once, not at every reload.
    refused: HashSet<CacheKey>,
    geo: Geo,
}

/// The routing data the plugins are configured against, and what it was read from.
#[derive(Default)]
struct Geo {
    sources: Sources,
    /// Length and mtime of each file of `sources`, when last read (or refused).
    stamps: Vec<Option<(u64, SystemTime)>>,
    data: Arc<GeoData>,
    generation: u64,
}

/// A pipeline built by [`Registry::prepare`], not yet serving.
pub struct Prepared {
    pipeline: Arc<Pipeline>,
    config: PluginsConfig,
    /// The generation it was built on.
    base: u64,
}

pub struct Registry {
    engine: PluginEngine,
    current: ArcSwap<Pipeline>,
    state: Mutex<State>,
}

impl Registry {
    /// Loads the built-ins and the directory. Fails if a pipeline entry is missing or
    /// a built-in is broken; a broken directory file is only logged.
    pub fn start(config: PluginsConfig) -> anyhow::Result<Arc<Registry>> {
        Self::start_metered(config, crate::metrics::PluginMetrics::default())
    }

    /// As [`Registry::start`], counting every plugin's calls into `metrics`.
    pub fn start_metered(
        config: PluginsConfig,
        metrics: crate::metrics::PluginMetrics,
    ) -> anyhow::Result<Arc<Registry>> {
        let engine = PluginEngine::new(config.memory_limit)?
            .with_cache(config.cache.as_deref())
            .with_metrics(metrics);
        let mut state = State {
            config: config.clone(),
            cache: HashMap::new(),
            refused: HashSet::new(),
            geo: Geo::default(),
        };
        let pipeline = build(&engine, &mut state, &config, None)?;
        release_freed_heap();
        Ok(Arc::new(Registry {
            engine,
            current: ArcSwap::from_pointee(pipeline),
            state: Mutex::new(state),
        }))
    }

    /// The pipeline new sessions use now.
    pub fn pipeline(&self) -> Arc<Pipeline> {
        self.current.load_full()
    }

    pub fn dir(&self) -> Option<PathBuf> {
        self.lock().config.dir.clone()
    }

    /// Rebuilds and swaps the pipeline, with a new `[plugins]` config if given.
    /// On failure the current pipeline stays and the error is returned.
    pub fn reload(&self, config: Option<PluginsConfig>) -> anyhow::Result<Arc<Pipeline>> {
        let prepared = match config {
            Some(config) => self.prepare(config)?,
            None => {
                let config = self.lock().config.clone();
                self.prepare(config)?
            }
        };
        Ok(self.commit(prepared))
    }

    /// Builds the pipeline of `config` without serving it yet: a whole-config reload
    /// checks everything before it changes anything.
    pub fn prepare(&self, mut config: PluginsConfig) -> anyhow::Result<Prepared> {
        if config.memory_limit > self.engine.max_memory {
            tracing::warn!(
                "plugins.memory_limit above {} bytes needs a restart; capped",
                self.engine.max_memory
            );
            config.memory_limit = self.engine.max_memory;
        }
        let mut state = self.lock();
        let current = self.current.load_full();
        let pipeline = build(&self.engine, &mut state, &config, Some(&current))?;
        Ok(Prepared {
            pipeline: Arc::new(pipeline),
            config,
            base: current.generation,
        })
    }

    /// Serves a prepared pipeline from now on. If the directory changed the pipeline
    /// meanwhile, it is built again (from cached plugins) so that change is kept.
    pub fn commit(&self, prepared: Prepared) -> Arc<Pipeline> {
        let mut state = self.lock();
        state.config = prepared.config;
        let current = self.current.load_full();
        let next = if current.generation == prepared.base {
            prepared.pipeline
        } else {
            let config = state.config.clone();
            match build(&self.engine, &mut state, &config, Some(&current)) {
                Ok(p) => Arc::new(p),
                Err(_) => prepared.pipeline,
            }
        };
        self.current.store(next.clone());
        release_freed_heap();
        let names: Vec<String> = next
            .plugins
            .iter()
            .map(|p| format!("{}@{} ({})", p.name, p.version, p.source))
            .collect();
        tracing::info!(generation = next.generation, plugins = %names.join(", "), "plugin pipeline swapped");
        next
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        crate::util::lock(&self.state)
    }

    /// The directories to watch: the plugin directory and those of the geodata files
    /// (ext files included, once a plugin has opened one).
    pub fn watched_dirs(&self) -> Vec<PathBuf> {
        let state = self.lock();
        let mut dirs: Vec<PathBuf> = state.config.dir.iter().cloned().collect();
        let ext = state.geo.data.ext.paths();
        for file in state
            .config
            .geodata
            .files()
            .chain(ext.iter().map(PathBuf::as_path))
        {
            if let Some(parent) = file.parent() {
                let parent = if parent.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    parent
                };
                if !dirs.iter().any(|d| d == parent) {
                    dirs.push(parent.to_path_buf());
                }
            }
        }
        dirs
    }

    /// Watches the plugin directory and the geodata files' directories, and reloads
    /// after changes settle (debounced). The watcher stops when the handle is dropped.
    pub fn watch(self: &Arc<Self>) -> anyhow::Result<Option<notify::RecommendedWatcher>> {
        use notify::Watcher;
        let dirs = self.watched_dirs();
        if dirs.is_empty() {
            return Ok(None);
        }
        if let Some(dir) = self.dir() {
            std::fs::create_dir_all(&dir)?;
        }
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if event.is_ok_and(|e| !e.kind.is_access()) {
                    let _ = tx.send(());
                }
            })?;
        for dir in &dirs {
            watcher.watch(dir, notify::RecursiveMode::NonRecursive)?;
        }
        let registry = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("plugin-watch".into())
            .spawn(move || {
                while rx.recv().is_ok() {
                    // Debounce: wait until the directories have been quiet for a moment.
                    while rx.recv_timeout(DEBOUNCE).is_ok() {}
                    let Some(registry) = registry.upgrade() else {
                        break;
                    };
                    if let Err(e) = registry.reload(None) {
                        tracing::error!(
                            "plugin reload failed, the previous pipeline keeps serving: {e:#}"
                        );
                    }
                }
            })?;
        Ok(Some(watcher))
    }

    /// The routing data the current pipeline's plugins see.
    pub fn geodata(&self) -> Arc<GeoData> {
        self.lock().geo.data.clone()
    }
}

/// Gives the heap that compiling left free back to the kernel. Cranelift allocates
/// tens of MiB per plugin and frees them, but glibc keeps freed arena memory mapped:
/// without this, an engine that compiled at start (a plugin file not yet cached, or
/// built-ins that did not fit the engine) sat at about 90 MiB instead of 25.
fn release_freed_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory of the allocator to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// How long the plugin directory must be quiet before a reload.
const DEBOUNCE: Duration = Duration::from_millis(150);

fn build(
    engine: &PluginEngine,
    state: &mut State,
    config: &PluginsConfig,
    current: Option<&Pipeline>,
) -> anyhow::Result<Pipeline> {
    let limits = RuntimeLimits {
        call_timeout: config.call_timeout,
        memory_limit: config.memory_limit,
    };
    refresh_geodata(&mut state.geo, &config.geodata)?;
    let mut by_name: BTreeMap<String, Arc<LoadedPlugin>> = BTreeMap::new();
    for builtin in BUILTIN {
        let name = builtin.name;
        let plugin = load_cached(
            engine,
            state,
            config,
            (Source::Builtin, Some(name)),
            None,
            builtin.into(),
            &limits,
        )
        .map_err(|e| anyhow::anyhow!("built-in plugin {name}: {e}"))?;
        by_name.insert(plugin.name.to_string(), plugin);
    }
    for (path, plugin) in load_dir(engine, state, config, current, &limits) {
        if let Some(old) = by_name.get(&*plugin.name)
            && let Source::File(other) = &old.source
        {
            tracing::warn!(plugin = %plugin.name, "both {} and {} describe this name; using the first", other.display(), path.display());
            continue;
        }
        by_name.insert(plugin.name.to_string(), plugin);
    }
    let mut plugins = Vec::new();
    for name in &config.pipeline {
        match by_name.get(name) {
            Some(p) => plugins.push(p.clone()),
            None => anyhow::bail!(
                "plugins.pipeline names {name:?}, but no built-in or file in the plugin directory describes that name"
            ),
        }
    }
    state
        .cache
        .retain(|_, p| Arc::strong_count(p) > 1 || by_name.contains_key(&*p.name));
    Ok(Pipeline {
        generation: current.map_or(1, |c| c.generation + 1),
        plugins,
        settings: PipelineSettings {
            sniff_window: config.sniff_window,
            on_error: config.on_error,
            policies: config.policies.clone(),
            quarantine: config.quarantine,
            dest_override: config.dest_override.clone(),
            route_only: config.route_only,
        },
    })
}

/// Every `*.wasm` in the directory that loads; for a file that fails, the version the
/// current pipeline has from that same path, if any.
fn load_dir(
    engine: &PluginEngine,
    state: &mut State,
    config: &PluginsConfig,
    current: Option<&Pipeline>,
    limits: &RuntimeLimits,
) -> Vec<(PathBuf, Arc<LoadedPlugin>)> {
    let Some(dir) = config.dir.clone() else {
        return Vec::new();
    };
    let mut files = match wasm_files(&dir) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!("cannot read the plugin directory {}: {e}", dir.display());
            return Vec::new();
        }
    };
    files.sort();
    let mut loaded = Vec::new();
    for path in files {
        let previous = || {
            current.and_then(|c| {
                c.plugins
                    .iter()
                    .find(|p| p.source == Source::File(path.clone()))
                    .cloned()
            })
        };
        let Ok((bytes, stamp)) = read_stamped(&path) else {
            loaded.extend(previous().map(|p| (path.clone(), p)));
            continue;
        };
        match load_cached(
            engine,
            state,
            config,
            (Source::File(path.clone()), None),
            Some(stamp),
            (&bytes).into(),
            limits,
        ) {
            Ok(p) => loaded.push((path, p)),
            Err(_) => loaded.extend(previous().map(|p| (path.clone(), p))),
        }
    }
    loaded
}

fn wasm_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "wasm") && path.is_file() {
            files.push(path);
        }
    }
    Ok(files)
}

/// Bounded read: a plugin file is at most 64 MiB.
fn read_stamped(path: &Path) -> std::io::Result<(Vec<u8>, (u64, SystemTime))> {
    const MAX: u64 = 64 << 20;
    let meta = std::fs::metadata(path)?;
    if meta.len() > MAX {
        return Err(std::io::Error::other("larger than 64 MiB"));
    }
    let bytes = std::fs::read(path)?;
    Ok((bytes, (meta.len(), meta.modified()?)))
}

fn load_cached(
    engine: &PluginEngine,
    state: &mut State,
    plugins: &PluginsConfig,
    (source, builtin): (Source, Option<&'static str>),
    stamp: Option<(u64, SystemTime)>,
    code: Code<'_>,
    limits: &RuntimeLimits,
) -> Result<Arc<LoadedPlugin>, String> {
    // The config depends on the name, known only after describe; key on all configs.
    let config = serde_json::to_string(&plugins.config).unwrap_or_default();
    let key = CacheKey {
        source: source.clone(),
        builtin,
        stamp,
        config,
        limits: format!("{limits:?}"),
        geodata: state.geo.generation,
    };
    if let Some(p) = state.cache.get(&key) {
        return Ok(p.clone());
    }
    if state.refused.contains(&key) {
        return Err("refused before".into());
    }
    let configs = plugins.config.clone();
    let config_for = move |name: &str| {
        configs
            .get(name)
            .map_or_else(|| "{}".to_string(), |v| v.to_string())
    };
    let geodata = state.geo.data.clone();
    match load_plugin(
        engine,
        code,
        source.clone(),
        &config_for,
        limits.clone(),
        geodata,
    ) {
        Ok(p) => {
            let p = Arc::new(p);
            tracing::info!(plugin = %p.name, version = %p.version, %source, "plugin loaded");
            state.cache.insert(key, p.clone());
            Ok(p)
        }
        Err(e) => {
            tracing::error!(%source, "plugin refused, the previous version (if any) keeps serving: {e}");
            state.refused.insert(key);
            Err(e.to_string())
        }
    }
}

/// Reads the routing data again if its sources or files changed. New sources that fail
/// fail the build (a config naming a broken file is refused); a changed file that
/// fails is logged once and the data read before keeps serving.
fn refresh_geodata(geo: &mut Geo, sources: &Sources) -> anyhow::Result<()> {
    let stamps: Vec<_> = sources.files().map(crate::util::file_stamp).collect();
    let same_sources = geo.sources == *sources;
    if same_sources && geo.stamps == stamps && !geo.data.ext.changed() {
        return Ok(());
    }
    let started = std::time::Instant::now();
    match GeoData::load(sources) {
        Ok(data) => {
            if sources.files().next().is_some() {
                tracing::info!(
                    ms = started.elapsed().as_millis() as u64,
                    "geodata loaded: {}",
                    data.summary()
                );
            }
            *geo = Geo {
                sources: sources.clone(),
                stamps,
                data: Arc::new(data),
                generation: geo.generation + 1,
            };
            Ok(())
        }
        Err(e) if same_sources => {
            tracing::error!("geodata refused, the data read before keeps serving: {e}");
            geo.stamps = stamps;
            Ok(())
        }
        Err(e) => Err(anyhow::anyhow!("geodata: {e}")),
    }
}
