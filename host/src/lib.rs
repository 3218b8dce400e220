//! wasmray: a VLESS over TLS proxy daemon with Mux.Cool, whose sniffing and routing
//! stages run as sandboxed WebAssembly plugins. See `docs/architecture.md`.

pub mod config;
pub mod util;
