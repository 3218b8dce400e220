//! The codecs under fuzzing, compiled on their own: `host/src/proto` is sans-IO and
//! depends only on `bytes` and `thiserror`, so the fuzzers build it without the rest of
//! the daemon (no wasmtime under sanitizers). The lib is named `wasmray`, so the fuzz
//! targets use the same paths as the daemon (`wasmray::proto::...`).

#[path = "../../src/proto/mod.rs"]
pub mod proto;
