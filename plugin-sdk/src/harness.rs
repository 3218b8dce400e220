//! Native unit testing: drive a [`Plugin`] the way the daemon does, with plain
//! `cargo test` and no wasm.
//!
//! ```
//! use wasmray_plugin_sdk::harness::{Harness, SnapshotBuilder};
//! # use wasmray_plugin_sdk::{Config, Delta, Descriptor, Plugin, Snapshot, Verdict};
//! # struct Echo;
//! # impl Plugin for Echo {
//! #     fn describe() -> Descriptor { Descriptor::route("echo", "0") }
//! #     fn configure(_: &Config) -> Result<Self, String> { Ok(Echo) }
//! #     fn handle(&self, s: &Snapshot, _: &[u8]) -> Verdict {
//! #         Verdict::Matched(Delta::new().outbound(s.inbound_tag.clone()))
//! #     }
//! # }
//! let h = Harness::<Echo>::new("{}");
//! let v = h.handle(&SnapshotBuilder::new().inbound("vless-in").build(), b"");
//! assert_eq!(v.expect_matched().outbound.as_deref(), Some("vless-in"));
//! ```

use crate::bindings::wasmray::plugin::types as wit;
use crate::log::{self, LogLine};
use crate::{Attributes, Config, Delta, Descriptor, Network, Plugin, Snapshot, Stage, Verdict};

/// A configured plugin, called like the daemon calls it.
pub struct Harness<P: Plugin> {
    plugin: P,
    descriptor: Descriptor,
}

impl<P: Plugin> Harness<P> {
    /// Describes and configures the plugin with `config_json` (as the daemon would pass
    /// its TOML table; `""` or `"{}"` for none). Panics with the plugin's message if
    /// `configure` refuses the config or the descriptor is unusable.
    #[track_caller]
    pub fn new(config_json: &str) -> Self {
        match Self::try_new(config_json) {
            Ok(h) => h,
            Err(e) => panic!("configure refused {config_json}: {e}"),
        }
    }

    /// Like [`new`](Harness::new), returning `configure`'s error instead of panicking.
    /// Clears this thread's captured log lines first.
    pub fn try_new(config_json: &str) -> Result<Self, String> {
        log::take_captured();
        let descriptor = P::describe();
        assert!(
            !descriptor.name.is_empty(),
            "describe() returned an empty name"
        );
        assert!(
            descriptor.stage == Stage::Sniff || descriptor.payload_bytes == 0,
            "a route plugin sees no payload; payload_bytes must be 0"
        );
        let plugin = P::configure(&Config::new(config_json))?;
        Ok(Harness { plugin, descriptor })
    }

    /// What `describe` returned.
    pub fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }

    /// The configured plugin.
    pub fn plugin(&self) -> &P {
        &self.plugin
    }

    /// Calls `handle` as the daemon would: the payload is cut to the descriptor's
    /// `payload_bytes` (route plugins get none), and the snapshot and the verdict pass
    /// through the WIT types, so the SDK's conversions are exercised too.
    pub fn handle(&self, snapshot: &Snapshot, payload: &[u8]) -> Verdict {
        let limit = (self.descriptor.payload_bytes as usize).min(payload.len());
        let wire: wit::Snapshot = snapshot.clone().into();
        let verdict = self.plugin.handle(&Snapshot::from(wire), &payload[..limit]);
        Verdict::from(wit::Verdict::from(verdict))
    }

    /// Feeds `payload` the way a sniff window fills: the prefixes of `payload` cut at
    /// each of `cuts` (then the whole payload), calling `handle` until the plugin answers
    /// something else than [`Verdict::NeedMore`]. Returns that answer and the prefix
    /// length it was given.
    pub fn handle_growing(
        &self,
        snapshot: &Snapshot,
        payload: &[u8],
        cuts: &[usize],
    ) -> (Verdict, usize) {
        for &n in cuts.iter().filter(|&&n| n < payload.len()) {
            let v = self.handle(snapshot, &payload[..n]);
            if !v.is_need_more() {
                return (v, n);
            }
        }
        (self.handle(snapshot, payload), payload.len())
    }

    /// The lines logged on this thread since the harness was built (or last cleared).
    pub fn logs(&self) -> Vec<LogLine> {
        log::captured()
    }

    /// Forgets the captured log lines.
    pub fn clear_logs(&self) {
        log::take_captured();
    }
}

/// The error `configure` gives for `config_json`; panics if it accepts it.
#[track_caller]
pub fn configure_error<P: Plugin>(config_json: &str) -> String {
    match P::configure(&Config::new(config_json)) {
        Ok(_) => panic!("configure accepted {config_json}"),
        Err(e) => e,
    }
}

