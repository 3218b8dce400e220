//! `wasmray import-xray`: an Xray JSON config turned into wasmray TOML, naming every
//! field that cannot be carried over. Sans-IO: text in, text out (and the PEM files of
//! inline certificates, which the CLI writes where it is told).
//!
//! What is carried: VLESS inbounds over TCP with TLS (users with flow and email,
//! fallbacks), SOCKS and HTTP inbounds, freedom/blackhole/vless outbounds, routing
//! rules (into `route-rules`), sniffing, the API and stats sections, the level-0
//! policy timeouts and the log. An inbound or outbound that cannot be carried whole is
//! left out rather than carried half (a TLS inbound without its TLS, an HTTP proxy
//! without its accounts), and a rule whose conditions cannot all be carried is left out
//! rather than widened: a rule that matches more than it did would route traffic the
//! operator meant elsewhere.

mod comments;
mod inbound;
mod outbound;
mod routing;
mod toml_out;
mod xray;

use serde_json::{Map, Value};

use toml_out::{Out, OutApi, OutDns, OutLog, OutPlugins, OutStats};
use xray::XrayConfig;

/// The largest config read (Xray configs of thousands of users are a few MiB).
pub const MAX_INPUT: usize = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("larger than {MAX_INPUT} bytes")]
    TooLarge,
    #[error("{0}")]
    Comments(#[from] comments::CommentError),
    #[error("not an Xray JSON config: at {path}: {message}")]
    Json { path: String, message: String },
    #[error("cannot write TOML: {0}")]
    Toml(#[from] toml::ser::Error),
}

/// The result: the TOML, what was left behind, and files to write beside it.
#[derive(Debug, Default)]
pub struct Imported {
    pub toml: String,
    /// `path: why`, one per field not carried over, in config order.
    pub notes: Vec<String>,
    /// (file name, contents): inline certificates and keys, as PEM.
    pub files: Vec<(String, String)>,
}

/// What a conversion collects besides the TOML.
#[derive(Debug, Default)]
pub struct Notes {
    pub notes: Vec<String>,
    pub files: Vec<(String, String)>,
}

impl Notes {
    pub fn not_carried(&mut self, path: &str, why: impl std::fmt::Display) {
        self.notes.push(format!("{path}: {why}"));
    }

    /// Every key of `other` (the fields a struct does not model), under `path`; a
    /// field at its zero value (null, false, 0, "", [], {}) is Xray's default there and
    /// changes nothing.
    pub fn unknown(&mut self, path: &str, other: &Map<String, Value>) {
        for key in other.iter().filter(|(_, v)| !is_zero(v)).map(|(k, _)| k) {
            let at = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            self.not_carried(&at, "not carried over");
        }
    }
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// Imports `json` (comments allowed, as Xray allows them).
pub fn import(json: &str) -> Result<Imported, ImportError> {
    if json.len() > MAX_INPUT {
        return Err(ImportError::TooLarge);
    }
    let json = comments::strip(json)?;
    let mut de = serde_json::Deserializer::from_str(&json);
    let config: XrayConfig =
        serde_path_to_error::deserialize(&mut de).map_err(|e| ImportError::Json {
            path: e.path().to_string(),
            message: e.inner().to_string(),
        })?;
    let mut notes = Notes::default();
    let out = convert(config, &mut notes);
    let body = toml::to_string(&out)?;
    Ok(Imported {
        toml: with_header(&body, &notes.notes),
        notes: notes.notes,
        files: notes.files,
    })
}

fn convert(config: XrayConfig, notes: &mut Notes) -> Out {
    notes.unknown("", &config.other);
    let api_tag = config.api.as_ref().and_then(|a| a.tag.clone());
    let api = config
        .api
        .as_ref()
        .and_then(|a| api(a, &config.inbounds, notes));
    let timeouts = config
        .policy
        .as_ref()
        .map(|p| inbound::policy_timeouts(p, notes))
        .unwrap_or_default();
    let inbounds = inbound::convert_all(&config.inbounds, api_tag.as_deref(), &timeouts, notes);
    let outbounds = outbound::convert_all(&config.outbounds, notes);
    let plugins = OutPlugins {
        config: routing::convert(
            config.routing.as_ref(),
            &outbounds,
            api_tag.as_deref(),
            notes,
        ),
        ..inbound::sniffing(&config.inbounds, api_tag.as_deref(), notes)
    };
    let geodata = (plugins.config.get("route-rules")).and_then(|r| routing::geodata(r, notes));
    Out {
        log: config.log.as_ref().map(|l| log(l, notes)),
        inbound: inbounds,
        outbound: outbounds,
        api,
        stats: OutStats {
            enabled: config.stats.is_some(),
        },
        dns: config.dns.as_ref().and_then(|d| dns(d, notes)),
        geodata,
        plugins,
    }
}

/// `dns.servers` that name one server (`"8.8.8.8"`, `"tcp://..."`, `"https://IP/..."`,
/// `"localhost"`, or an object with only `address` and `port`); servers for some
/// domains only, fake DNS and the rest are named.
fn dns(dns: &xray::Dns, notes: &mut Notes) -> Option<OutDns> {
    notes.unknown("dns", &dns.other);
    let mut servers = Vec::new();
    for (i, server) in dns.servers.iter().enumerate() {
        let at = format!("dns.servers[{i}]");
        let text = match server {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) if o.keys().all(|k| k == "address" || k == "port") => {
                let address = o.get("address").and_then(Value::as_str);
                let port = o.get("port").and_then(Value::as_u64);
                match (address, port.and_then(|p| u16::try_from(p).ok())) {
                    (Some(a), Some(p)) if a.parse::<std::net::IpAddr>().is_ok() => {
                        Some(crate::util::host_port(a, p))
                    }
                    (Some(a), _) => Some(a.to_string()),
                    (None, _) => None,
                }
            }
            _ => None,
        };
        match text.filter(|t| crate::config::DnsServer::parse(t).is_ok()) {
            Some(t) => servers.push(t),
            None => notes.not_carried(
                &at,
                "only whole servers by IP are carried (no per-domain servers, fake DNS or DNS over HTTPS by name)",
            ),
        }
    }
    (!servers.is_empty()).then_some(OutDns { servers })
}

fn log(log: &xray::Log, notes: &mut Notes) -> OutLog {
    notes.unknown("log", &log.other);
    let level = match log.loglevel.as_deref() {
        None => None,
        Some("debug") => Some("debug"),
        Some("info") => Some("info"),
        Some("warning") => Some("warn"),
        Some("error") => Some("error"),
        Some("none") => Some("off"),
        Some(other) => {
            notes.not_carried("log.loglevel", format!("unknown level {other:?}"));
            None
        }
    };
    let access = match log.access.as_deref() {
        None | Some("") => None,
        Some("none") => Some(toml::Value::Boolean(false)),
        Some(path) => Some(toml::Value::String(path.into())),
    };
    if log
        .error
        .as_deref()
        .is_some_and(|e| !e.is_empty() && e != "none")
    {
        notes.not_carried(
            "log.error",
            "wasmray logs to standard error (journald under systemd)",
        );
    }
    OutLog {
        level: level.map(Into::into),
        access,
    }
}

/// `[api]`: Xray's own `api.listen`, else the dokodemo-door inbound tagged as the API.
fn api(api: &xray::Api, inbounds: &[xray::Inbound], notes: &mut Notes) -> Option<OutApi> {
    notes.unknown("api", &api.other);
    for (i, service) in api.services.iter().enumerate() {
        if !matches!(service.as_str(), "HandlerService" | "StatsService") {
            notes.not_carried(
                &format!("api.services[{i}]"),
                format!("{service} is not served (HandlerService and StatsService are)"),
            );
        }
    }
    if let Some(listen) = &api.listen {
        return Some(OutApi {
            listen: listen.clone(),
        });
    }
    let tag = api.tag.as_deref()?;
    let Some(inbound) = inbounds.iter().find(|i| i.tag.as_deref() == Some(tag)) else {
        notes.not_carried(
            "api",
            format!("no inbound is tagged {tag:?}, so the API has no address"),
        );
        return None;
    };
    let host = match inbound.listen.as_ref().and_then(Value::as_str) {
        Some(h) if !h.is_empty() => h.to_string(),
        _ => "127.0.0.1".into(),
    };
    let port = inbound::port(inbound.port.as_ref())?;
    Some(OutApi {
        listen: crate::util::host_port(&host, port),
    })
}

fn with_header(body: &str, notes: &[String]) -> String {
    let mut out = String::from("# Imported from an Xray JSON config by `wasmray import-xray`.\n");
    if notes.is_empty() {
        out.push_str("# Every field was carried over.\n");
    } else {
        out.push_str("# Not carried over (check these before serving):\n");
        for note in notes {
            for (i, line) in note.lines().enumerate() {
                out.push_str(if i == 0 { "#   - " } else { "#     " });
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out.push('\n');
    out.push_str(body);
    out
}

#[cfg(test)]
mod tests;
