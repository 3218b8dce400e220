//! From bytes to a configured plugin, with every check done off the hot path.
//!
//! Plugins are built for `wasm32-unknown-unknown`, so they are core modules with no
//! WASI imports; the host turns them into components with wit-component here, at load
//! time. That keeps the author's build a plain `cargo build --target
//! wasm32-unknown-unknown` (no wasm-tools step), costs a few milliseconds per load
//! (measured: far below cranelift's compile time), and lets the host check the core
//! imports itself and name a forbidden one clearly. Ready-made components are
//! accepted as well.
//!
//! Compiling is the slow part (cranelift: hundreds of milliseconds and tens of MiB of
//! heap per plugin), so it is the last resort: a built-in's precompiled form is tried
//! first, then the engine's on-disk cache, and only then the compiler (whose output
//! then goes to the cache).

use std::sync::Arc;

use wasmtime::component::Component;

use super::RuntimeLimits;
use super::bindings::{PluginPre, v02, v03};
use super::builtin::Builtin;
use super::cache::DiskCache;
use super::engine::PluginEngine;
use super::error::PluginError;
use super::instance::{self, LoadedPlugin, Parts, Source};
use crate::geodata::GeoData;
use crate::session::{Network, SnapshotFields, Target};

/// The contract version this host speaks (the WIT package version).
pub const CONTRACT: &str = "0.3.0";
/// The versions a plugin may be built against: the current one and 0.2, whose types
/// and exports 0.3 kept (it added the `geodata` import).
pub const CONTRACTS: [&str; 2] = [CONTRACT, "0.2.0"];
const PACKAGE: &str = "wasmray:plugin";
/// The interfaces a plugin may import: `types` has no functions (a component imports
/// it because `guest` uses its types); `geodata` exists from 0.3 on.
const IMPORTS: [&str; 3] = ["host", "types", "geodata"];

/// A plugin's code: its wasm, and for a built-in the same compiled ahead of time.
#[derive(Debug, Clone, Copy)]
pub struct Code<'a> {
    pub wasm: &'a [u8],
    /// `Engine::precompile_component` output, or empty.
    pub precompiled: &'a [u8],
}

impl<'a> From<&'a [u8]> for Code<'a> {
    fn from(wasm: &'a [u8]) -> Self {
        Code {
            wasm,
            precompiled: &[],
        }
    }
}

impl<'a> From<&'a Vec<u8>> for Code<'a> {
    fn from(wasm: &'a Vec<u8>) -> Self {
        Code::from(wasm.as_slice())
    }
}

impl From<&'static Builtin> for Code<'static> {
    fn from(b: &'static Builtin) -> Self {
        Code {
            wasm: b.wasm,
            precompiled: b.precompiled,
        }
    }
}

/// Compiles, checks, describes, configures and smoke-tests a plugin. `config_for` gives
/// the JSON config for the plugin's name (known only after `describe`).
pub fn load_plugin<'a>(
    engine: &PluginEngine,
    code: impl Into<Code<'a>>,
    source: Source,
    config_for: &dyn Fn(&str) -> String,
    limits: RuntimeLimits,
    geodata: Arc<GeoData>,
) -> Result<LoadedPlugin, PluginError> {
    let component = component(engine, code.into())?;
    let version = check_component(engine, &component)?;
    let instantiate = |e: wasmtime::Error| PluginError::Instantiate(format!("{e:#}"));
    let linker = instance::linker(&engine.engine).map_err(instantiate)?;
    let pre = linker.instantiate_pre(&component).map_err(instantiate)?;
    let pre = match version {
        CONTRACT => PluginPre::V03(v03::PluginPre::new(pre).map_err(instantiate)?),
        _ => PluginPre::V02(v02::PluginPre::new(pre).map_err(instantiate)?),
    };
    let d = instance::describe(engine, &pre, &source.to_string())?;
    if !valid_name(&d.name) {
        return Err(PluginError::BadName(d.name));
    }
    let config = config_for(&d.name);
    let parts = Parts {
        name: Arc::from(d.name.as_str()),
        version: d.version,
        stage: d.stage,
        payload_bytes: (d.payload_bytes as usize).min(MAX_PAYLOAD_BYTES),
        source,
        pre,
        geodata,
    };
    let plugin = LoadedPlugin::configure(parts, engine, config, limits)?;
    smoke_test(&plugin)?;
    Ok(plugin)
}

/// The most payload any plugin is shown (Xray's sniff cache is 32767 bytes).
pub const MAX_PAYLOAD_BYTES: usize = 32 * 1024;

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
}

/// The component for `code`: precompiled, cached or compiled now (then cached).
fn component(engine: &PluginEngine, code: Code<'_>) -> Result<Component, PluginError> {
    if !code.precompiled.is_empty() {
        // SAFETY: `precompiled` comes only from `Builtin`, written by our build script
        // with wasmtime's own serializer; wasmtime checks that it fits this engine.
        match unsafe { Component::deserialize(&engine.engine, code.precompiled) } {
            Ok(c) => return Ok(c),
            Err(e) => {
                tracing::debug!("precompiled plugin does not fit this engine ({e:#}); compiling it")
            }
        }
    }
    let Some(cache) = engine.cache() else {
        return compile(engine, code.wasm);
    };
    let key = DiskCache::key(&engine.engine, code.wasm);
    if let Some(c) = cache.load(&engine.engine, &key) {
        return Ok(c);
    }
    let component = compile(engine, code.wasm)?;
    cache.store(&key, &component);
    Ok(component)
}

