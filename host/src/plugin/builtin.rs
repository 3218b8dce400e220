//! The built-in plugins, compiled from `plugins/` by the build script and embedded, so
//! the daemon routes sensibly with no plugin directory at all.

include!(concat!(env!("OUT_DIR"), "/builtin_plugins.rs"));
