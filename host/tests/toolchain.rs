//! The first build on a machine whose pinned toolchain lacks wasm32-unknown-unknown.
//!
//! A scratch rustup home holds a copy of the pinned toolchain (binaries hard-linked)
//! with the wasm target really removed, and a probe crate's build script runs the same
//! `ensure_target` the daemon's build script runs. Without rustup the build stops with
//! one line naming the command; through rustup the target is added and the build goes
//! on. Nothing is changed in the real toolchain.

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-unknown-unknown";

/// The toolchain this test itself was built with (rustup's layout).
fn real_toolchain() -> Option<PathBuf> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    sysroot
        .join("lib/rustlib/multirust-channel-manifest.toml")
        .is_file()
        .then_some(sysroot)
}

/// Copies `from` to `to`: directories recreated, small metadata files copied, large
/// files hard-linked (copied where a link cannot be made); the wasm target's files and its component entry left out.
fn copy_without_target(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().to_string();
        if name.contains(TARGET) {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        let meta = std::fs::symlink_metadata(&src).unwrap();
        if meta.is_dir() {
            copy_without_target(&src, &dst);
        } else if meta.file_type().is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src).unwrap(), &dst).unwrap();
        } else if name == "components" {
            let kept: String = std::fs::read_to_string(&src)
                .unwrap()
                .lines()
                .filter(|l| !l.contains(TARGET))
                .map(|l| format!("{l}\n"))
                .collect();
            std::fs::write(&dst, kept).unwrap();
        } else if name == "multirust-config.toml" {
            // rustup's own list of installed components: blocks split by blank lines.
            let text = std::fs::read_to_string(&src).unwrap();
            let kept: Vec<&str> = text.split("\n\n").filter(|b| !b.contains(TARGET)).collect();
            std::fs::write(&dst, kept.join("\n\n")).unwrap();
        } else if meta.len() < 64 * 1024 || std::fs::hard_link(&src, &dst).is_err() {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// A crate whose build script calls `ensure_target`, pinned to `channel`.
fn probe_crate(dir: &Path, channel: &str) {
    let wasm_rs = Path::new(env!("CARGO_MANIFEST_DIR")).join("build/wasm.rs");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        "[package]\nname = \"probe\"\nversion = \"0.0.0\"\nedition = \"2024\"\n[workspace]\n",
    )
    .unwrap();
    std::fs::write(dir.join("src/main.rs"), "fn main() {}\n").unwrap();
    std::fs::write(
        dir.join("build.rs"),
        format!(
            "#[path = {:?}]\n#[allow(dead_code)]\nmod wasm;\nfn main() {{\n    let out = std::path::PathBuf::from(std::env::var(\"OUT_DIR\").unwrap());\n    wasm::ensure_target(&out);\n}}\n",
            wasm_rs.display().to_string()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("rust-toolchain.toml"),
        format!("[toolchain]\nchannel = \"{channel}\"\n"),
    )
    .unwrap();
}

/// The environment of a build with nothing of the outer cargo's.
fn clean(cmd: &mut Command) -> &mut Command {
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().to_string();
        if key.starts_with("CARGO") || key.starts_with("RUSTUP") || key.starts_with("RUSTC") {
            cmd.env_remove(&key);
        }
    }
    // cargo test puts the real toolchain's lib/ on LD_LIBRARY_PATH; a rustc that
    // loaded its driver from there would take the real sysroot for its own.
    cmd.env_remove("RUSTFLAGS").env_remove("LD_LIBRARY_PATH")
}

fn target_present(toolchain: &Path) -> bool {
    toolchain
        .join(format!("lib/rustlib/{TARGET}/lib"))
        .read_dir()
        .is_ok_and(|mut d| {
            d.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("libcore-")))
        })
}

#[test]
fn a_missing_wasm_target_is_added_by_rustup_or_named_in_one_line() {
    let Some(real) = real_toolchain() else {
        eprintln!("not built by a rustup toolchain; nothing to test here");
        return;
    };
    let name = real.file_name().unwrap().to_string_lossy().to_string();
    let home = tempfile::tempdir().unwrap();
    let toolchain = home.path().join("toolchains").join(&name);
    copy_without_target(&real, &toolchain);
    assert!(
        !target_present(&toolchain),
        "the scratch toolchain lacks the target"
    );
    let channel = name.split('-').next().unwrap().to_string();
    let probe = tempfile::tempdir().unwrap();
    probe_crate(probe.path(), &channel);

    // No rustup: the toolchain's own cargo and rustc, PATH without rustup's proxies.
    let out = clean(&mut Command::new(toolchain.join("bin/cargo")))
        .arg("build")
        .current_dir(probe.path())
        .env("RUSTC", toolchain.join("bin/rustc"))
        .env("PATH", "/usr/bin:/bin")
        .env("CARGO_HOME", home.path().join("cargo"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    let line = format!(
        "error: the {TARGET} target is not installed for this Rust toolchain; run: rustup target add {TARGET}"
    );
    assert_eq!(said.matches(&line).count(), 1, "one clear line:\n{said}");

    // Through rustup (the proxies in ~/.cargo/bin), with the scratch home: the build
    // adds the target, says so in one line, and succeeds.
    let Some(rustup_bin) = which("cargo").filter(|c| c.with_file_name("rustup").exists()) else {
        eprintln!("no rustup on PATH; the rustup path is not tested here");
        return;
    };
    let path = format!("{}:/usr/bin:/bin", rustup_bin.parent().unwrap().display());
    let out = clean(&mut Command::new(&rustup_bin))
        .arg("build")
        .current_dir(probe.path())
        .env("RUSTUP_HOME", home.path())
        .env("CARGO_HOME", home.path().join("cargo"))
        .env("PATH", path)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert_eq!(
        said.matches(&format!("the {TARGET} target is missing from toolchain"))
            .count(),
        1,
        "{said}"
    );
    assert!(target_present(&toolchain), "rustup added the target");
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(program))
            .find(|p| p.is_file())
    })
}