fn compile(engine: &PluginEngine, bytes: &[u8]) -> Result<Component, PluginError> {
    let component_bytes;
    let bytes = if wasmparser::Parser::is_core_wasm(bytes) {
        check_core_imports(bytes)?;
        component_bytes = wit_component::ComponentEncoder::default()
            .module(bytes)
            .and_then(|e| e.validate(true).encode())
            .map_err(|e| PluginError::Componentize(format!("{e:#}")))?;
        &component_bytes[..]
    } else if wasmparser::Parser::is_component(bytes) {
        bytes
    } else {
        return Err(PluginError::NotWasm("bad magic number or version".into()));
    };
    Component::new(&engine.engine, bytes).map_err(|e| PluginError::Compile(format!("{e:#}")))
}

/// A core module may import only the host interface of this contract version.
fn check_core_imports(bytes: &[u8]) -> Result<(), PluginError> {
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| PluginError::NotWasm(e.to_string()))?;
        let wasmparser::Payload::ImportSection(reader) = payload else {
            continue;
        };
        for import in reader.into_imports() {
            let import = import.map_err(|e| PluginError::NotWasm(e.to_string()))?;
            check_import_name(import.module, Some(import.name))?;
        }
    }
    Ok(())
}

fn check_import_name(module: &str, item: Option<&str>) -> Result<(), PluginError> {
    if let Some((iface, version)) = contract_name(module) {
        let known = IMPORTS.contains(&iface)
            && CONTRACTS.contains(&version)
            && (iface != "geodata" || version == CONTRACT);
        if known {
            return Ok(());
        }
        if IMPORTS.contains(&iface) && !CONTRACTS.contains(&version) {
            return Err(PluginError::ContractVersion {
                found: version.to_string(),
                expected: CONTRACT,
            });
        }
    }
    let what = item.map_or_else(|| module.to_string(), |i| format!("{module}::{i}"));
    Err(PluginError::ForbiddenImport(what))
}

/// "wasmray:plugin/<iface>@X" as (iface, X); X is "(unversioned)" without a version.
fn contract_name(name: &str) -> Option<(&str, &str)> {
    let rest = name.strip_prefix(PACKAGE)?.strip_prefix('/')?;
    Some(rest.split_once('@').unwrap_or((rest, "(unversioned)")))
}

/// The contract version whose `guest` the component exports.
fn check_component(
    engine: &PluginEngine,
    component: &Component,
) -> Result<&'static str, PluginError> {
    let ty = component.component_type();
    for (name, _) in ty.imports(&engine.engine) {
        check_import_name(name, None)?;
    }
    let mut other = None;
    for (name, _) in ty.exports(&engine.engine) {
        match contract_name(name) {
            Some(("guest", version)) => match CONTRACTS.iter().find(|c| **c == version) {
                Some(known) => return Ok(known),
                None => other = Some(version.to_string()),
            },
            _ => continue,
        }
    }
    match other {
        Some(found) => Err(PluginError::ContractVersion {
            found,
            expected: CONTRACT,
        }),
        None => Err(PluginError::MissingExport(GUEST_EXPORT)),
    }
}

/// The export every plugin of the current contract has.
const GUEST_EXPORT: &str = "wasmray:plugin/guest@0.3.0";

/// How many smoke calls may time out before the plugin counts as too slow. The deadline
/// is wall-clock, so one call can miss it only because a loaded host preempted the
/// thread; a plugin that is really too slow misses it every time.
const SMOKE_ATTEMPTS: usize = 3;

/// One call under the real limits, on a typical HTTP request, before the plugin may
/// serve: a plugin that traps, or times out on every attempt, never replaces a working one.
fn smoke_test(plugin: &LoadedPlugin) -> Result<(), PluginError> {
    let target = Target::new("smoke.test", 80);
    let source = std::net::SocketAddr::from(([127, 0, 0, 1], 40000));
    let snapshot = SnapshotFields::new("smoke", source, Network::Tcp, target).freeze();
    let request = b"GET / HTTP/1.1\r\nHost: smoke.test\r\n\r\n";
    let mut result = plugin.answer(&snapshot, request).map(drop);
    for _ in 1..SMOKE_ATTEMPTS {
        if !matches!(result, Err(PluginError::Timeout(_))) {
            break;
        }
        result = plugin.answer(&snapshot, request).map(drop);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_names() {
        assert!(check_import_name("wasmray:plugin/host@0.3.0", Some("log")).is_ok());
        assert!(check_import_name("wasmray:plugin/host@0.2.0", Some("log")).is_ok());
        assert!(check_import_name("wasmray:plugin/geodata@0.3.0", Some("ip-in")).is_ok());
        assert!(matches!(
            check_import_name("wasmray:plugin/geodata@0.2.0", None),
            Err(PluginError::ForbiddenImport(_))
        ));
        assert!(matches!(
            check_import_name("wasmray:plugin/host@0.1.0", Some("log")),
            Err(PluginError::ContractVersion { found, .. }) if found == "0.1.0"
        ));
        let err = check_import_name("wasi_snapshot_preview1", Some("fd_write")).unwrap_err();
        assert!(
            err.to_string().contains("wasi_snapshot_preview1::fd_write"),
            "{err}"
        );
    }

    #[test]
    fn names() {
        assert!(valid_name("route-rules"));
        assert!(!valid_name(""));
        assert!(!valid_name("Route Rules"));
        assert!(!valid_name(&"a".repeat(65)));
    }
}
