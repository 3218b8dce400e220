//! `example-header-router`: routes a session by the value of one request header.
//!
//! The example plugin of `plugin-sdk/README.md`, written from it step by step.
//!
//! ```toml
//! [plugins.config.example-header-router]
//! header = "x-route"        # the attribute to look at (sniff-http records request headers)
//! # default = "direct"      # optional: the outbound when the header is absent or unknown
//!
//! [plugins.config.example-header-router.routes]
//! eu = "proxy-eu"           # header value -> outbound tag
//! us = "proxy-us"
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;
use wasmray_plugin_sdk::{Config, Delta, Descriptor, Plugin, Snapshot, Verdict, log};

/// The plugin's config table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// The attribute (request header) to look at.
    header: String,
    /// Header value -> outbound tag.
    routes: BTreeMap<String, String>,
    /// The outbound when no route applies; without it the plugin answers no-match.
    default: Option<String>,
}

/// The configured plugin.
pub struct HeaderRouter {
    header: String,
    routes: BTreeMap<String, String>,
    default: Option<String>,
}

impl Plugin for HeaderRouter {
    fn describe() -> Descriptor {
        Descriptor::route("example-header-router", env!("CARGO_PKG_VERSION"))
    }

    fn configure(config: &Config) -> Result<Self, String> {
        let settings: Settings = config.parse()?;
        if settings.header.is_empty() {
            return Err("header: must not be empty".into());
        }
        if settings.routes.is_empty() {
            return Err("routes: add at least one `value = \"outbound\"` entry".into());
        }
        log::info!(
            "routing by {:?} over {} values",
            settings.header,
            settings.routes.len()
        );
        Ok(HeaderRouter {
            // Attribute keys are lower-case.
            header: settings.header.to_ascii_lowercase(),
            routes: settings.routes,
            default: settings.default,
        })
    }

    fn handle(&self, session: &Snapshot, _payload: &[u8]) -> Verdict {
        let value = session.attr(&self.header).map(str::trim);
        let outbound = value
            .and_then(|v| self.routes.get(v))
            .or(self.default.as_ref());
        match outbound {
            Some(tag) => Verdict::Matched(Delta::new().outbound(tag)),
            None => Verdict::NoMatch,
        }
    }
}

wasmray_plugin_sdk::export_plugin!(HeaderRouter);
