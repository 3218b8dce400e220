//! `wasmray plugin new`: the files of a new plugin crate that builds, as it stands, to
//! a `.wasm` `wasmray plugin check` accepts, with a native test through the SDK's
//! harness. Text in, files out; the CLI writes them.

/// The stages a new plugin can be made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NewStage {
    Sniff,
    Route,
}

#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error(
        "plugin name {0:?}: lower-case letters, digits and '-', starting with a letter, at most 64"
    )]
    Name(String),
}

/// (path relative to the crate, contents) of every file of the new crate, which
/// depends on the SDK at `sdk` (a path, as TOML writes it).
pub fn files(
    name: &str,
    stage: NewStage,
    sdk: &str,
) -> Result<Vec<(&'static str, String)>, ScaffoldError> {
    let fine = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !fine {
        return Err(ScaffoldError::Name(name.to_string()));
    }
    let sdk = toml::Value::String(sdk.to_string()).to_string();
    let fill = |text: &str| {
        text.replace("@NAME@", name)
            .replace("@CRATE@", &name.replace('-', "_"))
            .replace("@SDK@", &sdk)
    };
    let (lib, test) = match stage {
        NewStage::Route => (ROUTE_LIB, ROUTE_TEST),
        NewStage::Sniff => (SNIFF_LIB, SNIFF_TEST),
    };
    Ok(vec![
        ("Cargo.toml", fill(CARGO_TOML)),
        ("src/lib.rs", fill(lib)),
        ("tests/native.rs", fill(test)),
        ("README.md", fill(README)),
        (".gitignore", "/target\n".to_string()),
    ])
}

const CARGO_TOML: &str = r#"[package]
name = "@NAME@"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
# cdylib: the .wasm the daemon loads. rlib: the native tests in tests/ use the plugin.
crate-type = ["cdylib", "rlib"]

[dependencies]
wasmray-plugin-sdk = { path = @SDK@ }
serde = { version = "1", features = ["derive"] }

# A small, fast .wasm: quicker to load and to swap while the daemon runs.
[profile.release]
lto = true
opt-level = "s"
codegen-units = 1
panic = "abort"
strip = true

# Its own workspace, wherever it is created.
[workspace]
"#;

const README: &str = r#"# @NAME@

A wasmray plugin. `cargo test` runs its native tests (no wasm needed).
Build: `cargo build --release --target wasm32-unknown-unknown`, then
`wasmray plugin check target/wasm32-unknown-unknown/release/@CRATE@.wasm`.
Use: copy the `.wasm` into the daemon's `[plugins] dir` and add `"@NAME@"` to `pipeline`.
"#;

const ROUTE_LIB: &str = r#"//! `@NAME@`: a route plugin. Sends sessions whose domain ends with one of the
//! configured suffixes to an outbound:
//!
//! ```toml
//! [plugins.config.@NAME@]
//! outbound = "direct"
//! suffixes = ["example.com", "example.org"]
//! ```

use serde::Deserialize;
use wasmray_plugin_sdk::{Config, Delta, Descriptor, Plugin, Snapshot, Verdict};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    outbound: String,
    suffixes: Vec<String>,
}

pub struct Router {
    outbound: String,
    suffixes: Vec<String>,
}

impl Plugin for Router {
    fn describe() -> Descriptor {
        Descriptor::route("@NAME@", env!("CARGO_PKG_VERSION"))
    }

    fn configure(config: &Config) -> Result<Self, String> {
        let s: Settings = config.parse()?;
        if s.outbound.is_empty() {
            return Err("outbound: must name an outbound".into());
        }
        let suffixes = s.suffixes.iter().map(|d| d.trim_matches('.').to_ascii_lowercase());
        Ok(Router {
            outbound: s.outbound,
            suffixes: suffixes.collect(),
        })
    }

    fn handle(&self, session: &Snapshot, _payload: &[u8]) -> Verdict {
        let Some(domain) = session.route_domain() else {
            return Verdict::NoMatch;
        };
        let hit = self.suffixes.iter().any(|s| {
            domain == *s || domain.strip_suffix(s.as_str()).is_some_and(|d| d.ends_with('.'))
        });
        if hit {
            Verdict::Matched(Delta::new().outbound(&self.outbound))
        } else {
            Verdict::NoMatch
        }
    }
}

