//! The native types plugin authors use, and their conversions to and from the WIT types.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use crate::Attributes;
use crate::attributes::span_str;
use crate::bindings::wasmray::plugin::types as wit;

/// Where in the pipeline a plugin runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Sees the payload prefix; recognises the protocol and the domain.
    Sniff,
    /// Sees the snapshot after all sniffers; chooses the outbound.
    Route,
}

/// What a plugin says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    /// The plugin's name: what `[plugins] pipeline` lists, what
    /// `[plugins.config.<name>]` configures, and what the daemon's logs call it.
    pub name: String,
    /// The plugin's own version (e.g. `env!("CARGO_PKG_VERSION")`).
    pub version: String,
    /// The pipeline stage.
    pub stage: Stage,
    /// How many payload bytes the plugin wants to see (0 for route plugins).
    pub payload_bytes: u32,
}

impl Descriptor {
    /// A sniff-stage plugin that wants up to `payload_bytes` of the first payload.
    pub fn sniff(name: impl Into<String>, version: impl Into<String>, payload_bytes: u32) -> Self {
        Descriptor {
            name: name.into(),
            version: version.into(),
            stage: Stage::Sniff,
            payload_bytes,
        }
    }

    /// A route-stage plugin (it sees no payload).
    pub fn route(name: impl Into<String>, version: impl Into<String>) -> Self {
        Descriptor {
            name: name.into(),
            version: version.into(),
            stage: Stage::Route,
            payload_bytes: 0,
        }
    }
}

/// The transport of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Network {
    /// A TCP stream (also a Mux.Cool TCP sub-stream).
    Tcp,
    /// UDP (also XUDP).
    Udp,
}

impl Network {
    /// `"tcp"` or `"udp"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Network::Tcp => "tcp",
            Network::Udp => "udp",
        }
    }
}

/// An immutable view of one session, as the host hands it to a plugin.
///
/// Attribute keys are lower-case. Sniffers that ran earlier in the pipeline have already
/// been merged in (their `protocol`, `sniffed_domain` and attributes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The tag of the inbound that accepted the connection.
    pub inbound_tag: String,
    /// The authenticated user's email, if any.
    pub user: Option<String>,
    /// The source address as `"ip:port"` (`"[v6]:port"` for IPv6).
    pub source: String,
    /// TCP or UDP.
    pub network: Network,
    /// The requested target: a domain or an IP literal.
    pub target_host: String,
    /// The requested target port.
    pub target_port: u16,
    /// The TLS SNI of the inbound connection.
    pub sni: Option<String>,
    /// The negotiated ALPN of the inbound connection.
    pub alpn: Option<String>,
    /// The protocol a sniffer recognised (`http1`, `tls`, ...).
    pub protocol: Option<String>,
    /// The domain a sniffer found (HTTP Host, TLS SNI).
    pub sniffed_domain: Option<String>,
    /// The session's attributes (HTTP headers, `:method`, `:path`, `tls.alpn`, ...).
    pub attributes: Attributes,
}

impl Snapshot {
    /// The attribute `key` (looked up lower-cased).
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key)
    }

    /// Every attribute, sorted by key.
    pub fn attrs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.attributes.iter()
    }

    /// The source address, if it parses.
    pub fn source_addr(&self) -> Option<SocketAddr> {
        self.source.parse().ok()
    }

    /// The source IP, if the source parses.
    pub fn source_ip(&self) -> Option<IpAddr> {
        self.source_addr().map(|a| a.ip())
    }

    /// The target as an IP, if `target_host` is an IP literal (brackets allowed).
    pub fn target_ip(&self) -> Option<IpAddr> {
        crate::net::parse_ip(&self.target_host)
    }

    /// The domain routing should look at, normalised with [`crate::domain::normalize`]:
    /// the sniffed domain if a sniffer found one (and it is not an IP literal), else the
    /// target if it is a domain. `None` when the session only has IPs (as in Xray, where
    /// domain rules never match an IP target).
    pub fn route_domain(&self) -> Option<String> {
        let usable = |d: &&String| !d.is_empty() && crate::net::parse_ip(d).is_none();
        self.sniffed_domain
            .as_ref()
            .filter(usable)
            .or(Some(&self.target_host).filter(usable))
            .map(|d| crate::domain::normalize(d))
    }

    /// The addresses the host resolved for the name a route plugin asked about with
    /// [`Delta::resolve`] (`[dns]` in the daemon's config), IPv4 first: `None` on the
    /// first call, `Some` on the call the host makes again with the answer, empty when
    /// the name did not resolve in time.
    pub fn resolved_ips(&self) -> Option<Vec<IpAddr>> {
        let list = self.attr(RESOLVED_IPS)?;
        Some(list.split(',').filter_map(crate::net::parse_ip).collect())
    }

    /// The name [`resolved_ips`](Snapshot::resolved_ips) answers for.
    pub fn resolved_name(&self) -> Option<&str> {
        self.attr(RESOLVED_NAME)
    }
}

