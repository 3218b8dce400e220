//! Configuration: TOML in the shape of `config/server.toml`, read into raw serde
//! structs (`raw`, unknown fields refused) and turned into a validated [`Config`] by
//! one small function per section. Validation collects every error it finds, each
//! naming its field path, so `wasmray check` can show them all at once.

mod dns;
mod error;
mod geodata;
mod inbound;
mod layers;
mod outbound;
mod plugins;
mod policy;
mod raw;
mod share_links;
pub mod tls;
mod units;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use dns::{DnsConfig, DnsServer};
pub use error::{ConfigError, ConfigErrors};
pub use layers::{Security, Transport};
pub use plugins::toml_to_json;
pub use policy::Quarantine;
pub use tls::{ApiTls, TlsIdentity};
pub use units::{parse_duration, parse_size};

use error::Errors;

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub log: LogConfig,
    pub inbounds: Vec<InboundConfig>,
    pub outbounds: Vec<OutboundConfig>,
    pub plugins: PluginsConfig,
    pub stats: StatsConfig,
    /// `[api]`: Xray's gRPC management API (off unless configured).
    pub api: Option<ApiConfig>,
    /// `[metrics]`: Prometheus metrics at `/metrics` (off unless configured).
    pub metrics: Option<MetricsConfig>,
    /// `[dns]`: the resolver routing asks (the system's unless configured).
    pub dns: DnsConfig,
}

/// `[metrics]`: where `/metrics` is served, and whether users get their own series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsConfig {
    pub listen: SocketAddr,
    /// One byte series per user (off: their number is the operator's choice).
    pub per_user: bool,
}

/// `[api]`: where the management API listens, how, and where it keeps its changes.
/// Fixed at start: a reload does not move or re-key it.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub listen: SocketAddr,
    /// `[api.tls]`: required beyond loopback.
    pub tls: Option<ApiTls>,
    /// `persist`: the users added and removed over the API, kept in this file.
    pub persist: Option<PathBuf>,
}

/// `[stats]`: the traffic counters and online maps the API reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsConfig {
    /// Counting is on unless turned off (it costs the relay nothing measurable).
    pub enabled: bool,
}

impl Default for StatsConfig {
    fn default() -> Self {
        StatsConfig { enabled: true }
    }
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    /// A tracing filter directive such as "info" (RUST_LOG overrides it).
    pub level: String,
    /// One line per session on the `access` target, whatever `level` says.
    pub access: AccessLog,
    pub json: bool,
}

/// Where the access log goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLog {
    Off,
    /// With the other log lines, on standard error.
    Stderr,
    /// Appended to this file, reopened on SIGHUP (for logrotate).
    File(PathBuf),
}

#[derive(Debug, Clone)]
pub struct InboundConfig {
    pub tag: String,
    pub listen: SocketAddr,
    pub kind: InboundKind,
}

#[derive(Debug, Clone)]
pub enum InboundKind {
    Vless(VlessInbound),
    /// SOCKS5: CONNECT and UDP ASSOCIATE, optional username/password.
    Socks(SocksInbound),
    /// HTTP proxy: CONNECT and absolute-URI requests.
    Http(HttpInbound),
}

#[derive(Debug, Clone)]
pub struct SocksInbound {
    pub timeouts: Timeouts,
    pub max_connections: usize,
    /// Username/password pairs; empty means no authentication.
    pub accounts: Vec<Account>,
    pub udp: bool,
}

#[derive(Debug, Clone)]
pub struct HttpInbound {
    pub timeouts: Timeouts,
    pub max_connections: usize,
}

#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    pub user: String,
    pub pass: String,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Account({}, ***)", self.user)
    }
}

