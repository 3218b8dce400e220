//! Host bindings generated from the WIT contract in `plugin-sdk/wit`.

wasmtime::component::bindgen!({
    path: "../plugin-sdk/wit",
    world: "plugin",
});

pub use self::exports::wasmray::plugin::guest;
pub use self::wasmray::plugin::host;
pub use self::wasmray::plugin::types;
