//! Building workspace plugin crates for wasm32-unknown-unknown from a build script.
//! Shared by `host/build.rs` (the embedded built-ins) and `tests/build.rs` (the
//! example, hostile and hot-swap plugins of the test suite).
//!
//! The inner cargo gets its own target dir under OUT_DIR (the outer build holds the
//! lock on the normal one) and none of the outer build's flags or wrappers.
//!
//! rustup installs a missing toolchain from `rust-toolchain.toml` with its targets, but
//! does not add a target to a toolchain that is already installed, so a first build
//! could fail deep inside the inner cargo with "can't find crate for `core`".
//! [`ensure_target`] checks first: it adds the target with rustup when rustup manages
//! the toolchain (saying so in one line), and otherwise stops with one line that names
//! the command to run.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds `packages` (with `features`) in the `plugin` profile; returns the directory
/// holding the `.wasm` files.
pub fn build(root: &Path, target_dir: &Path, packages: &[&str], features: &[&str]) -> PathBuf {
    ensure_target(target_dir);
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

/// The target every plugin is built for.
pub const TARGET: &str = "wasm32-unknown-unknown";

/// Makes sure the toolchain has [`TARGET`]'s standard library; see the module docs.
/// `lock_dir` holds a lock file, so two build scripts of one build never run rustup at
/// the same time.
pub fn ensure_target(lock_dir: &Path) {
    if target_installed() {
        return;
    }
    let _ = std::fs::create_dir_all(lock_dir);
    let lock = std::fs::File::create(lock_dir.join(".wasm-target.lock"));
    let _held = lock.as_ref().ok().map(|f| f.lock());
    if target_installed() {
        return;
    }
    let toolchain = std::env::var("RUSTUP_TOOLCHAIN").ok();
    let Some(toolchain) = toolchain.filter(|_| rustup_works()) else {
        fail_missing_target(None);
    };
    println!(
        "cargo:warning=the {TARGET} target is missing from toolchain {toolchain}; adding it with `rustup target add {TARGET} --toolchain {toolchain}`"
    );
    let status = Command::new("rustup")
        .args(["target", "add", TARGET, "--toolchain", &toolchain])
        .status();
    if !matches!(status, Ok(s) if s.success()) || !target_installed() {
        fail_missing_target(Some(&toolchain));
    }
}

/// Whether the rustc this build uses has the target's `core` library.
fn target_installed() -> bool {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(out) = Command::new(rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
    else {
        return false;
    };
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("libcore-"))
    })
}

fn rustup_works() -> bool {
    Command::new("rustup")
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Stops the build with one line that says what to run.
fn fail_missing_target(toolchain: Option<&str>) -> ! {
    let how = match toolchain {
        Some(t) => format!("rustup target add {TARGET} --toolchain {t}"),
        None => format!(
            "rustup target add {TARGET} (or install your distribution's rust-std for {TARGET})"
        ),
    };
    eprintln!("error: the {TARGET} target is not installed for this Rust toolchain; run: {how}");
    std::process::exit(1);
}
