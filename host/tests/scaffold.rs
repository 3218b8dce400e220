//! `wasmray plugin new` from scratch: each stage's crate passes its own native test,
//! builds to wasm, and `wasmray plugin check` accepts the result under its name. Built
//! offline against the crates this workspace already has, in a target directory kept
//! between runs.

use std::path::Path;
use std::process::Command;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{cmd:?}:\n{text}");
    text
}

fn cargo(krate: &Path, args: &[&str]) -> String {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scaffold-target");
    let manifest = krate.join("Cargo.toml");
    run(Command::new(env!("CARGO"))
        .args(args)
        .arg("--offline")
        .arg("--manifest-path")
        .arg(manifest)
        .env("CARGO_TARGET_DIR", &target))
}

#[test]
fn a_new_plugin_tests_builds_and_is_accepted_by_plugin_check() {
    let dir = tempfile::tempdir().unwrap();
    for stage in ["route", "sniff"] {
        let name = format!("my-{stage}");
        let krate = dir.path().join(&name);
        let wasmray = || Command::new(env!("CARGO_BIN_EXE_wasmray"));
        let made = run(wasmray()
            .args(["plugin", "new", &name, "--stage", stage, "--dir"])
            .arg(&krate));
        assert!(made.contains("created"), "{made}");
        let again = wasmray()
            .args(["plugin", "new", &name, "--stage", stage, "--dir"])
            .arg(&krate)
            .output()
            .unwrap();
        assert!(!again.status.success(), "an existing directory is refused");

        let tested = cargo(&krate, &["test"]);
        assert!(tested.contains("test result: ok. 1 passed"), "{tested}");
        cargo(
            &krate,
            &["build", "--release", "--target", "wasm32-unknown-unknown"],
        );
        let wasm = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("scaffold-target/wasm32-unknown-unknown/release")
            .join(format!("{}.wasm", name.replace('-', "_")));
        let mut check = wasmray();
        check.args(["plugin", "check"]).arg(&wasm);
        if stage == "route" {
            let config = dir.path().join("route.toml");
            std::fs::write(
                &config,
                "outbound = \"direct\"\nsuffixes = [\"example.com\"]\n",
            )
            .unwrap();
            check.arg("--config").arg(config);
        }
        let checked = run(&mut check);
        assert!(checked.contains(&format!("name: {name}")), "{checked}");
        assert!(checked.contains(&format!("stage: {stage}")), "{checked}");
    }
}
