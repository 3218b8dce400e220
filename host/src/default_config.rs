//! The embedded default: `wasmray run` with no config file starts a VLESS-over-TLS
//! server on loopback with a certificate generated at start, a random user id, a
//! direct outbound and the built-in plugins, so wasmray can be tried with one command.

use std::net::SocketAddr;

use crate::config::{
    AccessLog, Config, InboundConfig, InboundKind, LogConfig, OutboundConfig, OutboundKind,
    PluginsConfig, Timeouts, TlsIdentity, User, VlessInbound,
};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:10443";
/// The certificate's name, and the SNI clients should send.
pub const DEFAULT_SNI: &str = "localhost";

pub fn embedded(listen: SocketAddr) -> anyhow::Result<Config> {
    let (tls, _pem) =
        TlsIdentity::self_signed(&[DEFAULT_SNI.to_string(), "127.0.0.1".to_string()])?;
    let base = Config::parse(EMBEDDED_PLUGINS, std::path::Path::new("."))
        .map_err(|e| anyhow::anyhow!("embedded default: {e}"))?;
    Ok(Config {
        log: LogConfig {
            level: "info".into(),
            access: AccessLog::Stderr,
            json: false,
        },
        inbounds: vec![InboundConfig {
            tag: "vless-in".into(),
            listen,
            kind: InboundKind::Vless(VlessInbound {
                transport: Default::default(),
                security: Default::default(),
                tls,
                users: vec![User {
                    id: uuid::Uuid::new_v4(),
                    email: "default@wasmray".into(),
                    flow: Default::default(),
                }],
                fallbacks: Vec::new(),
                timeouts: Timeouts::default(),
                max_connections: 10_000,
            }),
        }],
        outbounds: vec![
            OutboundConfig {
                tag: "direct".into(),
                kind: OutboundKind::Direct {
                    connect_timeout: std::time::Duration::from_secs(10),
                },
            },
            OutboundConfig {
                tag: "block".into(),
                kind: OutboundKind::Block,
            },
        ],
        plugins: PluginsConfig { ..base.plugins },
        stats: Default::default(),
        api: None,
        metrics: None,
        dns: Default::default(),
    })
}

/// The default's plugin section, written as a user would write it.
const EMBEDDED_PLUGINS: &str = r#"
[[outbound]]
tag = "direct"
type = "direct"
[[outbound]]
tag = "block"
type = "block"

[plugins.config.route-rules]
default = "direct"
[[plugins.config.route-rules.rule]]
ip = ["0.0.0.0/8", "10.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "fe80::/10"]
outbound = "block"
"#;

/// A v2ray/Xray client config (SOCKS on 127.0.0.1:1080) for this server.
pub fn client_json(config: &Config) -> Option<String> {
    let inbound = config.inbounds.first()?;
    let InboundKind::Vless(v) = &inbound.kind else {
        return None;
    };
    let user = v.users.first()?;
    Some(format!(
        r#"{{
  "inbounds": [{{"listen": "127.0.0.1", "port": 1080, "protocol": "socks", "settings": {{"udp": true}}}}],
  "outbounds": [{{
    "protocol": "vless",
    "settings": {{"vnext": [{{"address": "{ip}", "port": {port},
                  "users": [{{"id": "{id}", "encryption": "none"}}]}}]}},
    "streamSettings": {{"network": "tcp", "security": "tls",
                       "tlsSettings": {{"serverName": "{sni}", "allowInsecure": true}}}}
  }}]
}}"#,
        ip = inbound.listen.ip(),
        port = inbound.listen.port(),
        id = user.id.hyphenated(),
        sni = DEFAULT_SNI,
    ))
}