/// The attribute a route plugin sets to have a name resolved before it is asked again.
pub const RESOLVE: &str = "dns.resolve";
/// The attribute the host sets on the second call: the name resolved.
pub const RESOLVED_NAME: &str = "dns.name";
/// The attribute the host sets on the second call: the addresses, comma-separated.
pub const RESOLVED_IPS: &str = "dns.ips";

/// The changes a plugin asks for. Empty fields change nothing; the host merges deltas
/// serially, in pipeline order, into the session's next snapshot (removals first, then
/// sets).
///
/// Build one with the chained methods (which share the fields' names):
///
/// ```
/// # use wasmray_plugin_sdk::Delta;
/// let d = Delta::new().set("Host", "example.com").protocol("http1").sniffed_domain("example.com");
/// assert_eq!(d.get("host"), Some("example.com"));
/// assert_eq!(d.protocol.as_deref(), Some("http1"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delta {
    /// Attributes to set (keys lower-case; see [`folded`](Delta::folded) for repeats).
    pub set: Vec<(String, String)>,
    /// Attributes to remove.
    pub remove: Vec<String>,
    /// The sniffed protocol, e.g. `http1` or `tls`.
    pub protocol: Option<String>,
    /// The sniffed domain.
    pub sniffed_domain: Option<String>,
    /// The outbound tag to use (route plugins).
    pub outbound: Option<String>,
}

impl Delta {
    /// An empty delta.
    pub fn new() -> Self {
        Delta::default()
    }

