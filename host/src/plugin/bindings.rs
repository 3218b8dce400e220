//! Host bindings generated from the WIT contracts: the current one in `plugin-sdk/wit`
//! (0.3) and the previous one, frozen in `host/wit/0.2`, so plugins built against 0.2
//! keep loading.
//!
//! 0.3 added an import (`geodata`) and changed no type, so 0.2's `types` interface is
//! bound to 0.3's Rust types: a snapshot is converted once, a verdict read once, whatever
//! the plugin's version.

pub mod v03 {
    wasmtime::component::bindgen!({
        path: "../plugin-sdk/wit",
        world: "plugin",
    });
}

pub mod v02 {
    wasmtime::component::bindgen!({
        path: "wit/0.2",
        world: "plugin",
        with: {
            "wasmray:plugin/types@0.2.0": super::v03::wasmray::plugin::types,
        },
    });
}

pub use self::v03::wasmray::plugin::{geodata, types};

/// A plugin's bindings, whichever contract it was built against.
pub enum Plugin {
    V02(v02::Plugin),
    V03(v03::Plugin),
}

/// A plugin ready to instantiate, whichever contract it was built against.
pub enum PluginPre<T: 'static> {
    V02(v02::PluginPre<T>),
    V03(v03::PluginPre<T>),
}

impl<T: 'static> Clone for PluginPre<T> {
    fn clone(&self) -> Self {
        match self {
            PluginPre::V02(p) => PluginPre::V02(p.clone()),
            PluginPre::V03(p) => PluginPre::V03(p.clone()),
        }
    }
}

impl<T: Send + 'static> PluginPre<T> {
    pub fn instantiate(
        &self,
        store: impl wasmtime::AsContextMut<Data = T>,
    ) -> wasmtime::Result<Plugin> {
        Ok(match self {
            PluginPre::V02(p) => Plugin::V02(p.instantiate(store)?),
            PluginPre::V03(p) => Plugin::V03(p.instantiate(store)?),
        })
    }
}

impl Plugin {
    pub fn call_describe<S: wasmtime::AsContextMut>(
        &self,
        store: S,
    ) -> wasmtime::Result<types::Descriptor>
    where
        S::Data: Send,
    {
        match self {
            Plugin::V02(p) => p.wasmray_plugin_guest().call_describe(store),
            Plugin::V03(p) => p.wasmray_plugin_guest().call_describe(store),
        }
    }

    pub fn call_configure<S: wasmtime::AsContextMut>(
        &self,
        store: S,
        config: &str,
    ) -> wasmtime::Result<Result<(), String>>
    where
        S::Data: Send,
    {
        match self {
            Plugin::V02(p) => p.wasmray_plugin_guest().call_configure(store, config),
            Plugin::V03(p) => p.wasmray_plugin_guest().call_configure(store, config),
        }
    }

    pub fn call_handle<S: wasmtime::AsContextMut>(
        &self,
        store: S,
        session: &types::Snapshot,
        payload: &[u8],
    ) -> wasmtime::Result<types::Verdict>
    where
        S::Data: Send,
    {
        match self {
            Plugin::V02(p) => p
                .wasmray_plugin_guest()
                .call_handle(store, session, payload),
            Plugin::V03(p) => p
                .wasmray_plugin_guest()
                .call_handle(store, session, payload),
        }
    }
}