#[derive(Debug, Clone)]
pub struct VlessInbound {
    pub transport: Transport,
    pub security: Security,
    pub tls: TlsIdentity,
    pub users: Vec<User>,
    pub fallbacks: Vec<Fallback>,
    pub timeouts: Timeouts,
    /// Connections served at once; more wait in the kernel's accept queue.
    pub max_connections: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// From accept to a complete VLESS header (Xray: 60 s).
    pub handshake: Duration,
    /// No byte in either direction (Xray `connIdle`: 300 s).
    pub idle: Duration,
    /// After the downlink has closed, how long the uplink may go on (Xray: 1 s).
    pub uplink_only: Duration,
    /// After the uplink has closed, how long the downlink may go on (Xray: 1 s).
    pub downlink_only: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            handshake: Duration::from_secs(60),
            idle: Duration::from_secs(300),
            uplink_only: Duration::from_secs(1),
            downlink_only: Duration::from_secs(1),
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub id: uuid::Uuid,
    pub email: String,
    pub flow: Flow,
}

/// The VLESS flow of a user or an outbound (`shared/spec/xtls-vision.md` §1.3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Flow {
    #[default]
    None,
    /// `xtls-rprx-vision`.
    Vision,
    /// `xtls-rprx-vision-udp443`: Vision, and UDP to port 443 is allowed (outbounds only;
    /// on the wire it is `xtls-rprx-vision`).
    VisionUdp443,
}

impl Flow {
    /// The flow named `text`, as Xray's config loader accepts it; `udp443` allows
    /// the client-only alias.
    pub fn parse(text: &str, udp443: bool) -> Result<Flow, String> {
        match text {
            "" | "none" => Ok(Flow::None),
            crate::proto::vision::FLOW => Ok(Flow::Vision),
            "xtls-rprx-vision-udp443" if udp443 => Ok(Flow::VisionUdp443),
            other if udp443 => Err(format!(
                "unknown flow {other:?}: use \"\", \"xtls-rprx-vision\" or \"xtls-rprx-vision-udp443\""
            )),
            other => Err(format!(
                "unknown flow {other:?}: a user's flow is \"\" or \"xtls-rprx-vision\""
            )),
        }
    }

    pub fn is_vision(self) -> bool {
        self != Flow::None
    }

    /// The name in configs and share links ("" for none).
    pub fn name(self) -> &'static str {
        match self {
            Flow::None => "",
            Flow::Vision => crate::proto::vision::FLOW,
            Flow::VisionUdp443 => "xtls-rprx-vision-udp443",
        }
    }
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a full user id: it is the user's password.
        write!(
            f,
            "User({}, {})",
            self.email,
            crate::util::short_id(&self.id)
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fallback {
    pub dest: FallbackDest,
    /// Substring of the SNI ("" = any), lower-case.
    pub sni: String,
    /// Negotiated ALPN ("" = any), lower-case.
    pub alpn: String,
    /// Exact HTTP request path ("" = any).
    pub path: String,
    /// PROXY protocol version to prepend: 0 (none), 1 or 2.
    pub proxy_protocol: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FallbackDest {
    /// "host:port"
    Tcp(String),
    Unix(PathBuf),
}

#[derive(Debug, Clone)]
pub struct OutboundConfig {
    pub tag: String,
    pub kind: OutboundKind,
}

#[derive(Debug, Clone)]
pub enum OutboundKind {
    Direct { connect_timeout: Duration },
    Block,
    Vless(VlessOutbound),
}

/// A VLESS-over-TLS server to send sessions to.
#[derive(Clone)]
pub struct VlessOutbound {
    pub transport: Transport,
    pub security: Security,
    pub host: String,
    pub port: u16,
    pub id: uuid::Uuid,
    pub flow: Flow,
    pub sni: String,
    pub insecure: bool,
    pub alpn: Vec<String>,
    pub connect_timeout: Duration,
    /// CA certificates to trust instead of the web PKI roots.
    pub ca: Option<Vec<rustls_pki_types::CertificateDer<'static>>>,
    pub mux: MuxConfig,
}

/// Mux.Cool on a vless outbound (Xray's `mux` object).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MuxConfig {
    pub enabled: bool,
    /// Sub-streams open at once per tunnel (Xray's default 8).
    pub concurrency: u16,
    /// A tunnel with no sub-stream for this long is closed (Xray checks every 16 s).
    pub idle_timeout: Duration,
}

impl Default for MuxConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            concurrency: 8,
            idle_timeout: Duration::from_secs(16),
        }
    }
}

