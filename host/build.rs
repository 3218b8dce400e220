//! Builds the plugins under `plugins/` for wasm32-unknown-unknown and embeds them.
//! Set `WASMRAY_SKIP_PLUGINS=1` to embed nothing (only for hacking on the host alone).

#[path = "build/wasm.rs"]
mod wasm;

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
        ],
    );
    println!("cargo:rerun-if-env-changed=WASMRAY_SKIP_PLUGINS");
    let mut code = String::from(
        "/// (name, wasm bytes) of every built-in plugin.\npub static BUILTIN: &[(&str, &[u8])] = &[\n",
    );
    if std::env::var_os("WASMRAY_SKIP_PLUGINS").is_none() {
        let packages: Vec<&str> = PLUGINS.iter().map(|(p, _)| *p).collect();
        let dir = wasm::build(&root, &out.join("plugins-target"), &packages, &[]);
        for (name, stem) in PLUGINS {
            let path = dir.join(format!("{stem}.wasm"));
            code.push_str(&format!(
                "    ({name:?}, include_bytes!({:?})),\n",
                path.display().to_string()
            ));
        }
    }
    code.push_str("];\n");
    std::fs::write(out.join("builtin_plugins.rs"), code).expect("write builtin_plugins.rs");
}
