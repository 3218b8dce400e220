//! The session as a plugin sees it: the contract's packed snapshot.
//!
//! Every string the host hands into a component costs a call into the guest's allocator
//! (the canonical ABI lowers each one separately), and those calls, not the plugins'
//! logic, were most of a plugin call's cost. So the contract carries one text buffer
//! and spans into it: the whole snapshot costs two allocator calls, however many
//! attributes the sniffers added.

use std::fmt::Write;

use super::bindings::types;
use crate::session::{Network, Snapshot};

/// Packs `s` into the contract's snapshot.
pub fn to_wit(s: &Snapshot) -> types::Snapshot {
    let mut text = Text::with_capacity(s);
    let source = text.push_fmt(format_args!("{}", s.source));
    types::Snapshot {
        inbound_tag: text.push(&s.inbound_tag),
        user: text.push_opt(s.user.as_deref()),
        source,
        network: match s.network {
            Network::Tcp => types::Network::Tcp,
            Network::Udp => types::Network::Udp,
        },
        target_host: text.push(&s.target.host),
        target_port: s.target.port,
        sni: text.push_opt(s.sni.as_deref()),
        alpn: text.push_opt(s.alpn.as_deref()),
        protocol: text.push_opt(s.protocol.as_deref()),
        sniffed_domain: text.push_opt(s.route_domain.as_deref()),
        attributes: s
            .attrs
            .iter()
            .map(|(k, v)| (text.push(k), text.push(v)))
            .collect(),
        text: text.0,
    }
}

/// The text buffer being filled.
struct Text(String);

impl Text {
    fn with_capacity(s: &Snapshot) -> Self {
        let fields = [&s.user, &s.sni, &s.alpn, &s.protocol, &s.route_domain]
            .iter()
            .map(|f| f.as_deref().map_or(0, str::len))
            .sum::<usize>();
        let attrs = s
            .attrs
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>();
        // 47 bytes is the longest socket address ("[v6]:port").
        Self(String::with_capacity(
            s.inbound_tag.len() + s.target.host.len() + fields + attrs + 47,
        ))
    }

    fn push(&mut self, value: &str) -> types::Span {
        let start = self.0.len();
        self.0.push_str(value);
        self.span_from(start)
    }

    fn push_opt(&mut self, value: Option<&str>) -> Option<types::Span> {
        value.map(|v| self.push(v))
    }

    fn push_fmt(&mut self, args: std::fmt::Arguments<'_>) -> types::Span {
        let start = self.0.len();
        // Writing into a String cannot fail.
        let _ = self.0.write_fmt(args);
        self.span_from(start)
    }

    /// The span from `start` to the end. Snapshots are bounded far below 4 GiB (the
    /// delta limits cap attributes), so the conversions saturate only in theory.
    fn span_from(&self, start: usize) -> types::Span {
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        types::Span {
            start: clamp(start),
            len: clamp(self.0.len() - start),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{SnapshotFields, Target};

    fn text<'a>(s: &'a types::Snapshot, span: &types::Span) -> &'a str {
        let start = span.start as usize;
        &s.text[start..start + span.len as usize]
    }

    #[test]
    fn every_field_is_a_span_of_the_text() {
        let mut f = SnapshotFields::new(
            "vless-in",
            "[2001:db8::1]:50000".parse().unwrap(),
            Network::Udp,
            Target::new("example.com", 443),
        );
        f.user = Some("bob@example.com".into());
        f.sni = Some("front.example".into());
        f.protocol = Some("tls".into());
        f.route_domain = Some("example.com".into());
        f.attrs = f.attrs.update("cache-control".into(), "no-cache".into());
        f.attrs = f.attrs.update(":path".into(), "/ünï".into());
        let view = to_wit(&f.freeze());
        assert_eq!(text(&view, &view.inbound_tag), "vless-in");
        assert_eq!(text(&view, &view.source), "[2001:db8::1]:50000");
        assert_eq!(text(&view, &view.target_host), "example.com");
        assert_eq!(view.target_port, 443);
        assert!(matches!(view.network, types::Network::Udp));
        let opt = |s: &Option<types::Span>| s.as_ref().map(|s| text(&view, s).to_string());
        assert_eq!(opt(&view.user).as_deref(), Some("bob@example.com"));
        assert_eq!(opt(&view.sni).as_deref(), Some("front.example"));
        assert_eq!(opt(&view.alpn), None);
        assert_eq!(opt(&view.protocol).as_deref(), Some("tls"));
        assert_eq!(opt(&view.sniffed_domain).as_deref(), Some("example.com"));
        let attrs: Vec<(&str, &str)> = view
            .attributes
            .iter()
            .map(|(k, v)| (text(&view, k), text(&view, v)))
            .collect();
        assert_eq!(attrs, [(":path", "/ünï"), ("cache-control", "no-cache")]);
    }
}
