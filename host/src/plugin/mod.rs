//! The plugin platform: wasm components that sniff and route sessions.
//!
//! * `engine`: one wasmtime `Engine` (pooling allocator, epoch interruption) and the
//!   thread that ticks its epoch, so every call has a deadline.
//! * `engine_config`: the engine settings, shared with the build script that compiles
//!   the built-ins ahead of time.
//! * `cache`: compiled plugins on disk, by content hash.
//! * `load`: bytes to a validated, configured plugin: core modules are componentized
//!   with wit-component, imports are checked (no WASI, only the contract's `host` and `geodata`), the contract
//!   version is checked, `describe`, `configure` and one smoke call run under limits.
//! * `view`: the session packed as the contract's snapshot (one text buffer and spans).
//! * `state`: what each store carries (name, memory cap, routing data) and the log
//!   import of both contracts.
//! * `geodata_host`: the `geodata` import, answered from the shared routing data.
//! * `instance`: configured instances, pooled and reused; every call under a deadline,
//!   a memory cap and an output bound; a trapped instance is thrown away.
//! * `pipeline`: the plugins of one configuration in order, the stage runner and the
//!   `on_error` policy.
//! * `registry`: built-in plugins plus the plugin directory, the atomic pipeline swap
//!   and the directory watcher.

mod bindings;
mod builtin;
mod cache;
mod engine;
pub mod engine_config;
mod error;
mod geodata_host;
mod health;
mod instance;
mod load;
mod pipeline;
mod registry;
mod state;
mod view;

pub use bindings::types::Stage;
pub use builtin::{BUILTIN, Builtin};
pub use engine::PluginEngine;
pub use error::PluginError;
pub use instance::Source;
pub use instance::{Answer, LoadedPlugin};
pub use load::{CONTRACT, Code, load_plugin};
pub use pipeline::Blocked;
pub use pipeline::{Pipeline, PipelineSettings, SniffOutcome, SniffState};
pub use registry::{Prepared, Registry};

/// What the runtime needs from the configuration.
#[derive(Debug, Clone)]
pub struct RuntimeLimits {
    pub call_timeout: std::time::Duration,
    pub memory_limit: u64,
}

#[cfg(test)]
mod tests;