/// Builds a [`Snapshot`] with test defaults: inbound `test-in`, no user, source
/// `127.0.0.1:40000`, TCP, target `example.com:443`, no TLS facts, nothing sniffed, no
/// attributes.
#[derive(Debug, Clone)]
pub struct SnapshotBuilder {
    s: Snapshot,
}

impl Default for SnapshotBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl SnapshotBuilder {
    /// The defaults.
    pub fn new() -> Self {
        SnapshotBuilder {
            s: Snapshot {
                inbound_tag: "test-in".into(),
                user: None,
                source: "127.0.0.1:40000".into(),
                network: Network::Tcp,
                target_host: "example.com".into(),
                target_port: 443,
                sni: None,
                alpn: None,
                protocol: None,
                sniffed_domain: None,
                attributes: Attributes::new(),
            },
        }
    }

    /// The inbound tag.
    pub fn inbound(mut self, tag: &str) -> Self {
        self.s.inbound_tag = tag.into();
        self
    }

    /// The user's email.
    pub fn user(mut self, email: &str) -> Self {
        self.s.user = Some(email.into());
        self
    }

    /// The source `"ip:port"`.
    pub fn source(mut self, source: &str) -> Self {
        self.s.source = source.into();
        self
    }

    /// TCP or UDP.
    pub fn network(mut self, network: Network) -> Self {
        self.s.network = network;
        self
    }

    /// The target host and port.
    pub fn target(mut self, host: &str, port: u16) -> Self {
        self.s.target_host = host.into();
        self.s.target_port = port;
        self
    }

    /// The inbound TLS SNI.
    pub fn sni(mut self, sni: &str) -> Self {
        self.s.sni = Some(sni.into());
        self
    }

    /// The inbound TLS ALPN.
    pub fn alpn(mut self, alpn: &str) -> Self {
        self.s.alpn = Some(alpn.into());
        self
    }

    /// The sniffed protocol.
    pub fn protocol(mut self, protocol: &str) -> Self {
        self.s.protocol = Some(protocol.into());
        self
    }

    /// The sniffed domain.
    pub fn sniffed_domain(mut self, domain: &str) -> Self {
        self.s.sniffed_domain = Some(domain.into());
        self
    }

    /// One attribute (key lower-cased).
    pub fn attr(mut self, key: &str, value: &str) -> Self {
        self.s.attributes.insert(key, value);
        self
    }

    /// The answer the host gives a route plugin that asked for `name` with
    /// [`Delta::resolve`]: what the second call's snapshot carries (`ips` empty for a
    /// name that did not resolve).
    pub fn resolved(self, name: &str, ips: &[&str]) -> Self {
        self.attr(crate::types::RESOLVED_NAME, name)
            .attr(crate::types::RESOLVED_IPS, &ips.join(","))
    }

    /// The snapshot.
    pub fn build(self) -> Snapshot {
        self.s
    }
}

