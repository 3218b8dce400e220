//! Xray's JSON config, as far as the importer reads it. Every struct keeps the keys it
//! does not model in `other`, so the importer can name each field it leaves behind.
//! Fields whose JSON type varies in Xray (ports as numbers or strings, fallback dests)
//! stay `Value`s.

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Map, Value};

type Other = Map<String, Value>;

/// A list as Xray reads one: an array of strings, or one string of comma-separated
/// values.
fn list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Many(Vec<String>),
        One(String),
    }
    Ok(match Option::<Either>::deserialize(d)? {
        None => None,
        Some(Either::Many(v)) => Some(v),
        Some(Either::One(s)) => Some(s.split(',').map(str::to_string).collect()),
    })
}

#[derive(Debug, Default, Deserialize)]
pub struct XrayConfig {
    pub log: Option<Log>,
    pub api: Option<Api>,
    pub stats: Option<Value>,
    pub policy: Option<Policy>,
    #[serde(default)]
    pub inbounds: Vec<Inbound>,
    #[serde(default)]
    pub outbounds: Vec<Outbound>,
    pub routing: Option<Routing>,
    pub dns: Option<Dns>,
    #[serde(flatten)]
    pub other: Other,
}

/// `dns`: servers are strings or objects (`address`, `port`, `domains`, ...).
#[derive(Debug, Default, Deserialize)]
pub struct Dns {
    #[serde(default)]
    pub servers: Vec<Value>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Default, Deserialize)]
pub struct Log {
    pub loglevel: Option<String>,
    pub access: Option<String>,
    pub error: Option<String>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Default, Deserialize)]
pub struct Api {
    pub tag: Option<String>,
    pub listen: Option<String>,
    #[serde(default)]
    pub services: Vec<String>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Default, Deserialize)]
pub struct Policy {
    #[serde(default)]
    pub levels: Map<String, Value>,
    #[serde(flatten)]
    pub other: Other,
}

/// One level of `policy.levels` (timeouts in seconds).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Level {
    pub handshake: Option<u64>,
    pub conn_idle: Option<u64>,
    pub uplink_only: Option<u64>,
    pub downlink_only: Option<u64>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Inbound {
    pub tag: Option<String>,
    pub listen: Option<Value>,
    pub port: Option<Value>,
    #[serde(default)]
    pub protocol: String,
    pub settings: Option<Value>,
    pub stream_settings: Option<Stream>,
    pub sniffing: Option<Sniffing>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Default, Deserialize)]
pub struct VlessInSettings {
    #[serde(default, alias = "users")]
    pub clients: Vec<Client>,
    pub decryption: Option<String>,
    #[serde(default)]
    pub fallbacks: Vec<Fallback>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Default, Deserialize)]
pub struct Client {
    #[serde(default)]
    pub id: String,
    pub email: Option<String>,
    pub flow: Option<String>,
    /// The policy level (wasmray has one policy).
    #[serde(rename = "level")]
    pub _level: Option<IgnoredAny>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Default, Deserialize)]
pub struct Fallback {
    pub name: Option<String>,
    pub alpn: Option<String>,
    pub path: Option<String>,
    pub dest: Option<Value>,
    pub xver: Option<Value>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stream {
    pub network: Option<String>,
    pub security: Option<String>,
    pub tls_settings: Option<TlsSettings>,
    /// Read only to say REALITY is not supported yet.
    #[serde(rename = "realitySettings")]
    pub _reality_settings: Option<IgnoredAny>,
    pub tcp_settings: Option<Value>,
    pub raw_settings: Option<Value>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsSettings {
    pub server_name: Option<String>,
    pub alpn: Option<Vec<String>>,
    #[serde(default)]
    pub certificates: Vec<Certificate>,
    pub allow_insecure: Option<bool>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Certificate {
    pub certificate_file: Option<String>,
    pub key_file: Option<String>,
    /// Inline PEM, as a list of lines (or one string).
    pub certificate: Option<Value>,
    pub key: Option<Value>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sniffing {
    pub enabled: Option<bool>,
    #[serde(default)]
    pub dest_override: Vec<String>,
    pub route_only: Option<bool>,
    pub metadata_only: Option<bool>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Default, Deserialize)]
pub struct SocksSettings {
    pub auth: Option<String>,
    #[serde(default)]
    pub accounts: Vec<Account>,
    pub udp: Option<bool>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Default, Deserialize)]
pub struct Account {
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub pass: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outbound {
    pub tag: Option<String>,
    #[serde(default)]
    pub protocol: String,
    pub settings: Option<Value>,
    pub stream_settings: Option<Stream>,
    pub mux: Option<Mux>,
    #[serde(flatten)]
    pub other: Other,
}

/// A vless outbound's settings: `vnext` (the classic form) or the flat form.
#[derive(Debug, Default, Deserialize)]
pub struct VlessOutSettings {
    #[serde(default)]
    pub vnext: Vec<Vnext>,
    pub address: Option<String>,
    pub port: Option<Value>,
    pub id: Option<String>,
    pub flow: Option<String>,
    pub encryption: Option<String>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Default, Deserialize)]
pub struct Vnext {
    #[serde(default)]
    pub address: String,
    pub port: Option<Value>,
    #[serde(default)]
    pub users: Vec<VnextUser>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Default, Deserialize)]
pub struct VnextUser {
    #[serde(default)]
    pub id: String,
    pub flow: Option<String>,
    pub encryption: Option<String>,
    #[serde(rename = "level")]
    pub _level: Option<IgnoredAny>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mux {
    pub enabled: Option<bool>,
    pub concurrency: Option<i64>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Routing {
    pub domain_strategy: Option<String>,
    #[serde(default)]
    pub rules: Vec<Rule>,
    #[serde(flatten)]
    pub other: Other,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    /// Always "field".
    #[serde(rename = "type")]
    pub _kind: Option<IgnoredAny>,
    #[serde(default, alias = "domains", deserialize_with = "list")]
    pub domain: Option<Vec<String>>,
    #[serde(default, deserialize_with = "list")]
    pub ip: Option<Vec<String>>,
    pub port: Option<Value>,
    pub source_port: Option<Value>,
    pub network: Option<String>,
    #[serde(default, alias = "sourceIP", deserialize_with = "list")]
    pub source: Option<Vec<String>>,
    #[serde(default, deserialize_with = "list")]
    pub user: Option<Vec<String>>,
    #[serde(default, deserialize_with = "list")]
    pub inbound_tag: Option<Vec<String>>,
    #[serde(default, deserialize_with = "list")]
    pub protocol: Option<Vec<String>>,
    pub attrs: Option<Value>,
    pub outbound_tag: Option<String>,
    pub balancer_tag: Option<String>,
    pub rule_tag: Option<String>,
    #[serde(flatten)]
    pub other: Other,
}
