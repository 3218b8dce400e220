#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs the interop peer (v2ray), then
# builds everything (the toolchain and the wasm target come from rust-toolchain.toml)
# and runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/install-peers.sh
cargo test --workspace --locked