    /// Sets attribute `key` (lower-cased) to `value`; a later `set` of the same key wins.
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.insert(key, value);
        self
    }

    /// Like [`set`](Delta::set), in place (handy in loops). Constant time: repeated keys
    /// are folded (the last value wins) when the delta is handed to the host.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let mut key = key.into();
        key.make_ascii_lowercase();
        self.set.push((key, value.into()));
    }

    /// Removes attribute `key` (lower-cased) from the session.
    pub fn remove(mut self, key: impl Into<String>) -> Self {
        let mut key = key.into();
        key.make_ascii_lowercase();
        self.remove.push(key);
        self
    }

    /// Sets the sniffed protocol.
    pub fn protocol(mut self, protocol: impl Into<String>) -> Self {
        self.protocol = Some(protocol.into());
        self
    }

    /// Sets the sniffed domain.
    pub fn sniffed_domain(mut self, domain: impl Into<String>) -> Self {
        self.sniffed_domain = Some(domain.into());
        self
    }

    /// Asks the host to resolve `name` (with `[dns]`, within its timeout) and call the
    /// route stage again with the addresses in [`Snapshot::resolved_ips`]; the rest of
    /// this delta is dropped (the second call decides). Asked on the second call, it
    /// is ignored: a session is resolved once. A `direct` outbound then dials the
    /// answer, not the name.
    pub fn resolve(self, name: impl Into<String>) -> Self {
        self.set(RESOLVE, name)
    }

    /// Sets the outbound tag.
    pub fn outbound(mut self, tag: impl Into<String>) -> Self {
        self.outbound = Some(tag.into());
        self
    }

    /// The value this delta sets for `key` (looked up lower-cased; the last `set` wins).
    pub fn get(&self, key: &str) -> Option<&str> {
        let key = key.to_ascii_lowercase();
        self.set
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The same delta with each attribute key set once (at its first position, with its
    /// last value) and each removal listed once. Done for you before the host sees it.
    pub fn folded(self) -> Delta {
        if !has_duplicates(self.set.iter().map(|(k, _)| k.as_str()))
            && !has_duplicates(self.remove.iter().map(String::as_str))
        {
            // The usual case: nothing to fold, nothing to allocate.
            return self;
        }
        let mut index: BTreeMap<String, usize> = BTreeMap::new();
        let mut set: Vec<(String, String)> = Vec::with_capacity(self.set.len());
        for (k, v) in self.set {
            match index.get(&k) {
                Some(&i) => set[i].1 = v,
                None => {
                    index.insert(k.clone(), set.len());
                    set.push((k, v));
                }
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        let remove = self
            .remove
            .into_iter()
            .filter(|k| seen.insert(k.clone()))
            .collect();
        Delta {
            set,
            remove,
            ..self
        }
    }

    /// True when the delta changes nothing.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
            && self.remove.is_empty()
            && self.protocol.is_none()
            && self.sniffed_domain.is_none()
            && self.outbound.is_none()
    }
}

/// True when some key occurs twice. Quadratic but allocation-free for the short lists
/// deltas usually are; sorted borrowed keys beyond that.
fn has_duplicates<'a>(keys: impl ExactSizeIterator<Item = &'a str> + Clone) -> bool {
    const LINEAR: usize = 16;
    if keys.len() <= LINEAR {
        let mut rest = keys;
        while let Some(k) = rest.next() {
            if rest.clone().any(|other| other == k) {
                return true;
            }
        }
        return false;
    }
    let mut sorted: Vec<&str> = keys.collect();
    sorted.sort_unstable();
    sorted.windows(2).any(|w| w[0] == w[1])
}

/// A plugin's answer for one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The plugin needs more payload bytes to decide (sniffers only). The host asks again
    /// with a longer prefix until the plugin's `payload_bytes` or the sniff window is
    /// reached; then the answer counts as no-match.
    NeedMore,
    /// Nothing for this plugin here.
    NoMatch,
    /// A decision.
    Matched(Delta),
}

impl Verdict {
    /// True for [`Verdict::NeedMore`].
    pub fn is_need_more(&self) -> bool {
        matches!(self, Verdict::NeedMore)
    }

    /// True for [`Verdict::NoMatch`].
    pub fn is_no_match(&self) -> bool {
        matches!(self, Verdict::NoMatch)
    }

    /// The delta of a [`Verdict::Matched`].
    pub fn delta(&self) -> Option<&Delta> {
        match self {
            Verdict::Matched(d) => Some(d),
            _ => None,
        }
    }

    /// The delta of a [`Verdict::Matched`]; panics otherwise (for tests).
    #[track_caller]
    pub fn expect_matched(self) -> Delta {
        match self {
            Verdict::Matched(d) => d,
            other => panic!("expected a match, got {other:?}"),
        }
    }
}

impl From<Delta> for Verdict {
    fn from(d: Delta) -> Self {
        Verdict::Matched(d)
    }
}

// Conversions to and from the generated WIT types.

impl From<Stage> for wit::Stage {
    fn from(s: Stage) -> Self {
        match s {
            Stage::Sniff => wit::Stage::Sniff,
            Stage::Route => wit::Stage::Route,
        }
    }
}

impl From<wit::Stage> for Stage {
    fn from(s: wit::Stage) -> Self {
        match s {
            wit::Stage::Sniff => Stage::Sniff,
            wit::Stage::Route => Stage::Route,
        }
    }
}

impl From<Descriptor> for wit::Descriptor {
    fn from(d: Descriptor) -> Self {
        wit::Descriptor {
            name: d.name,
            version: d.version,
            stage: d.stage.into(),
            payload_bytes: d.payload_bytes,
        }
    }
}

impl From<wit::Descriptor> for Descriptor {
    fn from(d: wit::Descriptor) -> Self {
        Descriptor {
            name: d.name,
            version: d.version,
            stage: d.stage.into(),
            payload_bytes: d.payload_bytes,
        }
    }
}

