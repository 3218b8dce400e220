//! Building workspace plugin crates for wasm32-unknown-unknown from a build script.
//! Shared by `host/build.rs` (the embedded built-ins) and `tests/build.rs` (the
//! example, hostile and hot-swap plugins of the test suite).
//!
//! The inner cargo gets its own target dir under OUT_DIR (the outer build holds the
//! lock on the normal one) and none of the outer build's flags or wrappers.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds `packages` (with `features`) in the `plugin` profile; returns the directory
/// holding the `.wasm` files.
pub fn build(root: &Path, target_dir: &Path, packages: &[&str], features: &[&str]) -> PathBuf {
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
        .arg(target_dir);
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    for package in packages {
        cmd.args(["-p", package]);
    }
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    let status = cmd.status().expect("run cargo to build wasm plugins");
    assert!(
        status.success(),
        "building {packages:?} for wasm32-unknown-unknown failed"
    );
    target_dir.join("wasm32-unknown-unknown/plugin")
}

/// Asks cargo to rerun the build script when any of `paths` (under `root`) changes.
pub fn rerun_if_changed(root: &Path, paths: &[&str]) {
    for path in paths {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
}