wasmray_plugin_sdk::export_plugin!(Router);
"#;

const ROUTE_TEST: &str = r##"use @CRATE@::Router;
use wasmray_plugin_sdk::harness::{Harness, SnapshotBuilder};

#[test]
fn routes_the_configured_suffixes() {
    let h: Harness<Router> = Harness::new(r#"{"outbound": "direct", "suffixes": ["example.com"]}"#);
    let to = |host: &str| SnapshotBuilder::new().target(host, 443).build();
    let out = |host: &str| h.handle(&to(host), b"").delta().and_then(|d| d.outbound.clone());
    assert_eq!(out("www.example.com").as_deref(), Some("direct"));
    assert_eq!(out("example.com").as_deref(), Some("direct"));
    assert_eq!(out("notexample.com"), None);
    assert_eq!(out("192.0.2.1"), None);
}
"##;

const SNIFF_LIB: &str = r#"//! `@NAME@`: a sniff plugin. Recognises SSH by its version banner
//! (`SSH-2.0-...`) and records the client software in the attribute `ssh.client`.

use wasmray_plugin_sdk::{Config, Delta, Descriptor, Plugin, Snapshot, Verdict};

/// The banner's prefix, and how much of the payload to look at.
const PREFIX: &[u8] = b"SSH-2.0-";
const WANT: u32 = 64;

pub struct Sniffer;

impl Plugin for Sniffer {
    fn describe() -> Descriptor {
        Descriptor::sniff("@NAME@", env!("CARGO_PKG_VERSION"), WANT)
    }

    fn configure(_config: &Config) -> Result<Self, String> {
        Ok(Sniffer)
    }

    fn handle(&self, _session: &Snapshot, payload: &[u8]) -> Verdict {
        let seen = payload.len().min(PREFIX.len());
        if payload[..seen] != PREFIX[..seen] {
            return Verdict::NoMatch;
        }
        if payload.len() < PREFIX.len() {
            return Verdict::NeedMore;
        }
        let rest = &payload[PREFIX.len()..];
        let end = rest.iter().position(|b| *b == b'\r' || *b == b'\n' || *b == b' ');
        let client = String::from_utf8_lossy(&rest[..end.unwrap_or(rest.len())]).to_string();
        Verdict::Matched(Delta::new().protocol("ssh").set("ssh.client", client))
    }
}

wasmray_plugin_sdk::export_plugin!(Sniffer);
"#;

const SNIFF_TEST: &str = r#"use @CRATE@::Sniffer;
use wasmray_plugin_sdk::harness::{Harness, SnapshotBuilder};

#[test]
fn recognises_an_ssh_banner() {
    let h: Harness<Sniffer> = Harness::new("{}");
    let s = SnapshotBuilder::new().build();
    let d = h.handle(&s, b"SSH-2.0-OpenSSH_9.6\r\n").expect_matched();
    assert_eq!(d.protocol.as_deref(), Some("ssh"));
    assert_eq!(d.get("ssh.client"), Some("OpenSSH_9.6"));
    assert!(h.handle(&s, b"SSH-").is_need_more());
    assert!(h.handle(&s, b"GET / HTTP/1.1\r\n").is_no_match());
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_placeholders_filled() {
        for bad in [
            "",
            "Upper",
            "1st",
            "has_underscore",
            "../x",
            &"a".repeat(65),
        ] {
            assert!(files(bad, NewStage::Route, "sdk").is_err(), "{bad:?}");
        }
        let out = files("my-router", NewStage::Route, "/a \"b\"/plugin-sdk").unwrap();
        let all: String = out.iter().map(|(_, t)| t.as_str()).collect();
        assert!(!all.contains('@'), "a placeholder is left:\n{all}");
        let manifest: toml::Table = out[0].1.parse().unwrap();
        let sdk = &manifest["dependencies"]["wasmray-plugin-sdk"]["path"];
        assert_eq!(sdk.as_str(), Some("/a \"b\"/plugin-sdk"));
        assert!(all.contains("use my_router::Router;"));
    }
}
