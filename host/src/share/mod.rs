//! `vless://` share links in the form v2rayN, Xray and sing-box clients import:
//! `vless://ID@HOST:PORT?encryption=none&security=tls&sni=..&alpn=..&type=tcp#NAME`.
//! `wasmray link` prints them for a server's users; a client outbound may be given as
//! `link = "vless://..."` (`link` parses them).

mod link;

pub use link::{LinkError, MAX_LINK_LEN, VlessLink, format_vless_link, parse_vless_link};

use crate::config::{Config, InboundKind, User};

/// What a link says besides the user.
pub struct LinkParams<'a> {
    /// The address clients dial (a domain or an IP).
    pub host: &'a str,
    pub port: u16,
    pub sni: &'a str,
    pub alpn: &'a [String],
    /// For self-signed test certificates only.
    pub insecure: bool,
}

pub fn vless_link(user: &User, p: &LinkParams<'_>) -> String {
    format_vless_link(&VlessLink {
        id: user.id,
        host: p.host.to_string(),
        port: p.port,
        sni: Some(p.sni.to_string()),
        alpn: p.alpn.to_vec(),
        insecure: p.insecure,
        name: Some(user.email.clone()),
    })
}

/// One link per user of every VLESS inbound. `host` overrides the listen address
/// (needed when listening on 0.0.0.0); `sni` defaults to `host`.
pub fn links(
    config: &Config,
    host: Option<&str>,
    sni: Option<&str>,
    insecure: bool,
) -> Vec<String> {
    let mut out = Vec::new();
    for inbound in &config.inbounds {
        let InboundKind::Vless(v) = &inbound.kind else {
            continue;
        };
        let listen_ip = inbound.listen.ip();
        let default_host = if listen_ip.is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            listen_ip.to_string()
        };
        let host = host.map_or(default_host, str::to_string);
        let params = LinkParams {
            host: &host,
            port: inbound.listen.port(),
            sni: sni.unwrap_or(&host),
            alpn: &v.tls.alpn,
            insecure,
        };
        out.extend(v.users.iter().map(|u| vless_link(u, &params)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_in_v2rayn_form() {
        let user = User {
            id: uuid::Uuid::parse_str("27848739-7e62-4138-9fd3-098a63964b6b").unwrap(),
            email: "alice@example.com".into(),
        };
        let alpn = vec!["h2".to_string(), "http/1.1".to_string()];
        let p = LinkParams {
            host: "proxy.example.com",
            port: 443,
            sni: "proxy.example.com",
            alpn: &alpn,
            insecure: false,
        };
        assert_eq!(
            vless_link(&user, &p),
            "vless://27848739-7e62-4138-9fd3-098a63964b6b@proxy.example.com:443?encryption=none&security=tls\
             &sni=proxy.example.com&type=tcp&headerType=none&alpn=h2%2Chttp%2F1.1#alice%40example.com"
        );
        let p = LinkParams {
            host: "::1",
            port: 8443,
            sni: "localhost",
            alpn: &[],
            insecure: true,
        };
        assert!(
            vless_link(&user, &p)
                .starts_with("vless://27848739-7e62-4138-9fd3-098a63964b6b@[::1]:8443?")
        );
        assert!(vless_link(&user, &p).contains("&allowInsecure=1#"));
    }
}
