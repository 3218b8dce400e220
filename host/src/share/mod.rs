//! `vless://` share links in the form v2rayN, Xray and sing-box clients import:
//! `vless://ID@HOST:PORT?encryption=none&security=tls&sni=..&alpn=..&type=tcp#NAME`.
//! `wasmray link` prints them for a server's users (`Config::share_links`); a client outbound may be given as
//! `link = "vless://..."` (`link` parses them).

mod link;

pub use link::{LinkError, MAX_LINK_LEN, VlessLink, format_vless_link, parse_vless_link};

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

/// The link of one user (`name` is the fragment clients show, usually the email).
pub fn vless_link(id: uuid::Uuid, name: &str, flow: &str, p: &LinkParams<'_>) -> String {
    format_vless_link(&VlessLink {
        flow: flow.to_string(),
        id,
        host: p.host.to_string(),
        port: p.port,
        sni: Some(p.sni.to_string()),
        alpn: p.alpn.to_vec(),
        insecure: p.insecure,
        name: Some(name.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_in_v2rayn_form() {
        let id = uuid::Uuid::parse_str("27848739-7e62-4138-9fd3-098a63964b6b").unwrap();
        let user = "alice@example.com";
        let alpn = vec!["h2".to_string(), "http/1.1".to_string()];
        let p = LinkParams {
            host: "proxy.example.com",
            port: 443,
            sni: "proxy.example.com",
            alpn: &alpn,
            insecure: false,
        };
        assert_eq!(
            vless_link(id, user, "", &p),
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
            vless_link(id, user, "xtls-rprx-vision", &p)
                .starts_with("vless://27848739-7e62-4138-9fd3-098a63964b6b@[::1]:8443?")
        );
        assert!(
            vless_link(id, user, "xtls-rprx-vision", &p)
                .contains("&headerType=none&flow=xtls-rprx-vision&allowInsecure=1#")
        );
    }
}