impl std::fmt::Debug for VlessOutbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "VlessOutbound({}:{}, {}, sni {})",
            self.host,
            self.port,
            crate::util::short_id(&self.id),
            self.sni
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Drop the failing plugin's delta; the session goes on.
    Skip,
    /// Close the session.
    Block,
}

#[derive(Debug, Clone)]
pub struct PluginsConfig {
    pub dir: Option<PathBuf>,
    pub pipeline: Vec<String>,
    pub sniff_window: Duration,
    pub call_timeout: Duration,
    pub memory_limit: u64,
    /// What a session does when a plugin fails (`[plugins] on_error`) ...
    pub on_error: OnError,
    /// ... unless the plugin has its own (`[plugins.policy.NAME] on_error`).
    pub policies: BTreeMap<String, OnError>,
    /// `[plugins.quarantine]`: when a plugin that keeps failing is taken out.
    pub quarantine: Quarantine,
    /// Sniffed protocols (prefix match, as Xray) whose domain replaces the target.
    pub dest_override: Vec<String>,
    /// Use the sniffed domain for routing only; dial the original target.
    pub route_only: bool,
    /// Each plugin's own table, as JSON for the plugin's `configure`.
    pub config: BTreeMap<String, serde_json::Value>,
    /// Where compiled plugins are kept between starts (none: compile at every start).
    pub cache: Option<PathBuf>,
    /// `[geodata]`: the routing data the plugins query (the files are read by the
    /// registry, which owns their reloads).
    pub geodata: crate::geodata::Sources,
}

impl Config {
    /// Reads and validates a configuration file. Relative paths inside it (certificates,
    /// the plugin directory) are relative to the file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![
                ConfigError::at("", format!("cannot read: {e}")).in_file(Some(path)),
            ])
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base).map_err(|errs| {
            ConfigErrors(errs.0.into_iter().map(|e| e.in_file(Some(path))).collect())
        })
    }

    /// Validates configuration text; relative paths are resolved against `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Config, ConfigErrors> {
        let raw = parse_raw(text)?;
        let mut errors = Errors::default();
        let config = validate(raw, base, &mut errors);
        match config {
            Some(c) if errors.0.is_empty() => Ok(c),
            _ => Err(ConfigErrors(errors.0)),
        }
    }

    pub fn outbound(&self, tag: &str) -> Option<&OutboundConfig> {
        self.outbounds.iter().find(|o| o.tag == tag)
    }
}

fn parse_raw(text: &str) -> Result<raw::RawConfig, ConfigErrors> {
    let de = toml::Deserializer::parse(text).map_err(|e| toml_error(text, e, String::new()))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        toml_error(text, e.into_inner(), path)
    })
}

fn toml_error(text: &str, e: toml::de::Error, path: String) -> ConfigErrors {
    let path = if path == "." { String::new() } else { path };
    let mut err = ConfigError::at(path, e.message().trim().to_string());
    err.line_col = e.span().map(|s| error::line_col(text, s.start));
    ConfigErrors(vec![err])
}

