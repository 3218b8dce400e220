//! wasmray: a VLESS over TLS proxy daemon with Mux.Cool, whose sniffing and routing
//! stages run as sandboxed WebAssembly plugins. See `docs/architecture.md`.

pub mod api;
pub mod bufpool;
pub mod cli_plugin;
pub mod config;
pub mod daemon;
pub mod default_config;
pub mod dispatch;
pub mod dns;
pub mod framed;
pub mod geodata;
pub mod import_xray;
pub mod inbound;
pub mod ledger;
pub mod logging;
pub mod metrics;
pub mod mux;
pub mod outbound;
pub mod plugin;
pub mod proto;
pub mod relay;
pub mod scaffold;
pub mod security;
pub mod session;
pub mod share;
pub mod stats;
pub mod transport;
pub mod util;
pub mod vless;
