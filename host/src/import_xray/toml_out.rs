//! The wasmray TOML the importer writes, in the shape of `config/server.toml`: serde
//! structs serialized by `toml`, scalars before tables in each, absent fields left out.

use std::collections::BTreeMap;

use serde::Serialize;

#[derive(Debug, Default, Serialize)]
pub struct Out {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<OutLog>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inbound: Vec<OutInbound>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub outbound: Vec<OutOutbound>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api: Option<OutApi>,
    pub stats: OutStats,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns: Option<OutDns>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub geodata: Option<OutGeodata>,
    pub plugins: OutPlugins,
}

#[derive(Debug, Default, Serialize)]
pub struct OutDns {
    pub servers: Vec<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct OutGeodata {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub geosite: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub geoip: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct OutLog {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access: Option<toml::Value>,
}

#[derive(Debug, Default, Serialize)]
pub struct OutInbound {
    pub tag: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub listen: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handshake_timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uplink_only_timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub downlink_only_timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub udp: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<OutTls>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<OutUser>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fallback: Vec<OutFallback>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<OutAccount>,
}

#[derive(Debug, Default, Serialize)]
pub struct OutTls {
    pub cert: String,
    pub key: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alpn: Vec<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct OutUser {
    pub id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub email: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub flow: String,
}

#[derive(Debug, Serialize)]
pub struct OutFallback {
    pub dest: toml::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alpn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_protocol: Option<u8>,
}

#[derive(Debug, Serialize)]
pub struct OutAccount {
    pub user: String,
    pub pass: String,
}

#[derive(Debug, Default, Serialize)]
pub struct OutOutbound {
    pub tag: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insecure: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alpn: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mux: Option<OutMux>,
}

#[derive(Debug, Default, Serialize)]
pub struct OutMux {
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u16>,
}

#[derive(Debug, Serialize)]
pub struct OutApi {
    pub listen: String,
}

#[derive(Debug, Default, Serialize)]
pub struct OutStats {
    pub enabled: bool,
}

#[derive(Debug, Default, Serialize)]
pub struct OutPlugins {
    pub dest_override: Vec<String>,
    pub route_only: bool,
    pub config: BTreeMap<&'static str, OutRouteRules>,
}

#[derive(Debug, Default, Serialize)]
pub struct OutRouteRules {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain_strategy: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rule: Vec<OutRule>,
}

#[derive(Debug, Default, Serialize)]
pub struct OutRule {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    pub outbound: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_port: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inbound: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attrs: Option<BTreeMap<String, String>>,
}
