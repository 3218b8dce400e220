//! A server config's users as `vless://` share links (`wasmray link`).

use super::{Config, InboundKind};
use crate::share::{LinkParams, vless_link};

impl Config {
    /// One link per user of every VLESS inbound. `host` overrides the listen address
    /// (needed when listening on 0.0.0.0); `sni` defaults to `host`.
    pub fn share_links(
        &self,
        host: Option<&str>,
        sni: Option<&str>,
        insecure: bool,
    ) -> Vec<String> {
        let mut out = Vec::new();
        for inbound in &self.inbounds {
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
            out.extend(
                v.users
                    .iter()
                    .map(|u| vless_link(u.id, &u.email, u.flow.name(), &params)),
            );
        }
        out
    }
}