impl From<Network> for wit::Network {
    fn from(n: Network) -> Self {
        match n {
            Network::Tcp => wit::Network::Tcp,
            Network::Udp => wit::Network::Udp,
        }
    }
}

impl From<wit::Network> for Network {
    fn from(n: wit::Network) -> Self {
        match n {
            wit::Network::Tcp => Network::Tcp,
            wit::Network::Udp => Network::Udp,
        }
    }
}

impl From<wit::Snapshot> for Snapshot {
    /// Unpacks the contract's snapshot (one text buffer and spans into it). The text
    /// fields are copied out; the attributes keep the buffer itself. A span outside the
    /// text, or not on a character boundary, reads as empty: the host never sends one,
    /// and a plugin must not panic if it did.
    fn from(s: wit::Snapshot) -> Self {
        let pair = |span: wit::Span| (span.start, span.len);
        let text = |span| {
            span_str(&s.text, pair(span))
                .unwrap_or_default()
                .to_string()
        };
        let opt = |span: Option<wit::Span>| span.map(text);
        let (inbound_tag, user, source) = (text(s.inbound_tag), opt(s.user), text(s.source));
        let (target_host, sni, alpn) = (text(s.target_host), opt(s.sni), opt(s.alpn));
        let (protocol, sniffed_domain) = (opt(s.protocol), opt(s.sniffed_domain));
        let spans = s.attributes.iter().map(|&(k, v)| (pair(k), pair(v)));
        Snapshot {
            inbound_tag,
            user,
            source,
            network: s.network.into(),
            target_host,
            target_port: s.target_port,
            sni,
            alpn,
            protocol,
            sniffed_domain,
            attributes: Attributes::from_wire(s.text, spans),
        }
    }
}

impl From<Snapshot> for wit::Snapshot {
    /// Packs a snapshot as the host does (the harness round-trips through this).
    fn from(s: Snapshot) -> Self {
        let mut text = String::new();
        let mut push = |value: &str| {
            let start = text.len() as u32;
            text.push_str(value);
            wit::Span {
                start,
                len: value.len() as u32,
            }
        };
        let inbound_tag = push(&s.inbound_tag);
        let user = s.user.as_deref().map(&mut push);
        let source = push(&s.source);
        let target_host = push(&s.target_host);
        let sni = s.sni.as_deref().map(&mut push);
        let alpn = s.alpn.as_deref().map(&mut push);
        let protocol = s.protocol.as_deref().map(&mut push);
        let sniffed_domain = s.sniffed_domain.as_deref().map(&mut push);
        let attributes = s
            .attributes
            .iter()
            .map(|(k, v)| (push(k), push(v)))
            .collect();
        wit::Snapshot {
            text,
            inbound_tag,
            user,
            source,
            network: s.network.into(),
            target_host,
            target_port: s.target_port,
            sni,
            alpn,
            protocol,
            sniffed_domain,
            attributes,
        }
    }
}

impl From<Delta> for wit::Delta {
    fn from(d: Delta) -> Self {
        let d = d.folded();
        wit::Delta {
            set: d.set,
            remove: d.remove,
            protocol: d.protocol,
            sniffed_domain: d.sniffed_domain,
            outbound: d.outbound,
        }
    }
}

impl From<wit::Delta> for Delta {
    fn from(d: wit::Delta) -> Self {
        Delta {
            set: d.set,
            remove: d.remove,
            protocol: d.protocol,
            sniffed_domain: d.sniffed_domain,
            outbound: d.outbound,
        }
    }
}

impl From<Verdict> for wit::Verdict {
    fn from(v: Verdict) -> Self {
        match v {
            Verdict::NeedMore => wit::Verdict::NeedMore,
            Verdict::NoMatch => wit::Verdict::NoMatch,
            Verdict::Matched(d) => wit::Verdict::Matched(d.into()),
        }
    }
}