/// Merges `delta` into `snapshot` as the daemon does between pipeline steps: removals,
/// then sets (keys lower-cased), then the protocol and sniffed domain unless an earlier
/// plugin already set them (the first claim wins). The
/// outbound is not part of a snapshot. Lets a test chain a sniffer and a router.
pub fn apply(snapshot: &Snapshot, delta: &Delta) -> Snapshot {
    let mut s = snapshot.clone();
    for k in &delta.remove {
        s.attributes.remove(k);
    }
    for (k, v) in &delta.set {
        s.attributes.insert(k, v);
    }
    // As the daemon: the first plugin to set the protocol or the domain keeps it.
    if s.protocol.is_none() {
        s.protocol = delta.protocol.clone();
    }
    if s.sniffed_domain.is_none() {
        s.sniffed_domain = delta.sniffed_domain.clone();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Echoes the payload length and the `x` attribute; refuses `{"bad":true}`.
    struct Probe {
        tag: String,
    }

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ProbeConfig {
        #[serde(default)]
        bad: bool,
        #[serde(default)]
        tag: Option<String>,
    }

    impl Plugin for Probe {
        fn describe() -> Descriptor {
            Descriptor::sniff("probe", "0.0.0", 4)
        }
        fn configure(config: &Config) -> Result<Self, String> {
            let c: ProbeConfig = config.parse()?;
            if c.bad {
                return Err("bad is true".into());
            }
            crate::log::info!("configured");
            Ok(Probe {
                tag: c.tag.unwrap_or_default(),
            })
        }
        fn handle(&self, session: &Snapshot, payload: &[u8]) -> Verdict {
            if payload.len() < 3 {
                return Verdict::NeedMore;
            }
            Verdict::Matched(
                Delta::new()
                    .set("len", payload.len().to_string())
                    .set("X", session.attr("x").unwrap_or("-"))
                    .outbound(self.tag.clone()),
            )
        }
    }

    #[test]
    fn drives_a_plugin() {
        let h = Harness::<Probe>::new(r#"{"tag":"t"}"#);
        assert_eq!(h.descriptor().name, "probe");
        assert_eq!(
            h.logs(),
            vec![LogLine {
                level: crate::log::Level::Info,
                message: "configured".into()
            }]
        );
        h.clear_logs();
        assert!(h.logs().is_empty());
        let s = SnapshotBuilder::new().attr("X", "y").build();
        assert!(h.handle(&s, b"ab").is_need_more());
        // Cut to payload_bytes (4).
        let d = h.handle(&s, b"abcdefgh").expect_matched();
        assert_eq!(d.get("len"), Some("4"));
        assert_eq!(d.get("x"), Some("y"));
        assert_eq!(d.outbound.as_deref(), Some("t"));
        let (v, n) = h.handle_growing(&s, b"abcdefgh", &[1, 2, 3]);
        assert_eq!((v.expect_matched().get("len"), n), (Some("3"), 3));
    }

    #[test]
    fn reports_configure_errors() {
        assert_eq!(configure_error::<Probe>(r#"{"bad":true}"#), "bad is true");
        assert!(configure_error::<Probe>(r#"{"nope":1}"#).contains("unknown field `nope`"));
        assert!(Harness::<Probe>::try_new("[").is_err());
    }

    #[test]
    fn builder_and_apply() {
        let s = SnapshotBuilder::new()
            .inbound("i")
            .user("u@x")
            .source("[::1]:1")
            .network(Network::Udp)
            .target("1.2.3.4", 53)
            .sni("s")
            .alpn("h2")
            .attr("Old", "1")
            .build();
        assert_eq!(s.source_ip(), Some("::1".parse().unwrap()));
        assert_eq!(s.target_ip(), Some("1.2.3.4".parse().unwrap()));
        let d = Delta::new()
            .remove("old")
            .set("New", "2")
            .protocol("http1")
            .sniffed_domain("a.b");
        let s2 = apply(&s, &d);
        assert_eq!(s2.attr("old"), None);
        assert_eq!(s2.attr("new"), Some("2"));
        assert_eq!(s2.protocol.as_deref(), Some("http1"));
        assert_eq!(s2.route_domain().as_deref(), Some("a.b"));
    }
}

pub mod geodata {
    //! Routing lists for native tests: what [`crate::geodata`] answers outside wasm.
    //! Lists are per thread (each `#[test]` has its own); define them before the
    //! plugin's `configure` opens them.
    //!
    //! ```
    //! use wasmray_plugin_sdk::harness::geodata;
    //! geodata::domains("geosite:ads", &["domain:ads.example", "keyword:tracker"]);
    //! geodata::ips("geoip:private", &["10.0.0.0/8", "fc00::/7"]);
    //! ```
    use crate::domain::DomainMatcher;
    use crate::geodata::imp::{Defined, LISTS};
    use crate::net::Cidr;

    /// Defines domain list `name` from entries in route-rules' syntax (`full:`,
    /// `domain:`, `keyword:`, `regex:`); a `rule-set:NAME` is both a domain and an IP
    /// list. Panics on an entry that does not parse.
    #[track_caller]
    pub fn domains(name: &str, entries: &[&str]) {
        let matchers = entries
            .iter()
            .map(|e| DomainMatcher::parse(e).unwrap_or_else(|err| panic!("{e:?}: {err}")))
            .collect();
        define(name, Defined::Domains(matchers));
    }

    /// Defines IP list `name` from CIDRs or addresses. Panics on one that does not parse.
    #[track_caller]
    pub fn ips(name: &str, entries: &[&str]) {
        let cidrs = entries
            .iter()
            .map(|e| Cidr::parse(e).unwrap_or_else(|err| panic!("{e:?}: {err}")))
            .collect();
        define(name, Defined::Ips(cidrs));
    }

    /// Forgets every list of this thread.
    pub fn clear() {
        LISTS.with(|l| *l.borrow_mut() = Default::default());
    }

    fn define(name: &str, list: Defined) {
        LISTS.with(|l| {
            l.borrow_mut()
                .defined
                .push((name.to_ascii_lowercase(), list))
        });
    }
}
