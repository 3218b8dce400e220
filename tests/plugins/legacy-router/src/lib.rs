//! A route plugin written against contract 0.2 directly (the WIT frozen in
//! `host/wit/0.2`), as a plugin built before 0.3 existed: it must keep loading. It logs
//! once when configured and routes every session to outbound `legacy`, with the
//! attribute `legacy = yes`.

#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({
    path: "../../../host/wit/0.2",
    world: "plugin",
});

use exports::wasmray::plugin::guest::Guest;
use wasmray::plugin::host::{Level, log};
use wasmray::plugin::types::{Delta, Descriptor, Snapshot, Stage, Verdict};

struct Legacy;

impl Guest for Legacy {
    fn describe() -> Descriptor {
        Descriptor {
            name: "legacy-router".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            stage: Stage::Route,
            payload_bytes: 0,
        }
    }

    fn configure(_config: String) -> Result<(), String> {
        log(Level::Info, "configured against contract 0.2");
        Ok(())
    }

    fn handle(_session: Snapshot, _payload: Vec<u8>) -> Verdict {
        Verdict::Matched(Delta {
            set: vec![("legacy".into(), "yes".into())],
            remove: Vec::new(),
            protocol: None,
            sniffed_domain: None,
            outbound: Some("legacy".into()),
        })
    }
}

export!(Legacy);