impl From<wit::Verdict> for Verdict {
    fn from(v: wit::Verdict) -> Self {
        match v {
            wit::Verdict::NeedMore => Verdict::NeedMore,
            wit::Verdict::NoMatch => Verdict::NoMatch,
            wit::Verdict::Matched(d) => Verdict::Matched(d.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap() -> Snapshot {
        Snapshot {
            inbound_tag: "in".into(),
            user: None,
            source: "[::1]:5000".into(),
            network: Network::Tcp,
            target_host: "Example.COM".into(),
            target_port: 443,
            sni: None,
            alpn: None,
            protocol: None,
            sniffed_domain: None,
            attributes: [("host", "a")].into_iter().collect(),
        }
    }

    #[test]
    fn snapshot_accessors() {
        let mut s = snap();
        assert_eq!(s.attr("Host"), Some("a"));
        assert_eq!(s.attr("host"), Some("a"));
        assert_eq!(s.attr("nope"), None);
        assert_eq!(s.source_ip(), Some("::1".parse().unwrap()));
        assert_eq!(s.source_addr().unwrap().port(), 5000);
        assert_eq!(s.target_ip(), None);
        assert_eq!(s.route_domain().as_deref(), Some("example.com"));
        s.sniffed_domain = Some("Sniffed.example".into());
        assert_eq!(s.route_domain().as_deref(), Some("sniffed.example"));
        s.sniffed_domain = Some("10.0.0.1".into());
        assert_eq!(s.route_domain().as_deref(), Some("example.com"));
        s.target_host = "[2001:db8::1]".into();
        assert_eq!(s.route_domain(), None);
        assert_eq!(s.target_ip(), Some("2001:db8::1".parse().unwrap()));
    }

    #[test]
    fn duplicates_found_in_short_and_long_lists() {
        let keys: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
        for n in [0, 1, 2, 16, 17, 40] {
            let some = &keys[..n];
            assert!(!has_duplicates(some.iter().map(String::as_str)), "{n}");
            if n > 0 {
                let mut twice = some.to_vec();
                twice.push(some[n / 2].clone());
                assert!(has_duplicates(twice.iter().map(String::as_str)), "{n}");
            }
        }
    }

    #[test]
    fn snapshots_round_trip_through_the_packed_contract_type() {
        let mut s = snap();
        s.user = Some("bob@example.com".into());
        s.alpn = Some("h2".into());
        s.attributes.insert(":path", "/ünï");
        let wire: wit::Snapshot = s.clone().into();
        assert_eq!(Snapshot::from(wire), s);
    }

    #[test]
    fn a_span_outside_the_text_reads_as_empty() {
        let mut wire: wit::Snapshot = snap().into();
        wire.source = wit::Span {
            start: u32::MAX,
            len: u32::MAX,
        };
        wire.inbound_tag = wit::Span { start: 0, len: 999 };
        let s = Snapshot::from(wire);
        assert_eq!(s.source, "");
        assert_eq!(s.inbound_tag, "");
        assert_eq!(s.target_host, "Example.COM");
    }

    #[test]
    fn delta_builder() {
        let d = Delta::new()
            .set("A", "1")
            .set("c", "3")
            .set("a", "2")
            .remove("B")
            .remove("b")
            .outbound("x");
        assert_eq!(d.get("A"), Some("2"));
        let f = d.clone().folded();
        let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert_eq!(f.set, vec![pair("a", "2"), pair("c", "3")]);
        assert_eq!(f.remove, vec!["b".to_string()]);
        assert_eq!(f.get("a"), Some("2"));
        assert_eq!(Delta::from(wit::Delta::from(d.clone())), f);
        assert!(!d.is_empty());
        assert!(Delta::new().is_empty());
    }

    #[test]
    fn wit_round_trip() {
        let s = snap();
        assert_eq!(Snapshot::from(wit::Snapshot::from(s.clone())), s);
        let v = Verdict::Matched(
            Delta::new()
                .set("k", "v")
                .protocol("tls")
                .sniffed_domain("d")
                .outbound("o"),
        );
        assert_eq!(Verdict::from(wit::Verdict::from(v.clone())), v);
        for v in [Verdict::NeedMore, Verdict::NoMatch] {
            assert_eq!(Verdict::from(wit::Verdict::from(v.clone())), v);
        }
        let d = Descriptor::sniff("n", "1", 7);
        assert_eq!(Descriptor::from(wit::Descriptor::from(d.clone())), d);
        assert_eq!(Descriptor::route("r", "1").payload_bytes, 0);
    }
}
