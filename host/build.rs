//! Builds the plugins under `plugins/` for wasm32-unknown-unknown, compiles each to
//! native code ahead of time with the daemon's own engine settings
//! (`src/plugin/engine_config.rs`), and embeds both: the daemon loads the precompiled
//! form in microseconds, and falls back to the wasm when wasmtime says the precompiled
//! form does not fit its engine (another `memory_limit`, another CPU).
//! Set `WASMRAY_SKIP_PLUGINS=1` to embed nothing (only for hacking on the host alone).

#[path = "build/wasm.rs"]
mod wasm;

#[path = "src/plugin/engine_config.rs"]
#[allow(dead_code)]
mod engine_config;

use std::path::{Path, PathBuf};

/// (plugin name = package, file stem of its .wasm)
const PLUGINS: [(&str, &str); 3] = [
    ("sniff-http", "sniff_http"),
    ("sniff-tls", "sniff_tls"),
    ("route-rules", "route_rules"),
];

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    wasm::rerun_if_changed(
        &root,
        &[
            "plugins",
            "plugin-sdk/src",
            "plugin-sdk/wit",
            "plugin-sdk/Cargo.toml",
            "Cargo.toml",
            "Cargo.lock",
            "host/build",
            "host/src/plugin/engine_config.rs",
        ],
    );
    println!("cargo:rerun-if-env-changed=WASMRAY_SKIP_PLUGINS");
    let mut code =
        String::from("/// Every built-in plugin.\npub static BUILTIN: &[Builtin] = &[\n");
    if std::env::var_os("WASMRAY_SKIP_PLUGINS").is_none() {
        let packages: Vec<&str> = PLUGINS.iter().map(|(p, _)| *p).collect();
        let dir = wasm::build(&root, &out.join("plugins-target"), &packages, &[]);
        let engine = precompiling_engine();
        for (name, stem) in PLUGINS {
            let path = dir.join(format!("{stem}.wasm"));
            let cwasm = out.join(format!("{stem}.cwasm"));
            let precompiled = engine.as_ref().map(|e| precompile(e, &path, &cwasm));
            code.push_str(&format!(
                "    Builtin {{ name: {name:?}, wasm: include_bytes!({:?}), precompiled: {} }},\n",
                path.display().to_string(),
                match precompiled {
                    Some(()) => format!("include_bytes!({:?})", cwasm.display().to_string()),
                    None => "&[]".into(),
                }
            ));
        }
    }
    code.push_str("];\n");
    std::fs::write(out.join("builtin_plugins.rs"), code).expect("write builtin_plugins.rs");
}

/// The daemon's engine, when the daemon runs where it is built (a cross build embeds
/// no precompiled code: the daemon compiles the wasm at start instead).
fn precompiling_engine() -> Option<wasmtime::Engine> {
    let host = std::env::var("HOST").ok();
    if host != std::env::var("TARGET").ok() {
        return None;
    }
    let slot = engine_config::slot_size(engine_config::DEFAULT_MEMORY_LIMIT);
    let config = engine_config::engine_config(slot).expect("engine config");
    Some(wasmtime::Engine::new(&config).expect("wasmtime engine for precompiling"))
}

/// The core module at `wasm` as a component, compiled to native code, written to `out`.
fn precompile(engine: &wasmtime::Engine, wasm: &Path, out: &Path) {
    let module = std::fs::read(wasm).expect("read plugin wasm");
    let component = wit_component::ComponentEncoder::default()
        .module(&module)
        .and_then(|e| e.validate(true).encode())
        .expect("componentize plugin");
    let compiled = engine
        .precompile_component(&component)
        .expect("precompile plugin");
    std::fs::write(out, compiled).expect("write precompiled plugin");
}
