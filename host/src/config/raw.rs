//! The configuration exactly as written in TOML: serde structs that refuse unknown
//! fields. Nothing here is validated beyond TOML types; see `validate` for meaning.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub log: RawLog,
    #[serde(default)]
    pub inbound: Vec<RawInbound>,
    #[serde(default)]
    pub outbound: Vec<RawOutbound>,
    #[serde(default)]
    pub plugins: RawPlugins,
    #[serde(default)]
    pub stats: RawStats,
    pub api: Option<RawApi>,
    pub metrics: Option<RawMetrics>,
    #[serde(default)]
    pub geodata: RawGeodata,
    #[serde(default)]
    pub dns: RawDns,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDns {
    #[serde(default)]
    pub servers: Vec<String>,
    pub cache_size: Option<u64>,
    pub timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGeodata {
    pub geosite: Option<String>,
    pub geoip: Option<String>,
    #[serde(default)]
    pub rule_sets: BTreeMap<String, String>,
    pub assets: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    pub listen: String,
    pub allow_remote: Option<bool>,
    pub per_user: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApi {
    pub listen: String,
    pub allow_remote: Option<bool>,
    /// A file keeping the API's user changes across reloads and restarts.
    pub persist: Option<String>,
    pub tls: Option<RawApiTls>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApiTls {
    pub cert: String,
    pub key: String,
    /// PEM CA certificates; set, clients must present a certificate they signed.
    pub client_ca: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStats {
    pub enabled: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawAccess {
    On(bool),
    File(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    pub level: Option<String>,
    /// `true`/`false`, or the path of an access-log file.
    pub access: Option<RawAccess>,
    pub format: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInbound {
    pub tag: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub listen: String,
    pub handshake_timeout: Option<String>,
    pub idle_timeout: Option<String>,
    pub uplink_only_timeout: Option<String>,
    pub downlink_only_timeout: Option<String>,
    pub max_connections: Option<u32>,
    /// vless: the transport layer (`tcp`).
    pub transport: Option<String>,
    /// vless: the security layer (`tls`, set up by the `tls` table).
    pub security: Option<String>,
    pub tls: Option<RawTls>,
    #[serde(default)]
    pub users: Vec<RawUser>,
    #[serde(default)]
    pub fallback: Vec<RawFallback>,
    /// socks: username/password accounts (none: no authentication).
    #[serde(default)]
    pub accounts: Vec<RawAccount>,
    /// socks: answer UDP ASSOCIATE (default true).
    pub udp: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccount {
    pub user: String,
    pub pass: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub cert: String,
    pub key: String,
    #[serde(default)]
    pub alpn: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUser {
    pub id: String,
    pub email: Option<String>,
    /// "" or "xtls-rprx-vision".
    pub flow: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFallback {
    pub dest: toml::Value,
    pub sni: Option<String>,
    pub alpn: Option<String>,
    pub path: Option<String>,
    pub proxy_protocol: Option<u8>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutbound {
    pub tag: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub connect_timeout: Option<String>,
    /// vless: the transport layer (`tcp`).
    pub transport: Option<String>,
    /// vless: the security layer (`tls`, set up by sni, alpn, insecure and ca).
    pub security: Option<String>,
    /// vless: "host:port" of the server.
    pub server: Option<String>,
    /// vless: the user id.
    pub id: Option<String>,
    /// vless: "", "xtls-rprx-vision" or "xtls-rprx-vision-udp443".
    pub flow: Option<String>,
    /// vless: the SNI to send (default: the server's host).
    pub sni: Option<String>,
    /// vless: accept any certificate (self-signed test servers only).
    pub insecure: Option<bool>,
    /// vless: ALPN protocols to offer.
    pub alpn: Option<Vec<String>>,
    /// vless: a PEM file of CA certificates to trust instead of the web PKI roots.
    pub ca: Option<String>,
    /// vless: the whole server as a `vless://` share link (instead of server/id/sni/...).
    pub link: Option<String>,
    /// vless: Mux.Cool.
    pub mux: Option<RawMux>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMux {
    pub enabled: Option<bool>,
    pub concurrency: Option<u16>,
    pub idle_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlugins {
    pub dir: Option<String>,
    pub pipeline: Option<Vec<String>>,
    pub sniff_window: Option<String>,
    pub call_timeout: Option<String>,
    pub memory_limit: Option<String>,
    pub on_error: Option<String>,
    pub dest_override: Option<Vec<String>>,
    pub route_only: Option<bool>,
    pub cache: Option<String>,
    #[serde(default)]
    pub config: BTreeMap<String, toml::Table>,
    #[serde(default)]
    pub policy: BTreeMap<String, RawPolicy>,
    pub quarantine: Option<RawQuarantine>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    pub on_error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuarantine {
    pub failures: Option<u64>,
    pub window: Option<String>,
    pub backoff: Option<String>,
    pub max_backoff: Option<String>,
}