fn validate(raw: raw::RawConfig, base: &Path, errors: &mut Errors) -> Option<Config> {
    let log = validate_log(raw.log, base, errors);
    let outbounds = outbound::validate_all(raw.outbound, base, errors);
    let inbounds = inbound::validate_all(raw.inbound, base, errors);
    let tags: Vec<&str> = outbounds.iter().map(|o| o.tag.as_str()).collect();
    let mut plugins = plugins::validate(raw.plugins, base, &tags, errors);
    plugins.geodata = geodata::validate(raw.geodata, base, errors);
    let dns = dns::validate(raw.dns, errors);
    let stats = StatsConfig {
        enabled: raw.stats.enabled.unwrap_or(true),
    };
    let api = raw.api.and_then(|a| validate_api(&a, base, errors));
    let metrics = raw
        .metrics
        .and_then(|m| errors.take("metrics.listen", validate_metrics(&m)));
    Some(Config {
        log,
        inbounds,
        outbounds,
        plugins,
        stats,
        api,
        metrics,
        dns,
    })
}

/// A management listener's address: loopback unless `allow_remote` (`why` says
/// what binds there and why it is guarded).
fn guarded_listen(
    listen: &str,
    allow_remote: Option<bool>,
    why: &str,
) -> Result<SocketAddr, String> {
    let addr: SocketAddr =
        (listen.parse()).map_err(|_| format!("not an address (IP:port): {listen:?}"))?;
    if !addr.ip().is_loopback() && !allow_remote.unwrap_or(false) {
        return Err(format!(
            "{addr} is not a loopback address: {why} loopback unless `allow_remote = true`"
        ));
    }
    Ok(addr)
}

/// Metrics carry no secrets (per-user series carry emails), but they tell a prober
/// much: loopback unless the operator says otherwise.
fn validate_metrics(raw: &raw::RawMetrics) -> Result<MetricsConfig, String> {
    let listen = guarded_listen(&raw.listen, raw.allow_remote, "metrics bind")?;
    Ok(MetricsConfig {
        listen,
        per_user: raw.per_user.unwrap_or(false),
    })
}

/// The API manages users and reads everyone's traffic: loopback only, unless the
/// operator says otherwise.
fn validate_api(raw: &raw::RawApi, base: &Path, errors: &mut Errors) -> Option<ApiConfig> {
    let why = "the API can add users and read all traffic, so it binds";
    let listen = errors.take(
        "api.listen",
        guarded_listen(&raw.listen, raw.allow_remote, why),
    );
    let tls = match &raw.tls {
        Some(t) => Some(tls::load_api(t, base, errors)?),
        None => None,
    };
    let listen = listen?;
    if !listen.ip().is_loopback() && tls.is_none() {
        errors.push(
            "api.tls",
            "beyond loopback the API needs TLS: add [api.tls] with cert and key (and client_ca, so only your panel's certificate gets in)",
        );
        return None;
    }
    let persist = match raw.persist.as_deref() {
        Some("") => {
            errors.push("api.persist", "an empty path; leave it out or name a file");
            return None;
        }
        Some(p) => Some(base.join(p)),
        None => None,
    };
    Some(ApiConfig {
        listen,
        tls,
        persist,
    })
}

fn validate_log(raw: raw::RawLog, base: &Path, errors: &mut Errors) -> LogConfig {
    let level = raw.level.unwrap_or_else(|| "info".into());
    if !["error", "warn", "info", "debug", "trace", "off"].contains(&level.as_str()) {
        errors.push(
            "log.level",
            format!("unknown level {level:?}; use error, warn, info, debug or trace"),
        );
    }
    let json = match raw.format.as_deref() {
        None | Some("text") => false,
        Some("json") => true,
        Some(other) => {
            errors.push(
                "log.format",
                format!("unknown format {other:?}; use text or json"),
            );
            false
        }
    };
    let access = match raw.access {
        None | Some(raw::RawAccess::On(true)) => AccessLog::Stderr,
        Some(raw::RawAccess::On(false)) => AccessLog::Off,
        Some(raw::RawAccess::File(f)) if f.is_empty() => {
            errors.push(
                "log.access",
                "an empty path; use true, false or a file path",
            );
            AccessLog::Off
        }
        Some(raw::RawAccess::File(f)) => AccessLog::File(base.join(f)),
    };
    LogConfig {
        level,
        access,
        json,
    }
}

#[cfg(test)]
mod tests;
