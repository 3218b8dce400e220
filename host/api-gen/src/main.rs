//! Regenerates `host/src/api/generated/` from `host/proto/`:
//!
//!     cargo run --manifest-path host/api-gen/Cargo.toml
//!
//! With `--check` it generates into a temporary directory and fails if the committed
//! files differ (so a `.proto` edit without regeneration is caught).

use std::path::{Path, PathBuf};

const FILES: &[&str] = &["handler.proto", "stats.proto", "vless_account.proto"];

fn generate(out: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let host = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let proto = host.join("proto");
    let files: Vec<PathBuf> = FILES.iter().map(|f| proto.join(f)).collect();
    let descriptors = protox::compile(&files, [&proto])?;
    std::fs::create_dir_all(out)?;
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .build_transport(false)
        .emit_rerun_if_changed(false)
        .out_dir(out)
        .include_file("mod.rs")
        .compile_fds(descriptors)?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../src/api/generated");
    if std::env::args().any(|a| a == "--check") {
        let tmp = std::env::temp_dir().join(format!("wasmray-api-gen-{}", std::process::id()));
        generate(&tmp)?;
        let mut stale = Vec::new();
        for entry in std::fs::read_dir(&tmp)? {
            let path = entry?.path();
            let name = path.file_name().unwrap_or_default();
            let ours = std::fs::read(committed.join(name)).unwrap_or_default();
            if std::fs::read(&path)? != ours {
                stale.push(name.to_string_lossy().into_owned());
            }
        }
        let _ = std::fs::remove_dir_all(&tmp);
        if !stale.is_empty() {
            return Err(format!("stale generated files: {}", stale.join(", ")).into());
        }
        println!("generated code is current");
        return Ok(());
    }
    generate(&committed)?;
    println!("wrote {}", committed.display());
    Ok(())
}
