//! Builds the test suite's own plugins for wasm32-unknown-unknown: the SDK's example,
//! the hostile plugin (with and without a WASI import) and both versions of the
//! hot-swap router, and a router built against the frozen contract 0.2. Their paths reach the tests as `WASM_*` environment variables.

#[path = "../host/build/wasm.rs"]
mod wasm;

use std::path::{Path, PathBuf};

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    wasm::rerun_if_changed(
        &root,
        &[
            "plugins/example-header-router",
            "tests/plugins",
            "plugin-sdk/src",
            "plugin-sdk/wit",
            "host/wit",
            "Cargo.lock",
            "host/build",
        ],
    );
    let target = out.join("wasm-target");
    let builds: [(&str, &[&str], &str, &str); 6] = [
        (
            "example-header-router",
            &[],
            "example_header_router",
            "WASM_EXAMPLE",
        ),
        ("hostile-plugin", &[], "hostile_plugin", "WASM_HOSTILE"),
        (
            "hostile-plugin",
            &["wasi"],
            "hostile_plugin",
            "WASM_HOSTILE_WASI",
        ),
        ("swap-router", &[], "swap_router", "WASM_SWAP_A"),
        ("swap-router", &["b"], "swap_router", "WASM_SWAP_B"),
        ("legacy-router", &[], "legacy_router", "WASM_LEGACY_0_2"),
    ];
    for (package, features, stem, var) in builds {
        let dir = wasm::build(&root, &target, &[package], features);
        // Each build overwrites the last of the same package: keep a copy per variant.
        let copy = out.join(format!("{var}.wasm"));
        std::fs::copy(dir.join(format!("{stem}.wasm")), &copy).expect("copy wasm");
        println!("cargo:rustc-env={var}={}", copy.display());
    }
}
