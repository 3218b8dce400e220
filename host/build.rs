//! Builds the plugins under `plugins/` for wasm32-unknown-unknown and embeds them.
//!
//! The inner cargo gets its own target dir under OUT_DIR (the outer build holds the
//! lock on the normal one) and no RUSTFLAGS of the outer build. Set
//! `WASMRAY_SKIP_PLUGINS=1` to embed nothing (only for hacking on the host alone).

use std::path::{Path, PathBuf};
use std::process::Command;

const PLUGINS: [(&str, &str); 3] = [
    ("sniff-http", "sniff_http"),
    ("sniff-tls", "sniff_tls"),
    ("route-rules", "route_rules"),
];

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for dir in [
        "plugins",
        "plugin-sdk/src",
        "plugin-sdk/wit",
        "plugin-sdk/Cargo.toml",
        "Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    println!("cargo:rerun-if-env-changed=WASMRAY_SKIP_PLUGINS");
    let entries = if std::env::var_os("WASMRAY_SKIP_PLUGINS").is_some() {
        Vec::new()
    } else {
        build_plugins(&root, &out)
    };
    let mut code = String::from(
        "/// (name, wasm bytes) of every built-in plugin.\npub static BUILTIN: &[(&str, &[u8])] = &[\n",
    );
    for (name, path) in entries {
        code.push_str(&format!(
            "    ({name:?}, include_bytes!({:?})),\n",
            path.display().to_string()
        ));
    }
    code.push_str("];\n");
    std::fs::write(out.join("builtin_plugins.rs"), code).expect("write builtin_plugins.rs");
}

fn build_plugins(root: &Path, out: &Path) -> Vec<(&'static str, PathBuf)> {
    let target_dir = out.join("plugins-target");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args([
            "build",
            "--profile",
            "plugin",
            "--target",
            "wasm32-unknown-unknown",
            "--locked",
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTC_WRAPPER");
    for (package, _) in PLUGINS {
        cmd.args(["-p", package]);
    }
    let status = cmd.status().expect("run cargo to build the plugins");
    assert!(
        status.success(),
        "building the built-in plugins for wasm32-unknown-unknown failed"
    );
    PLUGINS
        .iter()
        .map(|(name, file)| {
            let path = target_dir.join(format!("wasm32-unknown-unknown/plugin/{file}.wasm"));
            (*name, path)
        })
        .collect()
}
