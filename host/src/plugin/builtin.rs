//! The built-in plugins, compiled from `plugins/` by the build script and embedded, so
//! the daemon routes sensibly with no plugin directory at all. Each comes with its
//! native code compiled ahead of time for the default engine (empty in a cross build).

/// One embedded plugin.
pub struct Builtin {
    pub name: &'static str,
    /// The core module, as built for wasm32-unknown-unknown.
    pub wasm: &'static [u8],
    /// `Engine::precompile_component` of it for the default engine settings, or empty.
    pub precompiled: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/builtin_plugins.rs"));
