//! Why a plugin failed: every variant names the plugin when logged.

use crate::session::DeltaError;

#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("not a wasm module or component: {0}")]
    NotWasm(String),
    #[error(
        "imports {0}: plugins get no WASI or other host functions, only wasmray:plugin/host.log"
    )]
    ForbiddenImport(String),
    #[error("built for plugin contract {found}; this wasmray speaks {expected} (and loads 0.2.0)")]
    ContractVersion {
        found: String,
        expected: &'static str,
    },
    #[error("does not export {0} (not a wasmray plugin?)")]
    MissingExport(&'static str),
    #[error("cannot make a component from the module: {0}")]
    Componentize(String),
    #[error("compile: {0}")]
    Compile(String),
    #[error("instantiate: {0}")]
    Instantiate(String),
    #[error("describe says name {0:?}, which is not a valid plugin name")]
    BadName(String),
    #[error("configure refused: {0}")]
    Configure(String),
    #[error("call exceeded its {0} ms deadline")]
    Timeout(u64),
    #[error("exceeded its memory limit of {0} bytes")]
    MemoryLimit(u64),
    #[error("trapped: {trap}{}", .panic.as_ref().map(|p| format!(" (panic: {p})")).unwrap_or_default())]
    Trap { trap: String, panic: Option<String> },
    #[error("malformed output: {0}")]
    Malformed(#[from] DeltaError),
}

impl PluginError {
    /// The error's kind, as the `wasmray_plugin_errors_total` metric labels it.
    pub fn kind(&self) -> &'static str {
        match self {
            PluginError::Timeout(_) => "timeout",
            PluginError::MemoryLimit(_) => "memory",
            PluginError::Trap { .. } => "trap",
            PluginError::Malformed(_) => "malformed",
            _ => "instantiate",
        }
    }
}
